"""Hedge: multiplicative weights over valuation reports, a no-regret baseline for RL.

Every learning bidder keeps, in every knowledge cell, a weight per valuation report
(grid index). Each round it plays the distribution proportional to its weights, and
receives *full-information* feedback: the exact expected utility, in each cell, of
every report it could have made against the current profile (the other learners'
current mixtures and the fixed opponents), computed with
:func:`~crowdauction.mechanisms.exact.evaluate`. It then multiplies each weight by
``exp(eta * utility)`` (Freund and Schapire's Hedge). Several learners update
simultaneously from the same round's profile.

Belief reports are not learned by weights: in each round a learner makes the exact
optimal belief report for its current mixture (see
:mod:`crowdauction.agents.best_response`), or the truthful one with
``beliefs="truthful"``. The utility of report ``k`` in the feedback includes the best
belief report given ``k``.

Learning rate. With utilities in a range of width ``R`` and ``K`` reports, the fixed
rate ``eta = sqrt(8 ln K / T) / R`` for a horizon of ``T`` rounds bounds each cell's
regret by ``R sqrt(T ln K / 2)``, i.e. an average regret of ``R sqrt(ln K / (2T))``.
:func:`default_learning_rate` uses ``R = 2 v_max + eps``: a bidder's utility lies in
``[-v_max, v_max + eps]`` (bounded scoring rules pay at most ``eps``). Against fixed
opponents the feedback is the same every round, so the weights of a report that
loses ``g`` per round to the best one shrink like ``exp(-eta g t)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from crowdauction.agents.base import TabularAgent
from crowdauction.agents.best_response import (
    _beliefs_from_weights,
    best_beliefs_for_reports,
    report_weights,
)
from crowdauction.envs.layout import EnvLayout
from crowdauction.errors import InvalidConfigError
from crowdauction.mechanisms.crowdsourced import CrowdsourcedMechanism
from crowdauction.mechanisms.exact import Mechanism, Strategy, evaluate
from crowdauction.mechanisms.knowledge import Knowledge

__all__ = ["Hedge", "HedgeResult", "HedgeAgent", "default_learning_rate"]


def default_learning_rate(knowledge: Knowledge, mech: Mechanism, horizon: int) -> float:
    """The fixed-horizon Hedge rate ``sqrt(8 ln K / T) / (2 v_max + eps)``."""
    if int(horizon) != horizon or horizon < 1:
        raise InvalidConfigError(
            f"Hedge horizon must be a positive number of rounds, got {horizon!r}"
        )
    K = max(knowledge.space.shape)
    v_max = float(knowledge.space.all_values.max())
    eps = mech.eps if isinstance(mech, CrowdsourcedMechanism) else 0.0
    R = 2.0 * v_max + eps
    return math.sqrt(8.0 * math.log(max(K, 2)) / horizon) / max(R, 1e-12)


@dataclass
class HedgeResult:
    """What a Hedge run produced.

    Attributes:
        learners: the learning bidders, in order.
        last: the last-iterate profile (learners' current mixtures).
        average: the time-averaged profile of the learners' mixtures.
        regret: ``(L,)`` average external regret per round of each learner after the
            run, ex ante (cell regrets weighted by cell probability).
        regret_curve: ``(T, L)`` the same after every round.
        history: per learner, ``(T + 1, C_i, K_i)`` the mixtures before every round
            and after the last one.
    """

    learners: list[int]
    last: Strategy
    average: Strategy
    regret: np.ndarray
    regret_curve: np.ndarray
    history: list[np.ndarray] = field(repr=False)

    def rounds_to_concentrate(
        self, learner: int, target: np.ndarray, mass: float = 0.99
    ) -> int | None:
        """First round after which the mixture of ``learner`` puts at least ``mass`` on
        ``target`` (a grid index per cell) in every cell, and keeps doing so; ``None``
        if it never does."""
        h = self.history[self.learners.index(learner)]
        on = h[:, np.arange(h.shape[1]), np.asarray(target)]  # (T+1, C)
        ok = (on >= mass).all(axis=1)
        if not ok[-1]:
            return None
        bad = np.nonzero(~ok)[0]
        return 0 if bad.size == 0 else int(bad[-1]) + 1


class Hedge:
    """Simultaneous Hedge learners against fixed opponents, with exact feedback.

    Args:
        knowledge: prior and partitions.
        mech: the mechanism.
        learners: the bidders who learn.
        opponents: the profile the others play (and the learners' belief reports
            when ``beliefs="truthful"``); default truthful.
        eta: learning rate; default :func:`default_learning_rate` for ``horizon``.
        horizon: rounds the default rate is tuned for.
        beliefs: ``"best_response"`` (exact optimal belief report each round) or
            ``"truthful"`` (keep the opponents profile's belief report).
    """

    def __init__(
        self,
        knowledge: Knowledge,
        mech: Mechanism,
        learners: Sequence[int] = (0,),
        opponents: Strategy | None = None,
        eta: float | None = None,
        horizon: int | None = None,
        beliefs: str = "best_response",
    ):
        self.knowledge = knowledge
        self.mech = mech
        self.learners = [int(i) for i in learners]
        if not self.learners or any(not 0 <= i < knowledge.n for i in self.learners):
            raise InvalidConfigError(
                f"learners must be bidders in 0..{knowledge.n - 1}, got {list(learners)}"
            )
        if beliefs not in ("best_response", "truthful"):
            raise InvalidConfigError(
                f"beliefs must be 'best_response' or 'truthful', got {beliefs!r}"
            )
        self.beliefs = beliefs
        self.profile = (
            opponents if opponents is not None else Strategy.truthful(knowledge, mech)
        ).copy()
        if eta is None:
            if horizon is None:
                raise InvalidConfigError(
                    "give Hedge a learning rate eta= or a horizon= to tune it for"
                )
            eta = default_learning_rate(knowledge, mech, horizon)
        if not (np.isfinite(eta) and eta > 0):
            raise InvalidConfigError(
                f"Hedge learning rate eta must be positive and finite, got {eta!r}"
            )
        self.eta = float(eta)
        space = knowledge.space
        self.log_w = [np.zeros((knowledge.num_cells(i), space.shape[i])) for i in self.learners]
        self.sum_sigma = [np.zeros_like(w) for w in self.log_w]
        self.cum_u = [np.zeros_like(w) for w in self.log_w]  # (C, K) sum of feedback
        self.cum_play = [np.zeros(w.shape[0]) for w in self.log_w]
        self.rounds = 0
        self._history: list[list[np.ndarray]] = [
            [self._sigma(a)] for a in range(len(self.learners))
        ]
        self._regret_curve: list[np.ndarray] = []
        self._sync()

    def _sigma(self, a: int) -> np.ndarray:
        lw = self.log_w[a]
        e = np.exp(lw - lw.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def _sync(self) -> None:
        """Put the learners' current mixtures (and belief reports) into the profile."""
        for a, i in enumerate(self.learners):
            self.profile.valuation[i] = self._sigma(a)
        if self.beliefs == "best_response":
            snapshot = self.profile.copy()
            for i in self.learners:
                W = report_weights(self.knowledge, self.mech, snapshot, i, snapshot.valuation[i])
                self.profile.belief[i] = _beliefs_from_weights(
                    self.knowledge, self.mech, W, i, None
                )

    def feedback(self, bidder: int) -> np.ndarray:
        """``(K_i, C_i)`` expected utility of each pure report in each cell, now."""
        kn = self.knowledge
        K, C = kn.space.shape[bidder], kn.num_cells(bidder)
        if self.beliefs == "best_response":
            bel = best_beliefs_for_reports(kn, self.mech, self.profile, bidder)
        else:
            bel = np.broadcast_to(
                self.profile.belief[bidder], (K, *self.profile.belief[bidder].shape)
            )
        U = np.zeros((K, C))
        for k in range(K):
            s = self.profile.copy()
            s.valuation[bidder] = np.zeros((C, K))
            s.valuation[bidder][:, k] = 1.0
            s.belief[bidder] = np.array(bel[k])
            U[k] = evaluate(self.mech, kn, s).utility_by_cell[bidder]
        return U

    def step(self) -> None:
        """One round: feedback for every learner from the same profile, then update."""
        Us = [self.feedback(i) for i in self.learners]
        for a, U in enumerate(Us):
            sigma = self._sigma(a)
            self.sum_sigma[a] += sigma
            self.cum_u[a] += U.T
            self.cum_play[a] += (sigma * U.T).sum(axis=1)
            self.log_w[a] += self.eta * U.T
        self.rounds += 1
        self._sync()
        for a in range(len(self.learners)):
            self._history[a].append(self._sigma(a))
        self._regret_curve.append(self.regret())

    def regret(self) -> np.ndarray:
        """``(L,)`` average external regret per round so far, ex ante."""
        out = np.zeros(len(self.learners))
        if self.rounds == 0:
            return out
        for a, i in enumerate(self.learners):
            cell_regret = self.cum_u[a].max(axis=1) - self.cum_play[a]
            out[a] = float(self.knowledge.cell_prob[i] @ cell_regret) / self.rounds
        return out

    def last(self) -> Strategy:
        return self.profile.copy()

    def average(self) -> Strategy:
        """Learners' time-averaged mixtures (with the best belief report against them)."""
        s = self.profile.copy()
        if self.rounds == 0:
            return s
        for a, i in enumerate(self.learners):
            s.valuation[i] = self.sum_sigma[a] / self.rounds
        if self.beliefs == "best_response":
            snap = s.copy()
            for i in self.learners:
                W = report_weights(self.knowledge, self.mech, snap, i, snap.valuation[i])
                s.belief[i] = _beliefs_from_weights(self.knowledge, self.mech, W, i, None)
        return s

    def run(self, rounds: int) -> HedgeResult:
        """Play ``rounds`` more rounds and return the result so far."""
        if int(rounds) != rounds or rounds < 0:
            raise InvalidConfigError(f"rounds must be a non-negative integer, got {rounds!r}")
        for _ in range(int(rounds)):
            self.step()
        curve = (
            np.array(self._regret_curve)
            if self._regret_curve
            else np.zeros((0, len(self.learners)))
        )
        return HedgeResult(
            learners=list(self.learners),
            last=self.last(),
            average=self.average(),
            regret=self.regret(),
            regret_curve=curve,
            history=[np.stack(h) for h in self._history],
        )


class HedgeAgent(TabularAgent):
    """Plays a Hedge learner's mixture (last iterate or time average).

    Args:
        result: a finished :class:`HedgeResult`.
        knowledge: the knowledge Hedge ran on.
        mech: the mechanism.
        bidder: a learner of ``result``.
        which: ``"last"`` or ``"average"``.
        layout: the env layout; default ``EnvLayout(knowledge.space)``.
        seed: seed for sampling the mixed valuation reports.
    """

    name = "hedge"

    def __init__(
        self,
        result: HedgeResult,
        knowledge: Knowledge,
        mech: Mechanism,
        bidder: int,
        which: str = "last",
        layout: EnvLayout | None = None,
        seed: int | None = None,
    ):
        if which not in ("last", "average"):
            raise InvalidConfigError(f"which must be 'last' or 'average', got {which!r}")
        if bidder not in result.learners:
            raise InvalidConfigError(
                f"bidder {bidder} did not learn in this Hedge run (learners {result.learners})"
            )
        s = result.last if which == "last" else result.average
        super().__init__(
            knowledge, mech, bidder, s.valuation[bidder], s.belief[bidder], layout, seed
        )
