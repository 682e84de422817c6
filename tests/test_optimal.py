"""Tests of the LP-optimal DST auction: known optima, bounds, verification, the cache."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import OptimizeResult

import crowdauction.mechanisms.optimal as optimal
from crowdauction.errors import SolverError
from crowdauction.mechanisms.classical import (
    FirstPrice,
    SecondPrice,
    TableMechanism,
    dst_violation,
    ir_violation,
    payments_from_allocation,
)
from crowdauction.mechanisms.myerson import myerson, myerson_revenue, second_price_monopoly_reserves
from crowdauction.mechanisms.optimal import (
    OptimalMechanism,
    cache_info,
    clear_cache,
    feasibility_violation,
    optimal_mechanism,
    optimal_revenue,
    table_dst_violation,
    table_ir_violation,
)
from crowdauction.mechanisms.prior import Prior
from crowdauction.mechanisms.typespace import DownwardClosed, KUnits, Setting, TypeSpace

GROUPS = DownwardClosed(((0, 1), (2, 3)))


@pytest.fixture(autouse=True)
def fresh_cache():
    clear_cache()
    yield
    clear_cache()


def revenue(mech, prior: Prior) -> float:
    out = mech.outcome(prior.space.profile_values)
    return float(prior.table.ravel() @ out.revenue)


def assert_truthful_everywhere(mech, space: TypeSpace) -> None:
    """Both verifiers, the library's generic one and the table one, on the whole grid."""
    gain, where = dst_violation(mech, space)
    assert gain <= 1e-7, where
    assert table_dst_violation(mech.alloc_table, mech.pay_table, space)[0] <= 1e-7
    assert ir_violation(mech, space) <= 1e-7
    assert table_ir_violation(mech.alloc_table, mech.pay_table, space) <= 1e-7


# -- optima derived by hand -----------------------------------------------------------


def test_hand_correlated_instance() -> None:
    """Two bidders on {1, 2}: D(1,1) = D(2,2) = 0.4, D(1,2) = D(2,1) = 0.1.

    With lowest value 1, bidder 0's revenue coefficients (value earned minus rent handed
    to its higher type, others fixed) are: ``x_0(1,1)``: 0.4 - 0.1 = 0.3; ``x_0(2,1)``:
    2 * 0.1 = 0.2; ``x_0(1,2)``: 0.1 - 0.4 = -0.3; ``x_0(2,2)``: 0.8; bidder 1's mirror
    them. Feasibility couples the bidders only within a profile, so an upper bound is
    the best single coefficient per profile: (1,1): 0.3, (2,1): 0.2, (1,2): 0.2,
    (2,2): 0.8, total 1.5, and it is reached (the negative coefficients sit at 0, which
    monotonicity allows). OPT = 1.5, between second price (0.4 + 0.1 + 0.1 + 0.8 = 1.4)
    and the full surplus (0.4 + 0.2 + 0.2 + 0.8 = 1.6).
    """
    prior = Prior.from_table(
        [((1, 1), 0.4), ((1, 2), 0.1), ((2, 1), 0.1), ((2, 2), 0.4)], [[1, 2], [1, 2]]
    )
    mech = optimal_mechanism(prior)
    assert mech.name == "optimal"
    assert mech.revenue == pytest.approx(1.5, abs=1e-9)
    assert revenue(mech, prior) == pytest.approx(1.5, abs=1e-9)
    assert mech.lp_objective == pytest.approx(1.5, abs=1e-9)
    assert revenue(SecondPrice(), prior) == pytest.approx(1.4)
    assert prior.full_surplus() == pytest.approx(1.6)
    # The negative-coefficient allocations are zero: the low type facing a high rival
    # is never served.
    x = mech.alloc_table
    assert x[0, 1, 0] == pytest.approx(0.0, abs=1e-9)  # x_0(1, 2)
    assert x[1, 0, 1] == pytest.approx(0.0, abs=1e-9)  # x_1(2, 1)
    assert_truthful_everywhere(mech, prior.space)


def test_perfect_correlation_extracts_full_surplus_and_is_dst_off_support() -> None:
    """Values equal w.p. 1: D(k, k) = 1/3 on {0, 1, 2}; every other profile has mass 0.

    Facing a rival report j, bidder i's coefficients are ``j/3`` at its value j, ``-1/3``
    below it (rent to the type j that exists) and 0 above it. So serve at (j, j) only,
    at price j: OPT = (0 + 1 + 2)/3 = 1 = E[max], the full surplus. The six profiles
    off the diagonal have probability zero and the mechanism must be truthful there too.
    """
    prior = Prior.from_table([((k, k), 1 / 3) for k in range(3)], [[0, 1, 2]] * 2)
    mech = optimal_mechanism(prior)
    assert mech.revenue == pytest.approx(1.0, abs=1e-9)
    assert prior.full_surplus() == pytest.approx(1.0)
    assert_truthful_everywhere(mech, prior.space)
    # Explicitly on a zero-probability profile: bidder 0 with value 2 facing report 1
    # gains nothing by reporting 1 or 0.
    reports = np.array([[2, 1], [1, 1], [0, 1]])
    out = mech.outcome(reports)
    util = 2 * out.allocation[:, 0] - out.payments[:, 0]
    assert np.all(util[1:] <= util[0] + 1e-9)


def test_zero_probability_profiles_are_constrained() -> None:
    """A prior with many zero-probability profiles: DST holds on all of them, and the
    verifier is not vacuous (breaking monotonicity at a zero-mass profile is caught)."""
    table = np.zeros((3, 3, 3))
    table[0, 0, 0] = 0.2
    table[2, 1, 0] = 0.3
    table[1, 2, 2] = 0.25
    table[2, 2, 1] = 0.25
    prior = Prior(table, [[0, 2, 3], [0, 1, 4], [1, 2, 3]])
    mech = optimal_mechanism(prior)
    assert_truthful_everywhere(mech, prior.space)
    assert mech.revenue >= revenue(SecondPrice(), prior) - 1e-9
    # Profile (v0 index 1, v1 index 0, v2 index 2) has mass 0. Serve bidder 0 there for
    # sure while its higher type is not served: a misreport now pays off.
    zero = (1, 0, 2)
    assert prior.table[zero] == 0 and prior.table[(2, 0, 2)] == 0
    broken = np.array(mech.alloc_table)
    broken[zero] = [1.0, 0.0, 0.0]
    broken[(2, 0, 2)] = [0.0, 0.0, 0.0]
    pay = payments_from_allocation(broken, prior.space)
    assert table_dst_violation(broken, pay, prior.space)[0] > 0.5
    assert dst_violation(TableMechanism(prior.space, broken, pay), prior.space)[0] > 0.5


@pytest.mark.parametrize(
    "marginal, grid",
    [
        ([0.5, 0.1, 0.4], [1, 2, 3]),
        ([0.25] * 4, [0, 1, 2, 3]),
        ([0.1, 0.0, 0.6, 0.3], [2, 3, 5, 9]),
    ],
)
def test_single_bidder_optimum_is_best_posted_price(marginal, grid) -> None:
    prior = Prior.independent([marginal], [grid])
    tail = np.cumsum(np.array(marginal)[::-1])[::-1]
    best = float(np.max(np.array(grid) * tail))
    assert optimal_revenue(prior) == pytest.approx(best, abs=1e-9)


# -- random priors --------------------------------------------------------------------


@st.composite
def grids(draw: st.DrawFn, n: int) -> list[list[int]]:
    out = []
    for _ in range(n):
        k = draw(st.integers(2, 4))
        steps = draw(st.lists(st.integers(1, 3), min_size=k, max_size=k))
        start = draw(st.integers(0, 2))
        out.append((start + np.cumsum(steps) - steps[0]).tolist())
    return out


@st.composite
def correlated_priors(draw: st.DrawFn) -> Prior:
    n = draw(st.integers(2, 3))
    g = draw(grids(n))
    shape = tuple(len(x) for x in g)
    size = int(np.prod(shape))
    w = draw(st.lists(st.integers(0, 5), min_size=size, max_size=size).filter(any))
    table = np.array(w, dtype=float).reshape(shape)
    return Prior(table / table.sum(), g)


@st.composite
def independent_priors(draw: st.DrawFn) -> Prior:
    n = draw(st.integers(1, 3))
    g = draw(grids(n))
    marg = []
    for x in g:
        w = draw(st.lists(st.integers(0, 4), min_size=len(x), max_size=len(x)).filter(any))
        marg.append(np.array(w, dtype=float) / sum(w))
    return Prior.independent(marg, g)


@settings(max_examples=150, deadline=None)
@given(correlated_priors())
def test_correlated_lp_between_baselines_and_truthful(prior: Prior) -> None:
    mech = optimal_mechanism(prior)
    opt = mech.revenue
    assert opt == pytest.approx(revenue(mech, prior), abs=1e-9)
    assert opt >= revenue(SecondPrice(), prior) - 1e-7
    assert opt >= revenue(second_price_monopoly_reserves(prior), prior) - 1e-7
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert opt >= myerson_revenue(prior) - 1e-7
    assert opt <= prior.full_surplus() + 1e-7
    assert_truthful_everywhere(mech, prior.space)
    assert feasibility_violation(mech.alloc_table, KUnits(1))[0] <= 1e-9


@settings(max_examples=150, deadline=None)
@given(independent_priors(), st.integers(1, 3))
def test_independent_lp_equals_myerson(prior: Prior, k: int) -> None:
    setting = KUnits(min(k, prior.n))
    assert optimal_revenue(prior, setting) == pytest.approx(
        myerson_revenue(prior, setting), abs=1e-7
    )


@pytest.mark.parametrize(
    "marginal, grid",
    [([0.25] * 4, [0, 1, 2, 3]), ([0.1, 0.1, 0.4, 0.05, 0.35], [1, 2, 3, 4, 5])],
)
def test_two_units_three_iid_bidders_equals_myerson(marginal, grid) -> None:
    prior = Prior.iid(marginal, grid, 3)
    mech = optimal_mechanism(prior, KUnits(2))
    assert mech.revenue == pytest.approx(myerson_revenue(prior, KUnits(2)), abs=1e-8)
    assert mech.revenue > optimal_revenue(prior, KUnits(1)) + 1e-3  # a second unit helps
    assert feasibility_violation(mech.alloc_table, KUnits(2))[0] <= 1e-9
    assert_truthful_everywhere(mech, prior.space)
    reports = np.repeat(prior.space.profile_values, 20, axis=0)
    served = mech.sample(reports, np.random.default_rng(0))
    assert served.served.sum(axis=1).max() <= 2


# -- downward-closed settings ---------------------------------------------------------


def welfare_table(space: TypeSpace, sets: np.ndarray) -> TableMechanism:
    """VCG-like baseline: serve the maximal set of largest total value (first on ties),
    with the threshold payments of the resulting monotone allocation."""
    vals = space.profile_values.astype(float)
    choice = np.argmax(vals @ sets.T, axis=1)
    alloc = (sets[choice] * (vals > 0)).reshape((*space.shape, space.n)).astype(float)
    return TableMechanism(space, alloc, name="welfare")


def test_downward_closed_groups() -> None:
    """Groups {0, 1} and {2, 3} cannot both be served; a correlated prior."""
    prior = Prior.gaussian_copula(4, [0, 1, 2], rho=0.6)
    mech = optimal_mechanism(prior, GROUPS)
    sets = GROUPS.feasible_sets(4)
    baseline = welfare_table(prior.space, sets.astype(float))
    assert dst_violation(baseline, prior.space)[0] <= 1e-12
    assert mech.revenue >= revenue(baseline, prior) - 1e-7
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert mech.revenue >= myerson_revenue(prior, GROUPS) - 1e-7
    assert mech.revenue <= prior.full_surplus(capacity=2) + 1e-7
    viol, what = feasibility_violation(mech.alloc_table, GROUPS, mech.set_weights, mech.sets)
    assert viol <= 1e-9, what
    assert_truthful_everywhere(mech, prior.space)
    real = mech.sample(np.repeat(prior.space.profile_values, 5, axis=0), np.random.default_rng(1))
    assert not np.any(real.served[:, :2].any(axis=1) & real.served[:, 2:].any(axis=1))


def test_downward_closed_sampling_is_feasible_and_exact() -> None:
    """A fractional table, everyone served w.p. 1/2 from a 50/50 lottery over the groups.

    Systematic sampling of the marginals (the base class) serves {0, 2} or {1, 3}, across
    the groups, every time; the set lottery never does, and keeps each marginal at 1/2.
    """
    space = TypeSpace([[0, 1]] * 4)
    x = np.full((*space.shape, 4), 0.5)
    lam = np.full((*space.shape, 2), 0.5)
    mech = OptimalMechanism(space, x, GROUPS, set_weights=lam, sets=GROUPS.feasible_sets(4))
    reports = np.ones((40_000, 4), dtype=int)
    real = mech.sample(reports, np.random.default_rng(2))
    s = real.served
    assert not np.any(s[:, :2].any(axis=1) & s[:, 2:].any(axis=1))
    np.testing.assert_allclose(s.mean(axis=0), 0.5, atol=0.01)
    # A served bidder pays its expected payment over its serving probability.
    per_unit = mech.pay_table[(1, 1, 1, 1)] / 0.5
    np.testing.assert_allclose(real.payments[s[:, 0], 0], per_unit[0])
    plain = TableMechanism(space, x, setting=GROUPS).sample(reports, np.random.default_rng(2))
    ps = plain.served
    assert np.all(ps[:, :2].any(axis=1) & ps[:, 2:].any(axis=1))


# -- verification, failure paths ------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(2, 4), st.integers(0, 2**32 - 1))
def test_table_verifier_agrees_with_generic_one(n: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    space = TypeSpace([sorted(rng.choice(8, size=k, replace=False).tolist()) for _ in range(n)])
    alloc = rng.random((*space.shape, n))
    pay = rng.random((*space.shape, n)) * 3
    mech = TableMechanism(space, alloc, pay, truthful=False)
    g1, w1 = dst_violation(mech, space)
    g2, w2 = table_dst_violation(alloc, pay, space)
    assert g2 == pytest.approx(g1, abs=1e-12)
    with pytest.MonkeyPatch.context() as mp:  # tiny blocks: the blocked path agrees too
        mp.setattr(optimal, "_VERIFY_BLOCK", 5)
        g3, w3 = table_dst_violation(alloc, pay, space)
    assert (g3, w3) == (g2, w2)
    assert table_ir_violation(alloc, pay, space) == pytest.approx(ir_violation(mech, space))
    # First price is not truthful; both verifiers see the same gain.
    fp = FirstPrice().outcome(space.profile_values)
    a = fp.allocation.reshape(alloc.shape)
    p = fp.payments.reshape(alloc.shape)
    assert table_dst_violation(a, p, space)[0] == pytest.approx(
        dst_violation(TableMechanism(space, a, p), space)[0], abs=1e-12
    )


def fake_linprog(x: np.ndarray | None, status: int = 0, fun: float = 0.0, message: str = "ok"):
    def run(*args, **kwargs):
        return OptimizeResult(x=x, status=status, fun=fun, message=message, success=status == 0)

    return run


SMALL = Prior.uniform([0, 1, 2], 2)


def test_solver_failure_raises_with_highs_message(monkeypatch) -> None:
    monkeypatch.setattr(
        optimal, "linprog", fake_linprog(None, status=4, message="Numerical difficulties (fake)")
    )
    with pytest.raises(SolverError, match=r"status 4: Numerical difficulties \(fake\)"):
        optimal_mechanism(SMALL)
    assert cache_info().size == 0  # failures are not cached


def test_infeasible_solution_is_refused(monkeypatch) -> None:
    # Both bidders served for sure at every profile: two winners of one good.
    monkeypatch.setattr(optimal, "linprog", fake_linprog(np.ones(18), fun=-2.0))
    with pytest.raises(SolverError, match="feasibility by 1"):
        optimal_mechanism(SMALL)


def test_non_monotone_solution_is_refused(monkeypatch) -> None:
    x = np.zeros(18)
    x[0] = 0.5  # bidder 0 served at its lowest value only
    monkeypatch.setattr(optimal, "linprog", fake_linprog(x, fun=0.0))
    with pytest.raises(SolverError, match="monotonicity by 0.5"):
        optimal_mechanism(SMALL)


def test_objective_mismatch_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(optimal, "linprog", fake_linprog(np.zeros(18), fun=-5.0))
    with pytest.raises(SolverError, match="LP reported 5.0"):
        optimal_mechanism(SMALL)


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="needs a Prior"):
        optimal_mechanism(np.ones((2, 2)))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a Setting"):
        optimal_mechanism(SMALL, 2)  # type: ignore[arg-type]


# -- the cache ------------------------------------------------------------------------


def test_cache_hit_does_not_resolve(monkeypatch) -> None:
    calls = []
    real = optimal.linprog

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(optimal, "linprog", counting)
    first = optimal_mechanism(Prior.uniform([0, 1, 2], 2))
    again = optimal_mechanism(Prior.uniform([0, 1, 2], 2))  # equal, not the same object
    assert again is first
    assert len(calls) == 2  # one solve: the LP, then the tie-break over its optimal face
    assert cache_info()[:3] == (1, 1, 1)
    # None and SingleGood() are the same setting; KUnits(2) is another.
    optimal_mechanism(Prior.uniform([0, 1, 2], 2), KUnits(1))
    optimal_mechanism(Prior.uniform([0, 1, 2], 2), KUnits(2))
    info = cache_info()
    assert (info.hits, info.misses, info.size) == (2, 2, 2)
    assert len(calls) == 4
    with pytest.raises(ValueError, match="read-only"):
        first.alloc_table[0, 0, 0] = 1.0


def test_cache_is_bounded_lru(monkeypatch) -> None:
    monkeypatch.setattr(optimal, "CACHE_SIZE", 2)
    a, b, c = (Prior.uniform(list(range(k)), 2) for k in (2, 3, 4))
    optimal_mechanism(a)
    optimal_mechanism(b)
    optimal_mechanism(a)  # a is now the most recent
    optimal_mechanism(c)  # evicts b
    assert cache_info().size == 2
    optimal_mechanism(a)
    assert cache_info().hits == 2
    optimal_mechanism(b)
    assert cache_info().misses == 4


class Pairs(Setting):
    """A custom setting: any two adjacent bidders (0,1), (1,2) may be served together."""

    def capacity(self, n: int) -> int:
        return 2

    def feasible_sets(self, n: int) -> np.ndarray:
        return np.array([[1, 1, 0], [0, 1, 1]], dtype=np.int8)


def test_custom_setting_uses_set_lottery() -> None:
    prior = Prior.iid([0.3, 0.3, 0.4], [0, 1, 2], 3)
    mech = optimal_mechanism(prior, Pairs())
    assert mech.sets is not None
    viol, what = feasibility_violation(mech.alloc_table, Pairs(), mech.set_weights, mech.sets)
    assert viol <= 1e-9, what
    assert myerson_revenue(prior, Pairs()) == pytest.approx(mech.revenue, abs=1e-8)
    assert optimal_revenue(prior, KUnits(1)) < mech.revenue < optimal_revenue(prior, KUnits(2))
    mech_m = myerson(prior, Pairs())
    assert dst_violation(mech_m, prior.space)[0] <= 1e-12


def test_degenerate_grids() -> None:
    """One value per bidder: no monotonicity rows; the good sells at that value."""
    assert optimal_revenue(Prior.independent([[1.0]], [[3]])) == pytest.approx(3.0)
    two = Prior.independent([[1.0], [1.0]], [[3], [5]])
    assert optimal_revenue(two) == pytest.approx(5.0)
    assert optimal_revenue(two, KUnits(2)) == pytest.approx(8.0)
