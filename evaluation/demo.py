"""The default experiment behind ``crowdauction demo``.

Three bidders with values on ``{0, 1, 2, 3}``, correlated through a discretised
Gaussian copula (``rho = 0.5``, uniform marginals). Bidders know more than their own
value: bidder 0 observes bidder 1's value, bidder 1 observes bidder 2's, bidder 2 knows
only its own. Four mechanisms: M (random informant, LP-optimal inner auction,
strictified, Brier rewards), L (crowdsourced 1-lookahead), second price and first
price. The pipeline:

1. exact verification of truthful play in each mechanism (valuation dominance with
   strictness, belief truthfulness, truthful play's utility loss);
2. the learned-against-truthful benchmark (self-play PPO, best-response PPO and Hedge);
3. the revenue table against OPT and the theorems' bounds, with a Monte Carlo
   cross-check; learned play's revenue is each learning method's mean over seeds;
4. ``report.md``, ``results.json`` and PNG plots in a new run directory
   ``<out>/demo-<timestamp>``.

The configurations are training configurations (:mod:`crowdauction.training.config`),
so every trained run can be reproduced with ``crowdauction train`` from the
``config.json`` it saved.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from crowdauction.evaluation.benchmark import Benchmark, Budget, run_benchmark
from crowdauction.evaluation.bounds import BoundsTable, revenue_bounds
from crowdauction.evaluation.report import write_report
from crowdauction.evaluation.verify import Verification, verify
from crowdauction.mechanisms.exact import Mechanism, Strategy
from crowdauction.mechanisms.knowledge import Knowledge
from crowdauction.training.config import (
    TrainConfig,
    build_knowledge,
    build_mechanism,
    build_prior,
    config_from_dict,
)

__all__ = [
    "DEFAULT_OUT",
    "DEMO_SETTING",
    "DEMO_MECHANISMS",
    "FULL_BUDGET",
    "QUICK_BUDGET",
    "MC_SAMPLES",
    "Experiment",
    "DemoProgress",
    "DemoResult",
    "default_experiment",
    "experiment_from_config",
    "new_run_dir",
    "run_demo",
]

logger = logging.getLogger(__name__)

#: Parent folder of demo run directories.
DEFAULT_OUT = "runs"
#: The ``[setting]`` table of the default experiment.
DEMO_SETTING: dict[str, Any] = {
    "n": 3,
    "values": [0, 1, 2, 3],
    "prior": "gaussian_copula",
    "prior_params": {"rho": 0.5},
    "knowledge": [[1], [2], "own"],
}
#: Display name -> ``[mechanism]`` table. Classical controls run without the lottery.
DEMO_MECHANISMS: dict[str, dict[str, Any]] = {
    "M": {"name": "M", "design": "optimal", "scoring": "brier"},
    "L": {"name": "L", "scoring": "brier"},
    "second price": {"name": "second_price", "delta": 0.0},
    "first price": {"name": "first_price", "delta": 0.0},
}
#: The demo's PPO hyperparameters: small rollouts and several epochs, because a
#: misreport under the strictified mechanisms costs only about delta / (n P) in
#: expectation, and expected rewards (exact over the mechanism's coins) so that this
#: signal is not drowned by the lottery's noise. Five epochs learn as much truthfulness
#: under M as ten did (measured: 65% / 57% self-play / best response against 62% / 59%,
#: three seeds) at half the cost of the PPO updates.
DEMO_ALGO: dict[str, Any] = {
    "learning_rate": 1e-3,
    "n_steps": 8,
    "batch_size": 64,
    "n_epochs": 5,
    "log_std_init": -0.5,
    "reward": "expected",
}
#: The demo's learning budget: two and a half minutes on two otherwise idle cores
#: (measured: 2 min 32 s; 3 min 50 s with ten epochs and 80 Hedge rounds), about
#: three when other work loads the machine. Hedge: 40 rounds at eta 20 end with the
#: truthfulness that 80 rounds at eta 10 reached (93% under M, 94% under L); a round
#: under M is costly, since it takes M's exact outcome over every profile.
FULL_BUDGET = Budget(seeds=3, ppo_steps=20_000, hedge_rounds=40, hedge_eta=20.0, ppo_n_envs=32)
#: ``--quick``: the same pipeline at toy size (a smoke test).
QUICK_BUDGET = Budget(
    seeds=1, ppo_steps=512, hedge_rounds=4, hedge_eta=10.0, ppo_n_envs=16, curve_points=2
)
#: Monte Carlo auctions per mechanism for the cross-check column (full, quick).
MC_SAMPLES = (20_000, 2_000)


@dataclass
class Experiment:
    """A prior with knowledge and the mechanisms to study, with their configurations.

    Attributes:
        knowledge: prior and knowledge partitions.
        mechanisms: display name -> mechanism, built from ``configs``.
        configs: display name -> the training configuration that builds it.
        description: lines describing the experiment, for the report.
    """

    knowledge: Knowledge
    mechanisms: dict[str, Mechanism]
    configs: dict[str, TrainConfig]
    description: list[str] = field(default_factory=list)


def _describe(cfg: TrainConfig, names: list[str]) -> list[str]:
    s = cfg.setting
    params = ", ".join(f"{k}={v}" for k, v in s.prior_params.items())
    know = s.knowledge if isinstance(s.knowledge, str) else [
        k if isinstance(k, str) else f"observes {k}" for k in s.knowledge
    ]
    return [
        f"{s.n} bidders, values {s.values}, prior {s.prior}({params})",
        f"knowledge per bidder: {know}",
        f"mechanisms: {', '.join(names)}",
    ]


def experiment_from_config(cfg: TrainConfig, name: str | None = None) -> Experiment:
    """The one-mechanism experiment of a training configuration."""
    prior = build_prior(cfg)
    knowledge = build_knowledge(cfg, prior)
    name = cfg.mechanism.name if name is None else name
    mech = build_mechanism(cfg, prior)
    return Experiment(knowledge, {name: mech}, {name: cfg}, _describe(cfg, [name]))


def default_experiment() -> Experiment:
    """The demo's prior, knowledge and mechanisms (see the module docstring)."""
    configs = {
        name: config_from_dict(
            {
                "setting": copy.deepcopy(DEMO_SETTING),
                "mechanism": dict(table),
                "algo": dict(DEMO_ALGO),
            }
        )
        for name, table in DEMO_MECHANISMS.items()
    }
    first = next(iter(configs.values()))
    prior = build_prior(first)
    knowledge = build_knowledge(first, prior)
    mechanisms = {name: build_mechanism(cfg, prior) for name, cfg in configs.items()}
    return Experiment(knowledge, mechanisms, configs, _describe(first, list(configs)))


class DemoProgress(Protocol):
    """What the demo reports while it runs (the command line draws a progress bar)."""

    def start(self, total: int) -> None: ...

    def advance(self, description: str) -> None: ...

    def describe(self, description: str) -> None: ...


class _NoProgress:
    def start(self, total: int) -> None:
        pass

    def advance(self, description: str) -> None:
        logger.info("demo: %s", description)

    def describe(self, description: str) -> None:
        pass


@dataclass
class DemoResult:
    """Everything the demo produced."""

    run_dir: Path
    report: Path
    checks: dict[str, Verification]
    bounds: BoundsTable
    benchmark: Benchmark | None
    timings: dict[str, float]


def new_run_dir(out: str | Path, prefix: str = "demo") -> Path:
    """A fresh ``<out>/<prefix>-<timestamp>`` directory (suffixed if the name is taken)."""
    out = Path(out)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = out / f"{prefix}-{stamp}"
    k = 1
    while path.exists():
        path = out / f"{prefix}-{stamp}-{k}"
        k += 1
    path.mkdir(parents=True)
    return path


def run_demo(
    out: str | Path = DEFAULT_OUT,
    quick: bool = False,
    seed: int = 0,
    progress: DemoProgress | None = None,
    budget: Budget | None = None,
    run_dir: str | Path | None = None,
) -> DemoResult:
    """Run the default experiment end to end and write its report.

    Args:
        out: parent folder of the new run directory.
        quick: toy budget (:data:`QUICK_BUDGET`), for smoke tests.
        seed: the first training seed; seeds ``seed, seed + 1, ...`` are used.
        progress: receives progress reports; default: log lines.
        budget: overrides the budget ``quick`` selects.
        run_dir: write here instead of a new ``<out>/demo-<timestamp>``.

    Returns:
        The :class:`DemoResult`; ``report`` is the path of ``report.md``.
    """
    progress = _NoProgress() if progress is None else progress
    budget = (QUICK_BUDGET if quick else FULL_BUDGET) if budget is None else budget
    mc = MC_SAMPLES[1] if quick else MC_SAMPLES[0]
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    exp = default_experiment()
    run_dir = new_run_dir(out) if run_dir is None else Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    logger.info("demo run directory: %s", run_dir)
    n_mech = len(exp.mechanisms)
    runs_per_mech = sum(budget.seeds if m != "hedge" else 1 for m in budget.methods)
    progress.start(n_mech + n_mech * runs_per_mech + 2)

    t = time.perf_counter()
    checks: dict[str, Verification] = {}
    for name, mech in exp.mechanisms.items():
        progress.describe(f"verifying {name}")
        checks[name] = verify(
            mech, exp.knowledge, Strategy.truthful(exp.knowledge, mech), seed=seed, strictness=True
        )
        progress.advance(f"verified {name}")
    timings["exact verification"] = time.perf_counter() - t

    t = time.perf_counter()
    bench, _ = run_benchmark(
        exp.knowledge,
        exp.mechanisms,
        exp.configs,
        budget,
        run_dir / "training",
        seed=seed,
        progress=progress,
    )
    timings["training and benchmark"] = time.perf_counter() - t

    t = time.perf_counter()
    progress.describe("revenue against the bounds")
    # Learned revenue is reported from the benchmark (each method's mean over seeds), so
    # the revenue table, the bar chart and the terminal table show the same figures.
    bounds = revenue_bounds(exp.knowledge, exp.mechanisms, mc_samples=mc, seed=seed)
    progress.advance("revenue table done")
    timings["revenue table"] = time.perf_counter() - t

    progress.describe("writing the report")
    timings["total"] = time.perf_counter() - t_start
    title = "crowdauction demo" + (" (quick)" if quick else "")
    report = write_report(run_dir, title, exp.description, checks, bounds, bench, timings)
    progress.advance("report written")
    return DemoResult(run_dir, report, checks, bounds, bench, timings)
