"""The evaluation harness: exact incentive checks, revenue against the bounds,
learned-against-truthful benchmarks, reports, and the default experiment.

* :mod:`~crowdauction.evaluation.verify`: valuation dominance, belief truthfulness and
  an agent profile's utility loss, exact over a finite type space;
* :mod:`~crowdauction.evaluation.bounds`: OPT, Theorem 1 and 2 bounds, classical
  benchmarks, each mechanism's revenue under truthful and learned play;
* :mod:`~crowdauction.evaluation.benchmark`: PPO (self-play, best response) and Hedge
  over seeds, measured exactly;
* :mod:`~crowdauction.evaluation.report`: ``report.md``, PNG plots, a terminal table;
* :mod:`~crowdauction.evaluation.demo`: the experiment behind ``crowdauction demo``.
"""

from crowdauction.evaluation.benchmark import Benchmark, BenchmarkRow, Budget, RunFigures, Spread
from crowdauction.evaluation.bounds import (
    BoundCheck,
    BoundRow,
    BoundsTable,
    monte_carlo_revenue,
    revenue_bounds,
    theorem1_bound,
    theorem2_bound,
)
from crowdauction.evaluation.demo import DemoResult, Experiment, default_experiment, run_demo
from crowdauction.evaluation.report import summary_table, write_report
from crowdauction.evaluation.verify import (
    ZERO_GAIN_TOLERANCE,
    BeliefCheck,
    ProfileCheck,
    ValuationCheck,
    Verification,
    belief_check,
    profile_check,
    valuation_check,
    verify,
)

__all__ = [
    "ZERO_GAIN_TOLERANCE",
    "BeliefCheck",
    "Benchmark",
    "BenchmarkRow",
    "BoundCheck",
    "BoundRow",
    "BoundsTable",
    "Budget",
    "DemoResult",
    "Experiment",
    "ProfileCheck",
    "RunFigures",
    "Spread",
    "ValuationCheck",
    "Verification",
    "belief_check",
    "default_experiment",
    "monte_carlo_revenue",
    "profile_check",
    "revenue_bounds",
    "run_demo",
    "summary_table",
    "theorem1_bound",
    "theorem2_bound",
    "valuation_check",
    "verify",
    "write_report",
]
