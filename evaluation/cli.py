"""The evaluation subcommands of ``crowdauction``: ``demo``, ``verify`` and ``bounds``.

``crowdauction demo [--quick] [--out DIR] [--seed N]`` runs the default experiment;
``crowdauction verify CONFIG.toml`` checks incentives exactly for the configuration's
mechanism (exit status 1 when truthful reporting is beaten, so scripts can gate on
it); ``crowdauction bounds CONFIG.toml [--strict]`` prints its revenue against the
bounds (with ``--strict``, exit status 1 when a bound the theory claims for the
mechanism is missed). The configuration is a training TOML file
(:mod:`crowdauction.training.config`); only its ``[setting]`` and ``[mechanism]``
tables matter here.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from crowdauction.evaluation.bounds import revenue_bounds
from crowdauction.evaluation.demo import DEFAULT_OUT, experiment_from_config, run_demo
from crowdauction.evaluation.report import (
    format_number,
    format_where,
    summary_caption,
    summary_table,
)
from crowdauction.evaluation.verify import ZERO_GAIN_TOLERANCE, verify
from crowdauction.mechanisms.exact import Strategy
from crowdauction.training.config import load_config

__all__ = ["register"]

_BOUNDS_EXIT_CODES = """exit status:
  0  the table was printed (without --strict, also when a bound fails: a warning)
  1  --strict and an applicable bound (Theorem 1 for M with the optimal design,
     Theorem 2 for L) fails on truthful play; a bound marked n/a never fails
  2  the configuration is invalid (the error says what to fix)"""


def _seed(text: str) -> int:
    """An argparse type: an integer seed in ``[0, 2**32)``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"{value} is not in [0, 2**32)")
    return value


def _count(text: str) -> int:
    """An argparse type: a number of Monte Carlo auctions, 0 (none) or at least 2."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value != 0 and value < 2:
        raise argparse.ArgumentTypeError(
            f"{value} auctions give no confidence interval; use 0 (no estimate) or at least 2"
        )
    return value


def _output_file(text: str) -> str:
    """An argparse type: a file path whose folder exists, checked before any work."""
    parent = Path(text).expanduser().resolve().parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"folder {str(parent)!r} does not exist; create it first")
    if Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder; give a file name")
    return text


def _output_dir(text: str) -> str:
    """An argparse type: a folder to write into (created if missing), not a file."""
    path = Path(text).expanduser()
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                raise argparse.ArgumentTypeError(f"{str(p)!r} is a file, not a folder")
            break
    return text


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``demo``, ``verify`` and ``bounds`` to the ``crowdauction`` parser."""
    p = subparsers.add_parser(
        "demo",
        help="run the default experiment: verify, train, compare revenue, write a report",
        description="Three correlated bidders who know something about each other; "
        "mechanisms M, L, second price and first price. Verifies truthful play exactly, "
        "trains learning bidders, and writes report.md with tables and plots to a new "
        "run directory.",
    )
    p.add_argument("--quick", action="store_true", help="toy budget, under a minute (smoke test)")
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", type=_output_dir,
                   help=f"parent folder of the run directory (default {DEFAULT_OUT})")
    p.add_argument(
        "--seed", type=_seed, default=0, metavar="N", help="first training seed (default 0)"
    )
    p.set_defaults(func=_demo)

    p = subparsers.add_parser(
        "verify",
        help="check incentives of a configuration's mechanism exactly",
        description="Valuation dominance, belief truthfulness and truthful play's utility "
        "loss, exact over the type space. Exit status 1 if a misreport gains.",
    )
    p.add_argument("config", metavar="CONFIG.toml", help="a training configuration file")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the arbitrary belief reports")
    p.add_argument("--json", metavar="PATH", type=_output_file,
                   help="also write the figures as JSON")
    p.set_defaults(func=_verify)

    p = subparsers.add_parser(
        "bounds",
        help="revenue of a configuration's mechanism against OPT and the theorems' bounds",
        description="Exact revenue of truthful play beside OPT (LP), Theorem 1 and 2 bounds, "
        "second price, monopoly reserves, Myerson and the full surplus. Theorem 1 covers M "
        "only with the LP-optimal inner design (design = \"optimal\"); for M with another "
        "design its row is shown as n/a. Theorem 2 covers L.",
        epilog=_BOUNDS_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", metavar="CONFIG.toml", help="a training configuration file")
    p.add_argument("--mc", type=_count, default=0, metavar="N",
                   help="also estimate revenue from N sampled auctions (cross-check)")
    p.add_argument("--json", metavar="PATH", type=_output_file,
                   help="also write the table as JSON")
    p.add_argument("--strict", action="store_true",
                   help="exit with status 1 when an applicable bound fails")
    p.set_defaults(func=_bounds)


class _RichProgress:
    """Adapts the demo's progress callbacks to a ``rich`` progress bar."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.task = progress.add_task("starting", total=1)

    def start(self, total: int) -> None:
        self.progress.update(self.task, total=total, completed=0)

    def advance(self, description: str) -> None:
        self.progress.update(self.task, advance=1, description=description)

    def describe(self, description: str) -> None:
        self.progress.update(self.task, description=description)


def _demo(args: argparse.Namespace) -> int:
    console = Console()
    t0 = time.perf_counter()
    with Progress(
        TextColumn("[progress.description]{task.description:<44}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        result = run_demo(
            out=args.out, quick=args.quick, seed=args.seed, progress=_RichProgress(bar)
        )
    console.print(summary_table(result.bounds, result.checks, result.benchmark,
                                title="crowdauction demo" + (" (quick)" if args.quick else "")))
    console.print(escape(summary_caption(result.bounds, result.checks)), style="dim")
    for c in result.bounds.failures:
        console.print(f"[red]{c.mechanism} misses {c.bound}: {c.revenue:.6f} < {c.bound_value:.6f}")
    console.print(f"finished in {time.perf_counter() - t0:.1f} s")
    console.print(f"report: {result.report}")
    console.print(str(result.run_dir))
    return 0


def _verify(args: argparse.Namespace) -> int:
    console = Console()
    cfg = load_config(args.config)
    exp = experiment_from_config(cfg)
    (name, mech), = exp.mechanisms.items()
    v = verify(mech, exp.knowledge, Strategy.truthful(exp.knowledge, mech), seed=args.seed,
               strictness=True)
    table = Table(title=f"incentives of {name} (exact)")
    table.add_column("check")
    table.add_column("figure", justify="right")
    table.add_column("where / detail")
    val = v.valuation
    table.add_row("max valuation gain", format_number(val.max_gain, 6),
                  format_where(val.where) + f" ({val.belief_profiles} belief profiles)")
    table.add_row(
        "min misreport loss", format_number(val.min_loss, 6), format_where(val.min_loss_where)
    )
    if v.belief is not None:
        table.add_row("max belief gain", format_number(v.belief.max_gain, 6),
                      f"{v.belief.rule}, {v.belief.method}: {format_where(v.belief.where)}")
    if v.profile is not None:
        table.add_row("truthful play: utility loss",
                      ", ".join(format_number(x, 6) for x in v.profile.utility_loss), "per bidder")
        table.add_row("truthful play: worst-cell loss",
                      ", ".join(format_number(x, 6) for x in v.profile.worst_loss), "per bidder")
    console.print(table)
    verdict = "truthful" if v.truthful else "NOT truthful"
    console.print(f"{name}: {verdict} (tolerance {ZERO_GAIN_TOLERANCE:g})")
    if args.json:
        data = {
            "mechanism": name,
            "valuation_max_gain": val.max_gain,
            "valuation_where": val.where,
            "valuation_min_loss": val.min_loss,
            "belief_max_gain": None if v.belief is None else v.belief.max_gain,
            "belief_where": None if v.belief is None else v.belief.where,
            "truthful": v.truthful,
        }
        Path(args.json).write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    return 0 if v.truthful else 1


def _bounds(args: argparse.Namespace) -> int:
    console = Console()
    cfg = load_config(args.config)
    exp = experiment_from_config(cfg)
    table = revenue_bounds(exp.knowledge, exp.mechanisms, mc_samples=args.mc)
    console.print(
        summary_table(table, title="revenue against the bounds (exact)", monte_carlo=True)
    )
    console.print(escape(summary_caption(table)), style="dim")
    for c in table.checks:
        if not c.applicable:
            console.print(f"{escape(c.mechanism)}: {escape(c.reason)}")
            continue
        mark = "holds" if c.holds else "[red]FAILS[/red]"
        console.print(
            f"{escape(c.mechanism)}: {escape(c.bound)} = {c.bound_value:.6f}, "
            f"revenue {c.revenue:.6f}: {mark}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(table.to_dict(), indent=2) + "\n", encoding="utf-8")
    if args.strict and table.failures:
        names = ", ".join(f"{c.mechanism} ({c.bound})" for c in table.failures)
        console.print(f"[red]--strict: applicable bound failed: {escape(names)}")
        return 1
    return 0
