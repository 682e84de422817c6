"""crowdauction: crowdsourced Bayesian auctions.

Mechanisms from Azar, Chen and Micali, "Crowdsourced Bayesian Auctions" (ITCS 2012),
the classical auctions they are measured against, PettingZoo environments for learning
bidders, and an exact evaluation harness over finite type spaces.

Subpackages: ``mechanisms`` (numpy math), ``envs`` (PettingZoo), ``agents``,
``training`` (stable-baselines3) and ``evaluation``. Importing this package is cheap;
the subpackages load their own dependencies.
"""

from crowdauction.errors import (
    CrowdAuctionError,
    InvalidActionError,
    InvalidConfigError,
    InvalidParameterError,
    InvalidPartitionError,
    InvalidPriorError,
    InvalidReportError,
    SolverError,
    UnknownNameError,
)

__version__ = "0.1.0"

__all__ = [
    "CrowdAuctionError",
    "InvalidActionError",
    "InvalidConfigError",
    "InvalidParameterError",
    "InvalidPartitionError",
    "InvalidPriorError",
    "InvalidReportError",
    "SolverError",
    "UnknownNameError",
    "__version__",
]
