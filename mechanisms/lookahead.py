"""Ronen's 1-lookahead auction, for any prior, correlated included.

The highest reporter ``i*`` (lowest index among ties) is the only bidder who can be
served. Its price is the ``p`` that maximises ``p * Pr(theta_i* >= p | theta_-i* =
v_-i*, i* is the highest reporter)`` under the distribution the seller uses; it is
served if its report reaches that price. Under the tie rule "i* is the highest" means
``theta_i* >= v_j`` for higher-indexed and ``theta_i* > v_j`` for lower-indexed ``j``
(the paper writes ``>=`` throughout; the strict part only removes values at which i*
would not have been the candidate). The price never depends on ``i*``'s own
report, so the auction is dominant-strategy truthful, and it earns at least half the
optimal revenue (A. Ronen, "On approximating optimal auctions", EC 2001).

When the conditioning event has probability zero the price falls back to the highest
other report (``i*`` is then served at second price), which also ignores ``i*``'s report.
"""

from __future__ import annotations

import numpy as np

from crowdauction.errors import InvalidParameterError
from crowdauction.mechanisms.classical import (
    ClassicalMechanism,
    Outcome,
    Realised,
    _ranked,
    check_reports,
)
from crowdauction.mechanisms.prior import Prior

__all__ = ["lookahead_price", "Lookahead", "candidate_and_floor"]


def candidate_and_floor(reports: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate winner, highest other report, and whether the candidate must beat it.

    The candidate is the highest reporter, lowest index among ties. ``strict[b]`` is
    true when a lower-indexed bidder holds the highest other report: under the tie rule
    the candidate's value is then known to lie strictly above it.
    """
    order = _ranked(reports)
    B = reports.shape[0]
    rows = np.arange(B)
    star = order[:, 0]
    if reports.shape[1] == 1:
        return star, np.zeros(B), np.zeros(B, dtype=bool)
    floor = reports[rows, order[:, 1]].astype(np.float64)
    idx = np.arange(reports.shape[1])[None, :]
    strict = ((reports == floor[:, None]) & (idx < star[:, None])).any(axis=1)
    return star, floor, strict


def lookahead_price(
    weights: np.ndarray, grid: np.ndarray, floor: np.ndarray, strict: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Revenue-maximising take-it-or-leave-it price above a floor, batched.

    Args:
        weights: ``(B, K)`` non-negative (unnormalised) mass of each grid value of the
            candidate's value, given the others' reports.
        grid: ``(K,)`` the candidate's grid.
        floor: ``(B,)`` the highest other report; only values ``>= floor`` count.
        strict: ``(B,)`` where true, only values ``> floor`` count (the tie rule).

    Returns:
        ``(price, informed)``: the price (lowest among equally good ones) and whether
        the conditioning event had positive mass; where it had none, ``price = floor``.
    """
    g = np.asarray(grid, dtype=np.float64)
    above = g[None, :] >= floor[:, None]
    if strict is not None:
        above &= ~(strict[:, None] & (g[None, :] == floor[:, None]))
    w = np.where(above, weights, 0.0)
    # survival[k] = mass of values >= g[k] inside the event
    survival = np.cumsum(w[:, ::-1], axis=1)[:, ::-1]
    total = w.sum(axis=1)
    gain = np.where(above, g[None, :] * survival, -np.inf)
    best = np.argmax(gain, axis=1)  # first maximiser: the lowest price among ties
    informed = total > 0
    price = np.where(informed, g[best], floor)
    return price, informed


class Lookahead(ClassicalMechanism):
    """Ronen's 1-lookahead auction for a known prior (single good)."""

    name = "lookahead"

    def __init__(self, prior: Prior):
        super().__init__()
        if not isinstance(prior, Prior):
            raise InvalidParameterError(
                f"the 1-lookahead auction needs a Prior, got {type(prior).__name__}"
            )
        if prior.n < 2:
            raise InvalidParameterError(
                f"the 1-lookahead auction needs at least two bidders, got n={prior.n}"
            )
        self.prior = prior
        self.space = prior.space

    def outcome(self, reports: np.ndarray) -> Outcome:
        r = check_reports(reports, self.space.n)
        idx = self.space.indices_of(r)
        rf = r.astype(np.float64)
        B, n = rf.shape
        star, floor, strict = candidate_and_floor(rf)
        price = np.zeros(B)
        for i in range(n):
            rows = np.nonzero(star == i)[0]
            if rows.size == 0:
                continue
            t = np.moveaxis(self.prior.table, i, -1)
            others = tuple(idx[rows][:, j] for j in range(n) if j != i)
            w = t[others]  # (rows, K_i)
            price[rows], _ = lookahead_price(w, self.space.grids[i], floor[rows], strict[rows])
        alloc = np.zeros((B, n))
        sells = rf[np.arange(B), star] >= price
        alloc[np.arange(B), star] = sells
        pay = alloc * price[:, None]
        return Outcome(alloc, pay)

    def sample(self, reports: np.ndarray, rng: np.random.Generator) -> Realised:
        out = self.outcome(reports)  # deterministic
        return Realised(out.allocation > 0, out.payments.copy())
