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
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import NamedTuple

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from crowdauction.errors import SolverError
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
    "optimal_revenue",
    "table_dst_violation",
    "table_ir_violation",
    "feasibility_violation",
    "cache_info",
    "clear_cache",
    "CacheInfo",
    "VERIFY_TOLERANCE",
    "CACHE_SIZE",
]

logger = logging.getLogger(__name__)

#: Largest truthfulness, IR or feasibility violation a returned mechanism may have.
VERIFY_TOLERANCE = 1e-7
#: Number of solved (prior, setting) pairs kept by the module cache.
CACHE_SIZE = 256
# HiGHS primal feasibility tolerance: tighter than VERIFY_TOLERANCE so that a solution
# HiGHS calls feasible passes our checks with room to spare.
_HIGHS_FEASIBILITY = 1e-9
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
        lp_objective: the LP's optimal value as reported by the solver.
        name: registry-style name.
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
    ):
        super().__init__(space, allocation, name=name, setting=setting, truthful=True)
        if (set_weights is None) != (sets is None):
            raise ValueError("set_weights and sets go together: pass both or neither")
        if set_weights is not None and sets is not None:
            sets = np.asarray(sets, dtype=np.int8)
            set_weights = np.asarray(set_weights, dtype=np.float64)
            want = (*space.shape, sets.shape[0])
            if sets.ndim != 2 or sets.shape[1] != space.n or set_weights.shape != want:
                raise ValueError(
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
        raise TypeError(f"optimal_mechanism needs a Prior, got {type(prior).__name__}")
    setting = SingleGood() if setting is None else setting
    if not isinstance(setting, Setting):
        raise TypeError(
            f"setting must be a Setting such as KUnits(k) or DownwardClosed(...), got {setting!r}"
        )
    key = (prior.key(), prior.space.shape, setting)
    cached = _CACHE.get(key)
    if cached is not None:
        _STATS["hits"] += 1
        _CACHE.move_to_end(key)
        return cached
    _STATS["misses"] += 1
    mech = _solve(prior, setting)
    _CACHE[key] = mech
    while len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return mech


def optimal_revenue(prior: Prior, setting: Setting | None = None) -> float:
    """Expected revenue of :func:`optimal_mechanism` under ``prior`` (the paper's OPT)."""
    return optimal_mechanism(prior, setting).revenue


# -- the LP ---------------------------------------------------------------------------


def _objective(prior: Prior) -> np.ndarray:
    """Revenue coefficients of ``x_i(v)``, shape ``(n, *space.shape)``."""
    space = prior.space
    coef = np.empty((space.n, *space.shape))
    for i, g in enumerate(space.grids):
        p = np.moveaxis(prior.table, i, 0)
        bcast = (-1,) + (1,) * (p.ndim - 1)
        vals = g.astype(np.float64).reshape(bcast)
        gaps = np.append(np.diff(g), 0).astype(np.float64).reshape(bcast)
        # Mass strictly above each own value, with the others fixed.
        above = np.zeros_like(p)
        above[:-1] = np.cumsum(p[::-1], axis=0)[::-1][1:]
        coef[i] = np.moveaxis(p * vals - gaps * above, 0, i)
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
        raise ValueError(
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


def _solve(prior: Prior, setting: Setting) -> OptimalMechanism:
    space = prior.space
    n, N = space.n, space.size
    t0 = time.perf_counter()
    coef = _objective(prior).reshape(-1)
    feas, b_feas, sets = _feasibility_rows(space, setting)
    n_lam = 0 if sets is None else sets.shape[0] * N
    n_var = n * N + n_lam
    mono = _monotone_rows(space, n_var)
    blocks = [mono] if feas is None else [mono, feas]
    A_ub = sparse.vstack(blocks, format="csr")
    b_ub = np.concatenate([np.zeros(mono.shape[0]), b_feas])
    if A_ub.shape[0] == 0:  # one bidder with one value and no capacity constraint
        A_ub, b_ub = None, None
    c = -np.concatenate([coef, np.zeros(n_lam)])
    bounds = np.zeros((n_var, 2))
    bounds[: n * N, 1] = 1.0
    bounds[n * N :, 1] = np.inf
    n_rows = 0 if A_ub is None else A_ub.shape[0]
    t1 = time.perf_counter()
    res = linprog(
        c,
        A_ub=A_ub,
        b_ub=b_ub,
        bounds=bounds,
        method="highs",
        options={"primal_feasibility_tolerance": _HIGHS_FEASIBILITY},
    )
    t2 = time.perf_counter()
    if res.status != 0 or res.x is None:
        raise SolverError(
            f"HiGHS failed on the optimal-auction LP ({n_var} variables, {n_rows} "
            f"constraints, prior shape {space.shape}): status {res.status}: {res.message}. "
            "The LP is always feasible and bounded, so this is a numerical failure; "
            "try a coarser grid or a prior without near-zero probabilities."
        )
    lp_objective = -float(res.fun)
    x = np.moveaxis(res.x[: n * N].reshape((n, *space.shape)), 0, -1)
    lam = None
    if sets is not None:
        lam = np.moveaxis(res.x[n * N :].reshape((sets.shape[0], *space.shape)), 0, -1)
    x, lam = _clean(x, lam, sets, setting, space)
    pay = payments_from_allocation(x, space)
    revenue = prior.expect(pay.sum(axis=-1))
    mech = OptimalMechanism(
        space,
        x,
        setting,
        set_weights=lam,
        sets=sets,
        revenue=revenue,
        lp_objective=lp_objective,
    )
    _verify(mech, setting, lp_objective)
    logger.debug(
        "optimal LP %s, %s: %d vars, %d rows; build %.3fs, solve %.3fs, clean+verify %.3fs",
        space.shape,
        setting,
        n_var,
        n_rows,
        t1 - t0,
        t2 - t1,
        time.perf_counter() - t2,
    )
    return mech


def _clean(
    x: np.ndarray,
    lam: np.ndarray | None,
    sets: np.ndarray | None,
    setting: Setting,
    space: TypeSpace,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Remove solver noise from an LP solution, refusing anything beyond noise.

    Clips to ``[0, 1]``, takes the running maximum along each bidder's own axis (exact
    monotonicity), then subtracts the largest remaining feasibility excess from every
    entry (clipped at 0). The map ``x -> max(0, x - c)`` is non-decreasing, so the
    result stays monotone while becoming exactly feasible.

    Raises:
        SolverError: if the raw solution violates a bound, monotonicity or feasibility
            by more than :data:`VERIFY_TOLERANCE`.
    """
    bound = float(max(0.0, -x.min(), x.max() - 1.0))
    mono = 0.0
    for i in range(space.n):
        if space.shape[i] > 1:
            mono = max(mono, float(np.max(-np.diff(x[..., i], axis=i), initial=0.0)))
    x = np.clip(x, 0.0, 1.0)
    for i in range(space.n):
        x[..., i] = np.maximum.accumulate(x[..., i], axis=i)
    if lam is not None and sets is not None:
        lam = np.clip(lam, 0.0, None)
        total = lam.sum(axis=-1, keepdims=True)
        lam = np.where(total > 1.0, lam / np.where(total > 1.0, total, 1.0), lam)
        excess = float(np.max(x - lam @ sets.astype(np.float64), initial=0.0))
    else:
        k = setting.capacity(space.n)
        excess = float(np.max(x.sum(axis=-1) - k, initial=0.0))
    raw = (("a [0, 1] bound", bound), ("monotonicity", mono), ("feasibility", excess))
    for what, amount in raw:
        if amount > VERIFY_TOLERANCE:
            raise SolverError(
                f"the LP solution violates {what} by {amount:.3g}, more than the tolerance "
                f"{VERIFY_TOLERANCE:g}; the solver returned an unusable point"
            )
    if excess > 0:
        # A margin on top of the excess keeps sums of floats at or below capacity.
        x = np.maximum(0.0, x - (excess + 1e-12))
    return x, lam


def _verify(mech: OptimalMechanism, setting: Setting, lp_objective: float) -> None:
    """Re-check a cleaned solution from its tables alone; raise on any violation.

    Uses the table verifiers below rather than the generic
    :func:`~crowdauction.mechanisms.classical.dst_violation`: they compute the same
    numbers (the tests check this) about 40 times faster on 2 bidders x 100 values,
    where the generic one would take longer than the LP itself.
    """
    space = mech.space
    gain, where = table_dst_violation(mech.alloc_table, mech.pay_table, space)
    shortfall = table_ir_violation(mech.alloc_table, mech.pay_table, space)
    feas, what = feasibility_violation(
        mech.alloc_table, setting, mech.set_weights, mech.sets
    )
    if gain > VERIFY_TOLERANCE:
        raise SolverError(
            f"the optimal-auction solution is not truthful: a misreport gains {gain:.3g} "
            f"(tolerance {VERIFY_TOLERANCE:g}) at {where}"
        )
    if shortfall > VERIFY_TOLERANCE:
        raise SolverError(
            f"the optimal-auction solution is not IR: a truthful bidder loses {shortfall:.3g} "
            f"(tolerance {VERIFY_TOLERANCE:g})"
        )
    if feas > VERIFY_TOLERANCE:
        raise SolverError(
            f"the optimal-auction solution is infeasible: {what} by {feas:.3g} "
            f"(tolerance {VERIFY_TOLERANCE:g})"
        )
    gap = abs(mech.revenue - lp_objective)
    if gap > 1e-6 * max(1.0, abs(lp_objective)):
        raise SolverError(
            f"the cleaned solution earns {mech.revenue!r} but the LP reported {lp_objective!r}; "
            "the difference is more than noise, so the solver's point is not trusted"
        )


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
    best = -np.inf
    where: dict = {}
    for i, g in enumerate(space.grids):
        K = len(g)
        x = np.moveaxis(allocation[..., i], i, 0).reshape(K, -1)
        p = np.moveaxis(payments[..., i], i, 0).reshape(K, -1)
        vals = g.astype(np.float64)
        truthful = vals[:, None] * x - p
        # Blocks of the others' profiles keep the (K, K, block) array near 32 MB.
        block = max(1, _VERIFY_BLOCK // (K * K))
        for start in range(0, x.shape[1], block):
            sl = slice(start, start + block)
            # util[t, r, o]: true value t, report r, others o.
            util = vals[:, None, None] * x[None, :, sl] - p[None, :, sl]
            gain = util - truthful[:, None, sl]
            t, r, o = np.unravel_index(int(np.argmax(gain)), gain.shape)
            if gain[t, r, o] <= best:
                continue
            best = float(gain[t, r, o])
            o = start + o
            others = np.unravel_index(int(o), space.others_shape(i))
            rest = [j for j in range(space.n) if j != i]
            where = {
                "bidder": i,
                "value": int(g[t]),
                "report": int(g[r]),
                "others": [int(space.grids[j][k]) for j, k in zip(rest, others)],
            }
    return best, where


def table_ir_violation(allocation: np.ndarray, payments: np.ndarray, space: TypeSpace) -> float:
    """Largest shortfall below zero of a truthful bidder's expected utility (0 if IR)."""
    vals = space.profile_values.reshape((*space.shape, space.n)).astype(np.float64)
    return float(max(0.0, -(vals * allocation - payments).min()))


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
    n = allocation.shape[-1]
    checks = {
        "a serving probability below 0": float(-allocation.min()),
        "a serving probability above 1": float(allocation.max() - 1.0),
    }
    if setting.is_unit_cap():
        checks["the capacity"] = float((allocation.sum(axis=-1) - setting.capacity(n)).max())
    else:
        if set_weights is None or sets is None:
            raise ValueError(
                f"checking feasibility for {setting!r} needs the set weights and sets "
                "that certify it"
            )
        checks["a negative set weight"] = float(-set_weights.min())
        checks["set weights summing above 1"] = float((set_weights.sum(axis=-1) - 1.0).max())
        cover = set_weights @ np.asarray(sets, dtype=np.float64)
        checks["the cover of a bidder by its feasible sets"] = float((allocation - cover).max())
    what = max(checks, key=lambda name: checks[name])
    return max(0.0, checks[what]), what
