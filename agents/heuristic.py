"""Fixed agents: truthful, random, value shading, and a fixed misreport map.

All of them act from the observation alone (own value, own belief, phase), so one
instance works for any knowledge partition; their ``strategy_for`` says exactly what
they report in every knowledge cell.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from crowdauction.agents.base import Agent, _actions, _obs_beliefs, truthful_tables
from crowdauction.envs.layout import EnvLayout
from crowdauction.errors import InvalidParameterError, InvalidReportError
from crowdauction.mechanisms.checks import int_param, real_param
from crowdauction.mechanisms.exact import Mechanism
from crowdauction.mechanisms.knowledge import Knowledge

__all__ = ["TruthfulAgent", "RandomAgent", "ShadingAgent", "MisreportAgent"]


class TruthfulAgent(Agent):
    """Reports its true value and, when asked, the belief it observes.

    The observed belief is the truthful one for the phase (in L's belief phase, the
    cell belief conditioned on being asked), so ``strategy_for`` returns
    ``mech.truthful_beliefs`` for crowdsourced mechanisms.
    """

    name = "truthful"

    def act(self, obs: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        layout = self._layout()
        parts = layout.decode_obs(obs)
        who = self._who(parts.value_idx.shape[0])
        return _actions(layout, parts.value_idx, _obs_beliefs(layout, parts.belief, who), who)

    def strategy_for(
        self, knowledge: Knowledge, bidder: int, mech: Mechanism
    ) -> tuple[np.ndarray, np.ndarray]:
        return truthful_tables(knowledge, bidder, mech)


class RandomAgent(Agent):
    """Reports a uniformly random grid value, and the uniform (uninformative) belief.

    The belief report is the same fixed distribution every time, so that exact
    evaluation of this agent is exact (a random belief report would need its
    expected score, not the score of its mean).
    """

    name = "random"

    def act(self, obs: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        rng = self.rng if rng is None else rng
        layout = self._layout()
        B = np.asarray(obs).reshape(-1, layout.obs_dim).shape[0]
        who = self._who(B)
        K = layout.grid_sizes[who]
        index = np.floor(rng.random(B) * K).astype(np.int64)
        m = layout.belief_sizes[who]
        F = np.where(np.arange(layout.m_max)[None, :] < m[:, None], 1.0 / m[:, None], 0.0)
        return _actions(layout, np.minimum(index, K - 1), F, who)

    def strategy_for(
        self, knowledge: Knowledge, bidder: int, mech: Mechanism
    ) -> tuple[np.ndarray, np.ndarray]:
        C, K = knowledge.num_cells(bidder), knowledge.space.shape[bidder]
        m = knowledge.space.others_size(bidder)
        return np.full((C, K), 1.0 / K), np.full((C, m), 1.0 / m)


class _ValueMapAgent(Agent):
    """Reports a fixed function of its own value; truthful belief.

    Subclasses define :meth:`report_index`, mapping true grid indices to reported ones.
    """

    def report_index(self, grid: np.ndarray, index: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def act(self, obs: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        layout = self._layout()
        parts = layout.decode_obs(obs)
        B = parts.value_idx.shape[0]
        who = self._who(B)
        index = np.empty(B, dtype=np.int64)
        for b in np.unique(who):  # one pass per bidder seat, not per auction
            rows = who == b
            index[rows] = self.report_index(layout.space.grids[b], parts.value_idx[rows])
        return _actions(layout, index, _obs_beliefs(layout, parts.belief, who), who)

    def strategy_for(
        self, knowledge: Knowledge, bidder: int, mech: Mechanism
    ) -> tuple[np.ndarray, np.ndarray]:
        val, bel = truthful_tables(knowledge, bidder, mech)
        k = self.report_index(knowledge.space.grids[bidder], knowledge.cell_value[bidder])
        val[:] = 0.0
        val[np.arange(val.shape[0]), k] = 1.0
        return val, bel


class ShadingAgent(_ValueMapAgent):
    """Reports the largest grid value at or below ``fraction * value``; truthful belief.

    Args:
        fraction: in ``[0, 1]``; 1 is truthful, 0 always reports the grid's minimum.
        layout, bidder, seed: as for :class:`Agent`.
    """

    name = "shading"

    def __init__(
        self,
        fraction: float,
        layout: EnvLayout | None = None,
        bidder: int | None = None,
        seed: int | None = None,
    ):
        super().__init__(layout, bidder, seed)
        # InvalidReportError, not InvalidParameterError: the fraction scales the report.
        self.fraction = real_param(
            fraction, "shading fraction", low=0.0, high=1.0, error=InvalidReportError
        )

    def report_index(self, grid: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Grid index of the largest value ``<= fraction * grid[index]`` (at least 0)."""
        g = np.asarray(grid, dtype=np.float64)
        target = self.fraction * g[index]
        # A tiny slack so that e.g. 0.5 * 4 lands on 2 despite rounding.
        k = np.searchsorted(g, target + 1e-9, side="right") - 1
        return np.clip(k, 0, len(g) - 1)

    def __repr__(self) -> str:
        return f"ShadingAgent(fraction={self.fraction}, bidder={self.bidder})"


class MisreportAgent(_ValueMapAgent):
    """Reports ``value_map[value]`` (values not in the map: truthfully); truthful belief.

    Args:
        value_map: true value -> reported value, both on the bidder's grid.
        layout, bidder, seed: as for :class:`Agent`.
    """

    name = "misreport"

    def __init__(
        self,
        value_map: Mapping[int, int],
        layout: EnvLayout | None = None,
        bidder: int | None = None,
        seed: int | None = None,
    ):
        super().__init__(layout, bidder, seed)
        if not isinstance(value_map, Mapping):
            raise InvalidParameterError(
                "value_map must map true values to reported values, e.g. {3: 1}, "
                f"got {value_map!r}"
            )
        self.value_map = {
            int_param(k, "a true value of value_map", low=0): int_param(
                v, f"the report value_map gives value {k!r}", low=0
            )
            for k, v in value_map.items()
        }

    def report_index(self, grid: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Grid indices of the mapped reports; raises if a report is off the grid."""
        g = np.asarray(grid)
        table = np.arange(len(g))
        for v, r in self.value_map.items():
            src = np.searchsorted(g, v)
            if src >= len(g) or g[src] != v:
                continue  # a value this bidder never has
            dst = int(np.searchsorted(g, r))
            if dst >= len(g) or g[dst] != r:
                raise InvalidReportError(
                    f"misreport map sends {v} to {r}, which is not on the grid {g.tolist()}"
                )
            table[src] = dst
        return table[np.asarray(index)]

    def __repr__(self) -> str:
        return f"MisreportAgent({self.value_map}, bidder={self.bidder})"
