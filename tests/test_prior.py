"""Type spaces, priors and their constructors, views and sampling."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crowdauction.errors import InvalidPriorError, InvalidReportError
from crowdauction.mechanisms import Prior, TypeSpace
from crowdauction.mechanisms.prior import SUM_TOLERANCE


def test_type_space_rejects_unsorted_negative_and_fractional_grids():
    with pytest.raises(ValueError, match="strictly increasing"):
        TypeSpace([[0, 2, 1]])
    with pytest.raises(ValueError, match="non-negative integers"):
        TypeSpace([[-1, 0]])
    with pytest.raises(ValueError, match="non-negative integers"):
        TypeSpace([[0, 1.5]])


def test_indices_of_names_off_grid_values():
    space = TypeSpace([[0, 2, 5], [1, 3]])
    np.testing.assert_array_equal(space.indices_of(np.array([[5, 1], [0, 3]])), [[2, 0], [0, 1]])
    with pytest.raises(InvalidReportError, match=r"bidder 0 is off its grid: got \[4\]"):
        space.indices_of(np.array([[4, 1]]))
    with pytest.raises(InvalidReportError, match="last axis of length n=2"):
        space.indices_of(np.array([[0, 1, 3]]))


def test_prior_validation_messages_name_value_and_fix():
    grids = [[0, 1], [0, 1]]
    with pytest.raises(InvalidPriorError, match="negative"):
        Prior(np.array([[0.5, 0.6], [0.0, -0.1]]), grids)
    with pytest.raises(InvalidPriorError, match="non-finite"):
        Prior(np.array([[0.5, np.nan], [0.25, 0.25]]), grids)
    with pytest.raises(InvalidPriorError, match="sums to 0.9.*divide by its sum"):
        Prior(np.array([[0.3, 0.3], [0.2, 0.1]]), grids)
    with pytest.raises(InvalidPriorError, match=r"shape \(3,\), expected \(2, 2\)"):
        Prior(np.ones(3) / 3, grids)
    # Within the stated tolerance the table is accepted and renormalised.
    p = Prior(np.array([[0.25, 0.25], [0.25, 0.25 + SUM_TOLERANCE / 2]]), grids)
    assert p.table.sum() == pytest.approx(1.0, abs=1e-15)


def test_independent_and_iid_constructors_are_products():
    p = Prior.independent([[0.2, 0.8], [0.5, 0.25, 0.25]], [[0, 1], [0, 1, 2]])
    np.testing.assert_allclose(p.table, np.outer([0.2, 0.8], [0.5, 0.25, 0.25]))
    assert p.is_independent()
    q = Prior.iid([0.1, 0.9], [0, 3], 3)
    assert q.table.shape == (2, 2, 2)
    assert q.table[1, 1, 1] == pytest.approx(0.9**3)


def test_from_table_and_empirical():
    p = Prior.from_table([((0, 1), 0.25), ((1, 1), 0.75)], [[0, 1], [0, 1]])
    np.testing.assert_allclose(p.table, [[0, 0.25], [0, 0.75]])
    e = Prior.empirical(np.array([[0, 1], [1, 1], [1, 1], [1, 1]]), [[0, 1], [0, 1]])
    np.testing.assert_allclose(e.table, p.table)
    with pytest.raises(InvalidPriorError, match="bin the data onto the grid"):
        Prior.empirical(np.array([[0, 7]]), [[0, 1], [0, 1]])


def test_common_component_is_correlated_with_the_right_marginal():
    # theta_i = C + X_i with C, X_i uniform on {0, 1}: each marginal is (1/4, 1/2, 1/4).
    p = Prior.common_component(2, [0.5, 0.5], [0.5, 0.5])
    np.testing.assert_allclose(p.marginal(0), [0.25, 0.5, 0.25])
    # P(theta = (0, 0)) = P(C=0) P(X_1=0) P(X_2=0) = 1/8, versus 1/16 if independent.
    assert p.table[0, 0] == pytest.approx(1 / 8)
    assert not p.is_independent()


def test_gaussian_copula_marginals_and_correlation():
    p = Prior.gaussian_copula(2, [0, 1, 2, 3], 0.6)
    for i in range(2):
        np.testing.assert_allclose(p.marginal(i), np.full(4, 0.25), atol=1e-9)
    indep = Prior.gaussian_copula(2, [0, 1, 2, 3], 0.0)
    np.testing.assert_allclose(indep.table, np.full((4, 4), 1 / 16), atol=1e-9)
    # Positive correlation puts extra mass on the diagonal.
    assert np.trace(p.table) > np.trace(indep.table) + 0.05
    with pytest.raises(InvalidPriorError, match="rho must lie in"):
        Prior.gaussian_copula(2, [0, 1], 1.0)


def test_marginal_restrict_conditional():
    p = Prior.gaussian_copula(3, [0, 1, 2], 0.5)
    r = p.restrict([2, 0])
    np.testing.assert_allclose(r.table, p.table.sum(axis=1).T)
    c = p.conditional({1: 2})
    np.testing.assert_allclose(c.table, p.table[:, 2, :] / p.table[:, 2, :].sum())
    np.testing.assert_allclose(p.without(1).table, p.table.sum(axis=1))
    zero = Prior(np.array([[0.5, 0.0], [0.5, 0.0]]), [[0, 1], [0, 1]])
    with pytest.raises(InvalidPriorError, match="probability zero"):
        zero.conditional({1: 1})


def test_full_surplus_of_two_uniform_bits():
    # E[max] of two fair bits = 3/4.
    assert Prior.uniform([0, 1], 2).full_surplus() == pytest.approx(0.75)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(0.01, 1.0), min_size=4, max_size=9), st.integers(0, 2**32 - 1))
def test_alias_sampling_matches_the_table(weights, seed):
    w = np.array(weights) / np.sum(weights)
    p = Prior(w.reshape(1, -1), [[0], list(range(len(w)))])
    rng = np.random.default_rng(seed)
    n = 20000
    counts = np.bincount(p.sample_flat(n, rng), minlength=len(w))
    # Each frequency within 5 binomial standard errors.
    se = np.sqrt(w * (1 - w) / n)
    assert np.all(np.abs(counts / n - w) <= 5 * se + 1e-12)


def test_sampling_is_reproducible_and_on_the_grid():
    p = Prior.gaussian_copula(3, [1, 4, 9], 0.3)
    a = p.sample(100, np.random.default_rng(3))
    b = p.sample(100, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) <= {1, 4, 9}
    assert not np.array_equal(a, p.sample(100, np.random.default_rng(4)))


def test_zero_probability_profiles_are_never_sampled():
    p = Prior(np.array([[0.5, 0.0], [0.0, 0.5]]), [[0, 1], [0, 1]])
    s = p.sample_indices(5000, np.random.default_rng(0))
    assert np.all(s[:, 0] == s[:, 1])
