"""``crowdauction demo --quick`` end to end, and the verify/bounds subcommands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from crowdauction.cli import build_parser, main
from crowdauction.evaluation import bounds as B
from crowdauction.evaluation.demo import DEMO_MECHANISMS, QUICK_BUDGET, run_demo
from crowdauction.evaluation.report import REPORT_NAME, REVENUE_PLOT, training_plot_name


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
    results = json.loads((result.run_dir / "results.json").read_text(encoding="utf-8"))
    assert results["verification"]["first price"]["truthful"] is False
    assert results["verification"]["M"]["truthful"] is True


def test_quick_demo_figures(quick) -> None:
    _, result = quick
    # Truthful play is verified exactly: only first price can be beaten.
    assert {n for n, v in result.checks.items() if not v.truthful} == {"first price"}
    assert all(c.holds for c in result.bounds.checks)
    assert {c.mechanism for c in result.bounds.checks} == {"M", "L"}
    # Every learned run was measured and learned revenue is in the revenue table.
    assert len(result.benchmark.rows) == len(DEMO_MECHANISMS) * len(QUICK_BUDGET.methods)
    for mech in DEMO_MECHANISMS:
        assert result.bounds.row(mech, kind="mechanism").learned is not None
    for r in result.benchmark.runs:
        assert 0.0 <= r.truthfulness <= 1.0
        assert r.utility_loss >= -1e-9
        assert r.revenue <= result.bounds.full_surplus + 1e-9
        if r.method != "hedge":
            assert Path(r.run_dir, "metrics.csv").is_file()


def test_cli_parses_the_demo_flags() -> None:
    args = build_parser().parse_args(["demo", "--quick", "--out", "somewhere", "--seed", "7"])
    assert args.quick and args.out == "somewhere" and args.seed == 7
    args = build_parser().parse_args(["demo"])
    assert not args.quick and args.out == "runs" and args.seed == 0


def _config(tmp_path: Path, mechanism: str) -> Path:
    path = tmp_path / f"{mechanism}.toml"
    path.write_text(
        "[setting]\nn = 2\nvalues = [0, 1, 2]\nprior = \"gaussian_copula\"\n"
        "prior_params = { rho = 0.3 }\nknowledge = [[1], \"own\"]\n\n"
        f"[mechanism]\nname = \"{mechanism}\"\ndelta = 0.0\n",
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
