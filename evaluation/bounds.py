"""Revenue of each mechanism against the bounds of the theory, exact over the prior.

The table holds, computed exactly by enumeration over the finite type space:

* benchmarks a seller who knows the prior could reach: OPT, the optimal dominant-strategy
  truthful, ex-post IR auction (the LP of :mod:`crowdauction.mechanisms.optimal`); second
  price; second price with each bidder's monopoly reserve; Myerson's auction built from
  the marginals (optimal only for independent priors); and the full surplus
  ``E[sum of the top k values]``, which no ex-post IR mechanism exceeds (a crowdsourced
  mechanism learns what the bidders know about each other and may pass OPT, not this);
* the guarantees of Azar, Chen and Micali, "Crowdsourced Bayesian Auctions": Theorem 1,
  ``(1 - 1/n) OPT - eps`` for M, and Theorem 2, ``(1 - delta)/2 OPT - eps`` for L,
  with each mechanism's own ``eps`` and ``delta``;
* each mechanism's revenue under truthful play and, when strategies are given, under
  learned play; and, as a cross-check column only, a Monte Carlo estimate with a 95%
  confidence interval drawn with the mechanisms' own ``sample`` methods.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

from crowdauction.errors import UnknownNameError
from crowdauction.mechanisms.classical import ClassicalMechanism, SecondPrice
from crowdauction.mechanisms.crowdsourced import (
    CrowdsourcedLookahead,
    CrowdsourcedMechanism,
    RandomInformant,
)
from crowdauction.mechanisms.exact import Mechanism, Strategy, evaluate
from crowdauction.mechanisms.knowledge import Knowledge
from crowdauction.mechanisms.myerson import myerson, second_price_monopoly_reserves
from crowdauction.mechanisms.optimal import optimal_revenue
from crowdauction.mechanisms.typespace import Setting, SingleGood

__all__ = [
    "BOUND_TOLERANCE",
    "Z_95",
    "BoundRow",
    "BoundCheck",
    "BoundsTable",
    "theorem1_bound",
    "theorem2_bound",
    "monte_carlo_revenue",
    "revenue_bounds",
]

logger = logging.getLogger(__name__)

#: A revenue meets a bound when it is at least the bound minus this (float noise only).
BOUND_TOLERANCE = 1e-9
#: Two-sided 95% normal quantile for Monte Carlo confidence intervals.
Z_95 = 1.959963984540054

ROW_OPT = "OPT (LP)"
ROW_THEOREM1 = "Theorem 1: (1-1/n) OPT - eps"
ROW_THEOREM2 = "Theorem 2: (1-delta)/2 OPT - eps"
ROW_SECOND_PRICE = "second price"
ROW_MONOPOLY = "second price + monopoly reserves"
ROW_MYERSON = "Myerson (marginals)"
ROW_SURPLUS = "full surplus E[max]"


@dataclass
class BoundRow:
    """One row of the revenue table.

    Attributes:
        name: what the row is (a benchmark, a bound, or a mechanism's name).
        kind: ``"benchmark"``, ``"bound"`` or ``"mechanism"``.
        truthful: exact expected revenue under truthful play (for a bound, its value).
        learned: exact expected revenue under learned play, when strategies are given.
        mc_mean: Monte Carlo revenue under truthful play (cross-check), or ``None``.
        mc_halfwidth: half-width of its 95% confidence interval.
        note: a short remark (which eps and delta a bound uses, ...).
    """

    name: str
    kind: str
    truthful: float
    learned: float | None = None
    mc_mean: float | None = None
    mc_halfwidth: float | None = None
    note: str = ""


@dataclass
class BoundCheck:
    """Whether one mechanism's truthful revenue meets the theorem that covers it."""

    mechanism: str
    bound: str
    revenue: float
    bound_value: float

    @property
    def slack(self) -> float:
        return self.revenue - self.bound_value

    @property
    def holds(self) -> bool:
        return self.slack >= -BOUND_TOLERANCE


@dataclass
class BoundsTable:
    """The revenue table: rows to render and the theorem checks.

    Attributes:
        rows: benchmarks, bounds and mechanisms, in display order.
        checks: one per mechanism a theorem covers (M: Theorem 1, L: Theorem 2).
        opt: OPT.
        full_surplus: the full-surplus ceiling.
        n: number of bidders.
    """

    rows: list[BoundRow]
    checks: list[BoundCheck]
    opt: float
    full_surplus: float
    n: int
    extra: dict[str, float] = field(default_factory=dict)

    def row(self, name: str, kind: str | None = None) -> BoundRow:
        """The first row called ``name`` (of the given ``kind``, if one is given)."""
        for r in self.rows:
            if r.name == name and (kind is None or r.kind == kind):
                return r
        raise UnknownNameError(
            f"no row {name!r} in the revenue table; rows are {[r.name for r in self.rows]}"
        )

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.rows]

    def to_dict(self) -> dict:
        """Plain data (for JSON)."""
        return {
            "opt": self.opt,
            "full_surplus": self.full_surplus,
            "n": self.n,
            "rows": [asdict(r) for r in self.rows],
            "checks": [{**asdict(c), "slack": c.slack, "holds": c.holds} for c in self.checks],
        }


def theorem1_bound(opt: float, n: int, eps: float) -> float:
    """Theorem 1's guarantee for M: ``(1 - 1/n) OPT - eps``."""
    return (1.0 - 1.0 / n) * opt - eps


def theorem2_bound(opt: float, delta: float, eps: float) -> float:
    """Theorem 2's guarantee for L: ``(1 - delta)/2 OPT - eps``."""
    return (1.0 - delta) / 2.0 * opt - eps


def _draw_reports(
    knowledge: Knowledge, strategy: Strategy, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Profiles from the prior, then valuation and belief reports from the strategy."""
    space = knowledge.space
    idx = knowledge.prior.sample_indices(size, rng)
    rep = np.empty_like(idx)
    beliefs = []
    for i in range(space.n):
        cell = knowledge.cell_of(i, idx)
        cdf = np.cumsum(strategy.valuation[i][cell], axis=1)
        u = rng.random(size)[:, None]
        rep[:, i] = np.minimum((cdf <= u * cdf[:, -1:]).sum(axis=1), space.shape[i] - 1)
        beliefs.append(strategy.belief[i][cell])
    return space.values_of(rep), beliefs


def monte_carlo_revenue(
    mech: Mechanism,
    knowledge: Knowledge,
    strategy: Strategy | None = None,
    samples: int = 20_000,
    seed: int = 0,
    batch: int = 10_000,
) -> tuple[float, float]:
    """Sampled revenue and the half-width of its 95% confidence interval.

    Profiles are drawn from the prior, reports from the strategy (truthful by default),
    and realised outcomes from the mechanism's ``sample`` (its informant, lottery and
    randomised allocation drawn too). A cross-check of :func:`evaluate`, not a
    measurement.

    Args:
        mech: any mechanism of the library.
        knowledge: prior and partitions.
        strategy: the profile; default truthful.
        samples: number of auctions.
        seed: seeds the generator.
        batch: auctions per call of ``sample``.

    Returns:
        ``(mean, halfwidth)``.
    """
    if samples < 2:
        raise ValueError(f"Monte Carlo needs at least 2 samples, got {samples}")
    strategy = Strategy.truthful(knowledge, mech) if strategy is None else strategy
    rng = np.random.default_rng(seed)
    total = 0.0
    total_sq = 0.0
    done = 0
    while done < samples:
        size = min(batch, samples - done)
        reports, beliefs = _draw_reports(knowledge, strategy, size, rng)
        if isinstance(mech, CrowdsourcedMechanism):
            real = mech.sample(reports, beliefs, rng)
        else:
            real = mech.sample(reports, rng)
        rev = real.revenue
        total += float(rev.sum())
        total_sq += float((rev * rev).sum())
        done += size
    mean = total / samples
    var = max(total_sq / samples - mean * mean, 0.0) * samples / (samples - 1)
    return mean, Z_95 * float(np.sqrt(var / samples))


def _classical_revenue(mech: ClassicalMechanism, knowledge: Knowledge) -> float:
    return evaluate(mech, knowledge).revenue


def revenue_bounds(
    knowledge: Knowledge,
    mechanisms: Mapping[str, Mechanism],
    learned: Mapping[str, Strategy] | None = None,
    setting: Setting | None = None,
    mc_samples: int = 0,
    seed: int = 0,
) -> BoundsTable:
    """The revenue table of ``mechanisms`` against the benchmarks and the theorems.

    Args:
        knowledge: prior and partitions (crowdsourced revenue depends on what bidders
            know; the benchmarks depend on the prior only).
        mechanisms: display name -> mechanism, in display order.
        learned: display name -> a strategy profile of learned play, for any subset.
        setting: feasibility for OPT and the full surplus; single good by default.
        mc_samples: Monte Carlo auctions per mechanism for the cross-check column
            (0: no column).
        seed: seeds the Monte Carlo draws.

    Returns:
        The :class:`BoundsTable`. Theorem rows use the first M and the first L among
        ``mechanisms``; every M and L gets a :class:`BoundCheck`.
    """
    prior = knowledge.prior
    setting = SingleGood() if setting is None else setting
    n = prior.n
    learned = {} if learned is None else dict(learned)
    unknown = sorted(set(learned) - set(mechanisms))
    if unknown:
        raise UnknownNameError(
            f"learned strategies for {unknown}, which are not among the mechanisms "
            f"{list(mechanisms)}; name them as in the mechanisms mapping"
        )
    opt = optimal_revenue(prior, setting)
    surplus = prior.full_surplus(setting.capacity(n))
    rows = [BoundRow(ROW_OPT, "benchmark", opt, note="optimal DST, ex-post IR auction for D")]
    checks: list[BoundCheck] = []
    first_m = next((m for m in mechanisms.values() if isinstance(m, RandomInformant)), None)
    first_l = next((m for m in mechanisms.values() if isinstance(m, CrowdsourcedLookahead)), None)
    if first_m is not None:
        rows.append(
            BoundRow(
                ROW_THEOREM1,
                "bound",
                theorem1_bound(opt, n, first_m.eps),
                note=f"n={n}, eps={first_m.eps:g}",
            )
        )
    if first_l is not None:
        rows.append(
            BoundRow(
                ROW_THEOREM2,
                "bound",
                theorem2_bound(opt, first_l.delta, first_l.eps),
                note=f"delta={first_l.delta:g}, eps={first_l.eps:g}",
            )
        )
    with warnings.catch_warnings():
        # Myerson on the marginals of a correlated prior is the intended baseline here.
        warnings.simplefilter("ignore", UserWarning)
        my = myerson(prior, setting)
    rows += [
        BoundRow(
            ROW_SECOND_PRICE,
            "benchmark",
            _classical_revenue(SecondPrice(setting=setting), knowledge),
        ),
        BoundRow(
            ROW_MONOPOLY,
            "benchmark",
            _classical_revenue(second_price_monopoly_reserves(prior, setting), knowledge),
        ),
        BoundRow(ROW_MYERSON, "benchmark", _classical_revenue(my, knowledge)),
        BoundRow(ROW_SURPLUS, "benchmark", surplus, note="ceiling for any ex-post IR mechanism"),
    ]
    for name, mech in mechanisms.items():
        row = BoundRow(name, "mechanism", evaluate(mech, knowledge).revenue)
        if name in learned:
            row.learned = evaluate(mech, knowledge, learned[name]).revenue
        if mc_samples > 0:
            row.mc_mean, row.mc_halfwidth = monte_carlo_revenue(
                mech, knowledge, samples=mc_samples, seed=seed
            )
        rows.append(row)
        if isinstance(mech, RandomInformant):
            bound = theorem1_bound(opt, n, mech.eps)
            checks.append(BoundCheck(name, ROW_THEOREM1, row.truthful, bound))
        elif isinstance(mech, CrowdsourcedLookahead):
            bound = theorem2_bound(opt, mech.delta, mech.eps)
            checks.append(BoundCheck(name, ROW_THEOREM2, row.truthful, bound))
    for c in checks:
        log = logger.info if c.holds else logger.warning
        log("%s: revenue %.6f vs %s = %.6f (slack %.3g)", c.mechanism, c.revenue, c.bound,
            c.bound_value, c.slack)
    return BoundsTable(rows, checks, opt, surplus, n)
