"""Exact expectations over a finite type space, by vectorised enumeration.

A bidder's *type* is its knowledge cell (which fixes its value and its belief). A
:class:`Strategy` says, for every bidder and cell, the distribution of its valuation
report over its grid and the belief report it makes when asked. :func:`evaluate`
enumerates every profile of the prior and every valuation-report profile the strategy
can produce, calls the mechanism once on the whole batch, and returns expected
revenue, welfare and each bidder's expected utility (also per cell, ex interim).

The mechanism's own coins (informant, lottery, randomised allocation) are averaged
exactly by the mechanisms' ``outcome`` methods.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from crowdauction.errors import InvalidReportError
from crowdauction.mechanisms.classical import ClassicalMechanism, Outcome
from crowdauction.mechanisms.crowdsourced import CrowdsourcedMechanism
from crowdauction.mechanisms.knowledge import Knowledge

__all__ = ["Strategy", "ExactResult", "evaluate", "mechanism_outcome", "Mechanism"]

Mechanism = ClassicalMechanism | CrowdsourcedMechanism


def mechanism_outcome(
    mech: Mechanism, reports: np.ndarray, beliefs: Sequence[np.ndarray | None] | None = None
) -> Outcome:
    """Exact outcome of any mechanism; classical ones ignore belief reports."""
    if isinstance(mech, CrowdsourcedMechanism):
        if beliefs is None:
            raise InvalidReportError(f"{mech.name} needs belief reports")
        return mech.outcome(reports, beliefs)
    return mech.outcome(reports)


@dataclass
class Strategy:
    """Per bidder and cell: valuation-report distribution and belief report.

    Attributes:
        valuation: per bidder ``(C_i, K_i)``, row ``c`` the distribution of the
            valuation report (over grid indices) in cell ``c``.
        belief: per bidder ``(C_i, m_i)``, the belief report in cell ``c``.
    """

    valuation: list[np.ndarray]
    belief: list[np.ndarray]

    @classmethod
    def truthful(cls, knowledge: Knowledge, mech: Mechanism | None = None) -> Strategy:
        """Report the true value in every cell, and the true belief when asked.

        The true belief is the cell's belief updated on what ``mech`` reveals by asking
        (see :meth:`CrowdsourcedMechanism.truthful_beliefs`); without a crowdsourced
        ``mech`` it is the cell's belief.
        """
        val = []
        for i in range(knowledge.n):
            m = np.zeros((knowledge.num_cells(i), knowledge.space.shape[i]))
            m[np.arange(m.shape[0]), knowledge.cell_value[i]] = 1.0
            val.append(m)
        if isinstance(mech, CrowdsourcedMechanism):
            beliefs = mech.truthful_beliefs(knowledge)
        else:
            beliefs = [b.copy() for b in knowledge.beliefs]
        return cls(val, beliefs)

    @classmethod
    def from_maps(
        cls,
        knowledge: Knowledge,
        value_map: Callable[[int, int, int], int] | None = None,
        belief_map: Callable[[int, int, np.ndarray], np.ndarray] | None = None,
        mech: Mechanism | None = None,
    ) -> Strategy:
        """Pure strategies from maps.

        Args:
            value_map: ``(bidder, cell, true value) -> reported value``; default truthful.
            belief_map: ``(bidder, cell, true belief) -> belief report``; default truthful.
        """
        s = cls.truthful(knowledge, mech)
        for i in range(knowledge.n):
            g = knowledge.space.grids[i]
            for c in range(knowledge.num_cells(i)):
                if value_map is not None:
                    v = int(value_map(i, c, int(g[knowledge.cell_value[i][c]])))
                    k = int(np.searchsorted(g, v))
                    if k >= len(g) or g[k] != v:
                        raise InvalidReportError(f"value map sends bidder {i} to {v}, not on its grid {g.tolist()}")
                    s.valuation[i][c] = 0.0
                    s.valuation[i][c, k] = 1.0
                if belief_map is not None:
                    s.belief[i][c] = np.asarray(belief_map(i, c, knowledge.beliefs[i][c]), dtype=np.float64)
        return s

    def copy(self) -> Strategy:
        return Strategy([v.copy() for v in self.valuation], [b.copy() for b in self.belief])


@dataclass
class ExactResult:
    """Exact expectations of one strategy profile under one mechanism and prior."""

    revenue: float
    welfare: float
    utility: np.ndarray  # (n,)
    utility_by_cell: list[np.ndarray]  # per bidder (C_i,): E[u_i | cell]
    min_utility: float  # smallest expected utility of any bidder in any reached profile


def _rows(knowledge: Knowledge, strategy: Strategy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Profiles x valuation-report profiles with positive weight.

    Returns ``(profile, report_idx, weight)``: flat profile numbers ``(R,)``, report
    grid indices ``(R, n)`` and prior-times-strategy weights ``(R,)``.
    """
    space = knowledge.space
    n = space.n
    prof = space.profile_indices
    p = knowledge.prior.table.ravel()
    live = np.nonzero(p > 0)[0]
    profile = live
    report = np.zeros((live.size, 0), dtype=np.int64)
    weight = p[live]
    for i in range(n):
        sigma = strategy.valuation[i][knowledge.cells[i].ravel()[profile]]  # (R, K_i)
        r_i, k_i = np.nonzero(sigma > 0)
        weight = weight[r_i] * sigma[r_i, k_i]
        profile = profile[r_i]
        report = np.concatenate([report[r_i], k_i[:, None]], axis=1)
    return profile, report, weight


def evaluate(mech: Mechanism, knowledge: Knowledge, strategy: Strategy | None = None) -> ExactResult:
    """Exact expected revenue, welfare and utilities of a strategy profile.

    Args:
        mech: any classical or crowdsourced mechanism of the library.
        knowledge: the prior and every bidder's knowledge partition.
        strategy: default truthful (:meth:`Strategy.truthful` for ``mech``).
    """
    if strategy is None:
        strategy = Strategy.truthful(knowledge, mech)
    space = knowledge.space
    n = space.n
    for i in range(n):
        want = (knowledge.num_cells(i), space.shape[i])
        if strategy.valuation[i].shape != want:
            raise InvalidReportError(f"valuation strategy of bidder {i} has shape {strategy.valuation[i].shape}, expected {want}")
    profile, report, weight = _rows(knowledge, strategy)
    prof_idx = space.profile_indices[profile]
    values = space.values_of(prof_idx).astype(np.float64)
    reports = space.values_of(report)
    beliefs = [strategy.belief[i][knowledge.cells[i].ravel()[profile]] for i in range(n)]
    out = mechanism_outcome(mech, reports, beliefs)
    util = out.utilities(values)
    utility = weight @ util
    by_cell = []
    for i in range(n):
        cells = knowledge.cells[i].ravel()[profile]
        num = np.bincount(cells, weights=weight * util[:, i], minlength=knowledge.num_cells(i))
        den = knowledge.cell_prob[i]
        by_cell.append(np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0))
    return ExactResult(
        revenue=float(weight @ out.revenue),
        welfare=float(weight @ out.welfare(values)),
        utility=utility,
        utility_by_cell=by_cell,
        min_utility=float(util.min()) if util.size else 0.0,
    )
