"""Reports of an experiment: ``report.md``, PNG plots and a compact terminal table.

:func:`write_report` writes, into a run directory, ``report.md`` with the tables of
the incentive checks, the revenue against the bounds and the learned-against-truthful
benchmark, and the plots it links: per mechanism, truthfulness and utility loss over
training (one line per learning method and seed), and the revenue of every mechanism
as bars (truthful play, and learned play per learning method) beside the benchmarks
and bounds drawn as horizontal lines. :func:`summary_table` builds the compact
``rich`` table the command line prints.

Learned revenue is the same figure everywhere: when a benchmark is given, each
learning method's mean over seeds of the exact revenue of its learned profiles (the
benchmark's ``revenue.mean``), in the revenue table, the bar chart and the terminal
table alike. A bound the theory does not claim for the mechanisms at hand is shown as
``n/a`` with the reason.

Plots use matplotlib's Agg canvas directly (no pyplot, no global backend switch), so
they work without a display and leave the caller's matplotlib state alone.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from rich.markup import escape
from rich.table import Table

from crowdauction.evaluation import bounds as B
from crowdauction.evaluation.benchmark import Benchmark, Spread
from crowdauction.evaluation.bounds import BoundsTable
from crowdauction.evaluation.verify import ZERO_GAIN_TOLERANCE, Verification

__all__ = [
    "REPORT_NAME",
    "REVENUE_PLOT",
    "training_plot_name",
    "format_number",
    "format_where",
    "markdown_verification",
    "markdown_bounds",
    "markdown_benchmark",
    "reader_notes",
    "OPT_NOTE",
    "OPT_CAPTION",
    "plot_revenue",
    "revenue_series",
    "plot_training",
    "write_report",
    "summary_table",
    "summary_caption",
]

logger = logging.getLogger(__name__)

REPORT_NAME = "report.md"
REVENUE_PLOT = "revenue.png"
_DASH = "-"
# Magnitudes below this are shown as zero in tables (exact expectations' rounding noise).
_NOISE = 1e-12
# Line styles of the benchmark and bound lines in the revenue plot, by row kind.
_LINE_STYLE = {"benchmark": "--", "bound": ":"}
_NOT_APPLICABLE = "n/a"
# Bar colours of learned play in the revenue plot, one per learning method.
_METHOD_COLORS = ("tab:orange", "tab:green", "tab:red", "tab:purple")
# Two revenues this close are the same figure (a "truthful" revenue equal to the surplus).
_SAME_REVENUE = 1e-9

#: What OPT is, for a reader of the revenue table.
OPT_NOTE = (
    "OPT is the revenue of the best classical dominant-strategy truthful auction for a "
    "seller who knows the prior D. It does not use what the bidders know about each "
    "other, so a crowdsourced mechanism (M, L) can earn more than OPT when bidders know "
    "more than the prior; no ex-post IR mechanism earns more than the full surplus."
)
#: The same, short enough for the caption of the terminal table.
OPT_CAPTION = (
    "OPT is the best classical DST auction for a seller who knows D; it ignores what "
    "bidders know of each other, so M or L can exceed it"
)


def training_plot_name(mechanism: str) -> str:
    """File name of the training-curve plot of one mechanism."""
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in mechanism)
    return f"training_{safe}.png"


def format_number(x: float | None, digits: int = 4) -> str:
    """A number for a table: fixed digits, scientific when tiny, a dash for None or NaN."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return _DASH
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if abs(x) < _NOISE:
        x = 0.0  # floating-point noise of exact expectations, not a figure
    if x != 0 and abs(x) < 10 ** (-digits):
        return f"{x:.2e}"
    return f"{x:.{digits}f}"


def _spread(s: Spread, digits: int = 3) -> str:
    if math.isnan(s.mean):
        return _DASH
    mean, std, lo, hi = (0.0 if abs(x) < _NOISE else x for x in (s.mean, s.std, s.min, s.max))
    return f"{mean:.{digits}f} ± {std:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def format_where(d: dict) -> str:
    """A `where` dictionary of the verifier as one short line."""
    if not d:
        return "none"
    parts = []
    for k, v in d.items():
        if k == "beliefs":
            v = "; ".join(f"{b}: {lab}" for b, lab in v.items())
        elif k == "report" and isinstance(v, list) and len(v) > 6:
            top = int(np.argmax(v))
            v = f"mass {max(v):.3f} on outcome {top}"
        parts.append(f"{k}={v}")
    return ", ".join(parts)


def _method_label(bench: Benchmark, method: str) -> str:
    """``self_play (mean of 3 seeds)``: a learning method and how many runs it averages."""
    seeds = max((r.seeds for r in bench.rows if r.method == method), default=0)
    runs = f"mean of {seeds} seeds" if seeds != 1 else "1 run"
    return f"{method} ({runs})"


def _methods(bench: Benchmark | None) -> list[str]:
    return [] if bench is None else list(dict.fromkeys(r.method for r in bench.rows))


def _learned_mean(bench: Benchmark, mechanism: str, method: str) -> float | None:
    """Mean over seeds of the exact revenue of one method's learned profiles."""
    for r in bench.rows:
        if r.mechanism == mechanism and r.method == method:
            return r.revenue.mean
    return None


def _not_truthful(
    table: BoundsTable, checks: Mapping[str, Verification] | None
) -> list[tuple[str, bool]]:
    """Mechanisms of the table that are not truthful, and whether their truthful-play
    revenue is the full surplus. The verifier's finding decides where it ran, the
    mechanism's own declaration elsewhere."""
    out = []
    for r in table.rows:
        if r.kind != "mechanism":
            continue
        v = None if checks is None else checks.get(r.name)
        bad = (not v.truthful) if v is not None else r.declared_truthful is False
        if bad:
            out.append((r.name, abs(r.truthful - table.full_surplus) <= _SAME_REVENUE))
    return out


def reader_notes(
    table: BoundsTable, checks: Mapping[str, Verification] | None = None
) -> list[str]:
    """What a reader needs to read the revenue table right.

    What OPT is and why M or L may pass it; and, for every mechanism the verifier found
    not truthful, that its revenue under truthful play is not an equilibrium outcome
    (for first price it is the full surplus: every winner pays its value).
    """
    notes = [OPT_NOTE]
    for name, is_surplus in _not_truthful(table, checks):
        surplus = " (here it is the full surplus: every winner pays its whole value)"
        notes.append(
            f"{name} is not truthful: bidders gain by misreporting, so its revenue under "
            f"truthful play is not an equilibrium outcome{surplus if is_surplus else ''}; "
            "the learned columns show what bidders who learn to bid pay in it."
        )
    return notes


def summary_caption(
    bounds: BoundsTable, checks: Mapping[str, Verification] | None = None
) -> str:
    """One line under the terminal table: the notes of :func:`reader_notes`, short."""
    parts = [OPT_CAPTION]
    for name, is_surplus in _not_truthful(bounds, checks):
        what = "the full surplus, not an equilibrium" if is_surplus else "not an equilibrium"
        parts.append(f"{name} is not truthful: its 'truthful' revenue is {what}")
    return "Note: " + "; ".join(parts) + "."


# -- markdown -------------------------------------------------------------------------


def markdown_verification(checks: Mapping[str, Verification]) -> str:
    """Tables of the valuation and belief checks and of the truthful profile."""
    rows = []
    for name, v in checks.items():
        val, bel = v.valuation, v.belief
        rows.append(
            [
                name,
                format_number(val.max_gain, 6),
                str(val.belief_profiles),
                format_number(val.min_loss, 6) if val.min_loss is not None else _DASH,
                _DASH if bel is None else format_number(bel.max_gain, 6),
                _DASH if bel is None else f"{bel.rule}, {bel.method}",
                "yes" if v.truthful else "**no**",
            ]
        )
    out = [
        _md_table(
            [
                "mechanism",
                "max valuation gain",
                "belief profiles",
                "min misreport loss",
                "max belief gain",
                "belief check",
                f"truthful (gain <= {ZERO_GAIN_TOLERANCE:g})",
            ],
            rows,
        )
    ]
    viol = [(n, v) for n, v in checks.items() if not v.truthful]
    if viol:
        out.append("")
        out.append("Where truthful reporting is beaten:")
        out.append("")
        for n, v in viol:
            if not v.valuation.truthful:
                out.append(f"- {n}, valuation: {format_where(v.valuation.where)}")
            if v.belief is not None and not v.belief.truthful:
                out.append(f"- {n}, belief: {format_where(v.belief.where)}")
    prof = [(n, v.profile) for n, v in checks.items() if v.profile is not None]
    if prof:
        out += ["", "Truthful play, exactly (per bidder):", ""]
        out.append(
            _md_table(
                ["mechanism", "utility loss", "worst-cell loss", "truthfulness", "belief distance"],
                [
                    [
                        n,
                        ", ".join(format_number(x, 6) for x in p.utility_loss),
                        ", ".join(format_number(x, 6) for x in p.worst_loss),
                        ", ".join(format_number(x, 3) for x in p.truthfulness),
                        ", ".join(format_number(x, 3) for x in p.belief_distance),
                    ]
                    for n, p in prof
                ],
            )
        )
    return "\n".join(out)


def markdown_bounds(
    table: BoundsTable,
    bench: Benchmark | None = None,
    checks: Mapping[str, Verification] | None = None,
) -> str:
    """The revenue table, the notes a reader needs, and the theorem checks.

    Args:
        table: the revenue table.
        bench: the benchmark; adds one column per learning method with the mean over
            seeds of the exact revenue of its learned profiles.
        checks: the incentive checks, for the notes on mechanisms that are not truthful.
    """
    has_learned = any(r.learned is not None for r in table.rows)
    has_mc = any(r.mc_mean is not None for r in table.rows)
    methods = _methods(bench)
    header = ["row", "kind", "revenue (truthful, exact)"]
    header += ["revenue (given learned profile, exact)"] if has_learned else []
    header += [f"learned: {_method_label(bench, m)}" for m in methods if bench is not None]
    header += ["Monte Carlo (95% CI)"] if has_mc else []
    header += ["note"]
    rows = []
    for r in table.rows:
        value = format_number(r.truthful) if r.applicable else _NOT_APPLICABLE
        row = [r.name, r.kind, value]
        if has_learned:
            row.append(format_number(r.learned))
        for m in methods:
            is_mech = r.kind == "mechanism" and bench is not None
            row.append(format_number(_learned_mean(bench, r.name, m) if is_mech else None))
        if has_mc:
            row.append(
                _DASH if r.mc_mean is None else f"{r.mc_mean:.4f} ± {r.mc_halfwidth:.4f}"
            )
        row.append(r.note)
        rows.append(row)
    out = [_md_table(header, rows)]
    if methods:
        out += [
            "",
            "Learned columns: the exact revenue of each method's learned profiles, mean "
            "over its seeds (the same figures as the benchmark below and the bar chart).",
        ]
    out += ["", "Notes:", ""]
    out += [f"- {note}" for note in reader_notes(table, checks)]
    if table.checks:
        out += ["", "Theorem checks (truthful play, exact):", ""]
        out.append(
            _md_table(
                ["mechanism", "bound", "revenue", "bound value", "slack", "holds"],
                [
                    [
                        c.mechanism,
                        c.bound,
                        format_number(c.revenue, 6),
                        format_number(c.bound_value, 6),
                        format_number(c.slack, 6) if c.applicable else _NOT_APPLICABLE,
                        ("yes" if c.holds else "**no**") if c.applicable else c.reason,
                    ]
                    for c in table.checks
                ],
            )
        )
    return "\n".join(out)


def markdown_benchmark(bench: Benchmark) -> str:
    """Learned play's spread over seeds next to truthful play's exact figures."""
    rows = [
        [
            r.mechanism,
            r.method,
            str(r.seeds),
            _spread(r.revenue),
            format_number(r.truthful_revenue, 3),
            _spread(r.utility_loss),
            _spread(r.truthfulness),
            _spread(r.belief_distance),
        ]
        for r in bench.rows
    ]
    b = bench.budget
    return "\n".join(
        [
            f"Budget: {b.seeds} seed(s), {b.ppo_steps} PPO steps per run, "
            f"{b.hedge_rounds} Hedge rounds (eta {b.hedge_eta:g}). "
            "Cells: mean ± std [min, max] over seeds, learners only.",
            "",
            _md_table(
                [
                    "mechanism",
                    "method",
                    "seeds",
                    "revenue (learned)",
                    "revenue (truthful)",
                    "utility loss",
                    "truthfulness",
                    "belief distance",
                ],
                rows,
            ),
        ]
    )


# -- plots ----------------------------------------------------------------------------


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def revenue_series(
    table: BoundsTable, bench: Benchmark | None = None, learned_label: str = "learned play"
) -> list[tuple[str, list[float]]]:
    """The bar series of :func:`plot_revenue`: ``(legend, one value per mechanism row)``.

    Truthful play first; then, with a benchmark, each learning method's mean over seeds
    (NaN where a mechanism has no run of it); without one, the table's given learned
    profile when it has one.
    """
    mechs = [r for r in table.rows if r.kind == "mechanism"]
    series: list[tuple[str, list[float]]] = [("truthful play", [r.truthful for r in mechs])]
    if bench is not None:
        for m in _methods(bench):
            values = [_learned_mean(bench, r.name, m) for r in mechs]
            series.append(
                (f"learned: {_method_label(bench, m)}",
                 [np.nan if v is None else v for v in values])
            )
    elif any(r.learned is not None for r in mechs):
        series.append((learned_label, [np.nan if r.learned is None else r.learned for r in mechs]))
    return series


def plot_revenue(
    table: BoundsTable,
    path: Path,
    learned_label: str = "learned play",
    bench: Benchmark | None = None,
) -> Path:
    """Bars of each mechanism's revenue with the benchmarks and bounds as lines.

    Bars: truthful play; then, with a benchmark, one bar per learning method (mean over
    its seeds), else the given learned profile's revenue (``learned_label``) when the
    table has one. Bounds marked not applicable are left out.
    """
    mechs = [r for r in table.rows if r.kind == "mechanism"]
    lines = [r for r in table.rows if r.kind != "mechanism" and r.applicable]
    series = revenue_series(table, bench, learned_label)
    fig = _figure(max(6.0, (0.5 + 0.35 * len(series)) * len(mechs) + 3.5), 4.5)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(mechs))
    width = 0.8 / len(series)
    colors = ("tab:blue", *_METHOD_COLORS)
    for k, (label, values) in enumerate(series):
        offset = (k - (len(series) - 1) / 2) * width
        ax.bar(x + offset, values, width, label=label, color=colors[k % len(colors)])
    line_colors = ["black", "tab:cyan", "tab:pink", "tab:olive", "tab:brown", "tab:gray",
                   "navy", "darkgoldenrod"]
    for r, c in zip(lines, line_colors * 2):
        ax.axhline(r.truthful, linestyle=_LINE_STYLE.get(r.kind, "-"), color=c, linewidth=1.2,
                   label=f"{r.name} = {r.truthful:.3f}")
    ax.set_xticks(x)
    ax.set_xticklabels([r.name for r in mechs])
    ax.set_ylabel("expected revenue (exact)")
    ax.set_title("Revenue against the bounds")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_training(bench: Benchmark, mechanism: str, path: Path) -> Path | None:
    """Truthfulness and utility loss over training for one mechanism; ``None`` if no
    run of it recorded a curve."""
    runs = [r for r in bench.runs if r.mechanism == mechanism and r.curve.get("step")]
    if not runs:
        return None
    fig = _figure(9.0, 3.6)
    axes = [fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)]
    methods = list(dict.fromkeys(r.method for r in runs))
    colors = dict(zip(methods, ["tab:blue", "tab:orange", "tab:green", "tab:red"]))
    seen: set[str] = set()
    for r in runs:
        step = np.asarray(r.curve["step"], dtype=np.float64)
        # PPO counts environment steps and Hedge rounds: put both on [0, 1].
        step = step / step.max() if step.max() > 0 else step
        label = None if r.method in seen else r.method
        seen.add(r.method)
        for ax, key in zip(axes, ("truthfulness", "utility_loss")):
            y = r.curve.get(key)
            if y is not None and len(y) == len(step):
                ax.plot(step, y, color=colors[r.method], alpha=0.8, marker=".", label=label)
    axes[0].set_ylabel("truthfulness rate")
    axes[0].set_ylim(-0.02, 1.02)
    axes[1].set_ylabel("utility loss vs best response")
    for ax in axes:
        ax.set_xlabel("fraction of the run's budget (PPO steps, Hedge rounds)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{mechanism}: learning bidders over training")
    fig.tight_layout()
    fig.savefig(path)
    return path


# -- the report -----------------------------------------------------------------------


def write_report(
    run_dir: str | Path,
    title: str,
    description: Sequence[str],
    checks: Mapping[str, Verification],
    bounds: BoundsTable,
    bench: Benchmark | None = None,
    timings: Mapping[str, float] | None = None,
    learned_label: str = "learned play",
) -> Path:
    """Write ``report.md``, the plots and ``results.json`` into ``run_dir``.

    Args:
        run_dir: the run directory (created if missing).
        title: the report's heading.
        description: lines describing the experiment (setting, prior, knowledge).
        checks: display name -> incentive checks of truthful play.
        bounds: the revenue table.
        bench: the learned-against-truthful benchmark, if it ran.
        timings: stage -> seconds, listed at the end.
        learned_label: legend of the learned-play bars when the table carries a given
            learned profile and no benchmark is given (with a benchmark, the bars are
            each learning method's mean over seeds).

    Returns:
        The path of ``report.md``.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    plot_revenue(bounds, run_dir / REVENUE_PLOT, learned_label, bench)
    training_plots: list[tuple[str, str]] = []
    if bench is not None:
        for mech in dict.fromkeys(r.mechanism for r in bench.runs):
            name = training_plot_name(mech)
            if plot_training(bench, mech, run_dir / name) is not None:
                training_plots.append((mech, name))
    parts = [f"# {title}", ""]
    parts += [f"- {line}" for line in description]
    parts += ["", "## Incentives: exact verification of truthful play", ""]
    parts.append(markdown_verification(checks))
    parts += ["", "## Revenue against the bounds", ""]
    parts.append(markdown_bounds(bounds, bench, checks))
    parts += ["", f"![revenue against the bounds]({REVENUE_PLOT})"]
    if bench is not None:
        parts += ["", "## Learned against truthful play", ""]
        parts.append(markdown_benchmark(bench))
        for mech, name in training_plots:
            parts += ["", f"![{mech}: training curves]({name})"]
    if timings:
        parts += ["", "## Run time", ""]
        parts.append(_md_table(["stage", "seconds"], [[k, f"{v:.1f}"] for k, v in timings.items()]))
    path = run_dir / REPORT_NAME
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    results: dict[str, Any] = {
        "bounds": bounds.to_dict(),
        "verification": {
            n: {
                "valuation_max_gain": v.valuation.max_gain,
                "valuation_min_loss": v.valuation.min_loss,
                "belief_max_gain": None if v.belief is None else v.belief.max_gain,
                "truthful": v.truthful,
            }
            for n, v in checks.items()
        },
    }
    if bench is not None:
        results["benchmark"] = bench.to_dict()
    if timings:
        results["timings"] = dict(timings)
    (run_dir / "results.json").write_text(
        json.dumps(results, indent=2, default=_json_default) + "\n", encoding="utf-8"
    )
    logger.info("wrote %s", path)
    return path


def _json_default(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return str(x)


# -- terminal -------------------------------------------------------------------------


#: Short terminal labels of the reference rows of the revenue table.
_SHORT = {
    B.ROW_OPT: "OPT",
    B.ROW_THEOREM1: "Thm 1 bound",
    B.ROW_THEOREM2: "Thm 2 bound",
    B.ROW_SECOND_PRICE: "2nd price",
    B.ROW_MONOPOLY: "2nd price+reserve",
    B.ROW_MYERSON: "Myerson (marg.)",
    B.ROW_SURPLUS: "E[max]",
}
#: Short terminal headers of the benchmark methods.
_METHOD_SHORT = {"self_play": "self-play", "best_response": "best resp", "hedge": "Hedge"}


def _gain(x: float) -> str:
    """A verifier gain for the terminal: ``0`` when within the zero tolerance."""
    return "0" if x <= ZERO_GAIN_TOLERANCE else f"{x:.3g}"


def summary_table(
    bounds: BoundsTable,
    checks: Mapping[str, Verification] | None = None,
    bench: Benchmark | None = None,
    title: str = "crowdauction",
    monte_carlo: bool = False,
) -> Table:
    """A compact ``rich`` table: one row per mechanism, the reference rows below.

    Columns: exact truthful revenue, optionally the Monte Carlo cross-check, the
    largest valuation and belief gains the verifier found, and per benchmark method
    the learned revenue and truthfulness rate (means over seeds, the figures of the
    report's revenue table and bar chart). The caption says what the columns are;
    print :func:`summary_caption` under the table for what OPT is and which
    mechanisms' truthful revenue is not an equilibrium.
    """
    methods = _methods(bench)
    caption = []
    if checks is not None:
        caption.append("gains: largest valuation / belief misreport gain (exact)")
    if methods:
        caption.append("learned: revenue and truthfulness, mean over seeds")
    table = Table(title=title, caption="; ".join(caption) or None)
    table.add_column("", no_wrap=True)
    table.add_column("truthful", justify="right", no_wrap=True)
    has_mc = monte_carlo and any(r.mc_mean is not None for r in bounds.rows)
    if has_mc:
        table.add_column("Monte Carlo", justify="right", no_wrap=True)
    if checks is not None:
        table.add_column("gains", justify="right", no_wrap=True)
    for m in methods:
        table.add_column(_METHOD_SHORT.get(m, m), justify="right", no_wrap=True)
    for r in bounds.rows:
        if r.kind != "mechanism":
            continue
        cells = [escape(r.name), format_number(r.truthful, 3)]
        if has_mc:
            cells.append(
                _DASH if r.mc_mean is None else f"{r.mc_mean:.3f}±{r.mc_halfwidth:.3f}"
            )
        if checks is not None:
            v = checks.get(r.name)
            if v is None:
                cells.append(_DASH)
            else:
                bel = _DASH if v.belief is None else _gain(v.belief.max_gain)
                cells.append(f"{_gain(v.valuation.max_gain)} / {bel}")
        for m in methods:
            row = next((b for b in bench.rows if b.mechanism == r.name and b.method == m), None)
            cells.append(
                _DASH if row is None
                else f"{row.revenue.mean:.3f} {100 * row.truthfulness.mean:3.0f}%"
            )
        table.add_row(*cells)
    table.add_section()
    pad = [""] * (len(table.columns) - 2)
    for r in bounds.rows:
        if r.kind != "mechanism":
            label = escape(_SHORT.get(r.name, r.name))
            value = format_number(r.truthful, 3) if r.applicable else _NOT_APPLICABLE
            table.add_row(f"[dim]{label}[/dim]", value, *pad)
    return table
