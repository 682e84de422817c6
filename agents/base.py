"""The agent protocol, tabular agents, and strategy profiles for exact evaluation.

An *agent* does two things:

* ``act(obs, rng=None) -> actions``: map a batch of observations ``(B, obs_dim)``,
  in the layout of :class:`~crowdauction.envs.layout.EnvLayout`, to actions
  ``(B, act_dim)``. Rows whose ``acts_now`` flag is off may get any valid action (the
  env ignores them). An agent is also callable, ``agent(obs)``, so it can be passed
  wherever the envs expect a fixed policy.
* ``strategy_for(knowledge, bidder, mech) -> (valuation, belief)``: say exactly what it
  reports for every type, for exact evaluation: ``valuation`` is ``(C_i, K_i)``, the
  distribution of the valuation report (over grid indices) in each knowledge cell;
  ``belief`` is ``(C_i, m_i)``, the belief report in each cell when asked.

:func:`profile_strategy` assembles those into a
:class:`~crowdauction.mechanisms.exact.Strategy` for
:func:`~crowdauction.mechanisms.exact.evaluate`.

An agent acts for one bidder (``bidder``), whose grid decides how its valuation is
encoded; ``bidder=None`` is allowed when every bidder has the same grid. Randomised
agents draw from the ``rng`` passed to ``act`` or else from their own generator,
seeded at construction, so the same seed gives the same actions.

:class:`TabularAgent` plays a table of reports per knowledge cell (exact best
responses, Hedge mixtures, fixed maps). It finds the cell of an observation from the
observed value and belief: the cell with that value whose belief is nearest in L1 (in
the belief phase of L the observation carries the belief conditioned on being asked,
and the table of those beliefs is matched instead). Two cells with the same value and
the same belief cannot be told apart from an observation; the first one is used, which
is exact whenever their reports agree (an exact best response makes them agree, since
such cells face the same expected utilities).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from crowdauction.envs.layout import EnvLayout
from crowdauction.errors import InvalidParameterError, InvalidReportError
from crowdauction.mechanisms.checks import bidder_index
from crowdauction.mechanisms.crowdsourced import CrowdsourcedMechanism
from crowdauction.mechanisms.exact import Mechanism, Strategy, check_tables
from crowdauction.mechanisms.knowledge import Knowledge

__all__ = ["Agent", "TabularAgent", "profile_strategy", "truthful_tables"]


def truthful_tables(
    knowledge: Knowledge, bidder: int, mech: Mechanism | None
) -> tuple[np.ndarray, np.ndarray]:
    """``(valuation one-hot (C_i, K_i), truthful belief (C_i, m_i))`` of one bidder."""
    C = knowledge.num_cells(bidder)
    val = np.zeros((C, knowledge.space.shape[bidder]))
    val[np.arange(C), knowledge.cell_value[bidder]] = 1.0
    if isinstance(mech, CrowdsourcedMechanism):
        bel = mech.truthful_beliefs(knowledge)[bidder]
    else:
        bel = knowledge.beliefs[bidder].copy()
    return val, bel


def _check_bidder(bidder: object, layout: EnvLayout | None) -> int | None:
    """``None`` or a bidder index (in range of ``layout`` when one is given)."""
    if bidder is None:
        return None
    if layout is not None:
        return bidder_index(bidder, layout.n, what="agent bidder")
    # Without a layout the number of bidders is unknown: check the type and sign only.
    ok = isinstance(bidder, (int, np.integer)) and not isinstance(bidder, (bool, np.bool_))
    if not ok or int(bidder) < 0:  # type: ignore[call-overload]  # an integer by now
        raise InvalidParameterError(
            f"agent bidder must be None or a non-negative integer bidder index, got {bidder!r}"
        )
    return int(bidder)  # type: ignore[call-overload]


class Agent:
    """Base class of agents (see the module docstring for the protocol).

    Args:
        layout: the env layout observations and actions follow; needed by ``act``.
        bidder: the bidder this agent plays (``None``: any, when all grids are equal).
        seed: seed of the agent's own generator, used when ``act`` gets no ``rng``.
    """

    name = "agent"

    def __init__(
        self, layout: EnvLayout | None = None, bidder: int | None = None, seed: int | None = None
    ):
        self.layout = layout
        self.bidder = _check_bidder(bidder, layout)
        self.rng = np.random.default_rng(seed)

    def bind(self, layout: EnvLayout, bidder: int | None = None) -> Agent:
        """Set the layout (and bidder) in place; returns ``self``."""
        self.layout = layout
        if bidder is not None:
            self.bidder = _check_bidder(bidder, layout)
        elif self.bidder is not None:
            _check_bidder(self.bidder, layout)
        return self

    def _layout(self) -> EnvLayout:
        if self.layout is None:
            raise InvalidReportError(
                f"{type(self).__name__} has no env layout: "
                "pass layout= or call bind(layout, bidder)"
            )
        return self.layout

    def _who(self, B: int) -> np.ndarray:
        return self._layout().bidders(self.bidder, B)

    def act(self, obs: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Actions ``(B, act_dim)`` for observations ``(B, obs_dim)``."""
        raise NotImplementedError

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.act(obs)

    def strategy_for(
        self, knowledge: Knowledge, bidder: int, mech: Mechanism
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(valuation (C_i, K_i), belief (C_i, m_i))`` reports per knowledge cell."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(bidder={self.bidder})"


def _actions(
    layout: EnvLayout, index: np.ndarray, belief: np.ndarray, who: np.ndarray
) -> np.ndarray:
    """Actions that report grid indices ``(B,)`` and beliefs ``(B, <= m_max)``."""
    out = np.empty((index.shape[0], layout.act_dim))
    out[:, 0] = layout.encode_valuation(index, who)
    out[:, 1:] = layout.encode_belief(belief, who)
    return out


def _obs_beliefs(layout: EnvLayout, belief: np.ndarray, who: np.ndarray) -> np.ndarray:
    """Observed beliefs, masked to each bidder's length and renormalised (float32 in)."""
    valid = np.arange(layout.m_max)[None, :] < layout.belief_sizes[who][:, None]
    F = np.where(valid, belief, 0.0)
    s = F.sum(axis=1, keepdims=True)
    return F / np.where(s > 0, s, 1.0)


class TabularAgent(Agent):
    """Plays fixed reports per knowledge cell of one bidder.

    Args:
        knowledge: the knowledge the tables are indexed by (the env's).
        mech: the mechanism (decides the belief shown in the belief phase).
        bidder: the bidder.
        valuation: ``(C_i, K_i)`` report distribution per cell (rows may be mixed).
        belief: ``(C_i, m_i)`` belief report per cell.
        layout: the env layout; default ``EnvLayout(knowledge.space)``.
        seed: seed for sampling mixed valuation reports.

    Raises:
        InvalidReportError: if a table is misshaped or a row is not a distribution
            (finite, non-negative, summing to one), naming the bidder and cell.
    """

    name = "tabular"

    def __init__(
        self,
        knowledge: Knowledge,
        mech: Mechanism,
        bidder: int,
        valuation: np.ndarray,
        belief: np.ndarray,
        layout: EnvLayout | None = None,
        seed: int | None = None,
    ):
        super().__init__(layout if layout is not None else EnvLayout(knowledge.space), bidder, seed)
        C, K = knowledge.num_cells(bidder), knowledge.space.shape[bidder]
        m = knowledge.space.others_size(bidder)
        valuation, belief = check_tables(valuation, belief, bidder, (C, K), (C, m))
        self.knowledge = knowledge
        self.mech = mech
        self.valuation = valuation
        self.belief = belief
        self._cum = np.cumsum(valuation, axis=1)
        self._match = [knowledge.beliefs[bidder], truthful_tables(knowledge, bidder, mech)[1]]

    def cells_of(self, obs: np.ndarray) -> np.ndarray:
        """Knowledge cell ``(B,)`` of each observation (see the module docstring)."""
        layout = self._layout()
        parts = layout.decode_obs(obs)
        B = parts.value_idx.shape[0]
        who = np.full(B, self.bidder)
        F = _obs_beliefs(layout, parts.belief, who)
        m = self.belief.shape[1]
        cv = self.knowledge.cell_value[self.bidder]
        cells = np.zeros(B, dtype=np.int64)
        # Asked bidders in the belief phase see the conditioned belief; all others the cell's.
        conditioned = (parts.phase >= 1) & parts.asked_belief
        for ph, table in enumerate(self._match):
            rows = np.nonzero(conditioned == bool(ph))[0]
            if rows.size == 0:
                continue
            dist = np.abs(F[rows, None, :m] - table[None, :, :]).sum(axis=2)  # (R, C)
            dist = np.where(cv[None, :] == parts.value_idx[rows, None], dist, np.inf)
            cells[rows] = np.argmin(dist, axis=1)
        return cells

    def act(self, obs: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        rng = self.rng if rng is None else rng
        cells = self.cells_of(obs)
        u = rng.random(cells.shape[0])
        index = (u[:, None] >= self._cum[cells]).sum(axis=1)
        index = np.minimum(index, self.valuation.shape[1] - 1)
        who = np.full(cells.shape[0], self.bidder)
        return _actions(self._layout(), index, self.belief[cells], who)

    def strategy_for(
        self, knowledge: Knowledge, bidder: int, mech: Mechanism
    ) -> tuple[np.ndarray, np.ndarray]:
        if bidder != self.bidder or knowledge.num_cells(bidder) != self.valuation.shape[0]:
            raise InvalidReportError(
                f"this table was built for bidder {self.bidder} of another knowledge; "
                f"rebuild it for bidder {bidder}"
            )
        return self.valuation.copy(), self.belief.copy()


def profile_strategy(agents: Sequence[Agent], knowledge: Knowledge, mech: Mechanism) -> Strategy:
    """The exact strategy profile of one agent per bidder (agent ``i`` plays bidder ``i``)."""
    if len(agents) != knowledge.n:
        raise InvalidReportError(
            f"got {len(agents)} agents for {knowledge.n} bidders; give one per bidder"
        )
    val, bel = [], []
    for i, agent in enumerate(agents):
        v, b = agent.strategy_for(knowledge, i, mech)
        val.append(np.asarray(v, dtype=np.float64))
        bel.append(np.asarray(b, dtype=np.float64))
    return Strategy(val, bel)
