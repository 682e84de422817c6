"""Exact incentive checks over a finite type space.

Three questions, each answered by enumeration rather than by sampling play:

* **Valuation step (dominance).** Can any bidder gain by misreporting its value, for
  some report profile of the others? For a classical mechanism this is
  :func:`~crowdauction.mechanisms.classical.dst_violation` over every profile. A
  crowdsourced mechanism also depends on belief reports, which range over a continuum;
  it is checked for a finite set of belief reports: the truthful beliefs that occur
  under the prior plus a seeded set of arbitrary ones (Dirichlet draws, point masses,
  the uniform distribution). With every belief report held fixed the mechanism is a
  classical one, and ``dst_violation`` runs on it. For M the informant is fixed too
  (it is drawn before anybody reports), so the check says that the inner auction is
  truthful whatever the informant announced.
* **Belief step.** Given truthful valuation reports, how much can a bidder gain in a
  knowledge cell by misreporting its belief? The outcome it is scored on is the others'
  profile given the cell and given that it is asked; this distribution is computed here
  from the mechanism's ``asks_belief`` and compared with the mechanism's own
  ``truthful_beliefs``. For Brier's rule the answer is closed form (reporting ``F``
  when the outcome follows ``G`` loses ``||G - F||^2`` times the reward scale, so the
  best report is ``G``); for other rules a seeded search over candidate reports.
* **Agent profile.** For a given strategy profile (e.g. learned agents), each bidder's
  exact utility loss against its best response, ex interim per knowledge cell, its
  truthfulness rate and the distance of its belief reports from the truthful ones.

A belief report affects its reporter's own utility only through its scoring reward
(M's informant is not served; in L a non-candidate's belief only prices the
candidate), which is what makes the belief step a question about the scoring rule.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from crowdauction.agents.best_response import regret
from crowdauction.errors import InvalidConfigError
from crowdauction.mechanisms.classical import ClassicalMechanism, Outcome, dst_violation
from crowdauction.mechanisms.crowdsourced import (
    CrowdsourcedLookahead,
    CrowdsourcedMechanism,
    RandomInformant,
)
from crowdauction.mechanisms.exact import Mechanism, Strategy, evaluate
from crowdauction.mechanisms.knowledge import Knowledge
from crowdauction.mechanisms.scoring import Brier, ScoringRule
from crowdauction.mechanisms.typespace import TypeSpace

__all__ = [
    "ZERO_GAIN_TOLERANCE",
    "BeliefSet",
    "ValuationCheck",
    "BeliefCheck",
    "ProfileCheck",
    "Verification",
    "belief_candidates",
    "valuation_check",
    "misreport_min_loss",
    "belief_outcome_distribution",
    "belief_reward_scale",
    "belief_check",
    "profile_check",
    "verify",
]

logger = logging.getLogger(__name__)

#: A gain at or below this is "no gain": the floating-point noise of exact expectations.
ZERO_GAIN_TOLERANCE = 1e-9

# Candidate belief reports of the belief-step search: Dirichlet concentrations tried.
_SEARCH_CONCENTRATIONS = (0.2, 1.0, 5.0)
# Powers applied to the truth (then renormalised): sharpened and flattened variants.
_SEARCH_POWERS = (0.25, 0.5, 2.0, 4.0, 16.0)
# Mixing weights towards the likeliest outcome's point mass.
_SEARCH_MIXES = (0.1, 0.3, 0.6, 0.9)
# Uniform mass mixed into point-mass belief reports for rules unbounded below.
_POINT_SMOOTHING = 1e-3


# -- belief reports to check dominance against ----------------------------------------


@dataclass
class BeliefSet:
    """Candidate belief reports of one bidder.

    Attributes:
        reports: ``(S, m)`` distributions over the others' profiles.
        labels: one short label per report (``truthful cell 3``, ``dirichlet 1``, ...).
    """

    reports: np.ndarray
    labels: list[str]


def belief_candidates(
    m: int,
    rng: np.random.Generator,
    truthful: np.ndarray | None = None,
    n_dirichlet: int = 4,
    n_point: int = 3,
    smooth_points: bool = False,
) -> BeliefSet:
    """Truthful beliefs plus seeded arbitrary ones, for a report over ``m`` outcomes.

    Args:
        m: number of outcomes (the others' profiles).
        rng: the generator for the arbitrary reports.
        truthful: ``(k, m)`` beliefs that occur under the prior; each is kept.
        n_dirichlet: how many ``Dirichlet(1, ..., 1)`` draws to add.
        n_point: how many point masses (on distinct outcomes drawn with ``rng``) to add.
        smooth_points: mix each point mass with ``1e-3`` of the uniform distribution,
            for rules unbounded below (a logarithmic score of minus infinity would turn
            every utility comparison into ``inf - inf``).

    Returns:
        The candidate reports with labels; the uniform distribution is always included.
    """
    reports: list[np.ndarray] = []
    labels: list[str] = []
    if truthful is not None:
        for c, b in enumerate(np.asarray(truthful, dtype=np.float64)):
            reports.append(b)
            labels.append(f"truthful cell {c}")
    reports.append(np.full(m, 1.0 / m))
    labels.append("uniform")
    for d, draw in enumerate(rng.dirichlet(np.ones(m), size=n_dirichlet)):
        reports.append(draw)
        labels.append(f"dirichlet {d}")
    for o in rng.choice(m, size=min(n_point, m), replace=False):
        point = np.zeros(m)
        point[o] = 1.0
        if smooth_points:
            point = (1.0 - _POINT_SMOOTHING) * point + _POINT_SMOOTHING / m
        reports.append(point)
        labels.append(f"{'near ' if smooth_points else ''}point mass on outcome {int(o)}")
    return BeliefSet(np.stack(reports), labels)


def _occurring_beliefs(knowledge: Knowledge, beliefs: list[np.ndarray], i: int) -> np.ndarray:
    """The rows of ``beliefs[i]`` whose cells have positive prior probability."""
    live = knowledge.cell_prob[i] > 0
    return beliefs[i][live]


class _HeldBeliefs(ClassicalMechanism):
    """A crowdsourced mechanism with every belief report (and M's informant) held fixed.

    With the beliefs fixed, the mechanism maps valuation reports to outcomes like a
    classical one, so the classical dominance check applies to it unchanged.
    """

    def __init__(
        self,
        mech: CrowdsourcedMechanism,
        beliefs: Sequence[np.ndarray | None],
        informant: int | None = None,
    ):
        super().__init__()
        self.mech = mech
        self.beliefs = list(beliefs)
        self.informant = informant
        self.space = mech.space
        self.name = f"{mech.name}|beliefs held"

    def outcome(self, reports: np.ndarray) -> Outcome:
        B = np.asarray(reports).shape[0]
        held = [None if F is None else np.broadcast_to(F, (B, F.size)) for F in self.beliefs]
        if isinstance(self.mech, RandomInformant):
            who = None if self.informant is None else np.full(B, self.informant)
            return self.mech.outcome(reports, held, informant=who)
        return self.mech.outcome(reports, held)


# -- valuation step -------------------------------------------------------------------


@dataclass
class ValuationCheck:
    """Result of the dominance check of valuation reports.

    Attributes:
        mechanism: the mechanism's name.
        max_gain: the largest expected-utility gain of any valuation misreport found
            (0 when truthful reporting is weakly dominant; never below 0, since the
            truthful report itself counts).
        where: bidder, true value, misreport, the others' reports and, for crowdsourced
            mechanisms, the belief reports held fixed (and M's informant); empty when
            no misreport gains more than :data:`ZERO_GAIN_TOLERANCE`.
        belief_profiles: how many belief-report profiles were checked (1 if none).
        min_loss: the smallest expected loss of any misreport (strictness: positive when
            every misreport loses strictly); ``None`` unless it was asked for.
        min_loss_where: where ``min_loss`` occurs.
    """

    mechanism: str
    max_gain: float
    where: dict
    belief_profiles: int = 1
    min_loss: float | None = None
    min_loss_where: dict = field(default_factory=dict)

    @property
    def truthful(self) -> bool:
        """True when no misreport gains more than :data:`ZERO_GAIN_TOLERANCE`."""
        return self.max_gain <= ZERO_GAIN_TOLERANCE


def misreport_min_loss(
    mech: ClassicalMechanism, space: TypeSpace, bidders: Sequence[int] | None = None
) -> tuple[float, dict]:
    """Smallest expected loss of any valuation misreport, over every profile.

    The complement of :func:`~crowdauction.mechanisms.classical.dst_violation`, which
    reports the largest gain: here the truthful report is left out, so a positive
    result says that every misreport loses strictly (the mechanism is *strictly* DST).

    Args:
        mech: any mechanism with ``outcome(reports)``.
        space: the grids to enumerate.
        bidders: whose misreports to consider; default all (leave out bidders whose
            report the mechanism ignores, such as M's informant).

    Returns:
        ``(min_loss, where)`` with ``where`` naming bidder, value, misreport, others.
    """
    prof = space.profile_values
    bidders = range(space.n) if bidders is None else bidders
    best = np.inf
    where: dict = {}
    for i in bidders:
        g = space.grids[i]
        K = len(g)
        if K < 2:
            continue
        rep = np.repeat(prof, K, axis=0)
        rep[:, i] = np.tile(g, len(prof))
        out = mech.outcome(rep)
        util = (prof[:, i].repeat(K) * out.allocation[:, i] - out.payments[:, i]).reshape(-1, K)
        own = np.searchsorted(g, prof[:, i])
        loss = util[np.arange(len(prof)), own][:, None] - util
        loss[np.arange(len(prof)), own] = np.inf  # the truthful report is not a misreport
        loss[np.isnan(loss)] = np.inf  # inf - inf from an unbounded reward: not comparable
        f, k = np.unravel_index(int(np.argmin(loss)), loss.shape)
        if loss[f, k] < best:
            best = float(loss[f, k])
            where = {
                "bidder": int(i),
                "value": int(prof[f, i]),
                "report": int(g[k]),
                "others": [int(v) for j, v in enumerate(prof[f]) if j != i],
            }
    return best, where


def _belief_profiles(
    sets: list[BeliefSet], n_mixed: int, rng: np.random.Generator
) -> list[list[int]]:
    """Belief-report profiles (one candidate index per bidder) that use every candidate.

    Profile ``t`` takes, for each bidder, the ``t``-th candidate of a seeded shuffle of
    its set (cycling), so every candidate of every bidder appears at least once; then
    ``n_mixed`` profiles drawn at random combine them further.
    """
    sizes = [len(s.labels) for s in sets]
    perms = [rng.permutation(k) for k in sizes]
    rows = [[int(perms[j][t % sizes[j]]) for j in range(len(sets))] for t in range(max(sizes))]
    for _ in range(n_mixed):
        rows.append([int(rng.integers(k)) for k in sizes])
    return rows


def valuation_check(
    mech: Mechanism,
    knowledge: Knowledge,
    seed: int = 0,
    n_dirichlet: int = 4,
    n_point: int = 3,
    n_mixed: int = 8,
    strictness: bool = False,
) -> ValuationCheck:
    """Largest gain of a valuation misreport, exact on the grid, for any mechanism.

    Classical mechanisms: :func:`dst_violation` over every profile. M: for every
    informant ``i`` and every candidate belief report ``F`` of ``i`` (its truthful
    beliefs that occur, plus seeded arbitrary ones), the inner auction run on every
    report profile of the others. L (and any other crowdsourced mechanism): every
    valuation-report profile against a set of belief-report profiles that uses every
    candidate belief of every bidder at least once; the candidate bonus is part of the
    outcome, so the check finds the gain it gives to overbidding when ``eps`` exceeds
    L's strictness margin.

    Args:
        mech: any mechanism of the library.
        knowledge: the prior and knowledge partitions (for the beliefs that occur).
        seed: seeds the arbitrary belief reports.
        n_dirichlet: Dirichlet draws per bidder's candidate set.
        n_point: point masses per bidder's candidate set.
        n_mixed: extra random belief-report profiles (L and others).
        strictness: also compute the smallest loss of any misreport.

    Returns:
        The :class:`ValuationCheck`.
    """
    space = knowledge.space
    rng = np.random.default_rng(seed)
    if not isinstance(mech, CrowdsourcedMechanism):
        gain, where = dst_violation(mech, space)
        check = ValuationCheck(mech.name, float(gain), where if gain > ZERO_GAIN_TOLERANCE else {})
        if strictness:
            check.min_loss, check.min_loss_where = misreport_min_loss(mech, space)
        logger.debug("valuation check of %s: max gain %.3g", mech.name, gain)
        return check

    truthful = mech.truthful_beliefs(knowledge)
    smooth = not mech.scoring.bounded
    sets = [
        belief_candidates(
            space.others_size(i),
            rng,
            _occurring_beliefs(knowledge, truthful, i),
            n_dirichlet,
            n_point,
            smooth_points=smooth,
        )
        for i in range(space.n)
    ]
    held: list[tuple[_HeldBeliefs, dict, list[int] | None]] = []
    if isinstance(mech, RandomInformant):
        for i in range(space.n):
            others = [j for j in range(space.n) if j != i]
            for F, label in zip(sets[i].reports, sets[i].labels):
                beliefs: list[np.ndarray | None] = [None] * space.n
                beliefs[i] = F
                info = {"informant": i, "beliefs": {i: label}}
                held.append((_HeldBeliefs(mech, beliefs, informant=i), info, others))
    else:
        for row in _belief_profiles(sets, n_mixed, rng):
            beliefs = [sets[j].reports[row[j]] for j in range(space.n)]
            info = {"beliefs": {j: sets[j].labels[row[j]] for j in range(space.n)}}
            held.append((_HeldBeliefs(mech, beliefs), info, None))

    check = ValuationCheck(mech.name, -np.inf, {}, belief_profiles=len(held))
    if strictness:
        check.min_loss = np.inf
    for fixed, info, bidders in held:
        # Known shortcoming: a logarithmic reward of minus infinity makes comparisons
        # inf - inf (NaN), and dst_violation then skips that bidder for this profile.
        with np.errstate(invalid="ignore"):
            gain, where = dst_violation(fixed, space)
        if gain > check.max_gain:
            check.max_gain = float(gain)
            check.where = {**where, **info} if gain > ZERO_GAIN_TOLERANCE else {}
        if strictness:
            with np.errstate(invalid="ignore"):
                loss, lwhere = misreport_min_loss(fixed, space, bidders)
            if loss < check.min_loss:
                check.min_loss, check.min_loss_where = float(loss), {**lwhere, **info}
    logger.debug(
        "valuation check of %s over %d belief profiles: max gain %.3g",
        mech.name,
        len(held),
        check.max_gain,
    )
    return check


# -- belief step ----------------------------------------------------------------------


def belief_reward_scale(mech: CrowdsourcedMechanism) -> float:
    """The ``eps`` the mechanism passes to its scoring rule's ``reward``.

    M pays its informant ``reward(w, F, eps)``; L pays each non-candidate
    ``reward(w, F, eps / n)``.

    Raises:
        InvalidConfigError: for a crowdsourced mechanism this module does not know.
    """
    if isinstance(mech, RandomInformant):
        return mech.eps
    if isinstance(mech, CrowdsourcedLookahead):
        return mech.eps / mech.n
    raise InvalidConfigError(
        f"the belief check knows how {RandomInformant.__name__} and "
        f"{CrowdsourcedLookahead.__name__} pay belief reports, not {type(mech).__name__}; "
        "add its reward scale to belief_reward_scale"
    )


def _ask_probability(mech: CrowdsourcedMechanism, reports: np.ndarray) -> np.ndarray:
    """``(B, n)`` probability that each bidder is asked for a belief, given the reports."""
    if isinstance(mech, RandomInformant):
        B = reports.shape[0]
        return sum(
            mech.asks_belief(reports, np.full(B, k)).astype(np.float64) for k in range(mech.n)
        ) / mech.n
    return mech.asks_belief(reports).astype(np.float64)


def belief_outcome_distribution(
    mech: CrowdsourcedMechanism, knowledge: Knowledge, i: int
) -> tuple[np.ndarray, np.ndarray]:
    """What bidder ``i``'s belief report is scored on, per cell, under truthful values.

    Returns:
        ``(G, p_ask)``: ``G`` ``(C_i, m_i)`` the distribution of the others' reported
        profile given the cell and given that ``i`` is asked (the cell belief where ``i``
        is never asked), and ``p_ask`` ``(C_i,)`` the probability of being asked.
    """
    space = knowledge.space
    others = space.others(i).profile_indices  # (m, n-1)
    C, m = knowledge.beliefs[i].shape
    idx = np.empty((C, m, space.n), dtype=np.int64)
    idx[..., i] = knowledge.cell_value[i][:, None]
    idx[..., [j for j in range(space.n) if j != i]] = others[None]
    reports = space.values_of(idx.reshape(C * m, space.n))
    ask = _ask_probability(mech, reports)[:, i].reshape(C, m)
    b = knowledge.beliefs[i]
    joint = b * ask
    p_ask = joint.sum(axis=1)
    G = np.where(p_ask[:, None] > 0, joint / np.where(p_ask > 0, p_ask, 1.0)[:, None], b)
    return G, p_ask


def _search_candidates(G: np.ndarray, rng: np.random.Generator, n_search: int) -> np.ndarray:
    """Seeded candidate belief reports around and away from ``G`` ``(m,)``: ``(S, m)``."""
    m = G.size
    out = [np.eye(m), np.full((1, m), 1.0 / m)]
    for a in _SEARCH_CONCENTRATIONS:
        per = max(1, n_search // len(_SEARCH_CONCENTRATIONS))
        out.append(rng.dirichlet(np.full(m, a), size=per))
    pos = G > 0
    for p in _SEARCH_POWERS:
        t = np.where(pos, np.power(np.where(pos, G, 1.0), p), 0.0)
        out.append((t / t.sum())[None])
    top = np.zeros(m)
    top[int(np.argmax(G))] = 1.0
    for w in _SEARCH_MIXES:
        out.append(((1 - w) * G + w * top)[None])
    # Small random moves from the truth, kept on the simplex.
    noise = rng.dirichlet(np.ones(m), size=max(1, n_search // 4))
    out.append(0.9 * G[None] + 0.1 * noise)
    return np.concatenate(out)


@dataclass
class BeliefCheck:
    """Result of the belief-step check under truthful valuation reports.

    Attributes:
        mechanism: the mechanism's name.
        rule: the scoring rule's name.
        method: ``"closed form"`` (Brier) or ``"search"`` (other rules).
        max_gain: the largest ex-interim utility gain of a belief misreport in any cell
            of positive probability.
        where: bidder, cell, own value and the best report found (as a list); empty
            when no report gains more than :data:`ZERO_GAIN_TOLERANCE`.
        gains: per bidder ``(C_i,)`` the best gain found in each cell (0 where the cell
            has probability zero or the bidder is never asked).
    """

    mechanism: str
    rule: str
    method: str
    max_gain: float
    where: dict
    gains: list[np.ndarray]

    @property
    def truthful(self) -> bool:
        return self.max_gain <= ZERO_GAIN_TOLERANCE


def brier_misreport_loss(F: np.ndarray, G: np.ndarray, scale: float) -> np.ndarray:
    """Expected reward lost by reporting ``F`` when the outcome follows ``G`` (Brier).

    Brier's expected score is ``sum G^2 - 1 - ||G - F||^2`` and the reward maps the
    score range ``[-2, 0]`` onto ``[0, scale]``, so the loss is ``scale/2 ||G - F||^2``.
    """
    d = np.asarray(G, dtype=np.float64) - np.asarray(F, dtype=np.float64)
    return scale / 2.0 * (d * d).sum(axis=-1)


def belief_check(
    mech: CrowdsourcedMechanism,
    knowledge: Knowledge,
    seed: int = 0,
    n_search: int = 48,
) -> BeliefCheck:
    """Gain of the best belief misreport per knowledge cell, under truthful values.

    For each bidder and cell of positive probability, the truthful report is the
    mechanism's ``truthful_beliefs``; the outcome it is scored on follows ``G`` of
    :func:`belief_outcome_distribution`. The gain of a report ``F`` is
    ``p_ask * (E_G[reward(F)] - E_G[reward(truthful)])``.

    Brier: closed form, the best report is ``G`` with gain
    ``p_ask * scale/2 * ||G - truthful||^2`` (zero when the mechanism's truthful belief
    is what it scores). Other rules: the best of a seeded set of candidates (every point
    mass, Dirichlet draws, powers of ``G``, mixtures towards the likeliest outcome, small
    moves from ``G``); for an improper rule such as ``LinearScore`` the point mass on
    the likeliest profile wins.

    Args:
        mech: M or L.
        knowledge: prior and partitions.
        seed: seeds the search.
        n_search: about how many random candidates per cell.
    """
    rng = np.random.default_rng(seed)
    rule: ScoringRule = mech.scoring
    scale = belief_reward_scale(mech)
    truthful = mech.truthful_beliefs(knowledge)
    closed = isinstance(rule, Brier)
    gains: list[np.ndarray] = []
    best, where = -np.inf, {}
    for i in range(knowledge.n):
        G, p_ask = belief_outcome_distribution(mech, knowledge, i)
        T = truthful[i]
        C = G.shape[0]
        g_cell = np.zeros(C)
        report_cell: list[np.ndarray] = [T[c] for c in range(C)]
        for c in range(C):
            if knowledge.cell_prob[i][c] <= 0 or p_ask[c] <= 0:
                continue
            if closed:
                g_cell[c] = p_ask[c] * float(brier_misreport_loss(T[c], G[c], scale))
                report_cell[c] = G[c]
            else:
                # The truthful report is a candidate too, so the best gain is >= 0.
                cand = np.vstack([T[c][None], _search_candidates(G[c], rng, n_search)])
                with np.errstate(divide="ignore", invalid="ignore"):
                    val = rule.expected_reward(cand, np.broadcast_to(G[c], cand.shape), scale)
                    base = rule.expected_reward(T[c][None], G[c][None], scale)[0]
                val = np.where(np.isnan(val), -np.inf, val)
                k = int(np.argmax(val))
                g_cell[c] = p_ask[c] * (float(val[k]) - float(base))
                report_cell[c] = cand[k]
            if g_cell[c] > best:
                best = float(g_cell[c])
                where = {
                    "bidder": i,
                    "cell": c,
                    "value": int(knowledge.space.grids[i][knowledge.cell_value[i][c]]),
                    "report": np.round(report_cell[c], 6).tolist(),
                }
        gains.append(g_cell)
    method = "closed form" if closed else "search"
    logger.debug("belief check of %s (%s, %s): max gain %.3g", mech.name, rule.name, method, best)
    if best <= ZERO_GAIN_TOLERANCE:
        where = {}
    return BeliefCheck(mech.name, rule.name, method, max(best, 0.0), where, gains)


# -- agent profiles -------------------------------------------------------------------


@dataclass
class ProfileCheck:
    """Exact incentive figures of one strategy profile, per bidder.

    Attributes:
        mechanism: the mechanism's name.
        utility_loss: ``(n,)`` best-response utility minus achieved utility, ex interim
            per cell, averaged over cells with their probabilities.
        worst_loss: ``(n,)`` the same loss in the worst cell of positive probability.
        truthfulness: ``(n,)`` probability mass on the true value, weighted by cells.
        belief_distance: ``(n,)`` mean total-variation distance of belief reports to the
            truthful beliefs (NaN for a mechanism that asks no beliefs).
        utility: ``(n,)`` each bidder's expected utility under the profile.
        revenue: expected revenue under the profile.
    """

    mechanism: str
    utility_loss: np.ndarray
    worst_loss: np.ndarray
    truthfulness: np.ndarray
    belief_distance: np.ndarray
    utility: np.ndarray
    revenue: float

    def summary(self) -> dict[str, float]:
        """Means over bidders under prefixed metric keys."""
        return {
            "eval/utility_loss": float(np.mean(self.utility_loss)),
            "eval/worst_utility_loss": float(np.max(self.worst_loss)),
            "eval/truthfulness": float(np.mean(self.truthfulness)),
            "eval/belief_distance": float(np.mean(self.belief_distance)),
            "auction/revenue": float(self.revenue),
        }


def truthfulness_rate(knowledge: Knowledge, strategy: Strategy) -> np.ndarray:
    """``(n,)``: probability of reporting the true value, weighted by cell probability."""
    out = np.empty(knowledge.n)
    for i in range(knowledge.n):
        sigma = strategy.valuation[i]
        on_truth = sigma[np.arange(sigma.shape[0]), knowledge.cell_value[i]]
        out[i] = float(knowledge.cell_prob[i] @ on_truth)
    return out


def belief_distance(
    mech: Mechanism, knowledge: Knowledge, strategy: Strategy
) -> np.ndarray:
    """``(n,)``: mean total-variation distance of belief reports to the truthful ones."""
    if not isinstance(mech, CrowdsourcedMechanism):
        return np.full(knowledge.n, np.nan)
    truth = mech.truthful_beliefs(knowledge)
    out = np.empty(knowledge.n)
    for i in range(knowledge.n):
        tv = 0.5 * np.abs(np.asarray(strategy.belief[i]) - truth[i]).sum(axis=1)
        out[i] = float(knowledge.cell_prob[i] @ tv)
    return out


def profile_check(mech: Mechanism, knowledge: Knowledge, strategy: Strategy) -> ProfileCheck:
    """Exact utility loss, truthfulness and belief distance of a strategy profile.

    The utility loss of bidder ``i`` in cell ``c`` is its exact best-response utility
    against the others' strategies minus what ``strategy`` earns it there
    (:func:`crowdauction.agents.best_response.regret`).

    Args:
        mech: any mechanism of the library.
        knowledge: prior and partitions.
        strategy: the profile to check (e.g. from ``agents.profile_strategy``).
    """
    result = evaluate(mech, knowledge, strategy)
    n = knowledge.n
    loss = np.empty(n)
    worst = np.empty(n)
    for i in range(n):
        _, gap = regret(knowledge, mech, strategy, i)
        live = knowledge.cell_prob[i] > 0
        loss[i] = float(knowledge.cell_prob[i][live] @ gap[live])
        worst[i] = float(gap[live].max()) if live.any() else 0.0
    return ProfileCheck(
        mechanism=mech.name,
        utility_loss=loss,
        worst_loss=worst,
        truthfulness=truthfulness_rate(knowledge, strategy),
        belief_distance=belief_distance(mech, knowledge, strategy),
        utility=np.asarray(result.utility, dtype=np.float64),
        revenue=result.revenue,
    )


# -- everything at once ---------------------------------------------------------------


@dataclass
class Verification:
    """The valuation and belief checks of one mechanism, and optionally a profile's."""

    mechanism: str
    valuation: ValuationCheck
    belief: BeliefCheck | None
    profile: ProfileCheck | None = None

    @property
    def truthful(self) -> bool:
        return self.valuation.truthful and (self.belief is None or self.belief.truthful)

    def summary(self) -> str:
        """A few lines a person can read, in two blocks.

        ``mechanism:`` whether truthful reporting is dominant (the valuation and belief
        checks, exact over the type space), with the largest gains found; ``given
        profile:`` (when a profile was checked) whether it leaves any bidder a gain
        against its best response, with its figures per bidder. Gains and losses at or
        below :data:`ZERO_GAIN_TOLERANCE` are printed as 0: they are the rounding noise
        of exact expectations, not figures.
        """
        v = self.valuation
        verdict = "dominant" if self.truthful else "NOT dominant"
        lines = [self.mechanism, f"  mechanism: truthful reporting is {verdict} (exact)"]
        where = f" at {_where(v.where)}" if v.max_gain > ZERO_GAIN_TOLERANCE and v.where else ""
        over = f" over {v.belief_profiles} belief-report profiles" if v.belief_profiles > 1 else ""
        lines.append(f"    valuation step: largest misreport gain {_gain(v.max_gain)}{over}{where}")
        if v.min_loss is not None:
            lines.append(f"    valuation step: smallest misreport loss {_gain(v.min_loss)}")
        if self.belief is not None:
            b = self.belief
            where = f" at {_where(b.where)}" if not b.truthful and b.where else ""
            lines.append(
                f"    belief step ({b.rule}, {b.method}): largest gain {_gain(b.max_gain)}{where}"
            )
        if self.profile is not None:
            lines += _profile_lines(self.profile)
        return "\n".join(lines)


def _gain(x: float) -> str:
    """A gain or loss for people: 0 within :data:`ZERO_GAIN_TOLERANCE`, else 6 digits."""
    return "0" if abs(x) <= ZERO_GAIN_TOLERANCE else f"{x:.6g}"


def _where(d: dict) -> str:
    return ", ".join(f"{k} {val}" for k, val in d.items())


def _profile_lines(p: ProfileCheck) -> list[str]:
    """The ``given profile:`` block of :meth:`Verification.summary`."""

    def per_bidder(a: np.ndarray, gains: bool = False) -> str:
        return ", ".join(_gain(x) if gains else f"{x:.4g}" for x in a)

    worst = float(np.max(p.worst_loss)) if p.worst_loss.size else 0.0
    if worst <= ZERO_GAIN_TOLERANCE:
        head = "every bidder plays a best response (exact)"
    else:
        who = int(np.argmax(p.worst_loss))
        head = (
            f"NOT an equilibrium: bidder {who} gains up to {_gain(worst)} in a cell "
            "by deviating (exact)"
        )
    lines = [
        f"  given profile: {head}",
        f"    utility loss per bidder {per_bidder(p.utility_loss, gains=True)}",
        f"    worst-cell loss per bidder {per_bidder(p.worst_loss, gains=True)}",
        f"    truthfulness rate per bidder {per_bidder(p.truthfulness)}",
    ]
    if not np.all(np.isnan(p.belief_distance)):
        lines.append(f"    belief distance (TV) per bidder {per_bidder(p.belief_distance)}")
    lines.append(f"    revenue {p.revenue:.6g}")
    return lines


def verify(
    mech: Mechanism,
    knowledge: Knowledge,
    strategy: Strategy | None = None,
    seed: int = 0,
    strictness: bool = False,
) -> Verification:
    """Run the valuation check, the belief check (crowdsourced only) and, given a
    strategy profile, the profile check.

    Args:
        mech: any mechanism of the library.
        knowledge: prior and partitions.
        strategy: a profile to measure (e.g. learned play), or ``None``.
        seed: seeds the arbitrary belief reports and the search.
        strictness: also compute the smallest loss of any valuation misreport.
    """
    val = valuation_check(mech, knowledge, seed=seed, strictness=strictness)
    bel = None
    if isinstance(mech, CrowdsourcedMechanism):
        bel = belief_check(mech, knowledge, seed=seed)
    prof = profile_check(mech, knowledge, strategy) if strategy is not None else None
    return Verification(mech.name, val, bel, prof)
