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
from crowdauction.mechanisms.scoring import SIMPLEX_TOLERANCE

__all__ = [
    "Strategy",
    "ExactResult",
    "evaluate",
    "mechanism_outcome",
    "Mechanism",
    "check_tables",
    "check_strategy",
]

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


def _check_rows(table: np.ndarray, what: str, bidder: int, index: str) -> None:
    """Every row of ``table`` ``(C, m)`` must be a distribution; name the first bad row."""
    total = table.sum(axis=1)
    # Fast path (evaluate runs in best-response loops): rows summing to 1 with no entry
    # below -1e-12 hold no NaN or infinity either, since any would spoil the sum.
    if table.size and np.all(np.abs(total - 1.0) <= SIMPLEX_TOLERANCE) and table.min() >= -1e-12:
        return
    bad = ~np.isfinite(table)
    if np.any(bad):
        c, k = (int(x) for x in np.argwhere(bad)[0])
        raise InvalidReportError(
            f"{what} row of bidder {bidder}, cell {c} holds {float(table[c, k])!r} at {index} {k}; "
            "every entry must be a finite probability"
        )
    neg = table < -1e-12  # the same slack as scoring.check_distribution
    if np.any(neg):
        c, k = (int(x) for x in np.argwhere(neg)[0])
        raise InvalidReportError(
            f"{what} row of bidder {bidder}, cell {c} holds {table[c, k]:.6g} at {index} {k}; "
            "probabilities must be >= 0"
        )
    off = ~(np.abs(total - 1.0) <= SIMPLEX_TOLERANCE)
    if np.any(off):
        c = int(np.argmax(off))
        raise InvalidReportError(
            f"{what} row of bidder {bidder}, cell {c} sums to {total[c]:.6g}, expected 1 "
            f"within {SIMPLEX_TOLERANCE:g}; normalise it"
        )


def check_tables(
    valuation: np.ndarray,
    belief: np.ndarray,
    bidder: int,
    shape_val: tuple[int, int],
    shape_bel: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Validate one bidder's report tables; return them as float arrays.

    Args:
        valuation: ``(C_i, K_i)``: in each knowledge cell, the distribution of the
            valuation report over the bidder's grid indices.
        belief: ``(C_i, m_i)``: in each cell, the belief report (a distribution).
        bidder: the bidder, for the messages.
        shape_val, shape_bel: the expected shapes.

    Raises:
        InvalidReportError: naming the bidder and the first bad cell.
    """
    try:
        valuation = np.asarray(valuation, dtype=np.float64)
        belief = np.asarray(belief, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InvalidReportError(f"report tables of bidder {bidder} must be numbers: {e}") from e
    if valuation.shape != shape_val:
        raise InvalidReportError(
            f"valuation table of bidder {bidder} has shape {valuation.shape}, expected "
            f"{shape_val}: one row per knowledge cell, one entry per grid value"
        )
    if belief.shape != shape_bel:
        raise InvalidReportError(
            f"belief table of bidder {bidder} has shape {belief.shape}, expected {shape_bel}: "
            "one row per knowledge cell, one entry per profile the report is about"
        )
    _check_rows(valuation, "valuation", bidder, "grid index")
    _check_rows(belief, "belief", bidder, "profile")
    return valuation, belief


def check_same_space(mech: Mechanism | None, knowledge: Knowledge) -> None:
    """Raise :class:`InvalidReportError` if ``mech`` was built on another type space."""
    own = getattr(mech, "space", None)
    if own is not None and own != knowledge.space:
        raise InvalidReportError(
            f"mechanism and knowledge live on different type spaces: {own!r} vs "
            f"{knowledge.space!r}; build both on one TypeSpace"
        )


def check_strategy(mech: Mechanism | None, knowledge: Knowledge, strategy: Strategy) -> None:
    """Raise :class:`InvalidReportError` unless ``strategy`` fits ``knowledge`` and ``mech``.

    Per bidder the valuation table must be ``(C_i, K_i)`` and the belief table ``(C_i,
    m_i)`` (``m_i = mech.belief_size(i)`` for a crowdsourced mechanism, the others'
    profile count otherwise), every row a distribution; and a mechanism built on a type
    space must be built on the knowledge's.
    """
    check_same_space(mech, knowledge)
    space = knowledge.space
    n = space.n
    if not isinstance(strategy, Strategy):
        raise InvalidReportError(f"strategy must be a Strategy, got {type(strategy).__name__}")
    if len(strategy.valuation) != n or len(strategy.belief) != n:
        raise InvalidReportError(
            f"strategy has {len(strategy.valuation)} valuation and {len(strategy.belief)} "
            f"belief tables for {n} bidders; give one of each per bidder"
        )
    for i in range(n):
        C = knowledge.num_cells(i)
        m = mech.belief_size(i) if isinstance(mech, CrowdsourcedMechanism) else space.others_size(i)
        check_tables(strategy.valuation[i], strategy.belief[i], i, (C, space.shape[i]), (C, m))


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
            check_same_space(mech, knowledge)
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

        Raises:
            InvalidReportError: if the value map reports a value off the bidder's grid
                (``1.5`` is refused, not rounded) or the belief map a report that is not
                a distribution of the right length.
        """
        s = cls.truthful(knowledge, mech)
        for i in range(knowledge.n):
            g = knowledge.space.grids[i]
            for c in range(knowledge.num_cells(i)):
                if value_map is not None:
                    true = int(g[knowledge.cell_value[i][c]])
                    v = value_map(i, c, true)
                    # An off-grid report is refused, not rounded: 1.5 is not "1".
                    on_grid = isinstance(v, (int, float, np.integer, np.floating)) and not (
                        isinstance(v, (bool, np.bool_))
                    )
                    k = int(np.searchsorted(g, v)) if on_grid else len(g)
                    if k >= len(g) or g[k] != v:
                        raise InvalidReportError(
                            f"value map sends bidder {i} (cell {c}, value {true}) to {v!r}, "
                            f"not on its grid {g.tolist()}"
                        )
                    s.valuation[i][c] = 0.0
                    s.valuation[i][c, k] = 1.0
                if belief_map is not None:
                    F = np.asarray(belief_map(i, c, knowledge.beliefs[i][c]), dtype=np.float64)
                    if F.shape != s.belief[i][c].shape:
                        raise InvalidReportError(
                            f"belief map gives bidder {i}, cell {c} a report of shape {F.shape}, "
                            f"expected {s.belief[i][c].shape}"
                        )
                    s.belief[i][c] = F
        if belief_map is not None:
            for i in range(knowledge.n):
                _check_rows(s.belief[i], "belief", i, "profile")
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


def evaluate(
    mech: Mechanism, knowledge: Knowledge, strategy: Strategy | None = None
) -> ExactResult:
    """Exact expected revenue, welfare and utilities of a strategy profile.

    Args:
        mech: any classical or crowdsourced mechanism of the library.
        knowledge: the prior and every bidder's knowledge partition.
        strategy: default truthful (:meth:`Strategy.truthful` for ``mech``).

    Raises:
        InvalidReportError: if the strategy's tables are misshaped or not distributions,
            or if ``mech`` was built on another type space (see :func:`check_strategy`).
    """
    check_same_space(mech, knowledge)
    if strategy is None:
        strategy = Strategy.truthful(knowledge, mech)
    check_strategy(mech, knowledge, strategy)
    space = knowledge.space
    n = space.n
    strategy = Strategy(
        [np.asarray(v, dtype=np.float64) for v in strategy.valuation],
        [np.asarray(b, dtype=np.float64) for b in strategy.belief],
    )
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
