"""``crowdauction demo --quick`` end to end, and the verify/bounds subcommands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from crowdauction.cli import build_parser, main
from crowdauction.evaluation import bounds as B
from crowdauction.evaluation.demo import DEMO_MECHANISMS, QUICK_BUDGET, run_demo
from crowdauction.evaluation.report import (
    OPT_NOTE,
    REPORT_NAME,
    REVENUE_PLOT,
    format_number,
    revenue_series,
    summary_caption,
    summary_table,
    training_plot_name,
)


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("runs")
    return out, run_demo(out=out, quick=True, seed=0)


def test_quick_demo_writes_the_report_and_plots(quick) -> None:
    out, result = quick
    assert result.run_dir.parent == out and result.run_dir.name.startswith("demo-")
    assert result.report == result.run_dir / REPORT_NAME and result.report.is_file()
    pngs = [REVENUE_PLOT] + [training_plot_name(m) for m in DEMO_MECHANISMS]
    for name in pngs:
        data = (result.run_dir / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", name
    text = result.report.read_text(encoding="utf-8")
    for heading in (
        "## Incentives: exact verification of truthful play",
        "## Revenue against the bounds",
        "## Learned against truthful play",
    ):
        assert heading in text
    for row in (B.ROW_OPT, B.ROW_THEOREM1, B.ROW_THEOREM2, B.ROW_SECOND_PRICE, B.ROW_MONOPOLY,
                B.ROW_MYERSON, B.ROW_SURPLUS):
        assert f"| {row} |" in text, row
    for mech in DEMO_MECHANISMS:
        assert f"| {mech} | mechanism |" in text, mech
        for method in QUICK_BUDGET.methods:
            assert f"| {mech} | {method} |" in text, (mech, method)
    # The notes a reader needs: what OPT is, and that first price's truthful revenue is
    # not an equilibrium outcome but the full surplus.
    assert OPT_NOTE in text
    assert "first price is not truthful" in text and "full surplus" in text
    results = json.loads((result.run_dir / "results.json").read_text(encoding="utf-8"))
    assert results["verification"]["first price"]["truthful"] is False
    assert results["verification"]["M"]["truthful"] is True


def test_quick_demo_figures(quick) -> None:
    _, result = quick
    # Truthful play is verified exactly: only first price can be beaten.
    assert {n for n, v in result.checks.items() if not v.truthful} == {"first price"}
    assert all(c.holds for c in result.bounds.checks)
    assert {c.mechanism for c in result.bounds.checks} == {"M", "L"}
    # Every learned run was measured.
    assert len(result.benchmark.rows) == len(DEMO_MECHANISMS) * len(QUICK_BUDGET.methods)
    for r in result.benchmark.runs:
        assert 0.0 <= r.truthfulness <= 1.0
        assert r.utility_loss >= -1e-9
        assert r.revenue <= result.bounds.full_surplus + 1e-9
        if r.method != "hedge":
            assert Path(r.run_dir, "metrics.csv").is_file()


def _md_row(text: str, first: str) -> list[str]:
    """Cells of the markdown table row whose first two cells are ``first``."""
    line = next(ln for ln in text.splitlines() if ln.startswith(f"| {first} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_learned_revenue_is_the_same_figure_everywhere(quick) -> None:
    # The revenue table, the bar chart and the terminal table all show each learning
    # method's mean over seeds (a single seed here, so mean = that run's revenue).
    _, result = quick
    bench = result.benchmark
    text = result.report.read_text(encoding="utf-8")
    header = _md_row(text, "row")
    methods = list(dict.fromkeys(r.method for r in bench.rows))
    cols = [header.index(f"learned: {m} (1 run)") for m in methods]
    console = Console(record=True, width=200)
    console.print(summary_table(result.bounds, result.checks, bench))
    terminal = console.export_text()
    for mech in DEMO_MECHANISMS:
        cells = _md_row(text, f"{mech} | mechanism")
        term = next(ln for ln in terminal.splitlines() if ln.startswith(f"│ {mech} "))
        for m, col in zip(methods, cols):
            mean = bench.row(mech, m).revenue.mean
            assert mean == pytest.approx(np.mean([r.revenue for r in bench.runs
                                                  if r.mechanism == mech and r.method == m]))
            assert cells[col] == format_number(mean), (mech, m)
            assert f"{mean:.3f}" in term, (mech, m)
        assert result.bounds.row(mech, kind="mechanism").learned is None  # no second figure
    assert "mean over seeds" in terminal
    bars = dict(revenue_series(result.bounds, bench))
    names = [r.name for r in result.bounds.rows if r.kind == "mechanism"]
    for m in methods:
        expected = [bench.row(mech, m).revenue.mean for mech in names]
        np.testing.assert_allclose(bars[f"learned: {m} (1 run)"], expected, rtol=0, atol=0)
    caption = summary_caption(result.bounds, result.checks)
    assert caption.startswith("Note: OPT is the best classical DST auction")
    assert "first price is not truthful" in caption and "M is not" not in caption


def test_cli_parses_the_demo_flags() -> None:
    args = build_parser().parse_args(["demo", "--quick", "--out", "somewhere", "--seed", "7"])
    assert args.quick and args.out == "somewhere" and args.seed == 7
    args = build_parser().parse_args(["demo"])
    assert not args.quick and args.out == "runs" and args.seed == 0


def _config(tmp_path: Path, mechanism: str, delta: float = 0.0) -> Path:
    path = tmp_path / f"{mechanism}.toml"
    path.write_text(
        "[setting]\nn = 2\nvalues = [0, 1, 2]\nprior = \"gaussian_copula\"\n"
        "prior_params = { rho = 0.3 }\nknowledge = [[1], \"own\"]\n\n"
        f"[mechanism]\nname = \"{mechanism}\"\ndelta = {delta}\n",
        encoding="utf-8",
    )
    return path


def test_verify_command_exit_status(tmp_path: Path) -> None:
    out = tmp_path / "fp.json"
    assert main(["verify", str(_config(tmp_path, "first_price")), "--json", str(out)]) == 1
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["valuation_max_gain"] == pytest.approx(2.0) and not data["truthful"]
    assert main(["verify", str(_config(tmp_path, "second_price"))]) == 0


def test_bounds_command(tmp_path: Path) -> None:
    out = tmp_path / "bounds.json"
    assert main(["bounds", str(_config(tmp_path, "second_price")), "--json", str(out)]) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    names = [r["name"] for r in data["rows"]]
    assert B.ROW_OPT in names and "second_price" in names
    second = [r for r in data["rows"] if r["name"] == B.ROW_SECOND_PRICE][0]
    assert data["opt"] >= second["truthful"]


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_bounds_marks_theorem1_not_applicable_for_m_with_second_price(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The example runs M with design = "second_price": Theorem 1 claims nothing there,
    # so even --strict passes, and the table says n/a instead of FAILS.
    out = tmp_path / "bounds.json"
    config = str(EXAMPLES / "best_response_M.toml")
    assert main(["bounds", config, "--strict", "--json", str(out)]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "n/a: Theorem 1 assumes M's inner design is the LP-optimal auction" in text
    assert "FAILS" not in text
    (check,) = json.loads(out.read_text(encoding="utf-8"))["checks"]
    assert check["status"] == "n/a" and check["applicable"] is False


def test_bounds_strict_exits_1_when_an_applicable_bound_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import crowdauction.evaluation.cli as ecli

    config = str(_config(tmp_path, "L", delta=0.05))
    assert main(["bounds", config, "--strict"]) == 0  # L meets Theorem 2
    assert "holds" in capsys.readouterr().out

    def too_high(*args, **kwargs):
        # A bound one unit above the revenue: what a broken mechanism would produce.
        table = B.revenue_bounds(*args, **kwargs)
        for c in table.checks:
            c.bound_value = c.revenue + 1.0
        return table

    monkeypatch.setattr(ecli, "revenue_bounds", too_high)
    assert main(["bounds", config]) == 0  # without --strict a failure only warns
    assert "FAILS" in capsys.readouterr().out
    assert main(["bounds", config, "--strict"]) == 1
    assert "--strict: applicable bound failed: L" in capsys.readouterr().out


def test_bounds_help_documents_strict_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["bounds", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "--strict" in text and "exit status:" in text
    for code in ("  0  ", "  1  --strict", "  2  "):
        assert code in text, code


def test_bad_config_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[mechanism]\nname = \"nope\"\n", encoding="utf-8")
    assert main(["verify", str(path)]) == 2


# -- the benchmark's pieces -----------------------------------------------------------


def test_spread_of_seeds() -> None:
    from crowdauction.evaluation.benchmark import Spread

    s = Spread.of([1.0, 2.0, 3.0])
    assert (s.mean, s.min, s.max) == (2.0, 1.0, 3.0)
    assert s.std == pytest.approx((2.0 / 3.0) ** 0.5)
    assert Spread.of([float("nan"), 4.0]).mean == 4.0  # a run without the figure is skipped
    assert np.isnan(Spread.of([float("nan")]).mean)


def test_budget_rejects_bad_values() -> None:
    from crowdauction.errors import InvalidConfigError
    from crowdauction.evaluation.benchmark import Budget

    with pytest.raises(InvalidConfigError, match="unknown benchmark methods"):
        Budget(methods=("self_play", "sarsa"))
    with pytest.raises(InvalidConfigError, match="seeds"):
        Budget(seeds=0)
    with pytest.raises(InvalidConfigError, match="hedge_profile"):
        Budget(hedge_profile="best")


def test_hedge_learns_truthful_play_in_a_strict_auction() -> None:
    from crowdauction.evaluation.benchmark import Budget, run_hedge
    from crowdauction.mechanisms import Knowledge, Prior, SecondPrice, Strictified

    kn = Knowledge(Prior.uniform([0, 1, 2], 2))
    mech = Strictified(SecondPrice(), 0.2, space=kn.space)
    profile, curve = run_hedge(kn, mech, Budget(hedge_rounds=40, hedge_eta=20.0))
    # Uniform mixtures first (truthful with probability 1/3), then the strict lottery
    # pushes every cell towards its true value.
    assert curve["step"][0] == 0.0 and curve["step"][-1] == 40.0
    assert curve["truthfulness"][0] == pytest.approx(1 / 3)
    assert curve["truthfulness"][-1] > 0.9
    assert curve["utility_loss"][-1] < curve["utility_loss"][0]


def test_revenue_table_and_bars_use_the_mean_over_seeds_not_seed_0() -> None:
    from crowdauction.evaluation.benchmark import Budget, RunFigures, summarise
    from crowdauction.evaluation.report import markdown_bounds
    from crowdauction.evaluation.verify import profile_check
    from crowdauction.mechanisms import Knowledge, Prior, SecondPrice, Strategy

    coin = Knowledge(Prior.uniform([0, 1], 2))
    table = B.revenue_bounds(coin, {"SP": SecondPrice()})

    def run(seed: int, revenue: float) -> RunFigures:
        return RunFigures("SP", "self_play", seed, revenue, 0.0, 0.0, 1.0, float("nan"), [0, 1])

    truthful = {"SP": profile_check(SecondPrice(), coin, Strategy.truthful(coin))}
    budget = Budget(seeds=2, methods=("self_play",))
    bench = summarise([run(0, 0.1), run(1, 0.3)], truthful, budget)
    text = markdown_bounds(table, bench)
    header = _md_row(text, "row")
    col = header.index("learned: self_play (mean of 2 seeds)")
    assert _md_row(text, "SP | mechanism")[col] == "0.2000"  # (0.1 + 0.3) / 2, not 0.1
    assert dict(revenue_series(table, bench))["learned: self_play (mean of 2 seeds)"] == [0.2]
