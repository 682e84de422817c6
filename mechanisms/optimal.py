"""The revenue-optimal dominant-strategy-truthful auction for any finite prior.

For single-parameter bidders, a mechanism is dominant-strategy truthful (DST) and ex-post
individually rational (IR) exactly when each bidder's serving probability is
non-decreasing in its own report (for every fixed report of the others) and payments
follow the payment identity. Among those payments, the revenue-maximal ones leave the
lowest type of every bidder zero utility; they are computed by
:func:`~crowdauction.mechanisms.classical.payments_from_allocation`. Expected revenue is
then a linear function of the allocation, so the optimal DST, IR auction for a prior,
correlated or not, is the solution of one linear program over the allocation table:

* variables ``x_i(v)`` in ``[0, 1]`` for every bidder ``i`` and every profile ``v`` of the
  *whole* grid, profiles of probability zero included, so that the mechanism is truthful
  on every report profile (not only on the prior's support);
* monotonicity ``x_i(v_k, v_-i) >= x_i(v_{k-1}, v_-i)`` for adjacent own values;
* feasibility: at most ``k`` winners per profile for :class:`KUnits`; for any other
  setting, lottery weights ``lambda_S(v) >= 0`` over its maximal feasible sets with
  ``sum_S lambda_S(v) <= 1`` and ``x_i(v) <= sum_{S containing i} lambda_S(v)``;
* objective: with own grid ``g_0 < ... < g_{K-1}``, the coefficient of
  ``x_i(g_k, v_-i)`` is ``D(g_k, v_-i) g_k - (g_{k+1} - g_k) sum_{k' > k} D(g_k', v_-i)``
  (the value it earns at that profile minus the information rent it hands to the
  bidder's higher types).

This is the OPT of the paper's bounds (Azar, Chen and Micali, "Crowdsourced Bayesian
Auctions"), the benchmark the crowdsourced mechanisms are measured against. The solver
is HiGHS through :func:`scipy.optimize.linprog`; every solution is cleaned of numerical
noise and then checked again from scratch (truthfulness and IR on the whole grid,
feasibility) before it is returned. Solutions are cached per prior and setting.

The LP often has several optimal points (two bidders at their top value tie for the
good; a zero-probability profile may be served or not). The solver's pick would depend
on its path, so a second LP picks, among the optima, the one with the best fixed
tie-break score, which favours serving less and, among bidders at one profile, the
lowest index (the library's tie rule). The mechanism is then a function of the prior
alone, whether it was solved alone or in a stack with others.

Many priors on one type space are solved together by :func:`optimal_mechanisms`: their
LPs differ only in the objective, so they are stacked into one block-diagonal LP and
solved in one HiGHS call (for small grids the call's fixed cost is most of the time),
then cut apart and verified block by block, each exactly as a single solve is.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy import sparse
from scipy.optimize import OptimizeResult, linprog

from crowdauction.errors import InvalidParameterError, InvalidPriorError, SolverError
from crowdauction.mechanisms.classical import (
    Outcome,
    Realised,
    TableMechanism,
    _charge_served,
    check_reports,
    payments_from_allocation,
)
from crowdauction.mechanisms.prior import Prior
from crowdauction.mechanisms.typespace import Setting, SingleGood, TypeSpace

__all__ = [
    "OptimalMechanism",
    "optimal_mechanism",
    "optimal_mechanisms",
    "optimal_revenue",
    "table_dst_violation",
    "table_ir_violation",
    "feasibility_violation",
    "cache_info",
    "clear_cache",
    "CacheInfo",
    "VERIFY_TOLERANCE",
    "CACHE_SIZE",
    "MAX_LP_VARIABLES",
]

logger = logging.getLogger(__name__)

#: Largest truthfulness, IR or feasibility violation a returned mechanism may have.
VERIFY_TOLERANCE = 1e-7
#: Number of solved (prior, setting) pairs kept by the module cache.
CACHE_SIZE = 256
#: Largest number of variables of one stacked LP of :func:`optimal_mechanisms`; more
#: priors than fit are solved in several calls. HiGHS's time grows faster than the
#: stack beyond about this size (measured on 256 stacked 3 x 4 and 2 x 10 priors), while
#: its fixed cost per call is already paid back many times over below it.
MAX_LP_VARIABLES = 20_000
# HiGHS primal feasibility tolerance: tighter than VERIFY_TOLERANCE so that a solution
# HiGHS calls feasible passes our checks with room to spare.
_HIGHS_FEASIBILITY = 1e-9
# HiGHS dual feasibility tolerance, its smallest allowed value. The default, 1e-7, lets
# it stop up to about 1e-7 below the optimum when the prior has tiny probabilities.
_HIGHS_DUAL_FEASIBILITY = 1e-10
# A reduced cost or dual above this (relative to the largest objective coefficient)
# is non-zero: its variable or row is pinned on the optimal face. Tiny probabilities
# give genuine reduced costs down to about 1e-12; solver noise sits far below.
_FACE_TOLERANCE = 1e-13
# Largest revenue (relative) the tie-break may give up, as a safeguard against a
# reduced cost wrongly taken for zero; a block that loses more keeps its first point.
_FACE_SLACK = 1e-12
# Spreads the tie-break scores of the columns: frac(j * golden) are all distinct.
_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0
# Entries of the (true value, report, others) utility block the table verifier builds.
_VERIFY_BLOCK = 4_000_000


class OptimalMechanism(TableMechanism):
    """A table mechanism computed by the optimal-auction LP.

    Beyond the allocation and payment tables of :class:`TableMechanism` it keeps, for
    settings other than :class:`KUnits`, the lottery over maximal feasible sets that
    certifies the allocation is feasible, and samples realised winners from it.

    Realised winners for a general setting: draw a maximal set ``S`` with probability
    ``lambda_S(v)`` (no set with the remaining probability), then serve each ``i`` in
    ``S`` with probability ``x_i(v) / P(i in S)``. Winners always form a subset of a
    feasible set, and bidder ``i`` is served with probability exactly ``x_i(v)``. For
    :class:`KUnits` the systematic sampling of the base class already serves at most
    ``k`` bidders.

    Args:
        space: the grids the reports must lie on.
        allocation: ``(*space.shape, n)`` serving probabilities, monotone in own value.
        setting: the setting the allocation is feasible for.
        set_weights: ``(*space.shape, m)`` lottery weights over ``sets``, or ``None``
            for a :class:`KUnits` setting.
        sets: ``(m, n)`` 0/1 rows, the maximal feasible sets; needed with
            ``set_weights``.
        revenue: expected revenue under the prior the LP was solved for.
        lp_objective: the LP's optimal value (its objective at the solver's point).
        name: registry-style name.
        payments: ``(*space.shape, n)`` expected payments; default the revenue-maximal
            truthful payments of the allocation.
    """

    def __init__(
        self,
        space: TypeSpace,
        allocation: np.ndarray,
        setting: Setting,
        set_weights: np.ndarray | None = None,
        sets: np.ndarray | None = None,
        revenue: float = float("nan"),
        lp_objective: float = float("nan"),
        name: str = "optimal",
        payments: np.ndarray | None = None,
    ):
        super().__init__(space, allocation, payments, name=name, setting=setting, truthful=True)
        if (set_weights is None) != (sets is None):
            raise InvalidParameterError("set_weights and sets go together: pass both or neither")
        if set_weights is not None and sets is not None:
            sets = np.asarray(sets, dtype=np.int8)
            set_weights = np.asarray(set_weights, dtype=np.float64)
            want = (*space.shape, sets.shape[0])
            if sets.ndim != 2 or sets.shape[1] != space.n or set_weights.shape != want:
                raise InvalidParameterError(
                    f"set weights of shape {set_weights.shape} and sets of shape {sets.shape} "
                    f"do not fit {space.n} bidders; expected {want} and (m, {space.n})"
                )
        self.set_weights = set_weights
        self.sets = sets
        self.revenue = float(revenue)
        self.lp_objective = float(lp_objective)
        # The cache hands the same object to every caller: freeze its tables.
        for arr in (self.alloc_table, self.pay_table, self.set_weights):
            if arr is not None:
                arr.setflags(write=False)

    def sample(self, reports: np.ndarray, rng: np.random.Generator) -> Realised:
        """One realised outcome per auction; winners always form a feasible set."""
        if self.set_weights is None or self.sets is None:
            return super().sample(reports, rng)
        r = check_reports(reports, self.space.n)
        idx = tuple(self.space.indices_of(r).T)
        x = self.alloc_table[idx]
        lam = self.set_weights[idx]
        B = x.shape[0]
        # The first set whose cumulative weight passes the draw; m means "no set".
        cum = np.cumsum(lam, axis=1)
        pick = np.sum(cum <= rng.random(B)[:, None], axis=1)
        with_empty = np.vstack([self.sets, np.zeros((1, self.space.n), dtype=np.int8)])
        in_set = with_empty[pick].astype(bool)
        cover = lam @ self.sets.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            keep = np.where(cover > 0, np.minimum(1.0, x / np.where(cover > 0, cover, 1.0)), 0.0)
        served = in_set & (rng.random(x.shape) < keep)
        out = Outcome(x, self.pay_table[idx])
        return Realised(served, _charge_served(out, served))


# -- the cache ------------------------------------------------------------------------


class CacheInfo(NamedTuple):
    """Counters of the optimal-mechanism cache."""

    hits: int
    misses: int
    size: int
    maxsize: int


_CACHE: OrderedDict[tuple, OptimalMechanism] = OrderedDict()
_STATS = {"hits": 0, "misses": 0}


def cache_info() -> CacheInfo:
    """Hits, misses and current size of the module cache of solved LPs."""
    return CacheInfo(_STATS["hits"], _STATS["misses"], len(_CACHE), CACHE_SIZE)


def clear_cache() -> None:
    """Forget every cached solution and reset the hit and miss counters."""
    _CACHE.clear()
    _STATS["hits"] = 0
    _STATS["misses"] = 0


# -- public entry points --------------------------------------------------------------


def optimal_mechanism(prior: Prior, setting: Setting | None = None) -> OptimalMechanism:
    """The revenue-optimal DST, ex-post IR mechanism for ``prior``.

    Solves the LP described in the module docstring (or returns the cached solution for
    an equal prior and setting). The returned object is shared with later callers that
    ask for the same prior: treat it as read-only. Priors are compared by
    :meth:`Prior.key` (tables rounded to 12 decimals) and shape; :class:`KUnits` and
    :class:`DownwardClosed` settings by value, other settings as they define ``==``.

    Args:
        prior: any finite joint prior; correlation is allowed.
        setting: which bidder sets can be served together; single good by default.

    Returns:
        A table mechanism named ``"optimal"``, truthful and IR on the whole grid, whose
        ``revenue`` attribute is its expected revenue under ``prior``.

    Raises:
        SolverError: if HiGHS fails, or if its solution does not verify (a truthfulness,
            IR or feasibility violation above :data:`VERIFY_TOLERANCE`).
    """
    if not isinstance(prior, Prior):
        raise InvalidParameterError(f"optimal_mechanism needs a Prior, got {type(prior).__name__}")
    return optimal_mechanisms([prior], setting)[0]


def optimal_mechanisms(
    priors: Sequence[Prior], setting: Setting | None = None
) -> list[OptimalMechanism]:
    """:func:`optimal_mechanism` for many priors of one type space, in one LP solve.

    Priors found in the cache are served from it. All the others are solved together:
    their LPs share every constraint (only the objective depends on the prior), so they
    are stacked into one block-diagonal LP and handed to HiGHS in a single call, split
    into several calls when the stack would exceed :data:`MAX_LP_VARIABLES`. The
    solver's point is then cut into blocks, and each block is cleaned and verified on
    its own, exactly as a single solve is, before it enters the cache. Counters and
    the cache end as after a loop of :func:`optimal_mechanism` calls: a prior repeated
    within the call is solved once and counted as a hit after its first appearance.

    One call pays HiGHS's fixed cost once instead of once per prior, which dominates
    for small grids: many belief reports of a crowdsourced mechanism, for instance.

    Args:
        priors: priors on one type space (equal grids); may be empty.
        setting: which bidder sets can be served together; single good by default.

    Returns:
        One mechanism per prior, in order; equal priors get the same object.

    Raises:
        InvalidPriorError: if the priors do not all live on the same type space.
        SolverError: as :func:`optimal_mechanism`, naming the first prior (by position)
            whose solution fails. Priors of the same solve that verified are cached
            before it is raised.
    """
    priors, setting = _check_batch(priors, setting)
    out: list[OptimalMechanism | None] = [None] * len(priors)
    todo: dict[tuple, list[int]] = {}  # key of each miss -> its positions in priors
    for pos, prior in enumerate(priors):
        key = (prior.key(), prior.space.shape, setting)
        cached = _CACHE.get(key)
        if cached is not None:
            _STATS["hits"] += 1
            _CACHE.move_to_end(key)
            out[pos] = cached
        elif key in todo:  # a loop of single calls would find it cached by now
            _STATS["hits"] += 1
            todo[key].append(pos)
        else:
            _STATS["misses"] += 1
            todo[key] = [pos]
    keys = list(todo)
    if keys:
        pattern = _lp_pattern(priors[todo[keys[0]][0]].space, setting)
        step = max(1, MAX_LP_VARIABLES // max(1, pattern.n_var))
        for start in range(0, len(keys), step):
            chunk = keys[start : start + step]
            results = _solve_blocks([priors[todo[k][0]] for k in chunk], setting, pattern)
            for key, res in zip(chunk, results):
                if isinstance(res, OptimalMechanism):
                    _store(key, res)
                    for pos in todo[key]:
                        out[pos] = res
            for key, res in zip(chunk, results):
                if isinstance(res, SolverError):
                    if len(priors) == 1:
                        raise res
                    raise SolverError(f"priors[{todo[key][0]}]: {res}") from res
    return out  # type: ignore[return-value]  # every position is filled above


def optimal_revenue(prior: Prior, setting: Setting | None = None) -> float:
    """Expected revenue of :func:`optimal_mechanism` under ``prior`` (the paper's OPT)."""
    return optimal_mechanism(prior, setting).revenue


def _check_batch(priors: Sequence[Prior], setting: Setting | None) -> tuple[list[Prior], Setting]:
    """Validate the arguments of :func:`optimal_mechanisms`; resolve the default setting."""
    if isinstance(priors, Prior):
        raise InvalidParameterError(
            "optimal_mechanisms needs a sequence of priors; wrap a single Prior in a list"
        )
    priors = list(priors)
    for pos, prior in enumerate(priors):
        if not isinstance(prior, Prior):
            raise InvalidParameterError(
                f"optimal_mechanisms needs Priors, got {type(prior).__name__} at position {pos}"
            )
    setting = SingleGood() if setting is None else setting
    if not isinstance(setting, Setting):
        raise InvalidParameterError(
            f"setting must be a Setting such as KUnits(k) or DownwardClosed(...), got {setting!r}"
        )
    for pos, prior in enumerate(priors[1:], start=1):
        if prior.space != priors[0].space:
            raise InvalidPriorError(
                f"priors[{pos}] lives on {prior.space!r} but priors[0] on {priors[0].space!r}; "
                "one batched solve needs one type space: call optimal_mechanisms once per space"
            )
    return priors, setting


def _store(key: tuple, mech: OptimalMechanism) -> None:
    _CACHE[key] = mech
    _CACHE.move_to_end(key)
    while len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)


# -- the LP ---------------------------------------------------------------------------


def _objective(tables: np.ndarray, space: TypeSpace) -> np.ndarray:
    """Revenue coefficients of ``x_i(v)`` for a stack of prior tables.

    Args:
        tables: ``(k, *space.shape)``, one prior table per block.

    Returns:
        ``(k, n, *space.shape)``.
    """
    coef = np.empty((tables.shape[0], space.n, *space.shape))
    for i, g in enumerate(space.grids):
        p = np.moveaxis(tables, i + 1, 0)  # own value first, then the block
        bcast = (-1,) + (1,) * (p.ndim - 1)
        vals = g.astype(np.float64).reshape(bcast)
        gaps = np.append(np.diff(g), 0).astype(np.float64).reshape(bcast)
        # Mass strictly above each own value, with the others fixed.
        above = np.zeros_like(p)
        above[:-1] = np.cumsum(p[::-1], axis=0)[::-1][1:]
        coef[:, i] = np.moveaxis(p * vals - gaps * above, 0, i + 1)
    return coef


def _monotone_rows(space: TypeSpace, n_cols: int) -> sparse.coo_array:
    """Rows ``x_i(k-1, v_-i) - x_i(k, v_-i) <= 0`` over columns ``i * N + flat(v)``."""
    N = space.size
    flat = np.arange(N).reshape(space.shape)
    lows, highs = [], []
    for i, K in enumerate(space.shape):
        lows.append(i * N + np.take(flat, np.arange(K - 1), axis=i).ravel())
        highs.append(i * N + np.take(flat, np.arange(1, K), axis=i).ravel())
    lo = np.concatenate(lows)
    hi = np.concatenate(highs)
    rows = np.arange(lo.size)
    data = np.concatenate([np.ones(lo.size), -np.ones(hi.size)])
    return sparse.coo_array(
        (data, (np.concatenate([rows, rows]), np.concatenate([lo, hi]))),
        shape=(lo.size, n_cols),
    )


def _feasibility_rows(
    space: TypeSpace, setting: Setting
) -> tuple[sparse.coo_array | None, np.ndarray, np.ndarray | None]:
    """Feasibility rows over ``[x, lambda]``; returns ``(A, b, sets)``.

    ``sets`` is ``None`` for k-unit settings (no lottery variables), else the ``(m, n)``
    maximal feasible sets whose weights ``lambda_S(v)`` sit at columns
    ``n * N + s * N + flat(v)``.
    """
    n, N = space.n, space.size
    if setting.is_unit_cap():
        k = setting.capacity(n)
        if k >= n:
            return None, np.zeros(0), None
        rows = np.tile(np.arange(N), n)
        cols = np.arange(n * N)
        A = sparse.coo_array((np.ones(n * N), (rows, cols)), shape=(N, n * N))
        return A, np.full(N, float(k)), None
    sets = np.asarray(setting.feasible_sets(n), dtype=np.int8)
    if sets.ndim != 2 or sets.shape[1] != n or sets.shape[0] < 1:
        raise InvalidParameterError(
            f"setting {setting!r} gave feasible sets of shape {sets.shape}, expected (m, {n})"
        )
    m = sets.shape[0]
    ar = np.arange(N)
    # sum_S lambda_S(v) <= 1, one row per profile.
    r1 = np.tile(ar, m)
    c1 = n * N + np.arange(m * N)
    # x_i(v) - sum_{S containing i} lambda_S(v) <= 0, one row per bidder and profile.
    r2x = N + np.arange(n * N)
    c2x = np.arange(n * N)
    s_idx, i_idx = np.nonzero(sets)
    r2l = (N + i_idx[:, None] * N + ar[None, :]).ravel()
    c2l = (n * N + s_idx[:, None] * N + ar[None, :]).ravel()
    rows = np.concatenate([r1, r2x, r2l])
    cols = np.concatenate([c1, c2x, c2l])
    data = np.concatenate([np.ones(r1.size + r2x.size), -np.ones(r2l.size)])
    A = sparse.coo_array((data, (rows, cols)), shape=(N + n * N, n * N + m * N))
    b = np.concatenate([np.ones(N), np.zeros(n * N)])
    return A, b, sets


class _Pattern(NamedTuple):
    """The part of the LP that depends only on the type space and the setting."""

    space: TypeSpace
    A: sparse.coo_array | None  # (n_rows, n_var) inequality rows, or None without rows
    b: np.ndarray  # (n_rows,)
    upper: np.ndarray  # (n_var,) upper bounds; every lower bound is 0
    sets: np.ndarray | None  # (m, n) maximal feasible sets, None for k units
    n_x: int  # allocation variables, n * N; lottery weights follow them
    score: np.ndarray  # (n_var,) the tie-break score that picks one optimum

    @property
    def n_var(self) -> int:
        return self.upper.size

    @property
    def n_rows(self) -> int:
        return 0 if self.A is None else self.A.shape[0]


def _lp_pattern(space: TypeSpace, setting: Setting) -> _Pattern:
    """Monotonicity and feasibility rows and the bounds of one prior's LP."""
    n, N = space.n, space.size
    feas, b_feas, sets = _feasibility_rows(space, setting)
    n_lam = 0 if sets is None else sets.shape[0] * N
    n_var = n * N + n_lam
    mono = _monotone_rows(space, n_var)
    A = mono if feas is None else sparse.vstack([mono, feas], format="coo")
    b = np.concatenate([np.zeros(mono.shape[0]), b_feas])
    upper = np.concatenate([np.ones(n * N), np.full(n_lam, np.inf)])
    if A.shape[0] == 0:  # one bidder with one value and no capacity constraint
        A = None
    return _Pattern(space, A, b, upper, sets, n * N, _tie_break_score(space, n_lam))


def _stacked(pattern: _Pattern, k: int) -> tuple[sparse.csr_array | None, np.ndarray | None]:
    """``k`` copies of the pattern's rows on the diagonal of one matrix, and their bounds."""
    if pattern.A is None:
        return None, None
    A = pattern.A
    rows_, cols_ = A.shape
    shift = np.arange(k)[:, None]
    rows = (A.row[None, :] + rows_ * shift).ravel()
    cols = (A.col[None, :] + cols_ * shift).ravel()
    data = np.tile(A.data, k)
    big = sparse.csr_array((data, (rows, cols)), shape=(k * rows_, k * cols_))
    return big, np.tile(pattern.b, k)


def _solve_blocks(
    priors: list[Prior], setting: Setting, pattern: _Pattern
) -> list[OptimalMechanism | SolverError]:
    """Solve the LPs of ``priors`` as one block-diagonal LP; verify each block alone.

    Returns, per prior, its verified mechanism or the error that refuses it. When HiGHS
    fails on a stack of several blocks, each block is solved again on its own, so that
    the failure is pinned on the priors that cause it.
    """
    space = pattern.space
    n = space.n
    k = len(priors)
    n_var = pattern.n_var
    t0 = time.perf_counter()
    tables = np.stack([p.table for p in priors])
    coef = _objective(tables, space).reshape(k, -1)
    c = np.zeros((k, n_var))
    c[:, : pattern.n_x] = -coef
    A_ub, b_ub = _stacked(pattern, k)
    bounds = np.zeros((k * n_var, 2))
    bounds[:, 1] = np.tile(pattern.upper, k)
    t1 = time.perf_counter()
    res = _highs(c.ravel(), A_ub, b_ub, bounds)
    t2 = time.perf_counter()
    if res.status != 0 or res.x is None:
        if k > 1:
            logger.warning(
                "HiGHS failed on %d stacked optimal-auction LPs (status %s: %s); "
                "solving them one at a time",
                k,
                res.status,
                res.message,
            )
            return [r for p in priors for r in _solve_blocks([p], setting, pattern)]
        err = SolverError(
            f"HiGHS failed on the optimal-auction LP ({n_var} variables, {pattern.n_rows} "
            f"constraints, prior shape {space.shape}): status {res.status}: {res.message}. "
            "The LP is always feasible and bounded, so this is a numerical failure; "
            "try a coarser grid or a prior without near-zero probabilities."
        )
        return [err]
    first = np.asarray(res.x, dtype=np.float64).reshape(k, n_var)
    lp_objective = -np.einsum("bv,bv->b", c, first)
    point = _canonical_point(res, c.ravel(), A_ub, b_ub, bounds, pattern).reshape(k, n_var)
    t3 = time.perf_counter()
    x = np.moveaxis(point[:, : pattern.n_x].reshape((k, n, *space.shape)), 1, -1)
    lam = None
    if pattern.sets is not None:
        m = pattern.sets.shape[0]
        lam = np.moveaxis(point[:, pattern.n_x :].reshape((k, m, *space.shape)), 1, -1)
    x, lam, problems = _clean(x, lam, pattern.sets, setting, space)
    pay = _payments(x, space)
    revenue = (tables * pay.sum(axis=-1)).reshape(k, -1).sum(axis=1)
    checks = _verify(x, pay, lam, pattern.sets, setting, space, revenue, lp_objective)
    reported = -float(res.fun)
    total = float(lp_objective.sum())
    whole = None
    if abs(total - reported) > 1e-6 * max(1.0, abs(reported)):
        whole = (
            f"the LP reported {reported!r} as its optimum but the solver's point earns "
            f"{total!r}; the difference is more than noise, so the point is not trusted"
        )
    out: list[OptimalMechanism | SolverError] = []
    for b in range(k):
        problem = problems[b] or checks[b] or whole
        if problem is not None:
            out.append(SolverError(problem))
            continue
        out.append(
            OptimalMechanism(
                space,
                x[b].copy(),
                setting,
                set_weights=None if lam is None else lam[b].copy(),
                sets=pattern.sets,
                revenue=float(revenue[b]),
                lp_objective=float(lp_objective[b]),
                payments=pay[b].copy(),
            )
        )
    logger.debug(
        "optimal LP x%d %s, %s: %d vars, %d rows; build %.3fs, solve %.3fs, "
        "tie-break %.3fs, clean+verify %.3fs",
        k,
        space.shape,
        setting,
        k * n_var,
        k * pattern.n_rows,
        t1 - t0,
        t2 - t1,
        t3 - t2,
        time.perf_counter() - t3,
    )
    return out


def _highs(
    c: np.ndarray,
    A_ub: sparse.csr_array | None,
    b_ub: np.ndarray | None,
    bounds: np.ndarray,
    A_eq: sparse.csr_array | None = None,
    b_eq: np.ndarray | None = None,
) -> OptimizeResult:
    return linprog(
        c,
        A_ub=A_ub,
        b_ub=b_ub,
        A_eq=A_eq,
        b_eq=b_eq,
        bounds=bounds,
        method="highs",
        options={
            "primal_feasibility_tolerance": _HIGHS_FEASIBILITY,
            "dual_feasibility_tolerance": _HIGHS_DUAL_FEASIBILITY,
        },
    )


def _canonical_point(
    res: OptimizeResult,
    c: np.ndarray,
    A_ub: sparse.csr_array | None,
    b_ub: np.ndarray | None,
    bounds: np.ndarray,
    pattern: _Pattern,
) -> np.ndarray:
    """The optimal point that maximises the tie-break score, given any optimal point.

    The LP often has many optima: two bidders at their top value tie for the good, and
    a variable whose coefficient is zero can take any value its constraints allow.
    Which optimum the simplex method stops at depends on its path, and so, in a stack,
    on the other blocks. To make the result a function of the prior alone, a second LP
    maximises :func:`_tie_break_score` over the set of optimal points, which is exactly
    the feasible points that satisfy complementary slackness with the first solve's
    duals: variables with a non-zero reduced cost stay at their bound and inequalities
    with a non-zero dual stay tight. Every point of that set earns the same revenue.

    Returns the first solve's point unchanged (and logs why) when the solver reports no
    duals or the second LP fails.
    """
    duals = [getattr(res, name, None) for name in ("ineqlin", "lower", "upper")]
    if any(d is None for d in duals):
        logger.debug("no duals from the solver; keeping its optimal point as is")
        return np.asarray(res.x, dtype=np.float64)
    rows, lower, upper = (np.asarray(d.marginals, dtype=np.float64) for d in duals)
    k = c.size // pattern.n_var
    # Per block, so that whether a dual counts as zero does not depend on the others.
    cut = _FACE_TOLERANCE * np.maximum(1.0, np.abs(c.reshape(k, -1)).max(axis=1))
    col_cut = np.repeat(cut, pattern.n_var)
    face = bounds.copy()
    at_lower = np.abs(lower) > col_cut
    at_upper = np.abs(upper) > col_cut
    face[at_lower, 1] = bounds[at_lower, 0]
    face[at_upper, 0] = bounds[at_upper, 1]
    A_eq = b_eq = None
    if A_ub is not None and b_ub is not None:
        tight = np.abs(rows) > np.repeat(cut, pattern.n_rows)
        if tight.any():
            A_eq, b_eq = A_ub[np.nonzero(tight)[0]], b_ub[tight]
        if tight.all():
            A_ub = b_ub = None
        elif tight.any():
            A_ub, b_ub = A_ub[np.nonzero(~tight)[0]], b_ub[~tight]
    first = np.asarray(res.x, dtype=np.float64)
    second = _highs(-np.tile(pattern.score, k), A_ub, b_ub, face, A_eq, b_eq)
    if second.status != 0 or second.x is None:
        logger.warning(
            "the tie-breaking LP over the optimal face failed (status %s: %s); keeping "
            "the first optimal point, which may differ between single and batched solves",
            second.status,
            second.message,
        )
        return first
    point = np.asarray(second.x, dtype=np.float64).reshape(k, -1)
    blocks = c.reshape(k, -1)
    before = -np.einsum("bv,bv->b", blocks, first.reshape(k, -1))
    after = -np.einsum("bv,bv->b", blocks, point)
    lost = before - after > _FACE_SLACK * np.maximum(1.0, np.abs(before))
    if lost.any():
        logger.debug(
            "the tie-break lost revenue in %d of %d blocks; they keep their first points",
            int(lost.sum()),
            k,
        )
        point[lost] = first.reshape(k, -1)[lost]
    return point.ravel()


def _tie_break_score(space: TypeSpace, n_lam: int) -> np.ndarray:
    """Score over ``[x, lambda]`` whose maximum over the optimal points picks one of them.

    ``x_i(v)`` scores ``-(1 + i + r)`` and each lottery weight ``-(1 + r)``, with ``r`` in
    ``[0, 1/2)`` a fixed value per column (a golden-ratio sequence, all distinct): less
    serving scores higher, and at one profile a lower-indexed bidder does. Distinct
    ``r`` make a tie between two optima unlikely, not impossible; in a tie the solver's
    path picks, as without the score.
    """
    n, N = space.n, space.size
    cols = np.arange(n * N + n_lam, dtype=np.float64)
    r = 0.5 * np.mod((cols + 1.0) * _GOLDEN, 1.0)
    score = -(1.0 + r)
    score[: n * N] -= np.repeat(np.arange(n, dtype=np.float64), N)
    return score


def _payments(x: np.ndarray, space: TypeSpace) -> np.ndarray:
    """:func:`payments_from_allocation` on a stack ``(k, *space.shape, n)`` of tables."""
    # It works along each bidder's own profile axis and broadcasts over any axes between
    # the profile axes and the bidder axis, so the stack rides along in that position.
    return np.moveaxis(payments_from_allocation(np.moveaxis(x, 0, -2), space), -2, 0)


def _clean(
    x: np.ndarray,
    lam: np.ndarray | None,
    sets: np.ndarray | None,
    setting: Setting,
    space: TypeSpace,
) -> tuple[np.ndarray, np.ndarray | None, list[str | None]]:
    """Remove solver noise from a stack of LP solutions, refusing anything beyond noise.

    Per block: clips to ``[0, 1]``, takes the running maximum along each bidder's own
    axis (exact monotonicity), then subtracts the block's largest remaining feasibility
    excess from every entry (clipped at 0). The map ``x -> max(0, x - c)`` is
    non-decreasing, so the result stays monotone while becoming exactly feasible.

    Args:
        x: ``(k, *space.shape, n)`` allocations as the solver returned them.
        lam: ``(k, *space.shape, m)`` lottery weights over ``sets``, or ``None``.

    Returns:
        ``(x, lam, problems)``: the cleaned stacks, and per block ``None`` or why the
        raw solution is refused (a bound, monotonicity or feasibility violated by more
        than :data:`VERIFY_TOLERANCE`).
    """
    k = x.shape[0]
    flat = x.reshape(k, -1)
    bound = np.maximum(0.0, np.maximum(-flat.min(axis=1), flat.max(axis=1) - 1.0))
    mono = np.zeros(k)
    for i in range(space.n):
        if space.shape[i] > 1:
            drop = -np.diff(x[..., i], axis=i + 1).reshape(k, -1)
            mono = np.maximum(mono, drop.max(axis=1))
    x = np.clip(x, 0.0, 1.0)
    for i in range(space.n):
        x[..., i] = np.maximum.accumulate(x[..., i], axis=i + 1)
    if lam is not None and sets is not None:
        lam = np.clip(lam, 0.0, None)
        total = lam.sum(axis=-1, keepdims=True)
        lam = np.where(total > 1.0, lam / np.where(total > 1.0, total, 1.0), lam)
        over = x - lam @ sets.astype(np.float64)
    else:
        over = x.sum(axis=-1) - setting.capacity(space.n)
    excess = np.maximum(0.0, over.reshape(k, -1).max(axis=1))
    raw = (("a [0, 1] bound", bound), ("monotonicity", mono), ("feasibility", excess))
    problems: list[str | None] = [None] * k
    for what, amount in reversed(raw):  # the first violated check names the problem
        for b in np.nonzero(amount > VERIFY_TOLERANCE)[0]:
            problems[b] = (
                f"the LP solution violates {what} by {amount[b]:.3g}, more than the "
                f"tolerance {VERIFY_TOLERANCE:g}; the solver returned an unusable point"
            )
    # A margin on top of the excess keeps sums of floats at or below capacity.
    shift = np.where(excess > 0, excess + 1e-12, 0.0).reshape((k,) + (1,) * (x.ndim - 1))
    return np.maximum(0.0, x - shift), lam, problems


def _verify(
    x: np.ndarray,
    pay: np.ndarray,
    lam: np.ndarray | None,
    sets: np.ndarray | None,
    setting: Setting,
    space: TypeSpace,
    revenue: np.ndarray,
    lp_objective: np.ndarray,
) -> list[str | None]:
    """Re-check a stack of cleaned solutions from their tables alone, block by block.

    Uses the table verifiers below rather than the generic
    :func:`~crowdauction.mechanisms.classical.dst_violation`: they compute the same
    numbers (the tests check this) about 40 times faster on 2 bidders x 100 values,
    where the generic one would take longer than the LP itself, and they take a whole
    stack of blocks at once.

    Args:
        x, pay: ``(k, *space.shape, n)`` allocation and payment tables.
        lam: ``(k, *space.shape, m)`` lottery weights over ``sets``, or ``None``.
        revenue: ``(k,)`` expected revenue of each block under its prior.
        lp_objective: ``(k,)`` LP objective of each block at the solver's point.

    Returns:
        Per block ``None`` if it verifies, else the first violation found.
    """
    gain, loc = _dst_gains(x, pay, space)
    shortfall = _ir_shortfalls(x, pay, space)
    feas, what = _feasibility_violations(x, setting, lam, sets)
    gap = np.abs(revenue - lp_objective)
    off = gap > 1e-6 * np.maximum(1.0, np.abs(lp_objective))
    bad = (gain > VERIFY_TOLERANCE) | (shortfall > VERIFY_TOLERANCE)
    bad |= (feas > VERIFY_TOLERANCE) | off
    problems: list[str | None] = [None] * x.shape[0]
    for b in np.nonzero(bad)[0]:
        if gain[b] > VERIFY_TOLERANCE:
            problems[b] = (
                f"the optimal-auction solution is not truthful: a misreport gains "
                f"{gain[b]:.3g} (tolerance {VERIFY_TOLERANCE:g}) at {_where(space, loc[b])}"
            )
        elif shortfall[b] > VERIFY_TOLERANCE:
            problems[b] = (
                f"the optimal-auction solution is not IR: a truthful bidder loses "
                f"{shortfall[b]:.3g} (tolerance {VERIFY_TOLERANCE:g})"
            )
        elif feas[b] > VERIFY_TOLERANCE:
            problems[b] = (
                f"the optimal-auction solution is infeasible: {what[b]} by {feas[b]:.3g} "
                f"(tolerance {VERIFY_TOLERANCE:g})"
            )
        else:
            problems[b] = (
                f"the cleaned solution earns {float(revenue[b])!r} but the solver's point "
                f"earns {float(lp_objective[b])!r} in the LP; the difference is more than "
                "noise, so the solver's point is not trusted"
            )
    return problems


# -- independent checks on tables -----------------------------------------------------


def table_dst_violation(
    allocation: np.ndarray, payments: np.ndarray, space: TypeSpace
) -> tuple[float, dict]:
    """Largest gain from any misreport, computed from the tables on the whole grid.

    The same check as :func:`~crowdauction.mechanisms.classical.dst_violation`, for a
    mechanism given by tables: for each bidder it compares, along its own axis, every
    true value with every report at once by broadcasting, in blocks of the others'
    profiles so that memory stays bounded.

    Args:
        allocation: ``(*space.shape, n)`` serving probabilities.
        payments: ``(*space.shape, n)`` expected payments.
        space: the grids.

    Returns:
        ``(max_gain, where)``; ``where`` names bidder, value, report and the others'
        values of the worst case, as in ``dst_violation``.
    """
    gain, loc = _dst_gains(np.asarray(allocation)[None], np.asarray(payments)[None], space)
    return float(gain[0]), _where(space, loc[0])


def _dst_gains(
    allocation: np.ndarray, payments: np.ndarray, space: TypeSpace
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`table_dst_violation` for a stack of ``k`` table pairs.

    Args:
        allocation, payments: ``(k, *space.shape, n)``.

    Returns:
        ``(gain, loc)``: ``(k,)`` largest gains and ``(k, 4)`` their places as bidder,
        true value index, report index and flat index of the others' profile. Among
        equal gains the first in (bidder, others, value, report) order is kept.
    """
    k = allocation.shape[0]
    best = np.full(k, -np.inf)
    loc = np.zeros((k, 4), dtype=np.int64)
    for i, g in enumerate(space.grids):
        K = len(g)
        x = np.moveaxis(allocation[..., i], i + 1, 1).reshape(k, K, -1)
        p = np.moveaxis(payments[..., i], i + 1, 1).reshape(k, K, -1)
        vals = g.astype(np.float64)
        truthful = vals[None, :, None] * x - p
        # Blocks of stack entries and others' profiles keep (kb, K, K, ob) near 32 MB.
        kb = max(1, min(k, _VERIFY_BLOCK // (K * K)))
        ob = max(1, _VERIFY_BLOCK // (kb * K * K))
        for b0 in range(0, k, kb):
            bs = slice(b0, b0 + kb)
            for start in range(0, x.shape[2], ob):
                sl = slice(start, start + ob)
                # util[b, t, r, o]: block b, true value t, report r, others o.
                util = vals[None, :, None, None] * x[bs, None, :, sl] - p[bs, None, :, sl]
                gain = (util - truthful[bs, :, None, sl]).reshape(util.shape[0], -1)
                arg = np.argmax(gain, axis=1)
                top = gain[np.arange(arg.size), arg]
                better = top > best[bs]
                if not better.any():
                    continue
                rows = b0 + np.nonzero(better)[0]
                t, r, o = np.unravel_index(arg[better], util.shape[1:])
                best[rows] = top[better]
                loc[rows] = np.stack([np.full(rows.size, i), t, r, start + o], axis=1)
    return best, loc


def _where(space: TypeSpace, loc: np.ndarray) -> dict:
    """The ``where`` dict of :func:`table_dst_violation` from one row of ``_dst_gains``."""
    i, t, r, o = (int(v) for v in loc)
    others = np.unravel_index(o, space.others_shape(i))
    rest = [j for j in range(space.n) if j != i]
    return {
        "bidder": i,
        "value": int(space.grids[i][t]),
        "report": int(space.grids[i][r]),
        "others": [int(space.grids[j][q]) for j, q in zip(rest, others)],
    }


def table_ir_violation(allocation: np.ndarray, payments: np.ndarray, space: TypeSpace) -> float:
    """Largest shortfall below zero of a truthful bidder's expected utility (0 if IR)."""
    return float(_ir_shortfalls(np.asarray(allocation)[None], np.asarray(payments)[None], space)[0])


def _ir_shortfalls(allocation: np.ndarray, payments: np.ndarray, space: TypeSpace) -> np.ndarray:
    """:func:`table_ir_violation` per entry of a ``(k, *space.shape, n)`` stack."""
    vals = space.profile_values.reshape((*space.shape, space.n)).astype(np.float64)
    util = (vals * allocation - payments).reshape(allocation.shape[0], -1)
    return np.maximum(0.0, -util.min(axis=1))


def feasibility_violation(
    allocation: np.ndarray,
    setting: Setting,
    set_weights: np.ndarray | None = None,
    sets: np.ndarray | None = None,
) -> tuple[float, str]:
    """How far an allocation table is from feasible for ``setting``.

    For k-unit settings: the largest excess of the number served in expectation over
    ``k``, and of any probability outside ``[0, 1]``. For other settings the lottery
    ``set_weights`` over ``sets`` is the certificate: weights must be non-negative, sum
    to at most one, and cover each bidder's serving probability.

    Returns:
        ``(violation, what)``: the largest violation (0 if feasible) and its name.
    """
    weights = None if set_weights is None else np.asarray(set_weights)[None]
    viol, what = _feasibility_violations(np.asarray(allocation)[None], setting, weights, sets)
    return float(viol[0]), what[0]


def _feasibility_violations(
    allocation: np.ndarray,
    setting: Setting,
    set_weights: np.ndarray | None = None,
    sets: np.ndarray | None = None,
) -> tuple[np.ndarray, list[str]]:
    """:func:`feasibility_violation` per entry of a ``(k, ..., n)`` stack.

    Returns:
        ``(violation, what)``: ``(k,)`` violations (0 where feasible) and their names.
    """
    k, n = allocation.shape[0], allocation.shape[-1]

    def worst(a: np.ndarray) -> np.ndarray:
        return a.reshape(k, -1).max(axis=1)

    checks = {
        "a serving probability below 0": worst(-allocation),
        "a serving probability above 1": worst(allocation - 1.0),
    }
    if setting.is_unit_cap():
        checks["the capacity"] = worst(allocation.sum(axis=-1) - setting.capacity(n))
    else:
        if set_weights is None or sets is None:
            raise InvalidParameterError(
                f"checking feasibility for {setting!r} needs the set weights and sets "
                "that certify it"
            )
        checks["a negative set weight"] = worst(-set_weights)
        checks["set weights summing above 1"] = worst(set_weights.sum(axis=-1) - 1.0)
        cover = set_weights @ np.asarray(sets, dtype=np.float64)
        checks["the cover of a bidder by its feasible sets"] = worst(allocation - cover)
    names = list(checks)
    table = np.stack([checks[name] for name in names])
    pick = np.argmax(table, axis=0)  # the first check among equal violations, as max()
    return np.maximum(0.0, table[pick, np.arange(k)]), [names[j] for j in pick]
