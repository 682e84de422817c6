"""The ``crowdauction`` command line.

Each subpackage registers its own subcommands, so that this file only dispatches:
``training`` adds ``train``; ``evaluation`` adds ``demo``, ``verify`` and ``bounds``;
``evaluation.reproduce`` adds ``reproduce``. Registering must stay cheap: a register
module imports torch, stable-baselines3 and PettingZoo only inside its subcommands'
functions, so that ``crowdauction --help`` and ``crowdauction COMMAND --help`` load none
of them.

Exit status: what the subcommand returns (0 on success); 2 for a usage or
configuration error (:class:`~crowdauction.errors.CrowdAuctionError`, logged as one
line); 130 on Ctrl-C, logged as one line without a traceback (a training run's
message names the ``crowdauction train --resume RUN_DIR`` command that continues it).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from crowdauction.errors import CrowdAuctionError

#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130

# Modules that expose ``register(subparsers)``; each subcommand sets ``func(args) -> int``.
_COMMAND_MODULES = (
    "crowdauction.training.cli",
    "crowdauction.evaluation.cli",
    "crowdauction.evaluation.reproduce",
)


def build_parser() -> argparse.ArgumentParser:
    """The ``crowdauction`` parser with every installed subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="crowdauction",
        description="Crowdsourced Bayesian auctions: train bidders, verify incentives, "
        "compare revenue.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    log = logging.getLogger("crowdauction")
    try:
        return _main(argv, log)
    except KeyboardInterrupt as e:
        # One line, no traceback (-v adds it); a training run says how to resume.
        log.debug("interrupted here", exc_info=True)
        log.error("%s", str(e) or "interrupted")
        return EXIT_INTERRUPTED


def _main(argv: Sequence[str] | None, log: logging.Logger) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CrowdAuctionError as e:
        log.error("%s", e)
        return 2


if __name__ == "__main__":
    sys.exit(main())
