"""Configuration checks that must fail early: prior CSV rows, seeds, batch sizes, run paths.

Each test pins a defect found in QA: a value that used to pass validation and crash later
(or silently change the prior) must now fail in :func:`config_from_dict`, before anything
is written, with a message naming the key or the file, line and column.
"""

from __future__ import annotations

import copy
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crowdauction.cli import main as cli_main
from crowdauction.errors import InvalidConfigError, InvalidPriorError
from crowdauction.mechanisms import TypeSpace
from crowdauction.training import (
    config_from_dict,
    config_to_dict,
    load_config,
    read_samples_prior,
    read_table_prior,
    train,
)
from crowdauction.training import config as config_module
from crowdauction.training.config import build_mechanism, build_prior, save_config, validate
from crowdauction.training.run import _setup

SPACE = TypeSpace.uniform(2, [0, 1, 2])

#: A two-bidder config that trains in about a second.
SMALL: dict[str, Any] = {
    "setting": {"n": 2, "values": [0, 1], "prior": "uniform"},
    "mechanism": {"name": "second_price"},
    "algo": {"n_envs": 2, "n_steps": 4, "batch_size": 4, "n_epochs": 1, "net_arch": [4]},
    "run": {"mode": "best_response", "total_steps": 8, "seed": 0, "name": "r"},
}


def small(out: Path, **changes: dict[str, Any]) -> dict[str, Any]:
    d = copy.deepcopy(SMALL)
    d["run"]["out"] = str(out)
    for section, kv in changes.items():
        d.setdefault(section, {}).update(kv)
    return d


# -- prior CSVs: the header rule ----------------------------------------------------------


def test_typo_in_the_first_table_row_is_reported_not_dropped(tmp_path: Path) -> None:
    f = tmp_path / "typo.csv"
    f.write_text("0,0,O.5\n1,1,0.25\n2,2,0.25\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "sums to 0.5, normalising": the row is not dropped
        with pytest.raises(InvalidPriorError) as e:
            read_table_prior(f, SPACE)
    assert f"{f}:1: column 3: 'O.5' is not a number" in str(e.value)


def test_typo_in_the_first_samples_row_is_reported_not_dropped(tmp_path: Path) -> None:
    f = tmp_path / "obs.csv"
    f.write_text("0.1,x1.9\n2,2\n2,2\n")
    with pytest.raises(InvalidPriorError) as e:
        read_samples_prior(f, SPACE)
    assert f"{f}:1: column 2: 'x1.9' is not a number" in str(e.value)


@pytest.mark.parametrize(
    "text, where, also",
    [
        ("0,0,abc\n", ":1: column 3: 'abc' is not a number", "header only if none"),
        ("0,0,1,\n", ":1: column 4: empty field", "trailing comma"),
        ("0,,1\n", ":1: column 2: an empty field is not a number", "expected 2 values"),
        ("0;0;1\n", ":1: expected 3 fields", "commas, not semicolons"),
        ("0\t0\t1\n", ":1: expected 3 fields", "commas, not tabs"),
        ("0 0 1\n", ":1: expected 3 fields", "commas, not spaces"),
        ("v0;v1;p\n0;0;1\n", ":2: expected 3 fields", "commas, not semicolons"),
    ],
)
def test_single_bad_rows_name_line_and_column(
    tmp_path: Path, text: str, where: str, also: str
) -> None:
    f = tmp_path / "one.csv"
    f.write_text(text)
    with pytest.raises(InvalidPriorError) as e:
        read_table_prior(f, SPACE)
    msg = str(e.value)
    assert str(f) + where in msg and also in msg
    assert "no data rows" not in msg


def test_a_row_without_numbers_is_still_a_header(tmp_path: Path) -> None:
    f = tmp_path / "h.csv"
    # Digits inside names do not make a field a number.
    f.write_text("value of bidder 1,value of bidder 2,p\n0,0,0.75\n2,1,0.25\n")
    p = read_table_prior(f, SPACE)
    want = np.zeros((3, 3))
    want[0, 0], want[2, 1] = 0.75, 0.25
    np.testing.assert_array_equal(p.table, want)
    f.write_text("v0,v1\n0.4,1.6\n")
    np.testing.assert_array_equal(read_samples_prior(f, SPACE).table[0, 2], 1.0)
    f.write_text("v0,v1,p\n")
    with pytest.raises(InvalidPriorError, match="no data rows"):
        read_table_prior(f, SPACE)


def test_byte_order_mark_does_not_turn_the_first_row_into_a_header(tmp_path: Path) -> None:
    f = tmp_path / "bom.csv"
    f.write_bytes("0,0,0.5\n1,1,0.5\n".encode("utf-8-sig"))
    p = read_table_prior(f, SPACE)
    assert p.table[0, 0] == 0.5 and p.table[1, 1] == 0.5


# -- prior CSVs: sums past the float range ------------------------------------------------


def test_overflowing_table_sum_is_detected_and_normalised(tmp_path: Path) -> None:
    f = tmp_path / "big.csv"
    f.write_text("0,0,1e308\n1,1,1e308\n2,2,1.5e308\n")
    with pytest.warns(UserWarning, match="past the largest float") as rec:
        p = read_table_prior(f, SPACE)
    assert "sum to 0" not in str(rec[0].message)
    # Weights 1 : 1 : 1.5 (by hand: 2/7, 2/7, 3/7).
    np.testing.assert_allclose(np.diag(p.table), [2 / 7, 2 / 7, 3 / 7], rtol=1e-15)
    assert p.table.sum() == pytest.approx(1.0, abs=1e-15)


# -- run values that used to crash after validation ---------------------------------------


@pytest.mark.parametrize(
    "section, key, value, named",
    [
        ("run", "seed", 2**32, r"run\.seed = 4294967296"),
        ("run", "seed", 2**40, r"run\.seed"),
        ("run", "seed", -1, r"run\.seed = -1"),
        ("algo", "batch_size", 1, r"algo\.batch_size = 1"),
        ("algo", "n_envs", 1, r"algo\.n_steps \* policy rows = 1 \* 1"),
        ("run", "name", "a\0b", r"run\.name"),
        ("run", "name", "x" * 201, r"run\.name is 201 bytes"),
        ("run", "name", "é" * 101, r"run\.name is 202 bytes"),
    ],
)
def test_values_that_crashed_later_fail_before_anything_is_written(
    tmp_path: Path, section: str, key: str, value: Any, named: str
) -> None:
    changes: dict[str, dict[str, Any]] = {section: {key: value}}
    if key == "n_envs":
        changes["algo"]["n_steps"] = 1
    d = small(tmp_path / "out", **changes)
    with pytest.raises(InvalidConfigError, match=named):
        train(d)
    assert not (tmp_path / "out").exists()


def test_the_edges_of_the_new_ranges_are_accepted(tmp_path: Path) -> None:
    out = tmp_path / "out"
    config_from_dict(small(out, algo={"batch_size": 2}))
    config_from_dict(small(out, run={"name": "x" * 200}))
    config_from_dict(small(out, run={"name": "é" * 100}))  # 200 bytes
    # Self-play has n_envs * n rows: one auction of two bidders is a 2-sample rollout.
    config_from_dict(small(out, algo={"n_envs": 1, "n_steps": 1}, run={"mode": "self_play"}))
    # The largest seed trains (numpy's legacy generator takes it).
    r = train(small(out, run={"seed": 2**32 - 1}))
    assert r.steps == 8


def test_run_out_pointing_at_a_file_is_rejected(tmp_path: Path) -> None:
    f = tmp_path / "results.txt"
    f.write_text("keep me\n")
    for out in (f, f / "sub"):
        with pytest.raises(InvalidConfigError, match=r"run\.out") as e:
            train(small(out))
        assert "file" in str(e.value)
    assert f.read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.txt"]


# -- keys the mechanism ignores -----------------------------------------------------------


@pytest.mark.parametrize(
    "name, key, value",
    [
        ("second_price", "eps", 0.1),
        ("second_price", "scoring", "log"),
        ("first_price", "design", "myerson"),
        ("L", "design", "second_price"),
        ("L", "design", "optimal"),  # M's default, still ignored by L
    ],
)
def test_keys_a_mechanism_ignores_draw_a_warning(
    tmp_path: Path, name: str, key: str, value: Any
) -> None:
    d = small(tmp_path, mechanism={"name": name, key: value})
    with pytest.warns(UserWarning, match=rf"mechanism\.{key} ignored: mechanism '{name}'"):
        cfg = config_from_dict(d)
    # The resolved config shows only what the run uses, so a resume does not warn again.
    assert config_to_dict(cfg)["mechanism"][key] is None
    save_config(cfg, tmp_path / "config.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_config(tmp_path / "config.json")


def test_used_keys_do_not_warn_and_defaults_are_made_explicit(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = config_from_dict(small(tmp_path, mechanism={"name": "M"})).mechanism
        assert (m.eps, m.design, m.scoring) == (0.05, "optimal", "brier")
        m = config_from_dict(
            small(tmp_path, mechanism={"name": "M", "design": "second_price", "scoring": "log"})
        ).mechanism
        assert (m.design, m.scoring) == ("second_price", "log")
        m = config_from_dict(small(tmp_path, mechanism={"name": "L", "scoring": "log"})).mechanism
        assert (m.eps, m.design, m.scoring) == (0.001, None, "log")
        m = config_from_dict(small(tmp_path, mechanism={"name": "second_price"})).mechanism
        assert (m.eps, m.design, m.scoring) == (None, None, None)
    # A bad name on an ignored key is still an error, not a warning.
    with pytest.raises(InvalidConfigError, match=r"mechanism\.scoring"):
        config_from_dict(small(tmp_path, mechanism={"name": "second_price", "scoring": "nope"}))


# -- the prior is built once ----------------------------------------------------------------


def _table_config(tmp_path: Path) -> Path:
    (tmp_path / "w.csv").write_text("0,0,2\n1,1,2\n")
    toml = tmp_path / "c.toml"
    toml.write_text(
        '[setting]\nn = 2\nvalues = [0, 1]\nprior = "table"\nprior_file = "w.csv"\n'
        '[mechanism]\nname = "second_price"\n'
        "[algo]\nn_envs = 2\nn_steps = 4\nbatch_size = 4\nn_epochs = 1\nnet_arch = [4]\n"
        f'[run]\ntotal_steps = 8\nname = "r"\nout = "{tmp_path / "runs"}"\n',
        encoding="utf-8",
    )
    return toml


def test_normalising_warning_appears_once_from_load_to_training(tmp_path: Path) -> None:
    toml = _table_config(tmp_path)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        cfg = load_config(toml)  # what the CLI does, then train(cfg)
        train(cfg)
    normalising = [w for w in rec if "normalising" in str(w.message)]
    assert len(normalising) == 1, [str(w.message) for w in normalising]
    # Training uses the very objects validation built.
    s = _setup(cfg)
    assert s.knowledge.prior is build_prior(cfg)
    assert s.mech is build_mechanism(cfg, build_prior(cfg))


def test_built_prior_follows_edits_of_the_setting_and_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = _table_config(tmp_path)
    calls = []
    real = config_module.read_table_prior
    monkeypatch.setattr(
        config_module, "read_table_prior", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    with pytest.warns(UserWarning, match="normalising"):
        cfg = load_config(toml)
    first = build_prior(cfg)
    validate(cfg)
    assert build_prior(cfg) is first and len(calls) == 1
    (tmp_path / "w.csv").write_text("0,0,0.25\n1,1,0.75\n")  # new content, new size
    p = build_prior(cfg)
    assert len(calls) == 2 and p.table[1, 1] == pytest.approx(0.75)
    cfg.setting.prior = "uniform"
    cfg.setting.prior_file = ""
    assert build_prior(cfg).table[0, 1] == pytest.approx(0.25) and len(calls) == 2


# -- the command line -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra, named",
    [
        (["--seed", "-1"], "--seed -1"),
        (["--seed=-1"], "--seed -1"),
        (["--seed", str(2**32)], "--seed 4294967296"),
        (["--out", "FILE"], "run.out"),
    ],
)
def test_cli_rejects_bad_overrides_before_writing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, extra: list[str], named: str
) -> None:
    toml = tmp_path / "c.toml"
    d = small(tmp_path / "runs")
    toml.write_text(
        "".join(
            f"[{sec}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in kv.items())
            for sec, kv in d.items()
        ),
        encoding="utf-8",
    )
    (tmp_path / "FILE").write_text("")
    extra = [str(tmp_path / "FILE") if x == "FILE" else x for x in extra]
    with caplog.at_level(logging.ERROR, logger="crowdauction"):
        code = cli_main(["train", str(toml), "--no-progress", *extra])
    assert code == 2
    assert named in caplog.text
    assert not (tmp_path / "runs").exists()
