"""Speed of the classical mechanisms, prior sampling and the optimal-auction LP.

Run ``python benchmarks/bench_mechanisms.py`` (``--help`` for sizes). One run measures:

(a) batched :meth:`SecondPrice.outcome` on many auctions against a per-auction Python
    loop doing the same logic (target: at least 100x, and 1e7 auctions/s batched);
(b) drawing profiles with :meth:`Prior.sample_flat` (alias table) against a
    cumulative-sum + ``searchsorted`` baseline;
(c) solving the optimal-auction LP for 3 bidders x 20 values and 2 bidders x 100 values
    (correlated priors) and re-verifying the solution;
(d) the cache hit rate of a loop that keeps asking for the optimal mechanism of a few
    distinct beliefs;
(e) mechanism M (random informant, LP-optimal inner auction) on auctions whose belief
    reports are all distinct, as in RL training: one solve per belief against one
    stacked solve per informant group (:func:`optimal_mechanisms`), cold caches each
    time. Both sides use the same solver (every solve is an LP and its tie-break LP),
    so the outcomes must agree exactly.

Targets are printed next to the figures; nothing is asserted.
"""

from __future__ import annotations

import argparse
import time
import timeit
from collections.abc import Callable, Sequence

import numpy as np

from crowdauction.mechanisms.classical import (
    ClassicalMechanism,
    SecondPrice,
    dst_violation,
    ir_violation,
)
from crowdauction.mechanisms.crowdsourced import RandomInformant
from crowdauction.mechanisms.designs import Design
from crowdauction.mechanisms.optimal import (
    cache_info,
    clear_cache,
    feasibility_violation,
    optimal_mechanism,
    table_dst_violation,
    table_ir_violation,
)
from crowdauction.mechanisms.prior import Prior
from crowdauction.mechanisms.typespace import TypeSpace

try:
    import resource  # Unix only: counts the page faults of (a)
except ImportError:
    resource = None  # type: ignore[assignment]

try:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    _CONSOLE: Console | None = Console(width=120)
except ImportError:  # rich is a dependency, but the script should run without it
    _CONSOLE = None


def best_time(fn: Callable[[], object], repeat: int, number: int = 1) -> float:
    """Best wall time of one call over ``repeat`` rounds of ``number`` calls."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def show(title: str, rows: list[tuple[str, str, str]]) -> None:
    """Print a three-column table (measure, figure, target or note)."""
    if _CONSOLE is not None:
        table = Table(title=title, title_justify="left")
        for col in ("measure", "figure", "target / note"):
            table.add_column(col)
        for row in rows:
            table.add_row(*(escape(cell) for cell in row))
        _CONSOLE.print(table)
        return
    print(f"\n{title}")
    width = max(len(r[0]) for r in rows)
    for name, fig, note in rows:
        print(f"  {name:<{width}}  {fig:>16}  {note}")


# -- (a) second price -----------------------------------------------------------------


def second_price_loop(reports: list[list[int]]) -> tuple[list[list[float]], list[list[float]]]:
    """Single-good second price without reserve, one auction at a time in pure Python."""
    allocs, pays = [], []
    for row in reports:
        n = len(row)
        win = 0
        for i in range(1, n):
            if row[i] > row[win]:  # strict: the lowest index keeps a tie
                win = i
        second = max((row[j] for j in range(n) if j != win), default=0)
        a = [0.0] * n
        p = [0.0] * n
        a[win] = 1.0
        p[win] = float(max(second, 0))
        allocs.append(a)
        pays.append(p)
    return allocs, pays


def bench_second_price(args: argparse.Namespace, rng: np.random.Generator) -> None:
    reports = rng.integers(0, 20, size=(args.auctions, args.bidders))
    mech = SecondPrice()
    batched = best_time(lambda: mech.outcome(reports), args.repeat)
    as_lists = reports.tolist()
    loop = best_time(lambda: second_price_loop(as_lists), max(1, args.repeat // 2))
    faults = float("nan")
    if resource is not None:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(10):
            mech.outcome(reports)
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10
    out = mech.outcome(reports)
    a, p = second_price_loop(as_lists)
    same = np.array_equal(out.allocation, np.array(a)) and np.array_equal(out.payments, np.array(p))
    show(
        f"(a) SecondPrice.outcome, {args.auctions:,} auctions x {args.bidders} bidders",
        [
            ("batched time", f"{batched * 1e3:.2f} ms", ""),
            ("python loop time", f"{loop * 1e3:.1f} ms", "same logic, lists in, lists out"),
            ("speed-up", f"{loop / batched:.0f}x", "target >= 100x"),
            ("batched throughput", f"{args.auctions / batched:.3g} auctions/s", "target >= 1e7/s"),
            ("results identical", str(same), "allocation and payments"),
            (
                "minor page faults per call",
                f"{faults:.0f}",
                "fresh pages for the outputs; glibc trims freed heap",
            ),
        ],
    )


# -- (b) sampling ---------------------------------------------------------------------


def bench_sampling(args: argparse.Namespace, rng: np.random.Generator) -> None:
    rows = []
    for label, prior in (
        ("3 x 20 copula", Prior.gaussian_copula(3, list(range(20)), rho=0.5)),
        ("2 x 100 copula", Prior.gaussian_copula(2, list(range(100)), rho=0.5)),
    ):
        p = prior.table.ravel()
        t0 = time.perf_counter()
        prior.sample_flat(1, rng)  # builds the alias table once
        build = time.perf_counter() - t0
        cdf = np.cumsum(p)

        def baseline() -> np.ndarray:
            # side="right" skips zero-probability profiles, like the alias table.
            return np.searchsorted(cdf, rng.random(args.draws) * cdf[-1], side="right")

        alias = best_time(lambda: prior.sample_flat(args.draws, rng), args.repeat)
        search = best_time(baseline, args.repeat)
        fa = np.bincount(prior.sample_flat(args.draws, rng), minlength=p.size) / args.draws
        fs = np.bincount(np.minimum(baseline(), p.size - 1), minlength=p.size) / args.draws
        rows += [
            (f"{label}: alias table build", f"{build * 1e3:.1f} ms", "once per prior"),
            (f"{label}: alias draws", f"{args.draws / alias:.3g} draws/s", ""),
            (f"{label}: cumsum+searchsorted", f"{args.draws / search:.3g} draws/s", ""),
            (f"{label}: speed-up", f"{search / alias:.2f}x", "alias vs searchsorted"),
            (
                f"{label}: max |freq - p|",
                f"{max(np.abs(fa - p).max(), np.abs(fs - p).max()):.1e}",
                "both samplers, sanity",
            ),
        ]
    show(f"(b) profile sampling, {args.draws:,} draws", rows)


# -- (c) the LP -----------------------------------------------------------------------


def bench_lp(args: argparse.Namespace) -> None:
    rows = []
    cases = [
        ("3 x 20 copula rho=0.5", Prior.gaussian_copula(3, list(range(20)), rho=0.5)),
        ("2 x 100 copula rho=0.5", Prior.gaussian_copula(2, list(range(100)), rho=0.5)),
        (
            "3 x 20 common component",
            Prior.common_component(3, np.full(10, 0.1), np.full(11, 1 / 11)),
        ),
    ]
    for label, prior in cases:
        clear_cache()
        t0 = time.perf_counter()
        mech = optimal_mechanism(prior)
        solve = time.perf_counter() - t0
        space = prior.space
        t1 = time.perf_counter()
        gain, _ = table_dst_violation(mech.alloc_table, mech.pay_table, space)
        short = table_ir_violation(mech.alloc_table, mech.pay_table, space)
        feas, _ = feasibility_violation(mech.alloc_table, mech.setting)
        verify = time.perf_counter() - t1
        t2 = time.perf_counter()
        gain2, _ = dst_violation(mech, space)
        short2 = ir_violation(mech, space)
        generic = time.perf_counter() - t2
        sp = float(prior.table.ravel() @ SecondPrice().outcome(space.profile_values).revenue)
        rows += [
            (f"{label}: solve (incl. verify)", f"{solve:.2f} s", "target: a few seconds"),
            (f"{label}: table re-verify", f"{verify * 1e3:.1f} ms", "DST + IR + feasibility"),
            (f"{label}: generic dst/ir_violation", f"{generic * 1e3:.1f} ms", "classical.py"),
            (
                f"{label}: worst violation",
                f"{max(gain, short, feas, gain2, short2):.1e}",
                "must be <= 1e-7",
            ),
            (
                f"{label}: OPT / SP / E[max]",
                f"{mech.revenue:.3f} / {sp:.3f} / {prior.full_surplus():.3f}",
                "revenue",
            ),
        ]
    show("(c) optimal-auction LP (single good)", rows)


# -- (d) the cache --------------------------------------------------------------------


def bench_cache(args: argparse.Namespace, rng: np.random.Generator) -> None:
    clear_cache()
    beliefs = [Prior.gaussian_copula(2, list(range(8)), rho=r).table for r in (0.0, 0.3, 0.6, 0.9)]
    grids = [list(range(8))] * 2
    order = rng.integers(0, len(beliefs), size=args.requests)
    t0 = time.perf_counter()
    for b in order:
        # A fresh Prior object each time, as a crowdsourced mechanism builds from reports.
        optimal_mechanism(Prior(beliefs[b], grids))
    total = time.perf_counter() - t0
    info = cache_info()
    t1 = time.perf_counter()
    for b in order[:200]:
        optimal_mechanism(Prior(beliefs[b], grids))  # all hits now
    per_hit = (time.perf_counter() - t1) / min(200, len(order))
    show(
        f"(d) cache, {args.requests:,} requests over {len(beliefs)} distinct beliefs",
        [
            ("hits / misses", f"{info.hits} / {info.misses}", f"size {info.size}/{info.maxsize}"),
            ("hit rate", f"{info.hits / max(1, info.hits + info.misses):.2%}", ""),
            ("mean time per request", f"{total / args.requests * 1e3:.3f} ms", "misses solve"),
            ("time per hit", f"{per_hit * 1e3:.3f} ms", "Prior() + key + lookup"),
        ],
    )


# -- (e) M with many distinct beliefs -------------------------------------------------


class OneAtATime(Design):
    """The design as it was before batching: one LP solve per distribution."""

    def build_many(self, priors: Sequence[Prior]) -> list[ClassicalMechanism]:
        return [super(OneAtATime, self).build_many([prior])[0] for prior in priors]


def bench_m_beliefs(args: argparse.Namespace) -> None:
    n, k, B = args.m_bidders, args.m_values, args.m_auctions
    # Its own stream, so that --only does not change these inputs.
    rng = np.random.default_rng([args.seed, 0xE])
    space = TypeSpace([list(range(k))] * n)
    reports = rng.integers(0, k, size=(B, n))
    # Dirichlet draws: every belief report distinct, as softmax outputs of a policy are.
    beliefs = [rng.dirichlet(np.ones(space.others_size(i)), size=B) for i in range(n)]
    informant = rng.integers(0, n, size=B)
    rows = []
    for label, inf in (("drawn informant", informant), ("averaged over informant", None)):
        timings: dict[str, float] = {}
        outs = {}
        for kind, cls in (("one LP per belief", OneAtATime), ("batched LP", Design)):

            def run(cls: type[Design] = cls, inf: np.ndarray | None = inf) -> object:
                clear_cache()
                M = RandomInformant(space, design=cls("optimal", delta=0.05))
                return M.outcome(reports, beliefs, informant=inf)

            outs[kind] = run()
            timings[kind] = best_time(run, max(1, args.repeat // 3))
        single, batched = timings["one LP per belief"], timings["batched LP"]
        a, b = outs["one LP per belief"], outs["batched LP"]
        diff = max(
            float(np.abs(a.allocation - b.allocation).max()),
            float(np.abs(a.payments - b.payments).max()),
        )
        lps = B if inf is not None else n * B
        rows += [
            (f"{label}: one LP per belief", f"{single * 1e3:.0f} ms", f"{lps} solves"),
            (f"{label}: batched LP", f"{batched * 1e3:.1f} ms", "one per informant group"),
            (f"{label}: speed-up", f"{single / batched:.1f}x", "single loop / batched"),
            (f"{label}: max |outcome diff|", f"{diff:.1e}", "allocation and payments"),
        ]
    show(
        f"(e) M.outcome, {B} auctions x {n} bidders x {k} values, {B} distinct beliefs "
        "per bidder, cold caches",
        rows,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--auctions", type=int, default=100_000, help="auctions in (a)")
    parser.add_argument("--bidders", type=int, default=3, help="bidders per auction in (a)")
    parser.add_argument("--draws", type=int, default=1_000_000, help="profiles drawn in (b)")
    parser.add_argument("--requests", type=int, default=2_000, help="cache requests in (d)")
    parser.add_argument("--repeat", type=int, default=7, help="timing rounds (best is kept)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    parser.add_argument("--m-auctions", type=int, default=256, help="auctions in (e)")
    parser.add_argument("--m-bidders", type=int, default=3, help="bidders in (e)")
    parser.add_argument("--m-values", type=int, default=4, help="values per bidder in (e)")
    parser.add_argument("--skip-lp", action="store_true", help="skip (c)")
    parser.add_argument(
        "--only", choices=list("abcde"), nargs="+", default=None, help="run only these sections"
    )
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    wanted = set(args.only or "abcde")
    if args.skip_lp:
        wanted.discard("c")
    if "a" in wanted:
        bench_second_price(args, rng)
    if "b" in wanted:
        bench_sampling(args, rng)
    if "c" in wanted:
        bench_lp(args)
    if "d" in wanted:
        bench_cache(args, rng)
    if "e" in wanted:
        bench_m_beliefs(args)


if __name__ == "__main__":
    main()
