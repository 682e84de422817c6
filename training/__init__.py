"""Training harness: typed configs, PPO runs, run directories, checkpoints, resume.

* :mod:`~crowdauction.training.config`: one dataclass per concern (setting, mechanism,
  algorithm, run, mode options), loaded from TOML and validated before training.
* :mod:`~crowdauction.training.priors`: priors from CSV files (explicit tables, or
  observed value profiles binned onto the grid).
* :mod:`~crowdauction.training.run`: :func:`train` and :func:`resume` for the modes
  best response, self-play and independent learners.
* :mod:`~crowdauction.training.metrics`: the metrics CSV and TensorBoard events.
* :mod:`~crowdauction.training.cli`: the ``crowdauction train`` command.

stable-baselines3 and torch load when training starts, not on import.
"""

from crowdauction.training.config import (
    AlgoConfig,
    BestResponseConfig,
    IndependentConfig,
    MechanismConfig,
    RunConfig,
    SettingConfig,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    load_config,
)
from crowdauction.training.metrics import COLUMNS, read_metrics
from crowdauction.training.priors import read_samples_prior, read_table_prior
from crowdauction.training.run import (
    RunResult,
    TrainingInterrupted,
    exact_metrics,
    latest_checkpoint,
    resume,
    train,
)

__all__ = [
    "TrainingInterrupted",
    "COLUMNS",
    "AlgoConfig",
    "BestResponseConfig",
    "IndependentConfig",
    "MechanismConfig",
    "RunConfig",
    "RunResult",
    "SettingConfig",
    "TrainConfig",
    "config_from_dict",
    "config_to_dict",
    "exact_metrics",
    "latest_checkpoint",
    "load_config",
    "read_metrics",
    "read_samples_prior",
    "read_table_prior",
    "resume",
    "train",
]
