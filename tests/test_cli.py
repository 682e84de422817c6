"""The ``crowdauction`` command line: cheap help, Ctrl-C and resume, output, claim labels.

The Ctrl-C test runs ``crowdauction train`` in a subprocess, sends it SIGINT once its
first checkpoint is on disk, and resumes the run; it takes about 10 s on an idle
two-core machine.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from rich.console import Console

from crowdauction.cli import EXIT_INTERRUPTED, build_parser, main
from crowdauction.training.io import TEMP_SUFFIX
from crowdauction.training.metrics import COLUMNS, MetricsWriter, read_metrics

HEAVY = ("torch", "stable_baselines3", "pettingzoo", "supersuit", "gymnasium", "tensorboard")

# Builds the parser, then asks every subcommand for its help, and reports which heavy
# modules were loaded after each step. argv[1] names a module to import first (a probe
# that the check sees what is loaded), or "-".
_PROBE = textwrap.dedent(
    """
    import contextlib, io, json, sys
    if sys.argv[1] != "-":
        __import__(sys.argv[1])
    heavy = {heavy!r}
    loaded = lambda: sorted(m for m in heavy if m in sys.modules)
    from crowdauction.cli import build_parser, main
    parser = build_parser()
    out = {{"build_parser": loaded()}}
    commands = [a for a in parser._actions if a.dest == "command"][0].choices
    for argv in [["--help"]] + [[c, "--help"] for c in commands]:
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                main(argv)
            except SystemExit:
                pass
        out[" ".join(argv)] = loaded()
    print(json.dumps(out))
    """
).format(heavy=HEAVY)


def _probe(preload: str = "-") -> dict[str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, preload],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- help is cheap ------------------------------------------------------------------------


def test_help_of_every_command_loads_no_heavy_dependency() -> None:
    got = _probe()
    assert {"train --help", "demo --help", "verify --help", "bounds --help"} <= set(got)
    assert "reproduce --help" in got
    assert got == {k: [] for k in got}


def test_the_help_probe_sees_a_heavy_import() -> None:
    # The same probe with torch imported first reports it at every step.
    got = _probe("torch")
    assert all("torch" in loaded for loaded in got.values())


# -- Ctrl-C and resume --------------------------------------------------------------------

_CONFIG = """\
[setting]
n = 2
values = [0, 1, 2]
[mechanism]
name = "M"
design = "second_price"
scoring = "brier"
[algo]
n_envs = 8
n_steps = 8
batch_size = 32
n_epochs = 1
net_arch = [8]
[run]
mode = "self_play"
total_steps = {total}
checkpoint_every = 256
eval_every = 0
seed = 1
name = "sig"
"""
# Two bidders in each of 8 auctions, 8 steps per rollout: 128 timesteps per row.
ROLLOUT = 128


def _csv_is_whole(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    lines = text.splitlines()
    assert lines[0] == ",".join(COLUMNS)
    assert all(line.count(",") == len(COLUMNS) - 1 for line in lines)


def test_sigint_during_train_exits_130_with_the_resume_command_then_resume_finishes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    total = 8192
    cfg = tmp_path / "c.toml"
    cfg.write_text(_CONFIG.format(total=total), encoding="utf-8")
    # A deep output folder: the run directory is wider than an 80-column console.
    out = tmp_path / ("deep_folder_" * 6) / "runs"
    run_dir = out / "sig"
    assert len(str(run_dir)) > 80
    proc = subprocess.Popen(
        [sys.executable, "-m", "crowdauction.cli", "train", str(cfg), "--out", str(out),
         "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Python ignores SIGINT if its parent did (background jobs); restore the default.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 60
        while not list((run_dir / "checkpoints").glob("step_*.ckpt")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no checkpoint within 60 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == EXIT_INTERRUPTED, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("ERROR crowdauction: interrupted at step ")
    assert last.endswith(f"with: crowdauction train --resume {run_dir}")
    assert stdout == ""
    # What the interrupt left: whole checkpoints and metric lines, no final model.
    assert not list(run_dir.rglob(f"*{TEMP_SUFFIX}"))
    assert not (run_dir / "model.zip").exists() and not (run_dir / "done.json").exists()
    ckpts = sorted((run_dir / "checkpoints").glob("step_*.ckpt"))
    ckpt_step = int(ckpts[-1].stem.removeprefix("step_"))
    assert f"checkpoint at step {ckpt_step} with" in last
    interrupted_at = int(last.split("interrupted at step ")[1].split(";")[0])
    assert 256 <= ckpt_step <= interrupted_at < total
    _csv_is_whole(run_dir / "metrics.csv")

    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 0
    out_text, err_text = capsys.readouterr()
    assert out_text == f"{run_dir}\n"  # the path alone, not wrapped
    assert json.loads((run_dir / "done.json").read_text()) == {"steps": total}
    _csv_is_whole(run_dir / "metrics.csv")
    rows = read_metrics(run_dir / "metrics.csv")
    assert [r["step"] for r in rows] == list(range(ROLLOUT, total + 1, ROLLOUT))
    # 8 auctions x 2 bidders x 8 steps, 2 steps per auction: 64 bidder episodes a row.
    assert all(r["train/episodes"] == 64 and type(r["train/episodes"]) is int for r in rows)
    assert (run_dir / "model.zip").exists()
    # Counts print as integers, floats with four decimals; the table has no path title.
    table = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in err_text.splitlines()
        if line.count("│") == 3
    }
    assert table["train/episodes"] == "64"
    assert table["steps"] == str(total)
    assert len(table["eval/regret"].split(".")[1]) == 4


def test_final_table_has_integer_counts_and_no_path_title() -> None:
    from crowdauction.training.cli import _final_table

    nan = float("nan")
    rows = [
        {"step": 128, "learner": -1, "train/episodes": 64, "eval/regret": nan},
        {"step": 256, "learner": -1, "train/episodes": 60, "eval/regret": 0.125},
    ]
    table = _final_table(rows, 256, 1234.6)
    assert table.title == "final metrics"
    console = Console(width=60, record=True, file=io.StringIO())
    console.print(table)
    cells = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in console.export_text().splitlines()
        if line.count("│") == 3
    }
    # The last measured value of each metric; step and learner are not metrics.
    assert cells == {
        "train/episodes": "60",
        "eval/regret": "0.1250",
        "steps": "256",
        "steps/s (this call)": "1235",
    }


def test_keyboard_interrupt_outside_training_is_one_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from crowdauction.evaluation import reproduce

    def stop(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(reproduce, "run_claims", stop)
    with caplog.at_level(logging.ERROR, logger="crowdauction"):
        assert main(["reproduce", "--claim", "lemma1"]) == EXIT_INTERRUPTED
    assert [r.getMessage() for r in caplog.records] == ["interrupted"]


# -- metrics file -------------------------------------------------------------------------


def test_torn_last_metrics_line_is_ignored_and_dropped_on_resume(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    w = MetricsWriter(path)
    w.write({"step": 64, "learner": -1, "train/episodes": 32, "eval/revenue": 0.5})
    w.close()
    good = path.read_text(encoding="utf-8")
    assert good.splitlines()[1] == "64,-1,,,,,32,,,,,0.5"
    # A hard kill cut the next line inside its last field: every field is there, but
    # the value is wrong and the newline missing.
    with open(path, "a", encoding="utf-8") as f:
        f.write("128,-1,,,,,32,,,,,0.12")
    rows = read_metrics(path)
    assert [r["step"] for r in rows] == [64]
    assert rows[0]["train/episodes"] == 32 and type(rows[0]["train/episodes"]) is int
    MetricsWriter(path, keep_until=10_000).close()  # what resume does
    assert path.read_text(encoding="utf-8") == good


# -- reproduce --list ---------------------------------------------------------------------


def test_reproduce_list_labels_the_two_parts_of_claim_9(capsys: pytest.CaptureFixture[str]):
    assert main(["reproduce", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    labels = [line.split()[0] for line in lines if line.strip() and line.split()[0][0].isdigit()]
    assert labels == ["1", "2", "3", "4", "5", "6", "7", "8", "9a", "9b", "10", "11"]
    assert any(line.split()[:2] == ["9a", "equilibrium_selection"] for line in lines)
    assert any(line.split()[:2] == ["9b", "equilibrium_selection_ppo"] for line in lines)
    assert "Claim 9 has 2 parts, 9a and 9b; --claim 9 runs both." in lines
    # One line per claim, even for titles wider than the console.
    assert len([ln for ln in lines if ln.strip()]) == len(labels) + 1


@pytest.mark.parametrize(
    "claim, names",
    [
        ("9", ["equilibrium_selection", "equilibrium_selection_ppo"]),
        ("9a", ["equilibrium_selection"]),
        ("9b", ["equilibrium_selection_ppo"]),
        ("10", ["cremer_mclean"]),
        ("lemma1", ["lemma1"]),
    ],
)
def test_reproduce_claim_by_number_label_or_name(
    monkeypatch: pytest.MonkeyPatch, claim: str, names: list[str]
) -> None:
    from crowdauction.evaluation import reproduce

    asked: list[list[str]] = []

    def fake(selection: list[str], out: object, command: str) -> list[reproduce.Row]:
        asked.append([c.name for c in reproduce.resolve_claims(selection)])
        return []

    monkeypatch.setattr(reproduce, "run_claims", fake)
    assert main(["reproduce", "--claim", claim]) == 0
    assert asked == [names]


def test_reproduce_help_says_claim_9_runs_both() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    text = " ".join(sub.choices["reproduce"].format_help().split())
    assert "claim 9 has 2 parts, 9a and 9b; --claim 9 runs both" in text


def test_unwrapped_console_keeps_a_long_path_on_one_line() -> None:
    # The mechanism the train command relies on for stdout.
    path = "/x" * 100
    console = Console(soft_wrap=True, width=40, record=True, file=io.StringIO())
    console.print(path, markup=False, highlight=False)
    assert console.export_text() == path + "\n"
    wrapped = Console(width=40, record=True, file=io.StringIO())
    wrapped.print(path, markup=False, highlight=False)
    assert wrapped.export_text() != path + "\n"  # without soft_wrap it would wrap


@pytest.mark.parametrize(
    "argv, complaint",
    [
        (["demo", "--quick", "--seed", "-1"], "not in [0, 2**32)"),
        (["verify", "CFG", "--seed", "x"], "is not an integer"),
        (["verify", "CFG", "--json", "/nonexistent-folder/x.json"], "does not exist"),
        (["bounds", "CFG", "--mc", "1"], "no confidence interval"),
        (["bounds", "CFG", "--mc", "-5"], "no confidence interval"),
    ],
)
def test_evaluation_commands_reject_bad_arguments_before_any_work(argv, complaint, capsys):
    from crowdauction.cli import main

    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert complaint in capsys.readouterr().err


def test_demo_out_must_not_be_a_file(tmp_path, capsys):
    from crowdauction.cli import main

    afile = tmp_path / "f"
    afile.write_text("x")
    with pytest.raises(SystemExit):
        main(["demo", "--quick", "--out", str(afile / "sub")])
    assert "is a file, not a folder" in capsys.readouterr().err
