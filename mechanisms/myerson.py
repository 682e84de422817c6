"""Myerson's optimal auction for independent priors, on discrete grids.

Myerson ("Optimal Auction Design", 1981) showed that with independent values the
expected revenue of any truthful auction equals the expected *virtual surplus* of the
winners, so the optimal auction serves the bidders of highest (ironed) virtual value,
among those whose virtual value is not negative. This module holds the discrete version:

* virtual value of grid value ``v_k`` with probability ``f_k`` and ``q_{k+1} = P(V > v_k)``:
  ``phi_k = v_k - (v_{k+1} - v_k) q_{k+1} / f_k``. It is the slope of the *revenue curve*
  ``R(q_k) = v_k q_k`` (posting price ``v_k`` sells with probability ``q_k = P(V >= v_k)``)
  between quantiles ``q_{k+1}`` and ``q_k``;
* ironing: when those slopes are not monotone, replace ``R`` by its concave envelope; the
  ironed virtual value of ``v_k`` is the envelope's slope over ``[q_{k+1}, q_k]``, and
  values on a flat stretch of the envelope share one ironed value (they are pooled);
* the monopoly reserve ``argmax_p p P(V >= p)`` and second price with those reserves,
  the standard simple baseline.

Conventions, used everywhere below:

* A grid value of probability zero has raw virtual value ``-inf`` if some higher value
  has positive probability (the limit as its mass goes to zero), and ``v_k`` if none has
  (above the support, like the top value). Its ironed virtual value is that of the
  nearest lower value of positive probability, or ``-inf`` below the whole support:
  serving such a type more than the type below it only lowers revenue.
* A bidder whose ironed virtual value is exactly 0 is served when a unit is left for it
  (as a report exactly at a reserve sells). For one bidder this posts the *lowest* of
  the optimal prices, matching :func:`monopoly_reserve`.
* Ironed virtual values are rounded to a grid of ``1e-9 * max(1, top value of any
  bidder)`` before
  they are compared, so that values equal in exact arithmetic compare equal despite
  floating-point noise; ties then go to the lowest bidder index.
"""

from __future__ import annotations

import warnings

import numpy as np

from crowdauction.errors import InvalidPriorError
from crowdauction.mechanisms.classical import SecondPrice, TableMechanism, payments_from_allocation
from crowdauction.mechanisms.prior import SUM_TOLERANCE, Prior
from crowdauction.mechanisms.typespace import Setting, SingleGood

__all__ = [
    "monopoly_reserve",
    "monopoly_reserves",
    "second_price_monopoly_reserves",
    "virtual_values",
    "ironed_virtual_values",
    "revenue_curve",
    "myerson",
    "myerson_revenue",
    "RELATIVE_TOLERANCE",
]

#: Ties in revenue and virtual value are judged on this scale, relative to the grid.
RELATIVE_TOLERANCE = 1e-9


def _check_marginal(marginal: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate a marginal distribution over a value grid; return both as float arrays."""
    m = np.asarray(marginal, dtype=np.float64)
    g = np.asarray(grid)
    if g.ndim != 1 or g.size == 0 or np.any(np.diff(g) <= 0):
        raise InvalidPriorError(
            f"the value grid must be a non-empty strictly increasing list, got {g.tolist()}"
        )
    if g.dtype.kind not in "iuf" or np.any(g != np.round(g)) or np.any(g < 0):
        raise InvalidPriorError(
            f"grid values must be non-negative integers, as on a TypeSpace, got {g.tolist()}"
        )
    if m.shape != g.shape:
        raise InvalidPriorError(
            f"marginal has shape {m.shape} but the grid has {g.size} values; give one "
            "probability per grid value"
        )
    if not np.all(np.isfinite(m)) or np.any(m < 0):
        raise InvalidPriorError(f"marginal must hold non-negative probabilities, got {m.tolist()}")
    if abs(float(m.sum()) - 1.0) > SUM_TOLERANCE:
        raise InvalidPriorError(
            f"marginal sums to {float(m.sum())!r}, expected 1; divide it by its sum"
        )
    return m, g.astype(np.float64)


def _tail(m: np.ndarray) -> np.ndarray:
    """``q_k = P(V >= v_k)`` for every grid index."""
    return np.cumsum(m[::-1])[::-1]


def _scale(grid: np.ndarray) -> float:
    return RELATIVE_TOLERANCE * max(1.0, float(np.max(np.abs(grid))))


def revenue_curve(marginal: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quantiles ``q_k = P(V >= v_k)`` and revenues ``v_k q_k`` of posting each grid price."""
    m, g = _check_marginal(marginal, grid)
    q = _tail(m)
    return q, g * q


def monopoly_reserve(marginal: np.ndarray, grid: np.ndarray) -> int:
    """The revenue-maximal posted price for one bidder: ``argmax_p p P(V >= p)``.

    Prices range over the grid values. Among prices whose revenue is within
    :data:`RELATIVE_TOLERANCE` (relative to the top value) of the best, the lowest wins.

    Args:
        marginal: probabilities over ``grid``.
        grid: strictly increasing values.

    Returns:
        The price, a value of ``grid``.
    """
    q, rev = revenue_curve(marginal, grid)
    best = float(rev.max())
    k = int(np.argmax(rev >= best - _scale(np.asarray(grid, dtype=np.float64))))
    return int(np.asarray(grid)[k])


def monopoly_reserves(prior: Prior) -> np.ndarray:
    """Each bidder's monopoly reserve under its own marginal, shape ``(n,)``."""
    return np.array(
        [monopoly_reserve(prior.marginal(i), prior.grids[i]) for i in range(prior.n)],
        dtype=np.int64,
    )


def second_price_monopoly_reserves(prior: Prior, setting: Setting | None = None) -> SecondPrice:
    """Second price with personalised monopoly reserves from the prior's marginals."""
    return SecondPrice(reserve=monopoly_reserves(prior).astype(np.float64), setting=setting)


def virtual_values(marginal: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Discrete virtual values ``phi_k = v_k - (v_{k+1} - v_k) P(V > v_k) / P(V = v_k)``.

    The top value has ``phi = v_top`` (nobody is above it). A value of probability zero
    has ``-inf`` when higher values carry mass, and its own value when they do not.

    Args:
        marginal: probabilities over ``grid``.
        grid: strictly increasing values.

    Returns:
        ``(K,)`` virtual values, not necessarily monotone.
    """
    m, g = _check_marginal(marginal, grid)
    above = np.append(_tail(m)[1:], 0.0)
    gaps = np.append(np.diff(g), 0.0)
    rent = gaps * above
    with np.errstate(divide="ignore", invalid="ignore"):
        phi = g - rent / np.where(m > 0, m, 1.0)
    return np.where(m > 0, phi, np.where(above > 0, -np.inf, g))


def ironed_virtual_values(marginal: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Ironed virtual values: slopes of the concave envelope of the revenue curve.

    The revenue curve has points ``(q_k, v_k q_k)`` and ``(0, 0)`` in quantile space. The
    ironed value of a grid value of positive probability is the slope of the envelope
    over its quantile interval ``[q_{k+1}, q_k]``; the conventions for values of
    probability zero are in the module docstring. The result is non-decreasing in the
    grid value. When every grid value has positive probability and
    :func:`virtual_values` is already non-decreasing, the two agree. A value of
    probability zero is pooled with the value below it, so the ironed value of that
    lower value can drop below its raw one (the pool pays the zero-mass value's rent).

    Args:
        marginal: probabilities over ``grid``.
        grid: strictly increasing values.

    Returns:
        ``(K,)`` non-decreasing ironed virtual values (``-inf`` below the support).
    """
    m, g = _check_marginal(marginal, grid)
    q = _tail(m)
    # Points in increasing quantile: (0, 0), then the prices from the top value down.
    # Equal quantiles (zero-mass values) keep the highest revenue, the higher price.
    qs = np.concatenate([[0.0], q[::-1]])
    rs = np.concatenate([[0.0], (g * q)[::-1]])
    hull_q: list[float] = []
    hull_r: list[float] = []
    for x, y in zip(qs.tolist(), rs.tolist()):
        if hull_q and x == hull_q[-1]:
            if y <= hull_r[-1]:
                continue
            hull_q.pop()
            hull_r.pop()
        # Pop the last vertex while it lies on or below the chord to the new point.
        while len(hull_q) >= 2:
            ox, oy, ax, ay = hull_q[-2], hull_r[-2], hull_q[-1], hull_r[-1]
            if (ax - ox) * (y - oy) - (ay - oy) * (x - ox) >= 0:
                hull_q.pop()
                hull_r.pop()
            else:
                break
        hull_q.append(x)
        hull_r.append(y)
    hq = np.array(hull_q)
    hr = np.array(hull_r)
    slopes = np.diff(hr) / np.diff(hq)
    above = np.append(q[1:], 0.0)
    mid = 0.5 * (q + above)
    seg = np.clip(np.searchsorted(hq, mid) - 1, 0, max(slopes.size - 1, 0))
    ironed = np.full(g.size, -np.inf)
    pos = m > 0
    ironed[pos] = slopes[seg[pos]]
    # Zero-mass values copy the nearest lower value with mass (-inf below the support).
    last = np.maximum.accumulate(np.where(pos, np.arange(g.size), -1))
    has_lower = last >= 0
    ironed[has_lower] = ironed[last[has_lower]]
    return ironed


def _snap(phi: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Round finite values to the comparison grid so equal values compare equal."""
    step = _scale(np.asarray(grid, dtype=np.float64))
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(phi), np.round(phi / step) * step, phi)


def myerson(prior: Prior, setting: Setting | None = None) -> TableMechanism:
    """Myerson's optimal auction for the prior's marginals.

    Each profile serves, by ironed virtual value from the highest, the bidders whose
    ironed virtual value is at least 0, as many as the setting allows (ties to the lowest
    index). For a setting other than k units, it serves the maximal feasible set with
    the largest total of non-negative ironed virtual values (ties to the set listed
    first) and, within it, the bidders with ironed value at least 0. The allocation is
    non-decreasing in each bidder's own report, and payments are the truthful ones of
    :func:`~crowdauction.mechanisms.classical.payments_from_allocation`, so the result
    is DST and IR on the whole grid. It is revenue-optimal when the prior is independent.

    Args:
        prior: the prior; only its marginals are used.
        setting: which bidder sets can be served together; single good by default.

    Returns:
        A table mechanism named ``"myerson"``.

    Warns:
        UserWarning: if the prior is correlated. The mechanism is still truthful, but
            built from the marginals it is no longer optimal.
    """
    setting = SingleGood() if setting is None else setting
    if not prior.is_independent():
        warnings.warn(
            "myerson() got a correlated prior; it uses the marginals only, so the auction "
            "is truthful but not optimal. Use optimal_mechanism() for correlated priors.",
            UserWarning,
            stacklevel=2,
        )
    space = prior.space
    n = space.n
    idx = space.profile_indices  # (N, n)
    phi = np.empty(idx.shape)
    for i in range(n):
        ivv = _snap(ironed_virtual_values(prior.marginal(i), prior.grids[i]), space.all_values)
        phi[:, i] = ivv[idx[:, i]]
    eligible = phi >= 0
    rows = np.arange(idx.shape[0])
    alloc = np.zeros(idx.shape)
    if setting.is_unit_cap():
        k = setting.capacity(n)
        # A stable sort of the negated values keeps lower indices first among ties.
        order = np.argsort(-phi, axis=1, kind="stable")[:, :k]
        alloc[rows[:, None], order] = eligible[rows[:, None], order]
    else:
        sets = np.asarray(setting.feasible_sets(n), dtype=np.int64)
        # Whole multiples of the comparison step: exact sums keep the choice monotone.
        units = np.rint(np.where(eligible, phi, 0.0) / _scale(space.all_values))
        weight = units.astype(np.int64) @ sets.T
        choice = np.argmax(weight, axis=1)  # first maximum: the set listed first
        alloc = sets[choice] * eligible
    alloc = alloc.reshape((*space.shape, n))
    return TableMechanism(
        space,
        alloc,
        payments_from_allocation(alloc, space),
        name="myerson",
        setting=setting,
    )


def myerson_revenue(prior: Prior, setting: Setting | None = None) -> float:
    """Expected revenue of :func:`myerson` under ``prior`` itself.

    The expectation is over the joint prior, not the product of its marginals, so it is
    the true revenue even when the prior is correlated (and :func:`myerson` warns).
    """
    return prior.expect(myerson(prior, setting).pay_table.sum(axis=-1))
