"""Learned against truthful play: train learning bidders, measure them exactly.

For each mechanism and each learning method the benchmark trains bidders over several
seeds, turns what they learned into a :class:`~crowdauction.mechanisms.exact.Strategy`
(their report in every knowledge cell) and measures it exactly with
:func:`~crowdauction.evaluation.verify.profile_check`: revenue, each bidder's utility
loss against its exact best response, truthfulness rate and belief distance. The
spread over seeds (mean, standard deviation, min, max) sits next to truthful play's
exact figures.

Methods:

* ``self_play``: one PPO policy shared by every bidder (``training.train``, mode
  ``self_play``);
* ``best_response``: PPO for one bidder against truthful opponents (mode
  ``best_response``);
* ``hedge``: multiplicative weights over valuation reports for every bidder at once,
  with exact full-information feedback (:class:`crowdauction.agents.hedge.Hedge`);
  the mixtures after the last round (or, optionally, the time-averaged ones) are the
  learned play. With exact feedback and uniform
  initial weights Hedge is deterministic, so it runs once, whatever the seed count.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from crowdauction.errors import InvalidConfigError
from crowdauction.evaluation.verify import ProfileCheck, profile_check
from crowdauction.mechanisms.exact import Mechanism, Strategy
from crowdauction.mechanisms.knowledge import Knowledge

__all__ = [
    "METHODS",
    "Budget",
    "Spread",
    "RunFigures",
    "BenchmarkRow",
    "Benchmark",
    "summarise",
    "run_hedge",
    "run_benchmark",
]

logger = logging.getLogger(__name__)

#: Learning methods the benchmark knows, in display order.
METHODS = ("self_play", "best_response", "hedge")


@dataclass
class Budget:
    """How much learning the benchmark does.

    Attributes:
        seeds: seeds per (mechanism, method).
        ppo_steps: environment steps per PPO run (each bidder-row step counts).
        hedge_rounds: Hedge rounds per run.
        hedge_eta: Hedge learning rate.
        methods: which of :data:`METHODS` to run.
        ppo_n_envs: auctions stepped at once in PPO's vector env.
        curve_points: exact evaluations per PPO run for the training curves.
        hedge_profile: which Hedge profile is the learned play: ``"last"`` (the
            mixtures after the last round) or ``"average"`` (time-averaged mixtures).
    """

    seeds: int = 3
    ppo_steps: int = 20_000
    hedge_rounds: int = 60
    hedge_eta: float = 2.0
    methods: tuple[str, ...] = METHODS
    ppo_n_envs: int = 64
    curve_points: int = 4
    hedge_profile: str = "last"

    def __post_init__(self) -> None:
        if int(self.seeds) != self.seeds or self.seeds < 1:
            raise InvalidConfigError(
                f"benchmark seeds must be a positive integer, got {self.seeds!r}"
            )
        for name, v in (
            ("ppo_steps", self.ppo_steps),
            ("hedge_rounds", self.hedge_rounds),
            ("ppo_n_envs", self.ppo_n_envs),
            ("curve_points", self.curve_points),
        ):
            if int(v) != v or v < 1:
                raise InvalidConfigError(f"benchmark {name} must be a positive integer, got {v!r}")
        if not (np.isfinite(self.hedge_eta) and self.hedge_eta > 0):
            raise InvalidConfigError(
                f"hedge_eta must be positive and finite, got {self.hedge_eta!r}"
            )
        if self.hedge_profile not in ("last", "average"):
            raise InvalidConfigError(
                f"hedge_profile must be 'last' or 'average', got {self.hedge_profile!r}"
            )
        bad = [m for m in self.methods if m not in METHODS]
        if bad or not self.methods:
            raise InvalidConfigError(
                f"unknown benchmark methods {bad or list(self.methods)}; expected a non-empty "
                f"subset of {list(METHODS)}"
            )
        self.methods = tuple(self.methods)


@dataclass
class Spread:
    """Mean, standard deviation (ddof 0), min and max of one figure over seeds."""

    mean: float
    std: float
    min: float
    max: float

    @classmethod
    def of(cls, xs: Sequence[float]) -> Spread:
        a = np.asarray(list(xs), dtype=np.float64)
        if a.size == 0 or np.all(np.isnan(a)):
            nan = float("nan")
            return cls(nan, nan, nan, nan)
        a = a[~np.isnan(a)]
        return cls(float(a.mean()), float(a.std()), float(a.min()), float(a.max()))


@dataclass
class RunFigures:
    """Exact figures of one learning run.

    Attributes:
        mechanism: display name of the mechanism.
        method: one of :data:`METHODS`.
        seed: the run's seed.
        revenue: exact expected revenue of the learned profile.
        utility_loss: mean over bidders of the cell-weighted utility loss.
        worst_loss: the largest loss of any bidder in any cell.
        truthfulness: mean over bidders of the truthfulness rate.
        belief_distance: mean over bidders of the belief distance (NaN if none asked).
        learners: the bidders who learned (the others played truthfully).
        run_dir: the training run directory, if any.
        curve: training-curve points ``{"step": [...], "eval/truthfulness": [...], ...}``.
    """

    mechanism: str
    method: str
    seed: int
    revenue: float
    utility_loss: float
    worst_loss: float
    truthfulness: float
    belief_distance: float
    learners: list[int]
    run_dir: str | None = None
    curve: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def from_check(
        cls,
        mechanism: str,
        method: str,
        seed: int,
        check: ProfileCheck,
        learners: Sequence[int],
        run_dir: str | None = None,
        curve: dict[str, list[float]] | None = None,
    ) -> RunFigures:
        """Figures averaged over the learning bidders only."""
        ls = list(learners)
        return cls(
            mechanism=mechanism,
            method=method,
            seed=seed,
            revenue=check.revenue,
            utility_loss=float(np.mean(check.utility_loss[ls])),
            worst_loss=float(np.max(check.worst_loss[ls])),
            truthfulness=float(np.mean(check.truthfulness[ls])),
            belief_distance=float(np.mean(check.belief_distance[ls])),
            learners=ls,
            run_dir=run_dir,
            curve=curve or {},
        )


@dataclass
class BenchmarkRow:
    """Spread over seeds of one (mechanism, method) pair, beside truthful play."""

    mechanism: str
    method: str
    seeds: int
    revenue: Spread
    utility_loss: Spread
    truthfulness: Spread
    belief_distance: Spread
    truthful_revenue: float
    truthful_loss: float


@dataclass
class Benchmark:
    """Every run and the summary rows."""

    runs: list[RunFigures]
    rows: list[BenchmarkRow]
    truthful: dict[str, ProfileCheck]
    budget: Budget

    def row(self, mechanism: str, method: str) -> BenchmarkRow:
        for r in self.rows:
            if r.mechanism == mechanism and r.method == method:
                return r
        raise KeyError(f"no benchmark row ({mechanism!r}, {method!r})")

    def to_dict(self) -> dict:
        return {
            "budget": asdict(self.budget),
            "rows": [asdict(r) for r in self.rows],
            "runs": [{k: v for k, v in asdict(r).items() if k != "curve"} for r in self.runs],
            "truthful": {
                k: {"revenue": c.revenue, "utility_loss": c.utility_loss.tolist()}
                for k, c in self.truthful.items()
            },
        }


def summarise(
    runs: Sequence[RunFigures], truthful: Mapping[str, ProfileCheck], budget: Budget
) -> Benchmark:
    """Group runs by (mechanism, method) and compute the spreads."""
    rows = []
    keys: list[tuple[str, str]] = []
    for r in runs:
        if (r.mechanism, r.method) not in keys:
            keys.append((r.mechanism, r.method))
    for mech, method in keys:
        group = [r for r in runs if r.mechanism == mech and r.method == method]
        t = truthful[mech]
        rows.append(
            BenchmarkRow(
                mechanism=mech,
                method=method,
                seeds=len(group),
                revenue=Spread.of([r.revenue for r in group]),
                utility_loss=Spread.of([r.utility_loss for r in group]),
                truthfulness=Spread.of([r.truthfulness for r in group]),
                belief_distance=Spread.of([r.belief_distance for r in group]),
                truthful_revenue=t.revenue,
                truthful_loss=float(np.mean(t.utility_loss)),
            )
        )
    return Benchmark(list(runs), rows, dict(truthful), budget)


# -- running the benchmark ------------------------------------------------------------


class BenchmarkProgress(Protocol):
    """Progress reports of :func:`run_benchmark` (one ``advance`` per learning run)."""

    def advance(self, description: str) -> None: ...

    def describe(self, description: str) -> None: ...


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


def _hedge_checkpoints(rounds: int, points: int = 5) -> list[int]:
    """Round counts after which the Hedge curve is measured (increasing, ending at T)."""
    marks = sorted({max(1, round(rounds * (k + 1) / points)) for k in range(points)})
    return marks


def run_hedge(
    knowledge: Knowledge, mech: Mechanism, budget: Budget
) -> tuple[Strategy, dict[str, list[float]]]:
    """Hedge for every bidder at once; the learned profile and its curve.

    The learned profile is the last or the time-averaged one (``budget.hedge_profile``);
    the curve measures that profile exactly (truthfulness and utility loss, mean over
    bidders) at a few round counts, starting from the uniform mixtures.
    """
    from crowdauction.agents.hedge import Hedge

    hedge = Hedge(knowledge, mech, learners=list(range(knowledge.n)), eta=budget.hedge_eta)
    curve: dict[str, list[float]] = {"step": [], "truthfulness": [], "utility_loss": []}
    done = 0
    pick = hedge.last if budget.hedge_profile == "last" else hedge.average
    profile = pick()
    for mark in [0, *_hedge_checkpoints(budget.hedge_rounds)]:
        if mark > done:
            hedge.run(mark - done)
            done = mark
        profile = pick()
        check = profile_check(mech, knowledge, profile)
        curve["step"].append(float(done))
        curve["truthfulness"].append(float(np.mean(check.truthfulness)))
        curve["utility_loss"].append(float(np.mean(check.utility_loss)))
    return profile, curve


def run_benchmark(
    knowledge: Knowledge,
    mechanisms: Mapping[str, Mechanism],
    configs: Mapping[str, Any],
    budget: Budget,
    out_dir: str | Path,
    seed: int = 0,
    progress: BenchmarkProgress | None = None,
) -> tuple[Benchmark, dict[tuple[str, str, int], Strategy]]:
    """Train and measure every (mechanism, method, seed) of the budget.

    Args:
        knowledge: prior and partitions (must match the configurations').
        mechanisms: display name -> mechanism (as the configurations build it).
        configs: display name -> training configuration (``TrainConfig``); its
            ``[run]`` and ``[algo]`` budget fields are overridden by ``budget``.
        budget: seeds, steps, rounds and methods.
        out_dir: parent folder of the training run directories.
        seed: the first seed; PPO runs use ``seed, seed + 1, ...``.
        progress: receives one ``advance`` per finished run.

    Returns:
        ``(benchmark, strategies)`` with the learned profile of every run, keyed by
        ``(mechanism, method, seed)``.
    """
    out_dir = Path(out_dir)
    runs: list[RunFigures] = []
    strategies: dict[tuple[str, str, int], Strategy] = {}
    truthful = {
        name: profile_check(mech, knowledge, Strategy.truthful(knowledge, mech))
        for name, mech in mechanisms.items()
    }
    for name, mech in mechanisms.items():
        for method in budget.methods:
            seeds = [seed] if method == "hedge" else [seed + k for k in range(budget.seeds)]
            for s in seeds:
                label = f"{name}: {method}" + ("" if method == "hedge" else f", seed {s}")
                if progress is not None:
                    progress.describe(f"training {label}")
                t0 = time.perf_counter()
                if method == "hedge":
                    profile, curve = run_hedge(knowledge, mech, budget)
                    learners = list(range(knowledge.n))
                    run_dir = None
                else:
                    profile, curve, learners, run_dir = _run_ppo(
                        knowledge, mech, configs[name], method, s, budget, out_dir, name
                    )
                check = profile_check(mech, knowledge, profile)
                fig = RunFigures.from_check(name, method, s, check, learners, run_dir, curve)
                runs.append(fig)
                strategies[(name, method, s)] = profile
                logger.info(
                    "%s: revenue %.4f, loss %.4f, truthfulness %.3f (%.1f s)",
                    label,
                    fig.revenue,
                    fig.utility_loss,
                    fig.truthfulness,
                    time.perf_counter() - t0,
                )
                if progress is not None:
                    progress.advance(f"trained {label}")
    return summarise(runs, truthful, budget), strategies


# Metric columns of training's metrics.csv that the training curves are read from.
_EVAL_TRUTH = "eval/truthfulness_rate"
_EVAL_REGRET = "eval/regret"


def _curve_from_metrics(rows: Sequence[Mapping[str, float]]) -> dict[str, list[float]]:
    """Exact-evaluation rows of a training run as a curve (step, truthfulness, loss)."""
    curve: dict[str, list[float]] = {"step": [], "truthfulness": [], "utility_loss": []}
    for r in rows:
        t, g = r.get(_EVAL_TRUTH, float("nan")), r.get(_EVAL_REGRET, float("nan"))
        if np.isnan(t) and np.isnan(g):
            continue
        curve["step"].append(float(r["step"]))
        curve["truthfulness"].append(float(t))
        curve["utility_loss"].append(float(g))
    return curve


def _run_ppo(
    knowledge: Knowledge,
    mech: Mechanism,
    cfg: Any,
    method: str,
    seed: int,
    budget: Budget,
    out_dir: Path,
    name: str,
) -> tuple[Strategy, dict[str, list[float]], list[int], str]:
    """One PPO run through ``training.run.train``; the learned profile and its curve."""
    from crowdauction.agents.base import profile_strategy
    from crowdauction.agents.heuristic import TruthfulAgent
    from crowdauction.agents.learned import LearnedAgent
    from crowdauction.training.run import train

    c = copy.deepcopy(cfg)
    c.run.mode = method
    c.run.total_steps = int(budget.ppo_steps)
    c.run.seed = int(seed)
    c.run.out = str(out_dir)
    c.run.name = f"{_slug(name)}-{method}-seed{seed}"
    c.run.eval_every = max(1, budget.ppo_steps // budget.curve_points)
    c.run.checkpoint_every = 0
    c.algo.n_envs = int(budget.ppo_n_envs)
    result = train(c)
    n = knowledge.n
    if method == "self_play":
        shared = LearnedAgent.load(result.run_dir)
        agents = [shared] * n
        learners = list(range(n))
    else:
        learner = int(c.best_response.learner)
        agents = [TruthfulAgent() for _ in range(n)]
        agents[learner] = LearnedAgent.load(result.run_dir, bidder=learner)
        learners = [learner]
    profile = profile_strategy(agents, knowledge, mech)
    return profile, _curve_from_metrics(result.metrics), learners, str(result.run_dir)
