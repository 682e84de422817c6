"""Tests of Myerson's auction, virtual values, ironing and monopoly reserves."""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crowdauction.errors import InvalidPriorError
from crowdauction.mechanisms.classical import SecondPrice, dst_violation, ir_violation
from crowdauction.mechanisms.myerson import (
    ironed_virtual_values,
    monopoly_reserve,
    monopoly_reserves,
    myerson,
    myerson_revenue,
    second_price_monopoly_reserves,
    virtual_values,
)
from crowdauction.mechanisms.optimal import optimal_revenue
from crowdauction.mechanisms.prior import Prior
from crowdauction.mechanisms.typespace import DownwardClosed, KUnits


def revenue(mech, prior: Prior) -> float:
    out = mech.outcome(prior.space.profile_values)
    return float(prior.table.ravel() @ out.revenue)


def uniform_myerson_revenue(K: int, n: int) -> Fraction:
    r"""Myerson's revenue for ``n`` i.i.d. bidders uniform on ``{0, ..., K}``, exactly.

    With ``f = 1/(K+1)`` and ``P(V > k) = (K-k)/(K+1)`` the virtual value is
    ``phi_k = k - 1 * (K-k) = 2k - K``: increasing, so no ironing. The auction serves the
    highest bidder when ``phi >= 0``, i.e. when the top value reaches ``r = ceil(K/2)``,
    and revenue is the expected virtual value of the winner:

    ``Rev = sum_{k=r}^{K} (2k - K) P(max = k)``, with ``P(max = k) = ((k+1)^n - k^n) / (K+1)^n``.

    Summation by parts (``a_k = 2k - K``, ``b_k = k^n``, ``a_k - a_{k-1} = 2``) gives

    ``(K+1)^n Rev = K (K+1)^n - (2r - K) r^n - 2 sum_{k=r+1}^{K} k^n``,

    and the power sums are Faulhaber's ``sum_{k<=m} k^2 = m(m+1)(2m+1)/6`` and
    ``sum_{k<=m} k^3 = (m(m+1)/2)^2``. Example: ``K = 2, n = 2``: ``r = 1`` and
    ``Rev = (2*9 - 0 - 2*4)/9 = 10/9``.
    """
    r = math.ceil(K / 2)
    if n == 2:
        def power_sum(m: int) -> int:
            return m * (m + 1) * (2 * m + 1) // 6
    elif n == 3:
        def power_sum(m: int) -> int:
            return (m * (m + 1) // 2) ** 2
    else:
        raise ValueError("closed form written for n in {2, 3}")
    top = K * (K + 1) ** n - (2 * r - K) * r**n - 2 * (power_sum(K) - power_sum(r))
    return Fraction(top, (K + 1) ** n)


def test_closed_form_hand_value() -> None:
    """The formula itself against the enumeration in its docstring (K=2, n=2: 10/9)."""
    assert uniform_myerson_revenue(2, 2) == Fraction(10, 9)
    # K=3, n=2: r=2, (3*16 - 1*4 - 2*9)/16 = 26/16.
    assert uniform_myerson_revenue(3, 2) == Fraction(26, 16)


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("K", [1, 2, 3, 4, 5, 8, 11])
def test_uniform_revenue_matches_closed_form(K: int, n: int) -> None:
    prior = Prior.uniform(list(range(K + 1)), n)
    expected = float(uniform_myerson_revenue(K, n))
    assert myerson_revenue(prior) == pytest.approx(expected, abs=1e-12)
    if (K + 1) ** n <= 400:
        assert optimal_revenue(prior) == pytest.approx(expected, abs=1e-8)


@pytest.mark.parametrize("K", [1, 2, 5, 10])
def test_uniform_virtual_values_and_reserve(K: int) -> None:
    m = np.full(K + 1, 1.0 / (K + 1))
    grid = np.arange(K + 1)
    np.testing.assert_allclose(virtual_values(m, grid), 2 * grid - K, atol=1e-12)
    np.testing.assert_allclose(ironed_virtual_values(m, grid), 2 * grid - K, atol=1e-12)
    # p (K + 1 - p) peaks at (K+1)/2; for even K, K/2 and K/2 + 1 tie and the lower wins.
    assert monopoly_reserve(m, grid) == math.ceil(K / 2)


@pytest.mark.parametrize("K", [2, 4, 5, 9])
def test_iid_regular_second_price_with_reserve_vs_myerson(K: int) -> None:
    """Uniform {0..K}, two bidders: same winners, Myerson earns a grid step more on ties.

    Second price with reserve ``r = ceil(K/2)`` serves exactly Myerson's winners (the top
    report reaching ``r``, lowest index among ties). The prices differ only when bidder 1
    wins with bidder 0 at ``r <= v_0 < v_1``: bidder 1 loses a tie at ``v_0``, so its
    threshold on the grid, Myerson's price, is ``v_0 + 1`` while second price charges
    ``v_0``. Each of the ``C(K - r + 1, 2)`` such profiles has probability
    ``1/(K+1)^2``, so ``Rev(Myerson) - Rev(SP) = C(K - r + 1, 2) / (K+1)^2``.
    """
    prior = Prior.uniform(list(range(K + 1)), 2)
    sp = second_price_monopoly_reserves(prior)
    assert isinstance(sp, SecondPrice)
    r = math.ceil(K / 2)
    np.testing.assert_array_equal(sp.reserve, [r, r])
    prof = prior.space.profile_values
    np.testing.assert_array_equal(
        sp.outcome(prof).allocation, myerson(prior).alloc_table.reshape(-1, 2)
    )
    gap = myerson_revenue(prior) - revenue(sp, prior)
    assert gap == pytest.approx(math.comb(K - r + 1, 2) / (K + 1) ** 2, abs=1e-12)


def test_personalised_reserves_follow_each_marginal() -> None:
    prior = Prior.independent([[0.5, 0.5, 0.0], [0.1, 0.1, 0.8]], [[0, 1, 2], [0, 1, 2]])
    # Bidder 0: revenues 0, 0.5, 0 -> price 1. Bidder 1: 0, 0.9, 1.6 -> price 2.
    np.testing.assert_array_equal(monopoly_reserves(prior), [1, 2])


IRREGULAR_M = [0.5, 0.1, 0.4]
IRREGULAR_G = [1, 2, 3]


def test_irregular_single_bidder_ironing() -> None:
    """One bidder with values (1, 2, 3) w.p. (0.5, 0.1, 0.4).

    Tails ``q = (1, 0.5, 0.4)``; raw virtual values ``phi_0 = 1 - 0.5/0.5 = 0``,
    ``phi_1 = 2 - 0.4/0.1 = -2``, ``phi_2 = 3``: not monotone. The revenue curve has
    points (0, 0), (0.4, 1.2), (0.5, 1.0), (1, 1); the point at q = 0.5 lies below the
    chord from (0.4, 1.2) to (1, 1), so values 1 and 2 are pooled with the chord's slope
    ``(1 - 1.2) / 0.6 = -1/3``. Ironed: (-1/3, -1/3, 3). Only value 3 is served: revenue
    ``3 * 0.4 = 1.2``, the best posted price (prices 1, 2, 3 earn 1, 1, 1.2).
    """
    phi = virtual_values(IRREGULAR_M, IRREGULAR_G)
    np.testing.assert_allclose(phi, [0.0, -2.0, 3.0], atol=1e-12)
    assert np.any(np.diff(phi) < 0)
    ironed = ironed_virtual_values(IRREGULAR_M, IRREGULAR_G)
    np.testing.assert_allclose(ironed, [-1 / 3, -1 / 3, 3.0], atol=1e-12)
    assert np.all(np.diff(ironed) >= 0)

    prior = Prior.independent([IRREGULAR_M], [IRREGULAR_G])
    g = np.array(IRREGULAR_G, dtype=float)
    tail = np.cumsum(np.array(IRREGULAR_M)[::-1])[::-1]
    best_posted = float(np.max(g * tail))
    assert best_posted == pytest.approx(1.2)
    assert myerson_revenue(prior) == pytest.approx(best_posted, abs=1e-12)
    assert optimal_revenue(prior) == pytest.approx(best_posted, abs=1e-8)
    assert monopoly_reserve(IRREGULAR_M, IRREGULAR_G) == 3


def test_irregular_pool_with_positive_ironed_value() -> None:
    """Values (1, ..., 5) w.p. (0.1, 0.1, 0.4, 0.05, 0.35): values 3 and 4 are pooled.

    ``q = (1, 0.9, 0.8, 0.4, 0.35)``, revenues ``v q = (1, 1.8, 2.4, 1.6, 1.75)``. Raw:
    ``phi = (1 - 9, 2 - 8, 3 - 1, 4 - 7, 5) = (-8, -6, 2, -3, 5)``. The upper hull of
    (0,0), (0.35,1.75), (0.4,1.6), (0.8,2.4), (0.9,1.8), (1,1) drops (0.4, 1.6): the
    chord from (0.35, 1.75) to (0.8, 2.4) has slope 0.65/0.45 = 13/9 and passes 1.82 at
    q = 0.4. Ironed: (-8, -6, 13/9, 13/9, 5), a pool with a positive value, so it is
    served. With two i.i.d. bidders, two pooled reports tie and bidder 0 wins; the LP
    optimum must still equal Myerson's revenue.
    """
    m, g = [0.1, 0.1, 0.4, 0.05, 0.35], [1, 2, 3, 4, 5]
    np.testing.assert_allclose(virtual_values(m, g), [-8, -6, 2, -3, 5], atol=1e-12)
    np.testing.assert_allclose(
        ironed_virtual_values(m, g), [-8, -6, 13 / 9, 13 / 9, 5], atol=1e-12
    )
    prior = Prior.iid(m, g, 2)
    mech = myerson(prior)
    np.testing.assert_array_equal(mech.outcome(np.array([[3, 4], [4, 3]])).allocation, [[1, 0]] * 2)
    assert myerson_revenue(prior) == pytest.approx(optimal_revenue(prior), abs=1e-8)


def test_zero_probability_conventions() -> None:
    """Zero-mass values: raw -inf below mass, own value above; ironed copies the lower.

    Values (0, 1, 2, 5) w.p. (0.2, 0, 0.3, 0.5). ``phi_0 = 0 - 1 * 0.8 / 0.2 = -4``,
    value 1 has no mass but mass above (-inf), ``phi_2 = 2 - 3 * 0.5 / 0.3 = -3``,
    ``phi_3 = 5``. Ironing pools the zero-mass value 1 with value 0: the pool's
    quantile interval is [0.8, 1] and the revenue curve at q = 0.8 is the higher price
    2 * 0.8 = 1.6, so its slope is (0 - 1.6) / 0.2 = -8.
    """
    m, g = [0.2, 0.0, 0.3, 0.5], [0, 1, 2, 5]
    np.testing.assert_allclose(virtual_values(m, g), [-4, -np.inf, -3, 5])
    np.testing.assert_allclose(ironed_virtual_values(m, g), [-8, -8, -3, 5])
    # Below the support: -inf; above it: copies the top value with mass.
    m2, g2 = [0.0, 0.5, 0.5, 0.0], [0, 1, 2, 3]
    np.testing.assert_allclose(virtual_values(m2, g2), [-np.inf, 0, 2, 3])
    np.testing.assert_allclose(ironed_virtual_values(m2, g2), [-np.inf, 0, 2, 2])


def test_ironed_zero_is_served_and_ties_go_to_lowest_index() -> None:
    """Uniform {0, 1, 2}, two bidders: phi = (-2, 0, 2); value 1 has phi exactly 0."""
    prior = Prior.uniform([0, 1, 2], 2)
    mech = myerson(prior)
    out = mech.outcome(np.array([[1, 0], [0, 1], [1, 1], [2, 2], [1, 2], [0, 0]]))
    np.testing.assert_array_equal(
        out.allocation, [[1, 0], [0, 1], [1, 0], [1, 0], [0, 1], [0, 0]]
    )
    # (1,0): bidder 0 wins at phi = 0 and pays 1; (1,2): bidder 1 must beat bidder 0's
    # tie at value 1, so its threshold, and price, is 2.
    np.testing.assert_allclose(out.payments, [[1, 0], [0, 1], [1, 0], [2, 0], [0, 2], [0, 0]])


PRIORS = [
    Prior.uniform([0, 1, 2, 3], 2),
    Prior.iid(IRREGULAR_M, IRREGULAR_G, 3),
    Prior.independent([[0.2, 0.0, 0.3, 0.5], [0.4, 0.4, 0.2]], [[0, 1, 2, 5], [1, 3, 4]]),
    Prior.iid([0.1, 0.1, 0.4, 0.05, 0.35], [1, 2, 3, 4, 5], 2),
]


@pytest.mark.parametrize("prior", PRIORS, ids=lambda p: str(p.space.shape))
@pytest.mark.parametrize("setting", [None, KUnits(2)], ids=["single", "2units"])
def test_allocation_monotone_in_own_value_hence_dst(prior: Prior, setting) -> None:
    mech = myerson(prior, setting)
    x = mech.alloc_table
    for i in range(prior.n):
        assert np.all(np.diff(x[..., i], axis=i) >= 0), f"bidder {i} allocation not monotone"
    gain, where = dst_violation(mech, prior.space)
    assert gain <= 1e-12, where
    assert ir_violation(mech, prior.space) <= 1e-12
    cap = 1 if setting is None else 2
    assert np.all(x.sum(axis=-1) <= cap)


def test_kunits_myerson_equals_lp() -> None:
    prior = Prior.iid([0.2, 0.3, 0.1, 0.4], [0, 1, 3, 4], 3)
    for k in (1, 2, 3):
        assert myerson_revenue(prior, KUnits(k)) == pytest.approx(
            optimal_revenue(prior, KUnits(k)), abs=1e-8
        )


def test_downward_closed_myerson_equals_lp() -> None:
    setting = DownwardClosed(((0, 1), (2, 3)))
    prior = Prior.independent(
        [[0.3, 0.3, 0.4], [0.5, 0.2, 0.3], [0.1, 0.6, 0.3], [0.2, 0.2, 0.6]], [[0, 1, 2]] * 4
    )
    mech = myerson(prior, setting)
    served = mech.alloc_table.reshape(-1, 4) > 0
    assert not np.any(served[:, :2].any(axis=1) & served[:, 2:].any(axis=1))
    assert dst_violation(mech, prior.space)[0] <= 1e-12
    assert myerson_revenue(prior, setting) == pytest.approx(
        optimal_revenue(prior, setting), abs=1e-8
    )


def test_correlated_prior_warns_but_stays_truthful() -> None:
    prior = Prior.from_table([((0, 0), 0.5), ((2, 2), 0.5)], [[0, 1, 2], [0, 1, 2]])
    with pytest.warns(UserWarning, match="correlated"):
        mech = myerson(prior)
    assert dst_violation(mech, prior.space)[0] <= 1e-12
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        myerson(Prior.uniform([0, 1], 2))  # independent: no warning


def test_bad_marginal_is_rejected_with_a_clear_message() -> None:
    with pytest.raises(InvalidPriorError, match="sums to"):
        virtual_values([0.5, 0.2], [0, 1])
    with pytest.raises(InvalidPriorError, match="one probability per grid value"):
        monopoly_reserve([0.5, 0.5], [0, 1, 2])
    with pytest.raises(InvalidPriorError, match="strictly increasing"):
        ironed_virtual_values([0.5, 0.5], [1, 1])


weights = st.lists(st.integers(0, 4), min_size=2, max_size=6).filter(lambda w: sum(w) > 0)


@settings(max_examples=150, deadline=None)
@given(weights, st.data())
def test_ironing_is_the_concave_envelope(w: list[int], data: st.DataObject) -> None:
    """Ironed values are monotone, and their tail sums trace an envelope of the curve.

    With ``q_k = P(V >= v_k)``, ``sum_{j >= k, f_j > 0} f_j ironed_j`` is the envelope at
    ``q_k``: at least the revenue ``v_k q_k`` of price ``v_k``, equal to ``v_0`` at
    ``q = 1``, and with the same maximum as the revenue curve (the monopoly revenue).
    """
    m = np.array(w, dtype=float) / sum(w)
    steps = data.draw(st.lists(st.integers(1, 3), min_size=len(w), max_size=len(w)))
    g = np.cumsum(steps) - steps[0]
    ironed = ironed_virtual_values(m, g)
    finite = ironed[np.isfinite(ironed)]
    assert np.all(np.diff(finite) >= -1e-9)
    pos = m > 0
    contrib = np.where(pos, m * np.where(pos, ironed, 0.0), 0.0)
    envelope = np.cumsum(contrib[::-1])[::-1]
    q = np.cumsum(m[::-1])[::-1]
    rev = g * q
    assert np.all(envelope >= rev - 1e-9)
    first = int(np.argmax(pos))
    assert envelope[first] == pytest.approx(g[first], abs=1e-9)
    assert envelope.max() == pytest.approx(rev.max(), abs=1e-9)
    # One bidder: Myerson posts the lowest optimal price.
    prior = Prior.independent([m], [g])
    assert myerson_revenue(prior) == pytest.approx(rev.max(), abs=1e-9)
    k = int(np.argmax(rev >= rev.max() - 1e-9))
    assert monopoly_reserve(m, g) == g[k]


def reference_second_price(row: list[int], reserve: list[float], k: int) -> tuple[list, list]:
    """Second price by hand: eligible reports (at least the reserve) ranked high to low,
    lowest index first among ties; the top k win and pay max(own reserve, next report)."""
    n = len(row)
    ranked = sorted((i for i in range(n) if row[i] >= reserve[i]), key=lambda i: (-row[i], i))
    nxt = row[ranked[k]] if len(ranked) > k else 0
    alloc, pay = [0.0] * n, [0.0] * n
    for i in ranked[:k]:
        alloc[i] = 1.0
        pay[i] = float(max(reserve[i], nxt))
    return alloc, pay


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 4).flatmap(
        lambda n: st.tuples(
            st.lists(st.lists(st.integers(0, 4), min_size=n, max_size=n), min_size=1, max_size=20),
            st.lists(st.integers(0, 4), min_size=n, max_size=n),
            st.integers(1, n),
        )
    ),
    st.booleans(),
)
def test_second_price_with_reserves_matches_reference(case, use_reserve: bool) -> None:
    """The baseline second price (its one-unit fast path and its k-unit path) against
    a hand-written reference, with ties and reports exactly at the reserve."""
    rows, reserve, k = case
    res = [float(x) for x in reserve] if use_reserve else [0.0] * len(reserve)
    mech = SecondPrice(reserve=np.array(res) if use_reserve else None, setting=KUnits(k))
    out = mech.outcome(np.array(rows))
    for b, row in enumerate(rows):
        alloc, pay = reference_second_price(row, res, k)
        np.testing.assert_array_equal(out.allocation[b], alloc)
        np.testing.assert_array_equal(out.payments[b], pay)
