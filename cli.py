"""The ``crowdauction`` command line.

Each subpackage registers its own subcommands, so that this file only dispatches:
``training`` adds ``train``; ``evaluation`` adds ``demo``, ``verify`` and ``bounds``;
``evaluation.reproduce`` adds ``reproduce``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from crowdauction.errors import CrowdAuctionError

# Modules that expose ``register(subparsers)``; each subcommand sets ``func(args) -> int``.
_COMMAND_MODULES = (
    "crowdauction.training.cli",
    "crowdauction.evaluation.cli",
    "crowdauction.evaluation.reproduce",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crowdauction",
        description="Crowdsourced Bayesian auctions: train bidders, verify incentives, compare revenue.",
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
        logging.getLogger("crowdauction").error("%s", e)
        return 2


if __name__ == "__main__":
    sys.exit(main())
