"""The ``crowdauction train`` command.

::

    crowdauction train CONFIG.toml [--out DIR] [--seed N]
    crowdauction train --resume RUN_DIR

The first form validates the configuration (failing before any training with a
message naming the bad key), creates a run directory under ``run.out`` (or ``--out``)
and trains with a progress bar showing the current truthfulness rate. The second
continues an interrupted run from its last checkpoint. Both end with a table of the
final metrics on stderr and the run directory alone on stdout. On Ctrl-C the command
exits with status 130 and names the ``--resume`` command that continues the run
(:class:`~crowdauction.training.run.TrainingInterrupted`).

This module imports nothing heavy: torch and stable-baselines3 load when the command
runs, so ``crowdauction --help`` and ``crowdauction train --help`` do without them.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["register", "run_train"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand."""
    p = subparsers.add_parser(
        "train",
        help="train learning bidders with PPO from a TOML config, or resume a run",
        description="Train bidders with PPO: best response, self-play or independent learners.",
    )
    p.add_argument("config", nargs="?", type=Path, help="TOML configuration file")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="parent folder of the run directory (overrides run.out)",
    )
    p.add_argument("--seed", type=int, default=None, help="random seed (overrides run.seed)")
    p.add_argument(
        "--resume", type=Path, default=None, metavar="RUN_DIR", help="continue an interrupted run"
    )
    p.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    p.set_defaults(func=run_train, _parser=p)


def run_train(args: argparse.Namespace) -> int:
    """Entry point of ``crowdauction train``; returns the exit code."""
    from rich.console import Console

    from crowdauction.errors import InvalidConfigError
    from crowdauction.training.config import SEED_LIMIT, load_config
    from crowdauction.training.run import resume, train

    console = Console(stderr=True)
    progress = not args.no_progress
    if args.resume is not None:
        if args.config is not None or args.out is not None or args.seed is not None:
            raise InvalidConfigError(
                "--resume takes only the run directory; drop CONFIG, --out and --seed"
            )
        result = resume(args.resume, progress=progress)
    else:
        if args.config is None:
            args._parser.error("give a CONFIG.toml to train, or --resume RUN_DIR")
        cfg = load_config(args.config)
        if args.out is not None:
            cfg.run.out = str(args.out)
        if args.seed is not None:
            if not 0 <= args.seed < SEED_LIMIT:
                raise InvalidConfigError(
                    f"--seed {args.seed} is invalid; expected an integer in [0, 2**32)"
                )
            cfg.run.seed = args.seed
        result = train(cfg, progress=progress)
    console.print(_final_table(result.metrics, result.steps, result.steps_per_second))
    # The run directory alone on stdout, never wrapped (a path may be wider than the
    # terminal), so that scripts can read it: RUN=$(crowdauction train ...).
    Console(soft_wrap=True).print(str(result.run_dir), markup=False, highlight=False)
    return 0


def _final_table(
    metrics: Sequence[Mapping[str, float]], steps: int, steps_per_second: float
) -> Table:
    """The last measured value of every metric, counts as integers."""
    from rich.table import Table

    from crowdauction.training.metrics import INTEGER_COLUMNS

    last: dict[str, float] = {}
    for row in metrics:
        for k, v in row.items():
            if isinstance(v, (int, float)) and not math.isnan(v):
                last[k] = v
    table = Table(title="final metrics", show_header=True)
    table.add_column("metric")
    table.add_column("final", justify="right")
    for k in sorted(last):
        if k in ("step", "learner"):
            continue
        v = last[k]
        table.add_row(k, str(int(v)) if k in INTEGER_COLUMNS else f"{v:.4f}")
    table.add_row("steps", str(int(steps)))
    table.add_row("steps/s (this call)", f"{steps_per_second:.0f}")
    return table
