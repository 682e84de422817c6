"""Train learning bidders with PPO: best response, self-play, independent learners.

Modes (``run.mode``):

* ``best_response``: one bidder (``best_response.learner``) learns with PPO in a
  :class:`~crowdauction.envs.vector.SingleLearnerVecEnv`; the others play fixed agents
  (``best_response.opponents``: truthful by default).
* ``self_play``: every bidder of every auction is a row of one
  :class:`~crowdauction.envs.vector.AuctionVecEnv`, and one PPO policy plays all of
  them (parameter sharing).
* ``independent``: one PPO policy per bidder, trained in alternation. In each round,
  bidders ``0..n-1`` in turn train for ``independent.round_steps`` timesteps in a fresh
  single-learner env against the others' *current* policies, which act
  deterministically and do not change during the turn. Rounds repeat until
  ``run.total_steps`` (summed over bidders) is reached. Each turn's env is seeded from
  ``(seed, round, bidder)``.

A run directory (``run.out/<name>``, a ``-1``, ``-2``... suffix added if taken) holds:

* ``config.json``: the resolved configuration (defaults and ``eps`` filled in);
* ``metrics.csv`` and ``tb/`` (TensorBoard): see :mod:`crowdauction.training.metrics`;
* ``checkpoints/step_<N>.ckpt``: written atomically every ``run.checkpoint_every``
  timesteps, at rollout boundaries (turn boundaries in independent mode);
* ``model.zip`` (``model_bidder<i>.zip`` in independent mode): the final model(s), and
  ``done.json`` once the run finished.

A checkpoint is one pickle holding the model(s) as stable-baselines3 zip bytes
(parameters and optimizer state), the step counter, the torch, numpy and Python RNG
states, the pickled vector env (its generators and the auctions in flight) and the
callback's bookkeeping. :func:`resume` restores all of it and trains on to the same
final step, so a resumed run reproduces the uninterrupted one; metric rows written
after the checkpoint are dropped before appending. Checkpoints are pickles: resume only
run directories you trust.

Interrupts: a ``KeyboardInterrupt`` (Ctrl-C) inside :func:`train` or :func:`resume`
comes out as :class:`TrainingInterrupted`, a ``KeyboardInterrupt`` that names the run
directory, the step reached and the last checkpoint. Nothing it leaves behind is
half-written: checkpoints, the configuration and the final models are written
atomically, ``metrics.csv`` gains whole lines only (a torn one, after a hard kill, is
ignored by the reader and dropped by :func:`resume`), and stray temporary files are
removed on resume.

Determinism: the same configuration and seed give the same metrics file on the same
machine; training runs with ``torch.set_num_threads(1)`` and seeds torch, numpy and
Python through stable-baselines3.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import pickle
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crowdauction.agents.base import Agent, profile_strategy, truthful_tables
from crowdauction.agents.best_response import best_response
from crowdauction.agents.heuristic import RandomAgent, ShadingAgent, TruthfulAgent
from crowdauction.agents.learned import CONFIG_FILE, LearnedAgent, model_file
from crowdauction.envs.core import spawn_seeds
from crowdauction.envs.layout import EnvLayout
from crowdauction.errors import InvalidConfigError
from crowdauction.mechanisms.crowdsourced import CrowdsourcedMechanism
from crowdauction.mechanisms.exact import Mechanism, evaluate
from crowdauction.mechanisms.knowledge import Knowledge
from crowdauction.training.config import (
    TrainConfig,
    build_knowledge,
    build_mechanism,
    build_prior,
    config_from_dict,
    load_config,
    save_config,
    validate,
)
from crowdauction.training.io import atomic_write_bytes, atomic_write_text, remove_stale_temps
from crowdauction.training.metrics import MetricsWriter, RolloutStats, read_metrics

__all__ = [
    "RunResult",
    "TrainingInterrupted",
    "train",
    "resume",
    "exact_metrics",
    "latest_checkpoint",
    "CHECKPOINT_DIR",
    "METRICS_FILE",
]

log = logging.getLogger(__name__)

#: Names inside a run directory.
CHECKPOINT_DIR = "checkpoints"
METRICS_FILE = "metrics.csv"
TB_DIR = "tb"
DONE_FILE = "done.json"
_CKPT_VERSION = 1


@dataclass
class RunResult:
    """What :func:`train` and :func:`resume` return.

    Attributes:
        run_dir: the run directory.
        metrics: the rows of ``metrics.csv`` (see :mod:`crowdauction.training.metrics`).
        model_path: the final model (bidder 0's in independent mode).
        model_paths: every final model (one per bidder in independent mode).
        steps: timesteps trained in total.
        steps_per_second: timesteps per wall-clock second of this call, exact
            evaluations included.
    """

    run_dir: Path
    metrics: list[dict[str, float]]
    model_path: Path
    model_paths: list[Path] = field(default_factory=list)
    steps: int = 0
    steps_per_second: float = float("nan")


class TrainingInterrupted(KeyboardInterrupt):
    """A ``KeyboardInterrupt`` (Ctrl-C) stopped :func:`train` or :func:`resume`.

    It is a ``KeyboardInterrupt``, so code that catches those still does; its message
    says how to continue (``crowdauction train --resume RUN_DIR``, or :func:`resume`).

    Attributes:
        run_dir: the run directory.
        step: the timestep the run had reached (None before training started).
        checkpoint_step: the step of the last checkpoint on disk (None if there is none).
        resumable: whether :func:`resume` can continue the run (it has a configuration
            and has not finished).
    """

    def __init__(
        self,
        run_dir: Path,
        step: int | None,
        checkpoint_step: int | None,
        resumable: bool,
    ):
        self.run_dir = Path(run_dir)
        self.step = step
        self.checkpoint_step = checkpoint_step
        self.resumable = resumable
        super().__init__(self._message())

    def _message(self) -> str:
        where = "" if self.step is None else f" at step {self.step}"
        if not self.resumable:
            if (self.run_dir / DONE_FILE).exists():
                return f"interrupted after the run finished; its results are in {self.run_dir}"
            return (
                f"interrupted{where} before {self.run_dir} was set up; nothing to resume, "
                "start a new run with: crowdauction train CONFIG.toml"
            )
        if self.checkpoint_step is None:
            return (
                f"interrupted{where}, before the first checkpoint; restart the run from "
                f"step 0 with: crowdauction train --resume {self.run_dir}"
            )
        return (
            f"interrupted{where}; continue from the checkpoint at step "
            f"{self.checkpoint_step} with: crowdauction train --resume {self.run_dir}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.run_dir, self.step, self.checkpoint_step, self.resumable))


def _interrupted(run_dir: Path, step: int | None) -> TrainingInterrupted:
    """What an interrupt in ``run_dir`` leaves behind, as a :class:`TrainingInterrupted`."""
    resumable = (run_dir / CONFIG_FILE).exists() and not (run_dir / DONE_FILE).exists()
    ckpt = latest_checkpoint(run_dir)
    ckpt_step = None if ckpt is None else int(ckpt.stem.removeprefix("step_"))
    return TrainingInterrupted(run_dir, step, ckpt_step, resumable)


# -- building blocks ------------------------------------------------------------------


@dataclass
class _Setup:
    cfg: TrainConfig
    knowledge: Knowledge
    mech: Mechanism
    layout: EnvLayout


def _setup(cfg: TrainConfig) -> _Setup:
    prior = build_prior(cfg)
    knowledge = build_knowledge(cfg, prior)
    mech = build_mechanism(cfg, prior)
    return _Setup(cfg, knowledge, mech, EnvLayout(prior.space))


def _fingerprint(s: _Setup) -> str:
    """What a checkpoint must match to be resumed: prior, knowledge, mechanism, mode."""
    h = hashlib.sha256()
    h.update(s.knowledge.prior.key())
    for cells in s.knowledge.cells:
        h.update(np.ascontiguousarray(cells, dtype=np.int64).tobytes())
    h.update(json.dumps(asdict(s.cfg.mechanism), sort_keys=True, default=str).encode())
    h.update(json.dumps([s.cfg.run.mode, s.cfg.algo.n_envs, s.layout.obs_dim]).encode())
    return h.hexdigest()[:16]


def _opponents(s: _Setup) -> list[Agent | None]:
    """The fixed agents of best-response mode (``None`` at the learner's seat)."""
    br = s.cfg.best_response
    n = s.knowledge.n
    names = [br.opponents] * n if isinstance(br.opponents, str) else list(br.opponents)
    seeds = spawn_seeds(s.cfg.run.seed, n)
    out: list[Agent | None] = []
    for j, name in enumerate(names):
        if j == br.learner:
            out.append(None)
        elif name == "truthful":
            out.append(TruthfulAgent(s.layout, j))
        elif name == "random":
            out.append(RandomAgent(s.layout, j, seed=seeds[j]))
        else:
            out.append(ShadingAgent(br.shading_fraction, s.layout, j))
    return out


def _env_kwargs(s: _Setup) -> dict[str, Any]:
    return {
        "prior": s.knowledge.prior,
        "knowledge": s.knowledge,
        "mechanism": s.mech,
        "reward": s.cfg.algo.reward,
    }


def _make_model(s: _Setup, env: Any, seed: int) -> Any:
    from stable_baselines3 import PPO

    a = s.cfg.algo
    return PPO(
        "MlpPolicy",
        env,
        learning_rate=a.learning_rate,
        n_steps=a.n_steps,
        batch_size=a.batch_size,
        n_epochs=a.n_epochs,
        gamma=a.gamma,
        gae_lambda=a.gae_lambda,
        clip_range=a.clip_range,
        ent_coef=a.ent_coef,
        vf_coef=a.vf_coef,
        max_grad_norm=a.max_grad_norm,
        policy_kwargs={"net_arch": list(a.net_arch), "log_std_init": a.log_std_init},
        seed=seed,
        device=a.device,
        verbose=0,
    )


def _model_bytes(model: Any) -> bytes:
    buf = io.BytesIO()
    model.save(buf)
    return buf.getvalue()


def _load_model(data: bytes, device: str) -> Any:
    from stable_baselines3 import PPO

    return PPO.load(io.BytesIO(data), device=device)


def _rng_state() -> dict[str, Any]:
    import torch

    return {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def exact_metrics(s: _Setup, agents: Sequence[Agent], learners: Sequence[int]) -> dict[str, float]:
    """Exact evaluation of a profile of agents, averaged over the learning bidders.

    Returns ``eval/truthfulness_rate`` (probability, over the prior, that a learner's
    valuation report is truthful), ``eval/belief_tv`` (expected total-variation distance
    of its belief report to the truthful one, over cells; NaN for classical
    mechanisms), ``eval/regret`` (expected gain of its exact best response),
    ``eval/utility`` and ``eval/revenue``.
    """
    kn, mech = s.knowledge, s.mech
    strategy = profile_strategy(agents, kn, mech)
    res = evaluate(mech, kn, strategy)
    truth, tv, reg, util = [], [], [], []
    for i in learners:
        p = kn.cell_prob[i]
        C = kn.num_cells(i)
        truth.append(float(p @ strategy.valuation[i][np.arange(C), kn.cell_value[i]]))
        if isinstance(mech, CrowdsourcedMechanism):
            want = truthful_tables(kn, i, mech)[1]
            tv.append(float(p @ (0.5 * np.abs(strategy.belief[i] - want).sum(axis=1))))
        br = best_response(kn, mech, strategy, i)
        reg.append(max(0.0, br.utility - float(res.utility[i])))
        util.append(float(res.utility[i]))
    return {
        "eval/truthfulness_rate": float(np.mean(truth)),
        "eval/belief_tv": float(np.mean(tv)) if tv else float("nan"),
        "eval/regret": float(np.mean(reg)),
        "eval/utility": float(np.mean(util)),
        "eval/revenue": float(res.revenue),
    }


def _next_mark(step: int, every: int) -> int | None:
    """The first multiple of ``every`` above ``step`` (None when ``every`` is 0)."""
    return None if every <= 0 else (step // every + 1) * every


def _mark_due(step: int, mark: int | None) -> bool:
    return mark is not None and step >= mark


# -- the callback ---------------------------------------------------------------------


def _make_callback_class() -> type:
    """The SB3 callback class (built lazily so that importing this module stays cheap)."""
    from stable_baselines3.common.callbacks import BaseCallback

    class _RunCallback(BaseCallback):
        """Metrics per rollout, exact evaluations and checkpoints at rollout starts.

        A rollout's training metrics are held until the next rollout starts (after the
        PPO update), then written in one row with the exact evaluation if one is due,
        and then the checkpoint is taken; so a checkpoint at step ``S`` follows every
        row up to ``S`` and precedes every later one.
        """

        def __init__(self, driver: _Driver, stats: RolloutStats):
            super().__init__(verbose=0)
            self.driver = driver
            self.stats = stats
            self.pending: dict[str, float] | None = None

        def _on_rollout_start(self) -> None:
            self.driver.rollout_boundary(self)
            self.stats.reset()

        def _on_step(self) -> bool:
            loc = self.locals
            self.stats.add(
                loc["obs_tensor"].cpu().numpy(),
                loc["clipped_actions"],
                loc["rewards"],
                loc["dones"],
                loc["infos"],
            )
            return True

        def _on_rollout_end(self) -> None:
            self.pending = self.stats.row()
            self.driver.progress_update(self.driver.global_step(), self.pending)

        def _on_training_end(self) -> None:
            self.driver.training_end(self)

    return _RunCallback


class _Driver:
    """The state of one training run shared by the callback, checkpoints and resume."""

    def __init__(
        self,
        s: _Setup,
        run_dir: Path,
        writer: MetricsWriter,
        extra_callbacks: Sequence[Any],
        progress: bool,
    ):
        self.s = s
        self.run_dir = run_dir
        self.writer = writer
        self.extra_callbacks = list(extra_callbacks)
        cfg = s.cfg.run
        self.next_ckpt: int | None = _next_mark(0, cfg.checkpoint_every)
        self.next_eval: int | None = _next_mark(0, cfg.eval_every)
        self.models: list[Any] = []
        self.venv: Any = None
        self.learner_row = -1  # the "learner" column
        self.offset = 0  # global steps before the current learn() call (independent)
        self.turn_start = 0  # model.num_timesteps when the current learn() began
        self.turn = 0  # next (round * n + bidder) turn in independent mode
        self.current = 0  # index of the model being trained
        self.inside_ckpt = True  # checkpoints inside learn() (not in independent mode)
        self._progress = None
        self._task = None
        if progress:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.completed:>9.0f}/{task.total:.0f} steps"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )

    # progress bar -----------------------------------------------------------------

    def progress_start(self, start: int) -> None:
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task(
                "training", total=self.s.cfg.run.total_steps, completed=start
            )

    def progress_update(self, step: int, row: dict[str, float]) -> None:
        if self._progress is not None and self._task is not None:
            rate = row.get("train/truthfulness_rate", float("nan"))
            desc = f"truthful {rate:.2f}" if not math.isnan(rate) else "training"
            self._progress.update(
                self._task, completed=min(step, self.s.cfg.run.total_steps), description=desc
            )

    def progress_stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()

    # steps ------------------------------------------------------------------------

    def global_step(self) -> int:
        model = self.models[self.current]
        return self.offset + int(model.num_timesteps) - self.turn_start

    # agents -----------------------------------------------------------------------

    def eval_agents(self) -> tuple[list[Agent], list[int]]:
        s, mode = self.s, self.s.cfg.run.mode
        n = s.knowledge.n
        if mode == "best_response":
            learner = s.cfg.best_response.learner
            agents = _opponents(s)
            agents[learner] = LearnedAgent(self.models[0], s.layout, learner)
            return agents, [learner]  # type: ignore[return-value]
        if mode == "self_play":
            return [LearnedAgent(self.models[0], s.layout, i) for i in range(n)], list(range(n))
        return [LearnedAgent(self.models[i], s.layout, i) for i in range(n)], list(range(n))

    # rows, evaluations, checkpoints ---------------------------------------------------

    def flush(self, cb: Any, final: bool = False) -> None:
        """Write the pending row (with an exact evaluation when due or final)."""
        step = self.global_step()
        row: dict[str, Any] | None = None
        if cb is not None and cb.pending is not None:
            row = {"step": step, "learner": self.learner_row, **cb.pending}
            cb.pending = None
        if final or _mark_due(step, self.next_eval):
            row = row if row is not None else {"step": step, "learner": self.learner_row}
            agents, learners = self.eval_agents()
            row.update(exact_metrics(self.s, agents, learners))
            self.next_eval = _next_mark(step, self.s.cfg.run.eval_every)
        if row is not None:
            self.writer.write(row)

    def rollout_boundary(self, cb: Any) -> None:
        self.flush(cb)
        step = self.global_step()
        if self.inside_ckpt and _mark_due(step, self.next_ckpt):
            self.next_ckpt = _next_mark(step, self.s.cfg.run.checkpoint_every)
            self.checkpoint(step)

    def training_end(self, cb: Any) -> None:
        # In independent mode the final evaluation waits for the last turn.
        self.flush(cb, final=self.s.cfg.run.mode != "independent")

    def checkpoint(self, step: int) -> Path:
        """Write ``checkpoints/step_<step>.ckpt`` atomically."""
        env_blob = None
        if self.venv is not None:
            try:
                env_blob = pickle.dumps(self.venv)
            except (pickle.PicklingError, TypeError, AttributeError) as e:
                log.warning(
                    "vector env cannot be pickled (%s); resume will start fresh auctions", e
                )
        state = {
            "version": _CKPT_VERSION,
            "mode": self.s.cfg.run.mode,
            "fingerprint": _fingerprint(self.s),
            "step": step,
            "models": [_model_bytes(m) for m in self.models],
            "env": env_blob,
            "rng": _rng_state(),
            "next_ckpt": self.next_ckpt,
            "next_eval": self.next_eval,
            "turn": self.turn,
        }
        path = self.run_dir / CHECKPOINT_DIR / f"step_{step:010d}.ckpt"
        atomic_write_bytes(path, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
        log.info("checkpoint at step %d: %s", step, path)
        return path


# -- training loops -------------------------------------------------------------------


def _callbacks(driver: _Driver, stats: RolloutStats) -> Any:
    from stable_baselines3.common.callbacks import CallbackList

    cls = _make_callback_class()
    return CallbackList([cls(driver, stats), *driver.extra_callbacks])


def _row_bidders(s: _Setup, venv: Any) -> np.ndarray:
    mode = s.cfg.run.mode
    if mode == "self_play":
        return np.tile(np.arange(s.knowledge.n), venv.num_envs // s.knowledge.n)
    return np.full(venv.num_envs, getattr(venv.driver, "fixed", 0) or 0, dtype=np.int64)


def _shared_env(s: _Setup) -> Any:
    from crowdauction.envs.vector import AuctionVecEnv, SingleLearnerVecEnv

    cfg = s.cfg
    if cfg.run.mode == "self_play":
        return AuctionVecEnv(num_auctions=cfg.algo.n_envs, seed=cfg.run.seed, **_env_kwargs(s))
    return SingleLearnerVecEnv(
        num_auctions=cfg.algo.n_envs,
        learner=cfg.best_response.learner,
        policies=_opponents(s),
        seed=cfg.run.seed,
        **_env_kwargs(s),
    )


def _train_shared(driver: _Driver, resume_state: dict[str, Any] | None) -> None:
    """Best-response and self-play: one model, one learn() call."""
    s = driver.s
    total = s.cfg.run.total_steps
    if resume_state is None:
        venv = _shared_env(s)
        model = _make_model(s, venv, s.cfg.run.seed)
    else:
        model = _load_model(resume_state["models"][0], s.cfg.algo.device)
        if resume_state["env"] is not None:
            venv = pickle.loads(resume_state["env"])
            model.set_env(venv, force_reset=False)
        else:
            venv = _shared_env(s)
            venv.seed(s.cfg.run.seed + int(resume_state["step"]))
            model.set_env(venv, force_reset=True)
        _set_rng_state(resume_state["rng"])
    driver.models = [model]
    driver.venv = venv
    driver.learner_row = s.cfg.best_response.learner if s.cfg.run.mode == "best_response" else -1
    stats = RolloutStats(s.layout, _row_bidders(s, venv))
    remaining = max(0, total - int(model.num_timesteps))
    model.learn(
        remaining, callback=_callbacks(driver, stats), reset_num_timesteps=resume_state is None
    )


def _turn_env(s: _Setup, rnd: int, bidder: int, models: Sequence[Any]) -> Any:
    from crowdauction.envs.vector import SingleLearnerVecEnv

    n = s.knowledge.n
    policies = [None if j == bidder else LearnedAgent(models[j], s.layout, j) for j in range(n)]
    seed = int(np.random.SeedSequence([s.cfg.run.seed, rnd, bidder]).generate_state(1)[0])
    return SingleLearnerVecEnv(
        num_auctions=s.cfg.algo.n_envs,
        learner=bidder,
        policies=policies,
        seed=seed,
        **_env_kwargs(s),
    )


def _throwaway_env(s: _Setup, bidder: int) -> Any:
    """An env that only tells a new model its spaces and number of rows."""
    from crowdauction.envs.vector import SingleLearnerVecEnv

    return SingleLearnerVecEnv(num_auctions=s.cfg.algo.n_envs, learner=bidder, **_env_kwargs(s))


def _train_independent(driver: _Driver, resume_state: dict[str, Any] | None) -> None:
    """Independent learners: alternating turns of ``round_steps`` per bidder."""
    s = driver.s
    n = s.knowledge.n
    total = s.cfg.run.total_steps
    # One 32-bit seed per bidder's model (SB3 seeds numpy's legacy generator with it).
    seeds = [
        int(np.random.SeedSequence([s.cfg.run.seed, i]).generate_state(1)[0]) for i in range(n)
    ]
    driver.inside_ckpt = False
    if resume_state is None:
        # Each model starts on a throwaway env; every turn sets a fresh, seeded one.
        models = [_make_model(s, _throwaway_env(s, i), seeds[i]) for i in range(n)]
        # Model construction reseeds the global generators; fix them once for the run.
        from stable_baselines3.common.utils import set_random_seed

        set_random_seed(s.cfg.run.seed)
        step = 0
    else:
        models = [_load_model(b, s.cfg.algo.device) for b in resume_state["models"]]
        _set_rng_state(resume_state["rng"])
        step = int(resume_state["step"])
        driver.turn = int(resume_state["turn"])
    driver.models = models
    while step < total:
        rnd, bidder = divmod(driver.turn, n)
        model = models[bidder]
        env = _turn_env(s, rnd, bidder, models)
        model.set_env(env, force_reset=True)
        driver.current = bidder
        driver.offset = step
        driver.turn_start = int(model.num_timesteps)
        driver.learner_row = bidder
        stats = RolloutStats(s.layout, np.full(env.num_envs, bidder))
        model.learn(
            s.cfg.independent.round_steps,
            callback=_callbacks(driver, stats),
            reset_num_timesteps=False,
        )
        step = driver.global_step()
        driver.turn += 1
        if _mark_due(step, driver.next_eval):
            driver.flush(None)
        if _mark_due(step, driver.next_ckpt) and step < total:
            driver.next_ckpt = _next_mark(step, s.cfg.run.checkpoint_every)
            driver.checkpoint(step)
    driver.offset = step
    driver.turn_start = int(models[driver.current].num_timesteps)
    driver.flush(None, final=True)


# -- public API -----------------------------------------------------------------------


def _fresh_dir(out: Path, name: str) -> Path:
    path = out / name
    k = 0
    # A non-empty folder, or a file, under the name: take the next free name.
    while path.exists() and (not path.is_dir() or any(path.iterdir())):
        k += 1
        path = out / f"{name}-{k}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _as_config(config: TrainConfig | str | Path | dict[str, Any]) -> TrainConfig:
    if isinstance(config, TrainConfig):
        validate(config)  # it may have been edited since it was loaded
        return config
    if isinstance(config, dict):
        return config_from_dict(config)
    return load_config(config)


def _run(
    s: _Setup,
    run_dir: Path,
    resume_state: dict[str, Any] | None,
    callbacks: Sequence[Any],
    progress: bool,
    restart: bool = False,
) -> RunResult:
    import torch

    keep = None if resume_state is None else int(resume_state["step"])
    if restart:
        keep = 0  # a resumed run without a checkpoint: drop every earlier row and event
    writer = MetricsWriter(run_dir / METRICS_FILE, run_dir / TB_DIR, keep_until=keep)
    driver = _Driver(s, run_dir, writer, callbacks, progress)
    if resume_state is not None:
        driver.next_ckpt = resume_state["next_ckpt"]
        driver.next_eval = resume_state["next_eval"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    start = 0 if resume_state is None else int(resume_state["step"])
    t0 = time.perf_counter()
    driver.progress_start(start)
    try:
        if s.cfg.run.mode == "independent":
            _train_independent(driver, resume_state)
        else:
            _train_shared(driver, resume_state)
        # Wall clock of this call, exact evaluations included; TensorBoard only.
        elapsed = time.perf_counter() - t0
        steps = driver.global_step()
        rate = (steps - start) / elapsed if elapsed > 0 else float("nan")
        writer.scalar("time/steps_per_second", rate, steps)
    except KeyboardInterrupt as e:
        if isinstance(e, TrainingInterrupted):
            raise
        raise _interrupted(run_dir, driver.global_step() if driver.models else start) from e
    finally:
        driver.progress_stop()
        torch.set_num_threads(threads)
        writer.close()
    paths = []
    if s.cfg.run.mode == "independent":
        for i, m in enumerate(driver.models):
            paths.append(run_dir / model_file(i))
            atomic_write_bytes(paths[-1], _model_bytes(m))
    else:
        paths.append(run_dir / model_file())
        atomic_write_bytes(paths[-1], _model_bytes(driver.models[0]))
    atomic_write_text(run_dir / DONE_FILE, json.dumps({"steps": steps}) + "\n")
    log.info(
        "trained %d steps in %.1f s (%.0f steps/s); run directory %s",
        steps - start,
        elapsed,
        rate,
        run_dir,
    )
    return RunResult(
        run_dir=run_dir,
        metrics=read_metrics(run_dir / METRICS_FILE),
        model_path=paths[0],
        model_paths=paths,
        steps=steps,
        steps_per_second=rate,
    )


def train(
    config: TrainConfig | str | Path | dict[str, Any],
    callbacks: Sequence[Any] = (),
    progress: bool = False,
) -> RunResult:
    """Train according to ``config`` in a new run directory.

    Args:
        config: a :class:`TrainConfig`, a TOML/JSON file, or a nested dict; it is
            validated (and the prior and mechanism built) before anything is written.
        callbacks: extra stable-baselines3 callbacks, run after the harness's own.
        progress: show a rich progress bar with the current truthfulness rate.

    Returns:
        A :class:`RunResult`.

    Raises:
        TrainingInterrupted: on Ctrl-C once the run directory exists; it names the
            directory, which :func:`resume` continues.
    """
    cfg = _as_config(config)
    s = _setup(cfg)
    run_dir = _fresh_dir(Path(cfg.run.out), cfg.run_name())
    try:
        save_config(cfg, run_dir / CONFIG_FILE)
        log.info(
            "run directory %s (%s, %s, %d steps)",
            run_dir,
            cfg.run.mode,
            cfg.mechanism.name,
            cfg.run.total_steps,
        )
        return _run(s, run_dir, None, callbacks, progress)
    except KeyboardInterrupt as e:
        if isinstance(e, TrainingInterrupted):
            raise
        raise _interrupted(run_dir, None) from e


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint with the highest step in a run directory, or ``None``."""
    files = sorted((Path(run_dir) / CHECKPOINT_DIR).glob("step_*.ckpt"))
    return files[-1] if files else None


def resume(run_dir: str | Path, callbacks: Sequence[Any] = (), progress: bool = False) -> RunResult:
    """Continue an interrupted run from its last checkpoint to its final step count.

    Stale temporary files are removed; metric rows after the checkpoint are dropped.
    Without a checkpoint the run restarts from step 0 in the same directory.

    Raises:
        InvalidConfigError: if ``run_dir`` holds no configuration, or the run is done.
        TrainingInterrupted: on Ctrl-C; the run can be resumed again.
    """
    run_dir = Path(run_dir)
    cfg_path = run_dir / CONFIG_FILE
    if not cfg_path.exists():
        raise InvalidConfigError(f"{run_dir} is not a run directory: it has no {CONFIG_FILE}")
    if (run_dir / DONE_FILE).exists():
        raise InvalidConfigError(
            f"the run in {run_dir} already finished; start a new one with crowdauction train"
        )
    try:
        return _resume(run_dir, cfg_path, callbacks, progress)
    except KeyboardInterrupt as e:
        if isinstance(e, TrainingInterrupted):
            raise
        raise _interrupted(run_dir, None) from e


def _resume(run_dir: Path, cfg_path: Path, callbacks: Sequence[Any], progress: bool) -> RunResult:
    gone = remove_stale_temps(run_dir)
    if gone:
        log.info("removed %d stale temporary files", len(gone))
    cfg = load_config(cfg_path)
    s = _setup(cfg)
    ckpt = latest_checkpoint(run_dir)
    state = None
    if ckpt is not None:
        try:
            state = pickle.loads(ckpt.read_bytes())
        except (pickle.UnpicklingError, EOFError, OSError) as e:
            raise InvalidConfigError(
                f"checkpoint {ckpt} cannot be read: {e}; delete it to resume from an earlier one"
            ) from e
        if (
            not isinstance(state, dict)
            or state.get("version") != _CKPT_VERSION
            or state.get("mode") != cfg.run.mode
        ):
            raise InvalidConfigError(
                f"checkpoint {ckpt} does not belong to this run's configuration"
            )
        if state.get("fingerprint") != _fingerprint(s):
            raise InvalidConfigError(
                f"checkpoint {ckpt} was written for another prior, knowledge or mechanism "
                f"than {cfg_path} now gives (a prior file or config.json changed since); "
                "restore them, or start a new run with crowdauction train"
            )
        log.info("resuming %s from step %d", run_dir, state["step"])
    else:
        log.info("no checkpoint in %s: restarting from step 0", run_dir)
    return _run(s, run_dir, state, callbacks, progress, restart=state is None)
