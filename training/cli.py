"""The ``crowdauction train`` command.

::

    crowdauction train CONFIG.toml [--out DIR] [--seed N]
    crowdauction train --resume RUN_DIR

The first form validates the configuration (failing before any training with a
message naming the bad key), creates a run directory under ``run.out`` (or ``--out``)
and trains with a progress bar showing the current truthfulness rate. The second
continues an interrupted run from its last checkpoint. Both end by printing the run
directory and the final metrics.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

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
    from rich.table import Table

    from crowdauction.errors import InvalidConfigError
    from crowdauction.training.config import load_config
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
            if args.seed < 0:
                raise InvalidConfigError(
                    f"--seed {args.seed} is invalid; expected a non-negative integer"
                )
            cfg.run.seed = args.seed
        result = train(cfg, progress=progress)
    table = Table(title=f"run {result.run_dir}", show_header=True)
    table.add_column("metric")
    table.add_column("final", justify="right")
    last: dict[str, float] = {}
    for row in result.metrics:
        for k, v in row.items():
            if isinstance(v, float) and not math.isnan(v):
                last[k] = v
    for k in sorted(last):
        if k not in ("step", "learner"):
            table.add_row(k, f"{last[k]:.4f}")
    table.add_row("steps", str(result.steps))
    table.add_row("steps/s (this call)", f"{result.steps_per_second:.0f}")
    console.print(table)
    Console().print(str(result.run_dir))
    return 0
