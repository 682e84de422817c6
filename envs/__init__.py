"""PettingZoo environments of crowdsourced auctions, and batched vector envs.

* :mod:`~crowdauction.envs.crowdsourced_auction_v0`: the PettingZoo parallel env
  (``parallel_env``) and its AEC version (``env``, ``raw_env``); one auction per
  episode, a valuation-report phase and a belief-report phase.
* :mod:`~crowdauction.envs.vector`: :class:`AuctionVecEnv` (every bidder of ``B``
  auctions a row, for self-play with stable-baselines3), :class:`SingleLearnerVecEnv`
  and :class:`SingleLearnerEnv` (one learner against fixed policies).
* :mod:`~crowdauction.envs.layout`: the observation and action vectors
  (:class:`EnvLayout`, :func:`truthful_action`); pure numpy.
* :mod:`~crowdauction.envs.core`: the batched episode logic all of them share.

The layout and the core load eagerly (numpy only); the PettingZoo and
stable-baselines3 modules load on first use of one of their names.
"""

from __future__ import annotations

import importlib
from typing import Any

from crowdauction.envs.core import (
    MECHANISM_NAMES,
    AuctionCore,
    AuctionState,
    build_core,
    spawn_seeds,
)
from crowdauction.envs.layout import EnvLayout, ObsParts, truthful_action

_V0 = "crowdauction.envs.crowdsourced_auction_v0"
_VECTOR = "crowdauction.envs.vector"
_LAZY = {
    "crowdsourced_auction_v0": (_V0, None),
    "CrowdsourcedAuctionEnv": (_V0, "CrowdsourcedAuctionEnv"),
    "vector": (_VECTOR, None),
    "AuctionVecEnv": (_VECTOR, "AuctionVecEnv"),
    "SingleLearnerVecEnv": (_VECTOR, "SingleLearnerVecEnv"),
    "SingleLearnerEnv": (_VECTOR, "SingleLearnerEnv"),
}

__all__ = [
    "AuctionCore",
    "AuctionState",
    "AuctionVecEnv",
    "CrowdsourcedAuctionEnv",
    "EnvLayout",
    "MECHANISM_NAMES",
    "ObsParts",
    "SingleLearnerEnv",
    "SingleLearnerVecEnv",
    "build_core",
    "crowdsourced_auction_v0",
    "spawn_seeds",
    "truthful_action",
    "vector",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'crowdauction.envs' has no attribute {name!r}")
    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
