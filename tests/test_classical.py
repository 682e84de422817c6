"""Classical mechanisms: closed-form revenues, ties, reserves, the lottery, sampling."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crowdauction.errors import InvalidReportError
from crowdauction.mechanisms import (
    FirstPrice,
    Knowledge,
    KUnits,
    Lookahead,
    Prior,
    SecondPrice,
    Strictified,
    TypeSpace,
    dst_violation,
    evaluate,
    ir_violation,
)


def second_price_revenue_two_uniform(K: int) -> float:
    """E[min(X, Y)] for X, Y i.i.d. uniform on {0..K}.

    E[min] = sum_{t=1..K} P(min >= t) = sum_{t=1..K} ((K+1-t)/(K+1))^2
           = sum_{s=1..K} s^2 / (K+1)^2 = K (2K + 1) / (6 (K + 1)).
    """
    return K * (2 * K + 1) / (6 * (K + 1))


def second_price_revenue_three_uniform(K: int) -> float:
    """E[second highest of three] i.i.d. uniform on {0..K}.

    With q_t = P(X >= t) = (K+1-t)/(K+1), the second highest is >= t exactly when at
    least two values are, so E = sum_{t=1..K} (3 q_t^2 (1 - q_t) + q_t^3)
    = sum_t (3 q_t^2 - 2 q_t^3); with s = K+1-t and N = K+1 this is
    3 K (K+1)(2K+1) / (6 N^2) - 2 (K (K+1) / 2)^2 / N^3 = K(2K+1)/(2N) - K^2/(2N).
    """
    N = K + 1
    return K * (2 * K + 1) / (2 * N) - K**2 / (2 * N)


@pytest.mark.parametrize("K", [1, 2, 3, 5, 9])
def test_second_price_revenue_closed_forms(K):
    values = list(range(K + 1))
    for n, form in [(2, second_price_revenue_two_uniform), (3, second_price_revenue_three_uniform)]:
        prior = Prior.uniform(values, n)
        got = evaluate(SecondPrice(), Knowledge(prior)).revenue
        assert got == pytest.approx(form(K), abs=1e-12)


def test_ties_pay_the_tied_price_in_every_order():
    sp = SecondPrice()
    for perm in set(itertools.permutations([5, 5, 3])):
        out = sp.outcome(np.array([perm]))
        assert out.revenue[0] == 5
        winner = int(np.argmax(out.allocation[0]))
        # The documented tie rule: lowest index among the highest reports.
        assert winner == min(i for i, v in enumerate(perm) if v == 5)
        assert out.allocation.sum() == 1


def test_bid_exactly_at_the_reserve_sells_at_the_reserve():
    out = SecondPrice(reserve=4).outcome(np.array([[4, 2], [3, 2]]))
    np.testing.assert_allclose(out.allocation, [[1, 0], [0, 0]])
    np.testing.assert_allclose(out.payments, [[4, 0], [0, 0]])


def test_personalised_reserves_pay_the_critical_value():
    sp = SecondPrice(reserve=np.array([1.0, 6.0]))
    # Bidder 1 is below its reserve: bidder 0 wins at its own reserve 1.
    np.testing.assert_allclose(sp.outcome(np.array([[4, 5]])).payments, [[1, 0]])
    # Both eligible: bidder 1 wins and pays max(6, 4) = 6.
    np.testing.assert_allclose(sp.outcome(np.array([[4, 7]])).payments, [[0, 6]])


def test_k_units_uniform_price_is_the_k_plus_first_report():
    out = SecondPrice(setting=KUnits(2)).outcome(np.array([[7, 3, 5, 1]]))
    np.testing.assert_allclose(out.allocation, [[1, 0, 1, 0]])
    np.testing.assert_allclose(out.payments, [[3, 0, 3, 0]])


def test_first_price_is_caught_by_the_dominance_check():
    space = TypeSpace.uniform(2, [0, 1, 2, 3])
    gain, where = dst_violation(FirstPrice(), space)
    # Value 3 against a report of 0 wins at 0 by bidding 0 (tie at 0: bidder 0 wins).
    assert gain == pytest.approx(3.0)
    assert where["bidder"] == 0 and where["value"] == 3 and where["report"] == 0
    assert dst_violation(SecondPrice(), space)[0] == pytest.approx(0.0)
    assert ir_violation(SecondPrice(), space) == 0.0


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.02, 0.5))
def test_lottery_makes_every_misreport_lose_strictly(seed, delta):
    rng = np.random.default_rng(seed)
    prior = Prior(rng.dirichlet(np.ones(9)).reshape(3, 3), [[0, 1, 3], [0, 2, 3]])
    for base in (SecondPrice(), Lookahead(prior)):
        strict = Strictified(base, delta, space=prior.space)
        gain, _ = dst_violation(strict, prior.space, misreports_only=True)
        assert gain < 0
        assert -gain >= strict.strictness_margin(2) - 1e-12
        # Revenue keeps a (1 - delta) share.
        k = Knowledge(prior)
        assert evaluate(strict, k).revenue >= (1 - delta) * evaluate(base, k).revenue - 1e-12
    # Without the lottery, second price is only weakly truthful.
    assert dst_violation(SecondPrice(), prior.space, misreports_only=True)[0] == 0.0


def test_lookahead_is_truthful_and_beats_half_of_full_surplus_on_a_correlated_prior():
    prior = Prior.gaussian_copula(3, [0, 1, 2, 3], 0.7)
    mech = Lookahead(prior)
    assert dst_violation(mech, prior.space)[0] <= 1e-12
    assert ir_violation(mech, prior.space) == 0.0
    rev = evaluate(mech, Knowledge(prior)).revenue
    assert evaluate(SecondPrice(), Knowledge(prior)).revenue <= prior.full_surplus()
    assert 0 < rev <= prior.full_surplus()


def test_lookahead_prices_the_candidate_by_the_conditional_distribution():
    # Bidder 1's value given bidder 0 reports 0 is 0 or 3 with probability 1/2 each:
    # price 3 earns 3 * 1/2 = 1.5 > price 0 earns 0, so the candidate is offered 3.
    prior = Prior.from_table([((0, 0), 0.25), ((0, 3), 0.25), ((3, 3), 0.5)], [[0, 3], [0, 3]])
    out = Lookahead(prior).outcome(np.array([[0, 3], [0, 0]]))
    np.testing.assert_allclose(out.payments, [[0, 3], [0, 0]])
    # Profile (0, 0): bidder 0 is the candidate (tie rule); price 0 sells to it at 0.
    np.testing.assert_allclose(out.allocation[1], [1, 0])


def test_batched_sampling_matches_the_exact_outcome_and_is_ex_post_ir():
    prior = Prior.gaussian_copula(2, [0, 1, 2, 3], 0.4)
    mech = Strictified(SecondPrice(), 0.3, space=prior.space)
    rng = np.random.default_rng(0)
    reports = prior.sample(40000, rng)
    real = mech.sample(reports, rng)
    exact = mech.outcome(reports)
    assert real.revenue.mean() == pytest.approx(
        exact.revenue.mean(), abs=4 * real.revenue.std() / 200
    )
    assert real.utilities(reports).min() >= -1e-12
    assert real.served.sum(axis=1).max() <= 1


def test_bad_reports_raise_our_errors():
    sp = SecondPrice()
    with pytest.raises(InvalidReportError, match=r"shape \(B, n\)"):
        sp.outcome(np.array([1, 2, 3]))
    with pytest.raises(InvalidReportError, match="NaN"):
        sp.outcome(np.array([[1.0, np.nan]]))
    with pytest.raises(InvalidReportError, match="non-negative"):
        sp.outcome(np.array([[1, -2]]))
    with pytest.raises(InvalidReportError, match="off its grid"):
        Lookahead(Prior.uniform([0, 1], 2)).outcome(np.array([[0, 2]]))
