"""Batched optimal-auction solves: one stacked LP, per-block verification, canonical optima,
Design.build_many, and mechanism M designing all of an informant's beliefs at once."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import OptimizeResult

import crowdauction.mechanisms.optimal as optimal
from crowdauction.errors import InvalidPriorError, SolverError
from crowdauction.mechanisms.classical import (
    ClassicalMechanism,
    SecondPrice,
    Strictified,
    payments_from_allocation,
)
from crowdauction.mechanisms.crowdsourced import RandomInformant
from crowdauction.mechanisms.designs import Design
from crowdauction.mechanisms.optimal import (
    cache_info,
    clear_cache,
    feasibility_violation,
    optimal_mechanism,
    optimal_mechanisms,
    table_dst_violation,
    table_ir_violation,
)
from crowdauction.mechanisms.prior import Prior
from crowdauction.mechanisms.typespace import DownwardClosed, KUnits, TypeSpace

GRID4 = [0, 1, 2, 3]


@pytest.fixture(autouse=True)
def fresh_cache():
    clear_cache()
    yield
    clear_cache()


def dirichlet_priors(count: int, grids: list[list[int]], seed: int) -> list[Prior]:
    rng = np.random.default_rng(seed)
    shape = tuple(len(g) for g in grids)
    size = int(np.prod(shape))
    return [Prior(rng.dirichlet(np.ones(size)).reshape(shape), grids) for _ in range(count)]


def solve_alone(priors: list[Prior], setting=None) -> list:
    """Single solves with a cold cache before each, as the reference."""
    out = []
    for p in priors:
        clear_cache()
        out.append(optimal_mechanism(p, setting))
    clear_cache()
    return out


class CountingLinprog:
    """Wraps the module's linprog, recording the number of variables of every call."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.sizes: list[int] = []
        self.real = optimal.linprog
        monkeypatch.setattr(optimal, "linprog", self)

    def __call__(self, c, *args, **kwargs):
        self.sizes.append(len(c))
        return self.real(c, *args, **kwargs)


# -- a tie derived by hand ------------------------------------------------------------


def test_hand_tie_is_broken_by_the_library_rule_alone_and_in_a_stack() -> None:
    """Two bidders i.i.d. uniform on {1, 2}.

    Coefficients: ``x_i`` at own value 1 earns ``0.25 * 1`` and hands rent ``1 * 0.25``
    to the higher type: 0; at own value 2 it earns ``0.25 * 2 = 0.5``. So OPT = 1.5
    (post the price 2), and the optima differ only where revenue is indifferent: at
    (2, 2) either bidder may win, and at value 1 a bidder may be served or not. The rule
    picks: at (2, 2) bidder 0 (lowest index), and nobody with value 1.
    """
    prior = Prior.uniform([1, 2], 2)
    others = dirichlet_priors(5, [[1, 2], [1, 2]], seed=3)
    alone = optimal_mechanism(prior)
    clear_cache()
    stacked = optimal_mechanisms([*others[:2], prior, *others[2:]])[2]
    want = np.zeros((2, 2, 2))
    want[1, 1] = [1, 0]  # (2, 2): bidder 0
    want[1, 0] = [1, 0]  # (2, 1)
    want[0, 1] = [0, 1]  # (1, 2)
    for mech in (alone, stacked):
        assert mech.revenue == pytest.approx(1.5, abs=1e-12)
        np.testing.assert_allclose(mech.alloc_table, want, atol=1e-9)
        np.testing.assert_allclose(mech.pay_table, 2 * want, atol=1e-9)


def test_without_the_tie_break_stacked_optima_differ_from_single_ones(monkeypatch) -> None:
    """The canonicity check below is not vacuous: the raw simplex points of a stack land
    on other optima than single solves for many of these priors (same revenue)."""
    priors = dirichlet_priors(64, [GRID4, GRID4], seed=0)
    monkeypatch.setattr(optimal, "_canonical_point", lambda res, *a: np.asarray(res.x))
    single = solve_alone(priors)
    stacked = optimal_mechanisms(priors)
    moved = [np.abs(a.alloc_table - b.alloc_table).max() for a, b in zip(single, stacked)]
    assert max(moved) > 0.5
    revenue_gap = max(abs(a.revenue - b.revenue) for a, b in zip(single, stacked))
    assert revenue_gap <= 1e-9


def test_stacked_optima_equal_single_ones_on_dirichlet_beliefs() -> None:
    priors = dirichlet_priors(64, [GRID4, GRID4], seed=0)
    single = solve_alone(priors)
    stacked = optimal_mechanisms(priors)
    for a, b in zip(single, stacked):
        assert abs(a.revenue - b.revenue) <= 1e-9
        np.testing.assert_allclose(a.alloc_table, b.alloc_table, atol=1e-7)
        np.testing.assert_allclose(a.pay_table, b.pay_table, atol=1e-7)


# -- random priors --------------------------------------------------------------------


@st.composite
def prior_batches(draw: st.DrawFn) -> tuple[list[Prior], object]:
    """2-5 correlated priors (zeros allowed) on one random type space, and a setting."""
    n = draw(st.integers(1, 3))
    grids = []
    for _ in range(n):
        k = draw(st.integers(1, 4))
        steps = draw(st.lists(st.integers(1, 3), min_size=k, max_size=k))
        grids.append((draw(st.integers(0, 2)) + np.cumsum(steps) - steps[0]).tolist())
    shape = tuple(len(g) for g in grids)
    size = int(np.prod(shape))
    count = draw(st.integers(2, 5))
    priors = []
    for _ in range(count):
        w = draw(st.lists(st.integers(0, 5), min_size=size, max_size=size).filter(any))
        table = np.array(w, dtype=float).reshape(shape)
        priors.append(Prior(table / table.sum(), grids))
    if draw(st.booleans()):  # a repeat inside the batch
        priors.append(priors[draw(st.integers(0, count - 1))])
    choices = [None, KUnits(min(2, n))]
    if n == 3:
        choices.append(DownwardClosed(((0,), (1, 2))))
    return priors, draw(st.sampled_from(choices))


@settings(max_examples=60, deadline=None)
@given(prior_batches())
def test_each_block_equals_its_single_solve(batch) -> None:
    priors, setting = batch
    single = solve_alone(priors, setting)
    stacked = optimal_mechanisms(priors, setting)
    assert len(stacked) == len(priors)
    for prior, a, b in zip(priors, single, stacked):
        assert abs(a.revenue - b.revenue) <= 1e-9
        assert abs(a.lp_objective - b.lp_objective) <= 1e-9
        np.testing.assert_allclose(a.alloc_table, b.alloc_table, atol=1e-7)
        # Each block is a verified DST, IR, feasible mechanism earning its revenue.
        space = prior.space
        assert table_dst_violation(b.alloc_table, b.pay_table, space)[0] <= 1e-7
        assert table_ir_violation(b.alloc_table, b.pay_table, space) <= 1e-7
        assert feasibility_violation(b.alloc_table, b.setting, b.set_weights, b.sets)[0] <= 1e-9
        out = b.outcome(space.profile_values)
        assert float(prior.table.ravel() @ out.revenue) == pytest.approx(b.revenue, abs=1e-9)
        if setting is None:
            sp = SecondPrice().outcome(space.profile_values).revenue
            assert b.revenue >= float(prior.table.ravel() @ sp) - 1e-7


# -- one solve, the cache -------------------------------------------------------------


def test_all_misses_go_into_one_stacked_solve(monkeypatch) -> None:
    priors = dirichlet_priors(6, [GRID4, GRID4], seed=1)
    warm = optimal_mechanism(priors[2])
    counting = CountingLinprog(monkeypatch)
    asked = [priors[0], priors[2], priors[1], priors[0], *priors[3:]]
    mechs = optimal_mechanisms(asked)
    # Five distinct misses: one LP of 5 blocks of 2 * 16 variables, and its tie-break.
    assert counting.sizes == [5 * 32, 5 * 32]
    assert mechs[1] is warm and mechs[3] is mechs[0]
    info = cache_info()
    # As a loop of single calls: 1 warm-up miss; then a hit (priors[2]), a repeat
    # counted as a hit, and five misses.
    assert (info.hits, info.misses, info.size) == (2, 6, 6)
    again = optimal_mechanisms(list(reversed(asked)))
    assert again == list(reversed(mechs))
    assert len(counting.sizes) == 2  # all hits: nothing solved
    assert optimal_mechanisms([]) == []


def test_large_batches_are_split_into_several_solves(monkeypatch) -> None:
    priors = dirichlet_priors(7, [GRID4, GRID4], seed=2)
    single = solve_alone(priors)
    monkeypatch.setattr(optimal, "MAX_LP_VARIABLES", 3 * 32)
    counting = CountingLinprog(monkeypatch)
    stacked = optimal_mechanisms(priors)
    assert counting.sizes == [96, 96, 96, 96, 32, 32]  # 3 + 3 + 1 blocks, two calls each
    for a, b in zip(single, stacked):
        np.testing.assert_allclose(a.alloc_table, b.alloc_table, atol=1e-7)


def test_lru_bound_holds_when_a_batch_overflows_the_cache(monkeypatch) -> None:
    monkeypatch.setattr(optimal, "CACHE_SIZE", 3)
    priors = dirichlet_priors(5, [GRID4, GRID4], seed=4)
    mechs = optimal_mechanisms(priors)
    assert len(mechs) == 5 and all(m is not None for m in mechs)
    assert cache_info().size == 3
    assert optimal_mechanism(priors[4]) is mechs[4]  # the most recent ones stay
    assert cache_info().hits == 1


# -- verification per block, failures -------------------------------------------------


def fake_point(blocks: list[np.ndarray]):
    """A linprog stand-in returning the given stacked point, its true objective, no
    duals (so no tie-break), as an optimal status."""

    def run(c, *args, **kwargs):
        x = np.concatenate(blocks)
        return OptimizeResult(x=x, status=0, fun=float(c @ x), message="ok", success=True)

    return run


SMALL = [Prior.uniform([0, 1, 2], 2), Prior.iid([0.2, 0.3, 0.5], [0, 1, 2], 2)]


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.ones(18), "feasibility by 1"),  # both bidders served for sure
        (np.eye(1, 18).ravel() * 0.5, "monotonicity by 0.5"),  # served at the lowest value
        (np.full(18, -0.01), r"a \[0, 1\] bound by 0.01"),
    ],
)
def test_each_block_is_verified_on_its_own(monkeypatch, bad, match) -> None:
    monkeypatch.setattr(optimal, "linprog", fake_point([np.zeros(18), bad]))
    with pytest.raises(SolverError, match=rf"^priors\[1\]: .*{match}"):
        optimal_mechanisms(SMALL)
    # The block that verified (serve nobody: a truthful, IR, feasible auction) is cached.
    assert cache_info().size == 1
    monkeypatch.undo()
    assert optimal_mechanism(SMALL[0]).revenue == 0.0  # the cached fake, not re-solved
    assert cache_info().hits == 1


def test_objective_the_solver_reports_must_match_its_point(monkeypatch) -> None:
    def lying(c, *args, **kwargs):
        return OptimizeResult(x=np.zeros(36), status=0, fun=-3.0, message="ok", success=True)

    monkeypatch.setattr(optimal, "linprog", lying)
    with pytest.raises(SolverError, match=r"^priors\[0\]: the LP reported 3.0"):
        optimal_mechanisms(SMALL)
    assert cache_info().size == 0  # nothing from an untrusted solve is kept


def test_a_failing_stack_is_solved_again_block_by_block(monkeypatch, caplog) -> None:
    priors = dirichlet_priors(3, [GRID4, GRID4], seed=5)
    single = solve_alone(priors)
    real = optimal.linprog

    def fails_on_stacks(c, *args, **kwargs):
        if len(c) > 32:
            return OptimizeResult(x=None, status=4, fun=0.0, message="fake", success=False)
        return real(c, *args, **kwargs)

    monkeypatch.setattr(optimal, "linprog", fails_on_stacks)
    with caplog.at_level(logging.WARNING, logger=optimal.__name__):
        stacked = optimal_mechanisms(priors)
    assert "solving them one at a time" in caplog.text
    for a, b in zip(single, stacked):
        np.testing.assert_allclose(a.alloc_table, b.alloc_table, atol=1e-7)


def test_a_block_whose_lp_fails_is_named(monkeypatch) -> None:
    bad = SMALL[1].key()
    real = optimal.linprog

    def fails_for_one(c, *args, **kwargs):
        # Fail every stack, and the single solve of SMALL[1]'s objective.
        own = -optimal._objective(SMALL[1].table[None], SMALL[1].space).ravel()
        if len(c) > 18 or np.array_equal(c, own):
            return OptimizeResult(x=None, status=4, fun=0.0, message="fake", success=False)
        return real(c, *args, **kwargs)

    monkeypatch.setattr(optimal, "linprog", fails_for_one)
    with pytest.raises(SolverError, match=r"^priors\[1\]: HiGHS failed .* status 4: fake"):
        optimal_mechanisms(SMALL)
    assert cache_info().size == 1 and bad not in {key[0] for key in optimal._CACHE}


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="wrap a single Prior in a list"):
        optimal_mechanisms(SMALL[0])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got ndarray at position 1"):
        optimal_mechanisms([SMALL[0], np.ones((3, 3))])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="must be a Setting"):
        optimal_mechanisms(SMALL, 1)  # type: ignore[arg-type]
    other = Prior.uniform([0, 1, 3], 2)
    with pytest.raises(InvalidPriorError, match=r"priors\[1\] lives on TypeSpace\(\[\[0, 1, 3\]"):
        optimal_mechanisms([SMALL[0], other])


# -- the stacked helpers against the single-table ones --------------------------------


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_stacked_checkers_agree_with_the_single_ones(n, k, count, seed) -> None:
    rng = np.random.default_rng(seed)
    space = TypeSpace([sorted(rng.choice(8, size=k, replace=False).tolist()) for _ in range(n)])
    alloc = rng.random((count, *space.shape, n))
    pay = rng.random((count, *space.shape, n)) * 3
    for block in (optimal._VERIFY_BLOCK, 5):  # the default and tiny memory blocks
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(optimal, "_VERIFY_BLOCK", block)
            gains, locs = optimal._dst_gains(alloc, pay, space)
        for b in range(count):
            g, where = table_dst_violation(alloc[b], pay[b], space)
            assert gains[b] == g
            assert optimal._where(space, locs[b]) == where
    short = optimal._ir_shortfalls(alloc, pay, space)
    viol, what = optimal._feasibility_violations(alloc, KUnits(1))
    for b in range(count):
        assert short[b] == table_ir_violation(alloc[b], pay[b], space)
        assert (viol[b], what[b]) == feasibility_violation(alloc[b], KUnits(1))
    # Monotone tables: stacked payments are the single-table payments, block by block.
    mono = alloc.copy()
    for i in range(n):
        mono[..., i] = np.maximum.accumulate(mono[..., i], axis=i + 1)
    stacked = optimal._payments(mono, space)
    for b in range(count):
        np.testing.assert_array_equal(stacked[b], payments_from_allocation(mono[b], space))


def test_stacked_checkers_catch_a_bad_block_among_good_ones() -> None:
    """Two i.i.d. uniform bidders on {0, 1, 2, 3}: the optimum posts the price 2 and gives
    (3, 3) to bidder 0, so bidder 0 with value 3 facing 3 pays 3. Charging it 0.5 more in
    block 1 makes every lower report (served nowhere below 3 against a 3) gain 0.5; the
    first of them, report 0, is named. Block 2 serves bidder 1 at (3, 3) too: 0.3 over
    capacity, with payments that keep it truthful."""
    prior = Prior.uniform(GRID4, 2)
    good = optimal_mechanism(prior)
    np.testing.assert_allclose(good.alloc_table[3, 3], [1.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(good.alloc_table[:3, 3, 0], 0.0, atol=1e-9)
    x = np.stack([good.alloc_table] * 3)
    pay = np.stack([good.pay_table] * 3)
    pay[1, 3, 3, 0] += 0.5
    x[2, 3, 3] = [1.0, 0.3]
    pay[2] = payments_from_allocation(x[2], prior.space)
    gains, locs = optimal._dst_gains(x, pay, prior.space)
    assert gains[0] <= 1e-9 and gains[2] <= 1e-9
    assert gains[1] == pytest.approx(0.5, abs=1e-9)
    assert optimal._where(prior.space, locs[1]) == {
        "bidder": 0,
        "value": 3,
        "report": 0,
        "others": [3],
    }
    viol, what = optimal._feasibility_violations(x, KUnits(1))
    assert viol[:2].max() <= 1e-9
    assert viol[2] == pytest.approx(0.3) and what[2] == "the capacity"
    assert optimal._ir_shortfalls(x, pay, prior.space)[1] == pytest.approx(0.5)


# -- Design.build_many ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["optimal", "myerson", "second_price"])
@pytest.mark.parametrize("delta", [0.0, 0.05])
def test_build_many_matches_a_loop_of_build(name, delta) -> None:
    priors = dirichlet_priors(4, [GRID4, GRID4], seed=6)
    if name == "myerson":  # Myerson is meant for independent priors
        priors = [Prior.independent([p.marginal(0), p.marginal(1)], [GRID4, GRID4]) for p in priors]
    asked = [priors[0], priors[1], priors[0], priors[2], priors[3], priors[1]]
    looped = Design(name, delta=delta)
    one_by_one = [looped.build(p) for p in asked]
    batched = Design(name, delta=delta)
    warm = batched.build(priors[3])
    many = batched.build_many(asked)
    assert many[4] is warm
    assert many[2] is many[0] and many[5] is many[1]
    # The loop: p0, p1 miss; p0 hits; p2, p3 miss; p1 hits. The batch after warming p3:
    # p0, p1, p2 miss; the repeats of p0, p1 and the warm p3 hit.
    assert (looped.hits, looped.misses) == (2, 4)
    assert (batched.hits, batched.misses) == (3, 4)
    reports = np.array([[0, 0], [3, 3], [2, 1], [1, 3]])
    for a, b in zip(one_by_one, many):
        assert isinstance(b, ClassicalMechanism)
        assert isinstance(b, Strictified) == (delta > 0)
        oa, ob = a.outcome(reports), b.outcome(reports)
        np.testing.assert_allclose(oa.allocation, ob.allocation, atol=1e-7)
        np.testing.assert_allclose(oa.payments, ob.payments, atol=1e-7)
    assert batched.build_many([]) == []


def test_build_many_uses_one_stacked_solve_and_groups_type_spaces(monkeypatch) -> None:
    first = dirichlet_priors(3, [GRID4, GRID4], seed=7)
    second = dirichlet_priors(2, [[0, 2, 5], [1, 2, 3]], seed=8)
    counting = CountingLinprog(monkeypatch)
    design = Design("optimal", delta=0.05)
    mechs = design.build_many([first[0], second[0], first[1], second[1], first[2]])
    # One stack per type space: 3 blocks of 32 variables, 2 of 18; two calls each.
    assert counting.sizes == [96, 96, 36, 36]
    for prior, mech in zip([first[0], second[0], first[1], second[1], first[2]], mechs):
        assert mech.space == prior.space
        assert mech.base is optimal_mechanism(prior)


# -- mechanism M ----------------------------------------------------------------------


class OneAtATime(Design):
    """The design as before batching: build per distribution."""

    def build_many(self, priors):
        return [Design.build_many(self, [p])[0] for p in priors]


def m_inputs(B: int, seed: int):
    space = TypeSpace([GRID4] * 3)
    rng = np.random.default_rng(seed)
    reports = rng.integers(0, 4, size=(B, 3))
    beliefs = [rng.dirichlet(np.ones(16), size=B) for _ in range(3)]
    beliefs[1][B // 2 :] = beliefs[1][0]  # half of bidder 1's reports are one belief
    return space, reports, beliefs, rng.integers(0, 3, size=B)


def test_m_designs_each_informant_group_in_one_call(monkeypatch) -> None:
    B = 40
    space, reports, beliefs, informant = m_inputs(B, seed=9)
    M = RandomInformant(space, design=Design("optimal", delta=0.05))
    calls = []
    real = M.design.build_many

    def spy(priors):
        calls.append(len(priors))
        return real(priors)

    monkeypatch.setattr(M.design, "build_many", spy)
    out = M.outcome(reports, beliefs, informant=informant)
    groups = [np.unique(beliefs[i][informant == i], axis=0).shape[0] for i in range(3)]
    assert calls == [g for g in groups if g > 0]
    assert groups[1] < np.sum(informant == 1)  # the shared belief is designed once
    loop = RandomInformant(space, design=OneAtATime("optimal", delta=0.05))
    want = loop.outcome(reports, beliefs, informant=informant)
    np.testing.assert_allclose(out.allocation, want.allocation, atol=1e-7)
    np.testing.assert_allclose(out.payments, want.payments, atol=1e-7)


def test_m_sampling_is_unchanged_by_batching() -> None:
    space, reports, beliefs, _ = m_inputs(30, seed=10)
    batched = RandomInformant(space, design=Design("optimal", delta=0.05))
    loop = RandomInformant(space, design=OneAtATime("optimal", delta=0.05))
    a = batched.sample(reports, beliefs, np.random.default_rng(11))
    b = loop.sample(reports, beliefs, np.random.default_rng(11))
    np.testing.assert_array_equal(a.served, b.served)
    np.testing.assert_allclose(a.payments, b.payments, atol=1e-7)
    np.testing.assert_array_equal(a.extra["informant"], b.extra["informant"])


# -- accuracy on priors with tiny probabilities ---------------------------------------


def tiny_probability_priors(count: int, seed: int) -> list[Prior]:
    """Sparse Dirichlet(0.3) tables on 3 x 4 values: entries down to about 1e-10."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        t = rng.dirichlet(np.full(64, 0.3)) * (rng.random(64) > 0.5)
        t = t if t.sum() > 0 else np.ones(64)
        out.append(Prior((t / t.sum()).reshape(4, 4, 4), [GRID4] * 3))
    return out


def test_tiny_probabilities_single_and_stacked_agree(monkeypatch) -> None:
    priors = tiny_probability_priors(24, seed=42)
    assert min(p.table[p.table > 0].min() for p in priors) < 1e-8
    single = solve_alone(priors)
    stacked = optimal_mechanisms(priors)
    gaps = [abs(a.revenue - b.revenue) for a, b in zip(single, stacked)]
    assert max(gaps) <= 1e-9
    for a, b in zip(single, stacked):
        np.testing.assert_allclose(a.alloc_table, b.alloc_table, atol=1e-7)
    # With HiGHS's default dual tolerance the same comparison fails: a solve may stop
    # up to ~1e-7 below the optimum (HiGHS 1.x as shipped with scipy 1.17).
    monkeypatch.setattr(optimal, "_HIGHS_DUAL_FEASIBILITY", 1e-7)
    loose_single = solve_alone(priors)
    loose_stacked = optimal_mechanisms(priors)
    loose = [abs(a.revenue - b.revenue) for a, b in zip(loose_single, loose_stacked)]
    assert max(loose) > 1e-9


def test_the_tie_break_never_trades_revenue(monkeypatch, caplog) -> None:
    """Taking every reduced cost for zero frees the whole polytope, where the score
    (serve less) would drop revenue; the safeguard keeps the first optimal point."""
    prior = Prior.uniform(GRID4, 2)
    want = optimal_mechanism(prior).revenue
    clear_cache()
    monkeypatch.setattr(optimal, "_FACE_TOLERANCE", 1e6)
    with caplog.at_level(logging.DEBUG, logger=optimal.__name__):
        mech = optimal_mechanism(prior)
    assert "the tie-break lost revenue in 1 of 1 blocks" in caplog.text
    assert mech.revenue == pytest.approx(want, abs=1e-12)
