"""Exact best responses over a finite type space.

A bidder's type is its knowledge cell. Against a fixed strategy profile of the other
bidders (a :class:`~crowdauction.mechanisms.exact.Strategy`), the best response picks,
in every cell, the valuation report and the belief report that maximise the bidder's
expected utility, computed exactly by enumeration with
:func:`~crowdauction.mechanisms.exact.evaluate`.

How it is computed:

* Belief reports. A belief report only changes the bidder's own scoring reward (in M
  the informant is not served; in L the asked bidders are not the candidate, and the
  price they help set is someone else's). So the best belief report in a cell is the
  one that maximises the expected score against ``G``: the distribution of the other
  bidders' *valuation reports* given the cell and given that the bidder is asked
  (in L, that it is not the candidate, which depends on its own valuation report).
  ``G`` is computed exactly from the prior, the cell and the others' strategies. For a
  strictly proper rule the optimum is ``G`` itself (for Brier the loss of reporting
  ``F`` is exactly ``||G - F||^2``). For any other rule a seeded search over the
  simplex runs (point masses, ``G``, uniform, Dirichlet draws, then projected gradient
  ascent); see :func:`optimal_belief`.
* Valuation reports. Evaluating the profile in which the bidder reports grid index
  ``k`` in *every* cell (with the best belief report for ``k``) yields every cell's
  utility of ``k`` at once, so ``K_i`` evaluations give the whole table
  ``U[k, c]``. The best ``(k, F)`` pair per cell is exact over pure reports, and a
  mixed report is never strictly better than the best pure one.

Tie rule: within :data:`TIE_TOLERANCE` of the best utility the truthful report is kept;
otherwise the lowest grid index among the (near-)best reports is chosen.

Two facts from the paper (Azar, Chen, Micali, "Crowdsourced Bayesian Auctions") that
the tests pin: against truthful opponents under M (and under L with ``eps`` below its
strictness margin) the best response is truthful in value and in belief; if the others
all report zero, the informant's best belief report is the point mass on the all-zero
profile, whatever it knows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from crowdauction.agents.base import Agent, TabularAgent
from crowdauction.envs.layout import EnvLayout
from crowdauction.errors import InvalidReportError
from crowdauction.mechanisms.crowdsourced import (
    CrowdsourcedMechanism,
    RandomInformant,
)
from crowdauction.mechanisms.exact import Mechanism, Strategy, evaluate
from crowdauction.mechanisms.knowledge import Knowledge
from crowdauction.mechanisms.scoring import ScoringRule

__all__ = [
    "TIE_TOLERANCE",
    "BestResponse",
    "BestResponseAgent",
    "best_beliefs_for_reports",
    "asked_probability",
    "report_weights",
    "optimal_belief",
    "best_response",
    "best_response_profile",
    "regret",
]

log = logging.getLogger(__name__)

#: Utilities within this absolute distance of the best count as ties (truthful kept).
TIE_TOLERANCE = 1e-10


def asked_probability(mech: Mechanism, reports: np.ndarray, bidder: int) -> np.ndarray:
    """Probability that ``bidder`` is asked for a belief report, per report profile.

    Args:
        mech: the mechanism.
        reports: valuation reports ``(B, n)`` (values on the grids).
        bidder: the bidder.

    Returns:
        ``(B,)``: ``1/n`` under M (a uniform informant, independent of reports), the
        indicator of not being the candidate under L, and zero for classical
        mechanisms, which ask nobody.
    """
    B = np.asarray(reports).shape[0]
    if isinstance(mech, RandomInformant):
        return np.full(B, 1.0 / mech.n)
    if isinstance(mech, CrowdsourcedMechanism):
        return mech.asks_belief(reports)[:, bidder].astype(np.float64)
    return np.zeros(B)


def _other_rows(
    knowledge: Knowledge, strategy: Strategy, bidder: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Profiles x the other bidders' valuation-report profiles, with positive weight.

    Returns ``(profile, report_idx, weight)``: flat profile numbers ``(R,)``, report
    grid indices ``(R, n)`` with ``bidder``'s column set to 0 (filled in by callers),
    and prior-times-strategy weights ``(R,)``.
    """
    n = knowledge.n
    p = knowledge.prior.table.ravel()
    profile = np.nonzero(p > 0)[0]
    weight = p[profile]
    report = np.zeros((profile.size, n), dtype=np.int64)
    for j in range(n):
        if j == bidder:
            continue
        sigma = strategy.valuation[j][knowledge.cells[j].ravel()[profile]]  # (R, K_j)
        r, k = np.nonzero(sigma > 0)
        weight = weight[r] * sigma[r, k]
        profile = profile[r]
        report = report[r]
        report[:, j] = k
    return profile, report, weight


def report_weights(
    knowledge: Knowledge,
    mech: Mechanism,
    strategy: Strategy,
    bidder: int,
    own_valuation: np.ndarray | None = None,
) -> np.ndarray:
    """Joint weight of (cell, others' valuation reports, being asked), per own report.

    Args:
        knowledge: prior and partitions.
        mech: the mechanism (decides who is asked).
        strategy: the profile; the other bidders' valuation strategies are used.
        bidder: the bidder ``i`` whose belief report is at stake.
        own_valuation: ``(C_i, K_i)`` the bidder's own valuation-report distribution
            per cell, or ``None`` for every pure report separately.

    Returns:
        With ``own_valuation=None``: ``(K_i, C_i, m_i)``, entry ``[k, c, w]`` the
        probability that the profile lies in cell ``c``, the others report the
        profile ``w`` (flat over the others' grids) and ``i`` is asked, when ``i``
        reports ``k`` in every cell. With ``own_valuation``: ``(C_i, m_i)``, the same
        averaged over the bidder's own reports. Normalising a row gives ``G``.
    """
    space = knowledge.space
    K = space.shape[bidder]
    C = knowledge.num_cells(bidder)
    m = space.others_size(bidder)
    profile, report, weight = _other_rows(knowledge, strategy, bidder)
    cell = knowledge.cells[bidder].ravel()[profile]
    w = space.others_flat_index(bidder, report)
    R = profile.size
    # Every row once per own report k: (K*R, n).
    rep = np.tile(report, (K, 1))
    rep[:, bidder] = np.repeat(np.arange(K), R)
    asked = asked_probability(mech, space.values_of(rep), bidder).reshape(K, R)
    out = np.zeros((K, C * m))
    flat = cell * m + w
    for k in range(K):
        out[k] = np.bincount(flat, weights=weight * asked[k], minlength=C * m)
    out = out.reshape(K, C, m)
    if own_valuation is None:
        return out
    own = np.asarray(own_valuation, dtype=np.float64)
    if own.shape != (C, K):
        raise InvalidReportError(
            f"own valuation strategy of bidder {bidder} has shape {own.shape}, expected {(C, K)}"
        )
    return np.einsum("ck,kcm->cm", own, out)


def _project_simplex(x: np.ndarray) -> np.ndarray:
    """Euclidean projection of rows of ``x`` onto the probability simplex."""
    m = x.shape[-1]
    u = np.sort(x, axis=-1)[..., ::-1]
    css = np.cumsum(u, axis=-1) - 1.0
    ind = np.arange(1, m + 1)
    cond = u - css / ind > 0
    rho = m - 1 - np.argmax(cond[..., ::-1], axis=-1)  # last index where cond holds
    theta = np.take_along_axis(css, rho[..., None], axis=-1) / (rho[..., None] + 1.0)
    return np.maximum(x - theta, 0.0)


def _expected(rule: ScoringRule, F: np.ndarray, G: np.ndarray) -> np.ndarray:
    """Expected score with NaN (from ``0 * -inf`` style corners) read as minus infinity."""
    with np.errstate(all="ignore"):
        v = rule.expected_score(F, G)
    return np.where(np.isnan(v), -np.inf, v)


def optimal_belief(
    rule: ScoringRule,
    G: np.ndarray,
    rng: np.random.Generator | None = None,
    n_random: int = 32,
    n_starts: int = 4,
    iters: int = 60,
) -> np.ndarray:
    """The belief report maximising the expected score when outcomes follow ``G``.

    Args:
        rule: the scoring rule.
        G: ``(B, m)`` distributions of the outcome.
        rng: generator for the Dirichlet candidates; default seeded with 0, so the
            result is reproducible.
        n_random: Dirichlet(1) candidates per row (improper rules only).
        n_starts: best candidates refined by projected gradient ascent.
        iters: gradient iterations per start.

    Returns:
        ``(B, m)``. For a strictly proper rule this is ``G`` (exact). Otherwise the best
        of: ``G`` first (so a tie keeps the truthful report), the point masses in
        index order, the uniform distribution and the Dirichlet draws, each of the
        ``n_starts`` best then refined by projected gradient ascent on a central
        finite-difference gradient with step halving. The search is exact for the
        linear rule (whose optimum is a point mass on a mode of ``G``) and a local
        search otherwise.
    """
    G = np.asarray(G, dtype=np.float64)
    if rule.strictly_proper:
        return G.copy()
    rng = np.random.default_rng(0) if rng is None else rng
    B, m = G.shape
    cands = np.concatenate(
        [
            G[:, None, :],
            np.broadcast_to(np.eye(m), (B, m, m)),
            np.full((B, 1, m), 1.0 / m),
            rng.dirichlet(np.ones(m), size=(B, n_random)),
        ],
        axis=1,
    )  # (B, N, m)
    N = cands.shape[1]
    val = _expected(rule, cands.reshape(B * N, m), np.repeat(G, N, axis=0)).reshape(B, N)
    order = np.argsort(-val, axis=1, kind="stable")[:, : min(n_starts, N)]
    best = cands[np.arange(B), order[:, 0]].copy()
    best_val = val[np.arange(B), order[:, 0]].copy()
    h = 1e-6
    for s in range(order.shape[1]):
        x = cands[np.arange(B), order[:, s]].copy()
        fx = val[np.arange(B), order[:, s]].copy()
        step = np.full(B, 0.5)
        for _ in range(iters):
            plus = x[:, None, :] + h * np.eye(m)[None]
            minus = x[:, None, :] - h * np.eye(m)[None]
            Gr = np.repeat(G, m, axis=0)
            fp = _expected(rule, plus.reshape(B * m, m), Gr).reshape(B, m)
            fm = _expected(rule, minus.reshape(B * m, m), Gr).reshape(B, m)
            grad = np.nan_to_num((fp - fm) / (2 * h), nan=0.0, posinf=0.0, neginf=0.0)
            y = _project_simplex(x + step[:, None] * grad)
            fy = _expected(rule, y, G)
            up = fy > fx
            x = np.where(up[:, None], y, x)
            fx = np.where(up, fy, fx)
            step = np.where(up, step, step / 2)
        better = fx > best_val + TIE_TOLERANCE
        best = np.where(better[:, None], x, best)
        best_val = np.where(better, fx, best_val)
    return best


@dataclass
class BestResponse:
    """One bidder's exact best response to a strategy profile.

    Attributes:
        bidder: the responding bidder.
        valuation: ``(C_i, K_i)`` one-hot: the best valuation report per cell.
        belief: ``(C_i, m_i)`` the best belief report per cell (given that report).
        utility_table: ``(K_i, C_i)`` expected utility in each cell of reporting ``k``
            there (with the best belief report for ``k``).
        utility_by_cell: ``(C_i,)`` expected utility of the best response per cell.
        utility: ex-ante expected utility of the best response.
    """

    bidder: int
    valuation: np.ndarray
    belief: np.ndarray
    utility_table: np.ndarray
    utility_by_cell: np.ndarray
    utility: float

    @property
    def report(self) -> np.ndarray:
        """``(C_i,)`` the best valuation report per cell, as a grid index."""
        return np.argmax(self.valuation, axis=1)


def _default_beliefs(knowledge: Knowledge, mech: Mechanism) -> list[np.ndarray]:
    if isinstance(mech, CrowdsourcedMechanism):
        return mech.truthful_beliefs(knowledge)
    return [b.copy() for b in knowledge.beliefs]


def best_beliefs_for_reports(
    knowledge: Knowledge,
    mech: Mechanism,
    strategy: Strategy,
    bidder: int,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Best belief report per own pure report and cell: ``(K_i, C_i, m_i)``.

    Cells in which the bidder is never asked keep the truthful belief (the report does
    not matter there).
    """
    W = report_weights(knowledge, mech, strategy, bidder)
    return _beliefs_from_weights(knowledge, mech, W, bidder, rng)


def _beliefs_from_weights(
    knowledge: Knowledge,
    mech: Mechanism,
    W: np.ndarray,
    bidder: int,
    rng: np.random.Generator | None,
) -> np.ndarray:
    """Optimal belief reports from joint weights ``(..., C_i, m_i)``."""
    default = _default_beliefs(knowledge, mech)[bidder]
    mass = W.sum(axis=-1, keepdims=True)
    G = np.where(mass > 0, W / np.where(mass > 0, mass, 1.0), default)
    if not isinstance(mech, CrowdsourcedMechanism):
        return np.broadcast_to(default, W.shape).copy()
    flatG = G.reshape(-1, G.shape[-1])
    F = optimal_belief(mech.scoring, flatG, rng).reshape(G.shape)
    return np.where(mass > 0, F, default)


def best_response(
    knowledge: Knowledge,
    mech: Mechanism,
    opponents: Strategy,
    bidder: int,
    rng: np.random.Generator | None = None,
) -> BestResponse:
    """The exact best response of ``bidder`` to the others' strategies in ``opponents``.

    Args:
        knowledge: prior and partitions.
        mech: any mechanism of the library.
        opponents: a full profile; ``bidder``'s own entries are ignored.
        bidder: the responding bidder.
        rng: generator for the simplex search (improper scoring rules only).

    Returns:
        A :class:`BestResponse`; ``K_i`` calls of :func:`evaluate`.
    """
    if not 0 <= bidder < knowledge.n:
        raise InvalidReportError(f"bidder must lie in 0..{knowledge.n - 1}, got {bidder}")
    K = knowledge.space.shape[bidder]
    C = knowledge.num_cells(bidder)
    beliefs = best_beliefs_for_reports(knowledge, mech, opponents, bidder, rng)  # (K, C, m)
    U = np.zeros((K, C))
    for k in range(K):
        s = opponents.copy()
        s.valuation[bidder] = np.zeros((C, K))
        s.valuation[bidder][:, k] = 1.0
        s.belief[bidder] = beliefs[k]
        U[k] = evaluate(mech, knowledge, s).utility_by_cell[bidder]
    truth = knowledge.cell_value[bidder]
    top = U.max(axis=0)
    near = U >= top[None, :] - TIE_TOLERANCE
    first = np.argmax(near, axis=0)  # lowest index among near-best
    choice = np.where(near[truth, np.arange(C)], truth, first)
    val = np.zeros((C, K))
    val[np.arange(C), choice] = 1.0
    bel = beliefs[choice, np.arange(C)]
    by_cell = U[choice, np.arange(C)]
    return BestResponse(
        bidder=bidder,
        valuation=val,
        belief=bel,
        utility_table=U,
        utility_by_cell=by_cell,
        utility=float(knowledge.cell_prob[bidder] @ by_cell),
    )


def best_response_profile(
    knowledge: Knowledge,
    mech: Mechanism,
    opponents: Strategy,
    bidders: Sequence[int] | None = None,
) -> Strategy:
    """``opponents`` with each listed bidder replaced by its best response to it."""
    out = opponents.copy()
    for i in range(knowledge.n) if bidders is None else bidders:
        br = best_response(knowledge, mech, opponents, i)
        out.valuation[i] = br.valuation
        out.belief[i] = br.belief
    return out


def regret(
    knowledge: Knowledge, mech: Mechanism, strategy: Strategy, bidder: int
) -> tuple[float, np.ndarray]:
    """How much ``bidder`` gains by best-responding instead of playing ``strategy``.

    Returns:
        ``(ex_ante_gain, gain_by_cell (C_i,))``, both >= 0 up to rounding.
    """
    current = evaluate(mech, knowledge, strategy).utility_by_cell[bidder]
    br = best_response(knowledge, mech, strategy, bidder)
    gain = br.utility_by_cell - current
    return float(knowledge.cell_prob[bidder] @ gain), gain


class BestResponseAgent(TabularAgent):
    """Plays the exact best response of ``bidder`` to fixed opponents.

    Args:
        knowledge: prior and partitions (the env's).
        mech: the mechanism.
        bidder: the responding bidder.
        opponents: the others' play: a :class:`Strategy`, or one agent per bidder (the
            entry for ``bidder`` is ignored and may be ``None``); default truthful.
        layout: the env layout; default ``EnvLayout(knowledge.space)``.
        rng: generator for the simplex search (improper scoring rules only).

    Attributes:
        response: the :class:`BestResponse` it plays.
    """

    name = "best_response"

    def __init__(
        self,
        knowledge: Knowledge,
        mech: Mechanism,
        bidder: int,
        opponents: Strategy | Sequence[Agent | None] | None = None,
        layout: EnvLayout | None = None,
        rng: np.random.Generator | None = None,
    ):
        if opponents is None:
            profile = Strategy.truthful(knowledge, mech)
        elif isinstance(opponents, Strategy):
            profile = opponents
        else:
            profile = Strategy.truthful(knowledge, mech)
            if len(opponents) != knowledge.n:
                raise InvalidReportError(
                    f"got {len(opponents)} opponent agents for {knowledge.n} bidders; "
                    "give one per bidder"
                )
            for j, agent in enumerate(opponents):
                if j != bidder and agent is not None:
                    profile.valuation[j], profile.belief[j] = agent.strategy_for(knowledge, j, mech)
        self.response = best_response(knowledge, mech, profile, bidder, rng)
        super().__init__(
            knowledge, mech, bidder, self.response.valuation, self.response.belief, layout
        )
