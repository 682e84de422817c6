"""VCG, the detail-free rivals, Cremer-McLean and the naive common-prior mechanism."""

from __future__ import annotations

import numpy as np
import pytest

from crowdauction.errors import InvalidPriorError, InvalidReportError
from crowdauction.mechanisms.classical import (
    ClassicalMechanism,
    Outcome,
    SecondPrice,
    dst_violation,
    ir_violation,
)
from crowdauction.mechanisms.cremer_mclean import CremerMcLean, conditional_matrix
from crowdauction.mechanisms.detail_free import (
    EmpiricalReserve,
    SingleSample,
    empirical_monopoly_price,
)
from crowdauction.mechanisms.exact import Strategy, evaluate
from crowdauction.mechanisms.knowledge import Knowledge
from crowdauction.mechanisms.naive import NaiveCommonPrior
from crowdauction.mechanisms.optimal import optimal_mechanism, optimal_revenue
from crowdauction.mechanisms.prior import Prior
from crowdauction.mechanisms.typespace import DownwardClosed, KUnits, TypeSpace
from crowdauction.mechanisms.vcg import VCG, feasible_family

GROUPS = DownwardClosed(((0,), (1, 2)))


def _revenue(mech: ClassicalMechanism, prior: Prior) -> float:
    prof = prior.space.profile_values
    return float(prior.table.ravel() @ mech.outcome(prof).revenue)


# -- VCG ------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("reserve", [None, 2, [0, 1, 2, 3]])
def test_vcg_is_second_price_for_k_units(k, reserve):
    space = TypeSpace.uniform(4, [0, 1, 2, 3])
    prof = space.profile_values
    a = VCG(KUnits(k), reserve=reserve).outcome(prof)
    b = SecondPrice(reserve=reserve, setting=KUnits(k)).outcome(prof)
    np.testing.assert_array_equal(a.allocation, b.allocation)
    np.testing.assert_allclose(a.payments, b.payments, atol=1e-12)


def test_vcg_two_groups_by_hand():
    out = VCG(GROUPS).outcome(np.array([[3, 2, 2], [5, 2, 2], [4, 2, 2], [0, 0, 0], [1, 3, 0]]))
    np.testing.assert_array_equal(
        out.allocation, [[0, 1, 1], [1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 1, 1]]
    )
    # 3 < 2 + 2: the pair wins, each pays 3 minus its partner's 2. A tie (4 vs 4) goes to
    # the set whose indicator is lexicographically largest: bidder 0, at price 4.
    np.testing.assert_allclose(
        out.payments, [[0, 1, 1], [4, 0, 0], [4, 0, 0], [0, 0, 0], [0, 1, 0]]
    )


def test_vcg_family_order_and_size_guard():
    fam = feasible_family(GROUPS, 3)
    assert fam.tolist() == [[1, 0, 0], [0, 1, 1], [0, 1, 0], [0, 0, 1], [0, 0, 0]]
    big = DownwardClosed((tuple(range(17)),))
    with pytest.raises(ValueError, match="feasible winner sets"):
        feasible_family(big, 17)


def test_vcg_maximises_welfare_truthful_and_ir():
    setting = DownwardClosed(((0, 1), (1, 2), (3,)))
    space = TypeSpace.uniform(4, [0, 1, 3])
    mech = VCG(setting)
    prof = space.profile_values
    out = mech.outcome(prof)
    fam = feasible_family(setting, 4).astype(float)
    np.testing.assert_allclose((out.allocation * prof).sum(1), (prof @ fam.T).max(1))
    assert dst_violation(mech, space)[0] <= 1e-12
    assert ir_violation(mech, space) == 0.0


class _PayYourBid(VCG):
    """VCG's allocation but the winners pay their reports: not truthful."""

    def outcome(self, reports: np.ndarray) -> Outcome:
        out = super().outcome(reports)
        return Outcome(out.allocation, out.allocation * np.asarray(reports, dtype=float))


def test_dst_check_catches_a_broken_vcg():
    gain, where = dst_violation(_PayYourBid(GROUPS), TypeSpace.uniform(3, [0, 1, 2, 3]))
    assert gain >= 1.0 - 1e-12 and where["report"] < where["value"]


def test_vcg_reserves_remove_bidders():
    mech = VCG(GROUPS, reserve=[0, 3, 0])
    # Bidder 1 is below its reserve, so only {0} or {2} can win; 2 beats 1, pays 1.
    out = mech.outcome(np.array([[1, 2, 2]]))
    np.testing.assert_array_equal(out.allocation, [[0, 0, 1]])
    np.testing.assert_allclose(out.payments, [[0, 0, 1]])
    assert dst_violation(mech, TypeSpace.uniform(3, [0, 1, 2, 3, 4]))[0] <= 1e-12
    with pytest.raises(InvalidReportError, match="personalised reserves"):
        VCG(KUnits(1), reserve=[0, 3, 0]).outcome(np.array([[1, 2]]))
    with pytest.raises(ValueError, match="outside"):
        mech.outcome(np.array([[1, 2]]))
    with pytest.raises(ValueError, match="non-negative"):
        VCG(GROUPS, reserve=-1)


def test_vcg_from_sets_and_sample_are_deterministic():
    mech = VCG.from_sets([[0], [1, 2]])
    r = np.array([[3, 2, 2], [5, 2, 2]])
    real = mech.sample(r, np.random.default_rng(0))
    np.testing.assert_array_equal(real.served, mech.outcome(r).allocation > 0)


# -- detail-free rivals -----------------------------------------------------------------


def test_empirical_monopoly_price_by_hand():
    r = np.array([[1, 2, 2, 5], [1, 2, 0, 0], [4, 4, 1, 1]])
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 1, 1]], dtype=bool)
    # 1*4, 2*3, 5*1 -> 2; ties 1*2 = 2*1 -> the lower, 1; 4*1 > 1*3 -> 4.
    np.testing.assert_array_equal(empirical_monopoly_price(r, mask), [2, 1, 4])
    with pytest.raises(InvalidReportError, match="at least one"):
        empirical_monopoly_price(r, np.zeros(4, dtype=bool))


def test_single_sample_two_bidders_closed_form():
    # Uniform on {1, 2, 3}: E[v_j 1(v_i >= v_j)] = (1*3 + 2*2 + 3*1) / 9 = 10/9.
    prior = Prior.uniform([1, 2, 3], 2)
    assert _revenue(SingleSample(), prior) == pytest.approx(10 / 9)
    assert _revenue(EmpiricalReserve("halves"), prior) == pytest.approx(10 / 9)


@pytest.mark.parametrize(
    "mech", [SingleSample(), EmpiricalReserve("halves"), EmpiricalReserve("others")], ids=str
)
def test_rivals_are_truthful_and_ir(mech):
    space = TypeSpace.uniform(4, [0, 1, 2, 3])
    assert dst_violation(mech, space)[0] <= 1e-12
    assert ir_violation(mech, space) <= 1e-12


def test_empirical_reserve_others_is_second_price():
    prof = TypeSpace.uniform(4, [0, 1, 2, 3]).profile_values
    a, b = EmpiricalReserve("others").outcome(prof), SecondPrice().outcome(prof)
    np.testing.assert_array_equal(a.allocation, b.allocation)
    np.testing.assert_allclose(a.payments, b.payments)


@pytest.mark.parametrize("mech", [SingleSample(), EmpiricalReserve("halves")], ids=str)
def test_rivals_sample_matches_outcome_and_sets_aside(mech):
    reports = np.tile(np.array([[3, 1, 2, 3, 2]]), (40_000, 1))
    real = mech.sample(reports, np.random.default_rng(5))
    again = mech.sample(reports, np.random.default_rng(5))
    np.testing.assert_array_equal(real.payments, again.payments)
    out = mech.outcome(reports[:1])
    np.testing.assert_allclose(real.served.mean(0), out.allocation[0], atol=0.01)
    np.testing.assert_allclose(real.payments.mean(0), out.payments[0], atol=0.03)
    aside = real.extra["reserve_bidder" if isinstance(mech, SingleSample) else "research"]
    if aside.ndim == 1:
        assert not real.served[np.arange(aside.size), aside].any()
    else:
        assert aside.sum(1).tolist() == [2] * aside.shape[0]
        assert not (real.served & aside).any()


def test_empirical_reserve_errors():
    with pytest.raises(ValueError, match="unknown split"):
        EmpiricalReserve("thirds")
    with pytest.raises(InvalidReportError, match="leave someone"):
        EmpiricalReserve(research_size=3).outcome(np.array([[1, 2, 3]]))
    with pytest.raises(ValueError, match="single highest"):
        EmpiricalReserve("others", setting=KUnits(2))


# -- Cremer-McLean ------------------------------------------------------------------------


def test_cremer_mclean_extracts_the_full_surplus():
    prior = Prior.gaussian_copula(2, [1, 2, 3], rho=0.5)
    cm = CremerMcLean(prior)
    res = evaluate(cm, Knowledge(prior))
    assert res.revenue == pytest.approx(prior.full_surplus(), abs=1e-9)
    for u in res.utility_by_cell:  # interim IR binds for every type
        np.testing.assert_allclose(u, 0.0, atol=1e-9)
    assert dst_violation(cm, prior.space)[0] <= 1e-9
    assert res.min_utility < -0.5  # but ex post some truthful bidder loses
    for i in range(2):
        gamma, live = conditional_matrix(prior, i)
        np.testing.assert_allclose(gamma @ cm.lotteries[i], cm.rents[i][live], atol=1e-9)


def test_cremer_mclean_needs_full_rank():
    with pytest.raises(InvalidPriorError, match="rank 1 < 3"):
        CremerMcLean(Prior.uniform([1, 2, 3], 2))


def test_cremer_mclean_sample_adds_lottery():
    prior = Prior.gaussian_copula(2, [1, 2, 3], rho=0.5)
    cm = CremerMcLean(prior)
    r = prior.space.profile_values
    real = cm.sample(r, np.random.default_rng(0))
    np.testing.assert_allclose(real.payments, cm.outcome(r).payments)


# -- the naive mechanism ------------------------------------------------------------------


def _naive_setup():
    prior = Prior.gaussian_copula(2, [0, 1, 2], rho=0.4)
    return prior, Knowledge(prior), NaiveCommonPrior(prior.space)


def test_naive_truthful_play_earns_opt():
    prior, kn, naive = _naive_setup()
    s = Strategy.truthful(kn, naive)
    assert s.belief[0].shape == (kn.num_cells(0), prior.space.size)
    assert evaluate(naive, kn, s).revenue == pytest.approx(optimal_revenue(prior), abs=1e-9)


def test_naive_common_lie_runs_the_lie_and_disagreement_fines():
    prior, kn, naive = _naive_setup()
    lie = Prior.uniform([0, 1, 2], 2)
    prof = prior.space.profile_values
    B = prof.shape[0]
    F = np.tile(lie.table.ravel(), (B, 1))
    out = naive.outcome(prof, [F, F])
    want = optimal_mechanism(lie).outcome(prof)
    np.testing.assert_allclose(out.payments, want.payments)
    assert out.extra["agree"].all()
    G = np.tile(prior.table.ravel(), (B, 1))
    out = naive.outcome(prof, [F, G])
    assert not out.extra["agree"].any()
    np.testing.assert_allclose(out.allocation, 0.0)
    np.testing.assert_allclose(out.payments, naive.fine)
    real = naive.sample(prof, [F, G], np.random.default_rng(0))
    np.testing.assert_allclose(real.payments, naive.fine)


def test_naive_every_common_report_is_an_equilibrium():
    # A lone deviation from any common report triggers the fine, which is worse.
    prior, kn, naive = _naive_setup()
    lie = Prior.uniform([0, 1, 2], 2).table.ravel()
    common = Strategy.truthful(kn, naive)
    for i in range(2):
        common.belief[i] = np.tile(lie, (kn.num_cells(i), 1))
    base = evaluate(naive, kn, common).utility
    for i in range(2):
        dev = common.copy()
        dev.belief[i] = np.tile(prior.table.ravel(), (kn.num_cells(i), 1))
        assert evaluate(naive, kn, dev).utility[i] < base[i] - 1.0


def test_naive_rejects_bad_arguments():
    space = TypeSpace.uniform(2, [0, 1])
    with pytest.raises(ValueError, match="fine"):
        NaiveCommonPrior(space, fine=0.0)
    with pytest.raises(ValueError, match="two bidders"):
        NaiveCommonPrior(TypeSpace([[0, 1]]))
    naive = NaiveCommonPrior(space)
    with pytest.raises(InvalidReportError, match="shape"):
        naive.outcome(np.array([[0, 1]]), [np.ones((1, 2)) / 2, np.ones((1, 2)) / 2])
    assert naive.asks_belief(np.array([[0, 1]])).all()
    assert naive.belief_size(0) == 4
