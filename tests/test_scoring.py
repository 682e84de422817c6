"""Scoring rules: properness, closed forms, bounds and rewards."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crowdauction.errors import InvalidReportError, UnknownNameError
from crowdauction.mechanisms import Brier, LinearScore, Logarithmic, Spherical, get_scoring_rule
from crowdauction.mechanisms.scoring import check_distribution


def _simplex_grid(m: int, steps: int) -> np.ndarray:
    """Every distribution on m outcomes with probabilities in multiples of 1/steps."""
    pts = [c for c in np.ndindex(*(steps + 1,) * (m - 1)) if sum(c) <= steps]
    return np.array([[*c, steps - sum(c)] for c in pts], dtype=float) / steps


@pytest.mark.parametrize("rule", [Brier(), Logarithmic(a=1.0, b=0.5), Spherical()])
def test_truth_is_the_unique_maximiser_on_a_grid(rule):
    grid = _simplex_grid(3, 10)
    for G in grid[::7]:
        scores = rule.expected_score(grid, np.broadcast_to(G, grid.shape))
        best = np.argmax(scores)
        np.testing.assert_allclose(grid[best], G)
        others = np.delete(scores, best)
        assert np.all(others < scores[best] - 1e-12)


def test_linear_score_is_improper():
    rule = LinearScore()
    G = np.array([[0.6, 0.4]])
    point = np.array([[1.0, 0.0]])
    assert rule.expected_score(point, G)[0] > rule.expected_score(G, G)[0]
    assert not rule.strictly_proper


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0), min_size=2, max_size=6),
    st.lists(st.floats(0.0, 1.0), min_size=2, max_size=6),
)
def test_brier_expected_score_closed_form(f, g):
    m = min(len(f), len(g))
    F = np.array(f[:m]) + 1e-3
    G = np.array(g[:m]) + 1e-3
    F, G = F / F.sum(), G / G.sum()
    want = (G**2).sum() - 1 - ((G - F) ** 2).sum()
    assert Brier().expected_score(F[None], G[None])[0] == pytest.approx(want, abs=1e-12)


def test_brier_bounds_and_reward_scale():
    rule = Brier()
    assert rule.bounds == (-2.0, 0.0)
    F = np.array([[1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(rule.score(np.array([0, 1]), F), [0.0, -2.0])
    # eps/2 (2 + BSR) in [0, eps]
    np.testing.assert_allclose(rule.reward(np.array([0, 1]), F, 0.1), [0.1, 0.0])


def test_log_score_of_impossible_outcome_is_minus_infinity_through_means():
    rule = Logarithmic(a=1.0, b=1.0)
    F = np.array([[1.0, 0.0]])
    assert rule.score(np.array([1]), F)[0] == -np.inf
    assert rule.expected_score(F, np.array([[0.5, 0.5]]))[0] == -np.inf
    # An outcome the truth rules out does not poison the mean.
    assert rule.expected_score(F, np.array([[1.0, 0.0]]))[0] == pytest.approx(1.0)
    assert np.mean(rule.score(np.array([0, 1]), np.vstack([F, F]))) == -np.inf


def test_spherical_bounds():
    rule = Spherical()
    s = rule.score_all(_simplex_grid(3, 6))
    assert s.min() >= 0.0 and s.max() <= 1.0 + 1e-12


def test_belief_reports_off_the_simplex_are_rejected():
    with pytest.raises(InvalidReportError, match="sums to"):
        check_distribution(np.array([[0.5, 0.4]]))
    with pytest.raises(InvalidReportError, match="negative"):
        check_distribution(np.array([[1.5, -0.5]]))
    with pytest.raises(InvalidReportError, match="non-finite"):
        check_distribution(np.array([[np.nan, 1.0]]))


def test_unknown_rule_name_lists_the_known_ones():
    with pytest.raises(UnknownNameError, match="expected one of.*brier"):
        get_scoring_rule("quadratic-ish")
