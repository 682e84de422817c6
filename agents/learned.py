"""A trained stable-baselines3 policy as an agent.

:class:`LearnedAgent` wraps a model (anything with SB3's ``predict(obs,
deterministic=...)``). Its ``strategy_for`` asks the policy, deterministically, what it
reports in every knowledge cell: it builds, with the env layout, the observation the
bidder would see in that cell

* in the valuation phase as a bidder whose valuation is read (not M's informant, no
  candidate known yet, not yet asked), showing the cell's belief;
* in the belief phase as an asked bidder (M: the informant; L: not the candidate),
  showing the belief a truthful bidder reports then (``mech.truthful_beliefs``),

and decodes the actions. A deterministic policy is pure, so the valuation table is
one-hot.

Run directories. :meth:`LearnedAgent.load` reads ``config.json`` (for the value grid)
and the final model of a run written by :mod:`crowdauction.training`: ``model.zip``
(best-response and self-play runs) or ``model_bidder<i>.zip`` (independent learners).
The file names are fixed here, so training and evaluation agree on them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from crowdauction.agents.base import Agent, truthful_tables
from crowdauction.envs.layout import EnvLayout
from crowdauction.errors import InvalidConfigError, InvalidParameterError
from crowdauction.mechanisms.checks import bidder_index
from crowdauction.mechanisms.crowdsourced import CrowdsourcedMechanism, RandomInformant
from crowdauction.mechanisms.exact import Mechanism
from crowdauction.mechanisms.knowledge import Knowledge
from crowdauction.mechanisms.typespace import TypeSpace

__all__ = [
    "LearnedAgent",
    "Predictor",
    "MODEL_FILE",
    "CONFIG_FILE",
    "model_file",
    "role_observations",
]

#: The final model of a shared-policy run, inside its run directory.
MODEL_FILE = "model.zip"
#: The resolved configuration of a run, inside its run directory.
CONFIG_FILE = "config.json"


def model_file(bidder: int | None = None) -> str:
    """File name of a run's final model: shared, or bidder ``bidder``'s own."""
    return MODEL_FILE if bidder is None else f"model_bidder{bidder}.zip"


class Predictor(Protocol):
    """What a learned agent needs of a model: SB3's ``predict``."""

    def predict(
        self, observation: np.ndarray, deterministic: bool = ...
    ) -> tuple[np.ndarray, Any]: ...


def role_observations(
    layout: EnvLayout, knowledge: Knowledge, bidder: int, mech: Mechanism
) -> tuple[np.ndarray, np.ndarray | None]:
    """Observations of ``bidder`` in each of its cells: ``(valuation phase, belief phase)``.

    Returns:
        ``(obs0 (C_i, obs_dim), obs1 (C_i, obs_dim) or None)``; ``None`` for classical
        mechanisms, which have no belief phase.
    """
    C = knowledge.num_cells(bidder)
    value = knowledge.cell_value[bidder]
    zeros = np.zeros(C, dtype=bool)
    ones = np.ones(C, dtype=bool)
    obs0 = layout.encode(value, knowledge.beliefs[bidder], zeros, zeros, zeros, ones, 0, bidder)
    if not isinstance(mech, CrowdsourcedMechanism):
        return obs0, None
    informant = ones if isinstance(mech, RandomInformant) else zeros
    shown = truthful_tables(knowledge, bidder, mech)[1]
    obs1 = layout.encode(value, shown, informant, zeros, ones, ones, 1, bidder)
    return obs0, obs1


class LearnedAgent(Agent):
    """Acts with a trained policy.

    Args:
        model: an SB3 model (or anything with ``predict``).
        layout: the env layout the model was trained on.
        bidder: the bidder it plays (``None``: any, when all grids are equal).
        deterministic: act with the policy's mean action (default) or sample it
            (sampling uses torch's generator, not ``rng``).
    """

    name = "learned"

    def __init__(
        self,
        model: Predictor,
        layout: EnvLayout,
        bidder: int | None = None,
        deterministic: bool = True,
    ):
        super().__init__(layout, bidder)
        self.model = model
        self.deterministic = deterministic

    @classmethod
    def load(
        cls,
        run_dir: str | Path,
        bidder: int | None = None,
        path: str | Path | None = None,
        deterministic: bool = True,
    ) -> LearnedAgent:
        """Load the final model of a run directory.

        Args:
            run_dir: a run directory with ``config.json`` and the model files.
            bidder: for independent-learner runs, whose model to load (required
                there); otherwise the bidder to play, or ``None``.
            path: a model file to load instead (e.g. a checkpoint).
            deterministic: see the class.

        Raises:
            InvalidParameterError: if ``bidder`` is not ``None`` or a bidder index of the
                run's setting.
            InvalidConfigError: if the run directory has no readable configuration or
                no final model.
        """
        if bidder is not None and (
            not isinstance(bidder, (int, np.integer)) or isinstance(bidder, (bool, np.bool_))
        ):
            raise InvalidParameterError(
                f"bidder must be None or an integer bidder index, got {bidder!r}"
            )
        run_dir = Path(run_dir)
        cfg_path = run_dir / CONFIG_FILE
        try:
            cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
            setting = cfg["setting"]
            space = TypeSpace.uniform(int(setting["n"]), setting["values"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise InvalidConfigError(f"{cfg_path} is not a readable run configuration: {e}") from e
        if bidder is not None:
            bidder = bidder_index(bidder, space.n, what="bidder")
        if path is None:
            shared = run_dir / model_file()
            own = run_dir / model_file(bidder) if bidder is not None else None
            if own is not None and own.exists():
                path = own
            elif shared.exists():
                path = shared
            else:
                raise InvalidConfigError(
                    f"no final model in {run_dir}: expected {model_file()}"
                    + (
                        f" or {model_file(bidder)}"
                        if bidder is not None
                        else " (pass bidder= for independent runs)"
                    )
                    + "; has training finished? (resume it with crowdauction train --resume)"
                )
        from stable_baselines3 import PPO  # imported only to load: it pulls in torch

        model = PPO.load(str(path), device="cpu")
        return cls(model, EnvLayout(space), bidder, deterministic)

    def act(self, obs: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        layout = self._layout()
        o = np.asarray(obs, dtype=np.float32).reshape(-1, layout.obs_dim)
        actions, _ = self.model.predict(o, deterministic=self.deterministic)
        return np.asarray(actions, dtype=np.float64).reshape(o.shape[0], -1)

    def strategy_for(
        self, knowledge: Knowledge, bidder: int, mech: Mechanism
    ) -> tuple[np.ndarray, np.ndarray]:
        layout = self._layout()
        C, K = knowledge.num_cells(bidder), knowledge.space.shape[bidder]
        obs0, obs1 = role_observations(layout, knowledge, bidder, mech)
        a0, _ = self.model.predict(obs0, deterministic=True)
        index = layout.decode_valuation(np.asarray(a0, dtype=np.float64), bidder)
        val = np.zeros((C, K))
        val[np.arange(C), index] = 1.0
        if obs1 is None:
            return val, knowledge.beliefs[bidder].copy()
        a1, _ = self.model.predict(obs1, deterministic=True)
        bel = layout.decode_belief(np.asarray(a1, dtype=np.float64), bidder)
        return val, bel
