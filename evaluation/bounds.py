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
  with each mechanism's own ``eps`` and ``delta``. Theorem 1 is a claim about M with
  the optimal inner auction only: for M with another inner design (second price, say)
  the row and the check are marked not applicable instead of failing. M's inner
  auction is strictified with the Lemma 1 lottery, which keeps a ``1 - delta`` share
  of its revenue, so the check uses ``(1 - delta)(1 - 1/n) OPT - eps`` (the paper's
  bound when ``delta = 0``);
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
    "THEOREM1_DESIGN",
    "THEOREM1_NOT_APPLICABLE",
    "theorem_applicability",
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
ROW_THEOREM1 = "Theorem 1: (1-delta)(1-1/n) OPT - eps"
ROW_THEOREM2 = "Theorem 2: (1-delta)/2 OPT - eps"
ROW_SECOND_PRICE = "second price"
ROW_MONOPOLY = "second price + monopoly reserves"
ROW_MYERSON = "Myerson (marginals)"
ROW_SURPLUS = "full surplus E[max]"

#: The inner design Theorem 1 is about: M runs the optimal auction for the reported belief.
THEOREM1_DESIGN = "optimal"
#: Why a Theorem 1 row or check does not apply to an M with another inner design.
THEOREM1_NOT_APPLICABLE = "n/a: Theorem 1 assumes M's inner design is the LP-optimal auction"


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
        applicable: ``False`` for a bound the theory does not claim for the mechanisms
            at hand (the note says why); its value is still the formula's.
        declared_truthful: for a mechanism row, whether the mechanism declares itself
            dominant-strategy truthful (first price does not); ``None`` for other rows.
    """

    name: str
    kind: str
    truthful: float
    learned: float | None = None
    mc_mean: float | None = None
    mc_halfwidth: float | None = None
    note: str = ""
    applicable: bool = True
    declared_truthful: bool | None = None


@dataclass
class BoundCheck:
    """Whether one mechanism's truthful revenue meets the theorem that covers it.

    Attributes:
        mechanism: the mechanism's display name.
        bound: the bound's row name.
        revenue: exact truthful revenue.
        bound_value: the bound's formula evaluated with the mechanism's parameters.
        applicable: whether the theorem claims the bound for this mechanism (Theorem 1
            does only for M with the LP-optimal inner design).
        reason: why it does not apply (empty when it does).
    """

    mechanism: str
    bound: str
    revenue: float
    bound_value: float
    applicable: bool = True
    reason: str = ""

    @property
    def slack(self) -> float:
        return self.revenue - self.bound_value

    @property
    def holds(self) -> bool:
        """The bound applies and the revenue meets it (up to :data:`BOUND_TOLERANCE`)."""
        return self.applicable and self.slack >= -BOUND_TOLERANCE

    @property
    def fails(self) -> bool:
        """The bound applies and the revenue misses it: a contradiction of the theory."""
        return self.applicable and self.slack < -BOUND_TOLERANCE

    @property
    def status(self) -> str:
        """``"holds"``, ``"FAILS"`` or ``"n/a"``."""
        if not self.applicable:
            return "n/a"
        return "holds" if self.holds else "FAILS"


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
            "checks": [
                {**asdict(c), "slack": c.slack, "holds": c.holds, "status": c.status}
                for c in self.checks
            ],
        }

    @property
    def failures(self) -> list[BoundCheck]:
        """The applicable checks whose revenue misses the bound."""
        return [c for c in self.checks if c.fails]


def theorem1_bound(opt: float, n: int, eps: float, delta: float = 0.0) -> float:
    """Theorem 1's guarantee for M: ``(1 - delta)(1 - 1/n) OPT - eps``.

    The paper states ``(1 - 1/n) OPT - eps`` for the optimal strictly truthful inner
    auction; ours is the LP-optimal one mixed with the Lemma 1 lottery with
    probability ``delta``, which keeps at least a ``1 - delta`` share of its revenue.
    """
    return (1.0 - delta) * (1.0 - 1.0 / n) * opt - eps


def theorem2_bound(opt: float, delta: float, eps: float) -> float:
    """Theorem 2's guarantee for L: ``(1 - delta)/2 OPT - eps``."""
    return (1.0 - delta) / 2.0 * opt - eps


def _inner_delta(mech: RandomInformant) -> float:
    """Lottery probability of M's inner design (0 when it is not strictified)."""
    return mech.design.delta


def theorem_applicability(mech: Mechanism) -> tuple[str, bool, str] | None:
    """Which theorem covers ``mech`` and whether it applies.

    Returns:
        ``(bound row, applicable, reason)``: Theorem 1 for M (applicable only with the
        LP-optimal inner design), Theorem 2 for L (always); ``None`` for a mechanism
        no theorem covers.
    """
    if isinstance(mech, RandomInformant):
        design = mech.design.name
        if design == THEOREM1_DESIGN:
            return ROW_THEOREM1, True, ""
        return ROW_THEOREM1, False, f"{THEOREM1_NOT_APPLICABLE} (this M uses {design!r})"
    if isinstance(mech, CrowdsourcedLookahead):
        return ROW_THEOREM2, True, ""
    return None


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
    all_m = [m for m in mechanisms.values() if isinstance(m, RandomInformant)]
    # The row shows an M the theorem covers when there is one.
    first_m = next((m for m in all_m if theorem_applicability(m)[1]), all_m[0] if all_m else None)
    first_l = next((m for m in mechanisms.values() if isinstance(m, CrowdsourcedLookahead)), None)
    if first_m is not None:
        _, applies, reason = theorem_applicability(first_m)
        delta = _inner_delta(first_m)
        note = f"n={n}, eps={first_m.eps:g}, delta={delta:g}"
        rows.append(
            BoundRow(
                ROW_THEOREM1,
                "bound",
                theorem1_bound(opt, n, first_m.eps, delta),
                note=note if applies else f"{reason}; formula: {note}",
                applicable=applies,
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
        row = BoundRow(
            name,
            "mechanism",
            evaluate(mech, knowledge).revenue,
            declared_truthful=bool(getattr(mech, "truthful", True)),
        )
        if name in learned:
            row.learned = evaluate(mech, knowledge, learned[name]).revenue
        if mc_samples > 0:
            row.mc_mean, row.mc_halfwidth = monte_carlo_revenue(
                mech, knowledge, samples=mc_samples, seed=seed
            )
        rows.append(row)
        cover = theorem_applicability(mech)
        if cover is None:
            continue
        bound_row, applies, reason = cover
        if isinstance(mech, RandomInformant):
            bound = theorem1_bound(opt, n, mech.eps, _inner_delta(mech))
        else:
            bound = theorem2_bound(opt, mech.delta, mech.eps)
        checks.append(BoundCheck(name, bound_row, row.truthful, bound, applies, reason))
    for c in checks:
        if not c.applicable:
            logger.debug("%s: %s", c.mechanism, c.reason)
            continue
        log = logger.info if c.holds else logger.warning
        log("%s: revenue %.6f vs %s = %.6f (slack %.3g)", c.mechanism, c.revenue, c.bound,
            c.bound_value, c.slack)
    return BoundsTable(rows, checks, opt, surplus, n)
