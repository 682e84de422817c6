"""Batched auction envs for stable-baselines3: many auctions stepped at once in numpy.

* :class:`AuctionVecEnv` runs ``B`` auctions and gives every bidder of every auction a
  row, ``num_envs = B * n`` in (auction, bidder) order: one policy plays every seat
  (parameter sharing, self-play).
* :class:`SingleLearnerVecEnv` runs ``B`` auctions with one learning bidder each
  (``num_envs = B``); the other bidders follow fixed policies, truthful by default.
  :class:`SingleLearnerEnv` is its one-auction ``gymnasium.Env``.

All of them run :class:`~crowdauction.envs.core.AuctionCore`, the rules the PettingZoo
env :mod:`~crowdauction.envs.crowdsourced_auction_v0` runs, on whole batches: no Python
loop over auctions. Episodes run in lockstep. A step reads one phase; the step after
phase 0 returns reward 0 and ``done=False`` unless the mechanism has no phase 1, and
the step after the last phase returns ``done=True`` with the realised utilities, puts
the final observation in ``infos[k]["terminal_observation"]`` and starts new auctions.
Every row steps every phase; rows whose ``acts_now`` flag is 0 have their actions
ignored.

Seeding. An env owns one generator, ``np.random.default_rng(seed)``, and draws whole
batches from it in the core's fixed order (profiles and informants at reset, the
mechanism's coins after the last phase). With ``num_auctions=1`` and the same seed the
envs therefore play exactly the auctions of ``crowdsourced_auction_v0.parallel_env``
after ``reset(seed=seed)`` and later unseeded resets, given the same actions. With
``B`` auctions the batch's rows are different draws, so copies never repeat each other;
give separate envs seeds from :func:`~crowdauction.envs.core.spawn_seeds`. ``seed(s)``
(stable-baselines3's call) takes effect at the next ``reset()``. A random learner seat
(``learner=None``) comes from a second stream spawned from the seed, so it does not
shift the auctions' draws.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium
import numpy as np
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

from crowdauction.errors import InvalidActionError, InvalidConfigError
from crowdauction.envs.core import (
    AuctionCore,
    AuctionState,
    build_core,
    check_action,
    non_finite_rows,
)
from crowdauction.envs.crowdsourced_auction_v0 import check_render_mode
from crowdauction.envs.layout import truthful_action

__all__ = ["AuctionVecEnv", "SingleLearnerVecEnv", "SingleLearnerEnv", "Policy", "INFO_KEYS"]

#: ``policy(obs (B, obs_dim)) -> actions (B, act_dim)``, a fixed bidder's behaviour.
Policy = Callable[[np.ndarray], np.ndarray]

#: Outcome keys copied into each finished row's info dict (besides the terminal obs).
INFO_KEYS = (
    "value",
    "value_report",
    "allocation",
    "payment",
    "utility",
    "revenue",
    "reward",
    "informant",
    "candidate",
    "lottery",
)


def _check_batch(
    actions: Any, rows: int, core: AuctionCore, describe: Callable[[int], str]
) -> np.ndarray:
    """Validate ``(rows, act_dim)`` actions; errors name the row through ``describe``."""
    lay = core.layout
    try:
        a = np.asarray(actions, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InvalidActionError(
            f"actions must be numbers; expected {rows} rows of {lay.describe_action()}"
        ) from e
    if a.shape != (rows, lay.act_dim):
        raise InvalidActionError(
            f"actions have shape {a.shape}, expected ({rows}, {lay.act_dim}): one row of "
            f"{lay.describe_action()} per env"
        )
    bad = non_finite_rows(a)
    if bad.size:
        r = int(bad[0])
        cols = np.nonzero(~np.isfinite(a[r]))[0][:3]
        raise InvalidActionError(
            f"action of {describe(r)} holds {a[r, cols].tolist()} at entries {cols.tolist()} "
            f"({bad.size} bad rows in all); expected {lay.describe_action()}"
        )
    return a


def _check_num_auctions(num_auctions: int) -> None:
    if int(num_auctions) != num_auctions or num_auctions < 1:
        raise InvalidConfigError(
            f"num_auctions must be a positive integer, got {num_auctions!r}"
        )


class _BaseVecEnv(VecEnv):
    """What the two vector envs share: the core, one generator, SB3's bookkeeping."""

    def __init__(self, num_envs: int, core: AuctionCore, render_mode: str | None):
        check_render_mode(render_mode)
        self.core = core
        self.layout = core.layout
        self.render_mode = render_mode
        super().__init__(num_envs, self.layout.observation_space(), self.layout.action_space("box"))
        self._actions: np.ndarray | None = None
        self.auction: AuctionState | None = None
        #: The auctions that finished at the last ``done`` step (for renders and analysis).
        self.finished: AuctionState | None = None
        #: Their outcome as ``(B, n)`` arrays (:meth:`AuctionCore.outcome_arrays`).
        self.last_outcome: dict[str, np.ndarray] | None = None

    def _take_seed(self) -> int | None:
        seed = self._seeds[0]
        self._reset_seeds()
        self._reset_options()
        return seed

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def close(self) -> None:
        """Nothing to release."""

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        # Every row shares one env object: call once, answer for each row.
        result = getattr(self, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(
        self, wrapper_class: type[gymnasium.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def render(self, mode: str | None = None) -> str | None:  # type: ignore[override]
        """``"ansi"``: a text table of the first auction (the last finished one if any)."""
        mode = mode if mode is not None else self.render_mode
        if mode is None:
            return None
        check_render_mode(mode)
        st = self.auction if self.finished is None else self.finished
        return self.core.render(st, 0)

    def _finish_infos(self, terminal: np.ndarray, seats: np.ndarray | None) -> list[dict[str, Any]]:
        st = self.auction
        self.finished = st
        self.last_outcome = self.core.outcome_arrays(st)
        infos = self.core.row_infos(st, INFO_KEYS, seats)
        for info, row in zip(infos, terminal):
            info["terminal_observation"] = row
        return infos


class AuctionVecEnv(_BaseVecEnv):
    """``B`` auctions with a row per bidder: ``num_envs = B * n``, self-play.

    Row ``k`` is bidder ``k % n`` of auction ``k // n``. Observations and actions use the
    layout of :mod:`crowdauction.envs.layout` (``Box`` actions).

    Args:
        num_auctions: ``B``.
        seed: seeds the env's generator (see the module docstring).
        render_mode: ``None`` or ``"ansi"``.
        **kwargs: the auction, as for the PettingZoo env (``mechanism``, ``prior``,
            ``knowledge``, ``n``, ``values``, ``eps``, ``delta``, ``design``, ``scoring``).
    """

    def __init__(
        self,
        num_auctions: int = 8,
        seed: int | None = None,
        render_mode: str | None = None,
        **kwargs: Any,
    ):
        _check_num_auctions(num_auctions)
        core = build_core(**kwargs)
        self.num_auctions = int(num_auctions)
        self.n = core.n
        super().__init__(self.num_auctions * core.n, core, render_mode)
        self._rng = np.random.default_rng(seed)

    def reset(self) -> VecEnvObs:
        seed = self._take_seed()
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.auction = self.core.reset(self.num_auctions, self._rng)
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return self._obs()

    def _obs(self) -> np.ndarray:
        return self.core.observe(self.auction).reshape(self.num_envs, self.layout.obs_dim)

    def _describe(self, row: int) -> str:
        return f"row {row} (auction {row // self.n}, bidder_{row % self.n})"

    def step_wait(self) -> VecEnvStepReturn:
        if self.auction is None:
            raise InvalidActionError("call reset() before step()")
        a = _check_batch(self._actions, self.num_envs, self.core, self._describe)
        B, n = self.num_auctions, self.n
        rewards = self.core.step(self.auction, a.reshape(B, n, -1), self._rng).reshape(-1)
        if self.auction.done:
            infos = self._finish_infos(self._obs(), None)
            self.auction = self.core.reset(B, self._rng)
            dones = np.ones(self.num_envs, dtype=bool)
        else:
            infos = [{} for _ in range(self.num_envs)]
            dones = np.zeros(self.num_envs, dtype=bool)
        return self._obs(), rewards.astype(np.float32), dones, infos


class _SingleLearner:
    """One learner seat per auction, the other seats played by fixed policies.

    Shared by :class:`SingleLearnerVecEnv` (any ``B``) and :class:`SingleLearnerEnv`
    (``B = 1``), so both run the same code.
    """

    def __init__(
        self,
        core: AuctionCore,
        num_auctions: int,
        learner: int | None,
        policies: Policy | Sequence[Policy | None] | None,
    ):
        n = core.n
        if learner is not None and (int(learner) != learner or not 0 <= learner < n):
            raise InvalidConfigError(
                f"learner must be a bidder index in 0..{n - 1} or None, got {learner!r}"
            )
        self.core = core
        self.B = int(num_auctions)
        self.fixed = None if learner is None else int(learner)
        if policies is None or callable(policies):
            self.policies: Policy | list[Policy | None] | None = policies
        else:
            policies = list(policies)
            if len(policies) != n or not all(p is None or callable(p) for p in policies):
                raise InvalidConfigError(
                    f"policies must be one callable, or {n} callables "
                    "(one per bidder; None for truthful)"
                )
            self.policies = policies
        self.seat = np.zeros(self.B, dtype=np.int64)
        self.auction: AuctionState | None = None
        self._obs_all: np.ndarray | None = None
        self.seed(None)

    def seed(self, seed: int | None) -> None:
        """Restart both streams: the auctions' and the random learner seats'."""
        self.rng = np.random.default_rng(seed)
        side = np.random.SeedSequence(seed).spawn(1)[0]
        self.seat_rng = np.random.default_rng(side)

    def reset(self) -> np.ndarray:
        """New auctions; the learners' observations ``(B, obs_dim)``."""
        self.auction = self.core.reset(self.B, self.rng)
        if self.fixed is None:
            self.seat = self.seat_rng.integers(0, self.core.n, size=self.B)
        else:
            self.seat = np.full(self.B, self.fixed, dtype=np.int64)
        self._obs_all = self.core.observe(self.auction)
        return self._obs_all[np.arange(self.B), self.seat]

    def _others(self) -> np.ndarray:
        """Actions ``(B, n, act_dim)`` of the fixed policies (the learner's seat left 0)."""
        core, lay, obs = self.core, self.core.layout, self._obs_all
        B, n = self.B, core.n
        out = np.zeros((B, n, lay.act_dim))
        others = np.arange(n)[None, :] != self.seat[:, None]
        per_bidder = self.policies if isinstance(self.policies, list) else None
        if self.policies is None or per_bidder is not None:
            for j in range(n):
                rows = np.nonzero(others[:, j])[0]
                if rows.size == 0:
                    continue
                policy = None if per_bidder is None else per_bidder[j]
                if policy is None:
                    out[rows, j] = truthful_action(lay, obs[rows, j], j)
                else:
                    out[rows, j] = self._call(policy, obs[rows, j], f"the policy of bidder {j}")
        else:
            out[others] = self._call(self.policies, obs[others], "the fixed policy")
        return out

    def _call(self, policy: Policy, obs: np.ndarray, name: str) -> np.ndarray:
        try:
            acts = np.asarray(policy(obs), dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise InvalidActionError(
                f"{name} failed on observations of shape {obs.shape}: {e}"
            ) from e
        return _check_batch(acts, obs.shape[0], self.core, lambda r: f"{name} on its row {r}")

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Apply the learners' ``(B, act_dim)`` actions; observations and rewards ``(B,)``."""
        if self.auction is None or self.auction.done:
            raise InvalidActionError("no auction is running: call reset() before step()")
        full = self._others()
        rows = np.arange(self.B)
        full[rows, self.seat] = actions
        rewards = self.core.step(self.auction, full, self.rng)
        self._obs_all = self.core.observe(self.auction)
        return self._obs_all[rows, self.seat], rewards[rows, self.seat]


class SingleLearnerVecEnv(_BaseVecEnv):
    """``B`` auctions, one learning bidder each (``num_envs = B``).

    Args:
        num_auctions: ``B``.
        learner: the learner's bidder index, or ``None`` for a uniformly random seat in
            every episode (``infos[k]["learner"]`` says which, after the episode).
        policies: the other bidders' behaviour: ``None`` (truthful), one callable used
            for every other bidder, or one per bidder (``None`` entries truthful; the
            learner's entry is not used). A callable maps observations ``(R, obs_dim)``
            to actions ``(R, act_dim)``; a list is needed to tell bidders with
            different grids apart.
        seed: seeds the env (see the module docstring).
        render_mode: ``None`` or ``"ansi"``.
        **kwargs: the auction, as for the PettingZoo env.
    """

    def __init__(
        self,
        num_auctions: int = 8,
        learner: int | None = 0,
        policies: Policy | Sequence[Policy | None] | None = None,
        seed: int | None = None,
        render_mode: str | None = None,
        **kwargs: Any,
    ):
        _check_num_auctions(num_auctions)
        core = build_core(**kwargs)
        self.driver = _SingleLearner(core, int(num_auctions), learner, policies)
        self.driver.seed(seed)
        self.num_auctions = int(num_auctions)
        super().__init__(self.num_auctions, core, render_mode)

    @property
    def learner(self) -> np.ndarray:
        """``(B,)`` the learner's seat in each running auction."""
        return self.driver.seat

    def reset(self) -> VecEnvObs:
        seed = self._take_seed()
        if seed is not None:
            self.driver.seed(seed)
        obs = self.driver.reset()
        self.auction = self.driver.auction
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return obs

    def step_wait(self) -> VecEnvStepReturn:
        if self.auction is None:
            raise InvalidActionError("call reset() before step()")
        a = _check_batch(
            self._actions, self.num_envs, self.core, lambda r: f"row {r} (auction {r})"
        )
        obs, rewards = self.driver.step(a)
        if self.auction.done:
            seats = self.driver.seat.copy()
            infos = self._finish_infos(obs, seats)
            for info, seat in zip(infos, seats.tolist()):
                info["learner"] = seat
            obs = self.driver.reset()
            self.auction = self.driver.auction
            dones = np.ones(self.num_envs, dtype=bool)
        else:
            infos = [{} for _ in range(self.num_envs)]
            dones = np.zeros(self.num_envs, dtype=bool)
        return obs, rewards.astype(np.float32), dones, infos


class SingleLearnerEnv(gymnasium.Env):
    """One auction, one learning bidder, the others fixed: a ``gymnasium.Env``.

    The episode has one step per phase (two for M and L, one for classical mechanisms);
    the learner's action is ignored in a phase where its ``acts_now`` flag is 0.

    Args:
        learner: the learner's bidder index, or ``None`` for a random seat per episode.
        policies: the other bidders' behaviour (see :class:`SingleLearnerVecEnv`).
        render_mode: ``None`` or ``"ansi"``.
        **kwargs: the auction, as for the PettingZoo env.
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        learner: int | None = 0,
        policies: Policy | Sequence[Policy | None] | None = None,
        render_mode: str | None = None,
        **kwargs: Any,
    ):
        check_render_mode(render_mode)
        self.render_mode = render_mode
        self.core = build_core(**kwargs)
        self.layout = self.core.layout
        self.driver = _SingleLearner(self.core, 1, learner, policies)
        self._seeded = False
        self.observation_space = self.layout.observation_space()
        self.action_space = self.layout.action_space("box")

    @property
    def learner(self) -> int:
        """The learner's seat in the running episode."""
        return int(self.driver.seat[0])

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Draw a new auction; ``options`` is accepted for the API and not read."""
        super().reset(seed=seed)
        if seed is not None or not self._seeded:
            self.driver.seed(seed)
            self._seeded = True
        obs = self.driver.reset()[0]
        return obs, self._phase_info()

    def _phase_info(self) -> dict[str, Any]:
        st = self.driver.auction
        return {
            "learner": self.learner,
            "phase": int(st.phase),
            "acts_now": bool(self.core.acting(st)[0, self.learner]),
        }

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        st = self.driver.auction
        if st is None or st.done:
            raise InvalidActionError(
                "the episode is over (or never began): call reset() before step()"
            )
        lay = self.layout
        a = check_action(
            f"learner bidder_{self.learner}", action, (lay.act_dim,), lay.describe_action()
        )[None, :]
        obs, reward = self.driver.step(a)
        if st.done:
            info = self.core.agent_infos(st, 0)[self.learner]
            info["learner"] = self.learner
        else:
            info = self._phase_info()
        return obs[0], float(reward[0]), bool(st.done), False, info

    def render(self) -> str | None:
        """``"ansi"``: a text table of the auction; ``None`` without a render mode."""
        return self.core.render_mode_text(self.render_mode, self.driver.auction, 0)

    def close(self) -> None:
        """Nothing to release."""
