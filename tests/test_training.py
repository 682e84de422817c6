"""Training harness: configs, prior files, PPO runs, checkpoints, resume, determinism.

Runs here are tiny (hundreds to a few thousand timesteps, small networks), so that the
file stays fast on a busy two-core machine; the long PPO run is marked slow.
"""

from __future__ import annotations

import copy
import filecmp
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crowdauction.agents import LearnedAgent, RandomAgent, ShadingAgent, TruthfulAgent
from crowdauction.errors import InvalidConfigError, InvalidPriorError
from crowdauction.mechanisms import TypeSpace
from crowdauction.training import (
    config_from_dict,
    config_to_dict,
    load_config,
    read_metrics,
    read_samples_prior,
    read_table_prior,
    resume,
    train,
)
from crowdauction.training.io import TEMP_SUFFIX, atomic_write
from crowdauction.training.metrics import RolloutStats
from crowdauction.training.priors import bin_values
from crowdauction.training.run import _setup, exact_metrics, latest_checkpoint

TINY: dict[str, Any] = {
    "setting": {
        "n": 3,
        "values": [0, 1, 2],
        "prior": "gaussian_copula",
        "prior_params": {"rho": 0.5},
        "knowledge": ["own", [0], "own"],
    },
    "mechanism": {"name": "M", "design": "second_price", "delta": 0.3},
    "algo": {"n_envs": 8, "n_steps": 8, "batch_size": 32, "n_epochs": 2, "net_arch": [16]},
    "run": {
        "mode": "best_response",
        "total_steps": 640,
        "seed": 3,
        "checkpoint_every": 200,
        "eval_every": 300,
        "name": "r",
    },
    "best_response": {"learner": 1, "opponents": "random"},
    "independent": {"round_steps": 128},
}


def tiny(out: Path, **changes: dict[str, Any]) -> dict[str, Any]:
    d = copy.deepcopy(TINY)
    d["run"]["out"] = str(out)
    for section, kv in changes.items():
        d.setdefault(section, {}).update(kv)
    return d


# -- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "section, key, value, named",
    [
        ("mechanism", "name", "vickrey", "mechanism.name"),
        ("mechanism", "eps", 0.0, "mechanism.eps"),
        ("mechanism", "eps", -0.1, "mechanism.eps"),
        ("mechanism", "delta", 1.0, "mechanism.delta"),
        ("mechanism", "delta", -0.01, "mechanism.delta"),
        ("run", "totl_steps", 10, "run.totl_steps"),
        ("run", "mode", "league", "run.mode"),
        ("setting", "n", "three", "setting.n"),
        ("setting", "prior", "zipf", "setting.prior"),
        ("algo", "batch_size", 0, "algo.batch_size"),
        ("best_response", "opponents", "greedy", "best_response.opponents"),
    ],
)
def test_bad_config_fails_before_training_and_names_the_key(
    tmp_path: Path, section: str, key: str, value: Any, named: str
) -> None:
    d = tiny(tmp_path / "out", **{section: {key: value}})
    with pytest.raises(InvalidConfigError, match=named.replace(".", r"\.")):
        train(d)
    assert not (tmp_path / "out").exists()  # nothing was written


def test_unknown_key_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfigError) as e:
        config_from_dict(tiny(tmp_path, run={"totl_steps": 5}))
    assert "total_steps" in str(e.value) and "checkpoint_every" in str(e.value)
    with pytest.raises(InvalidConfigError, match=r"unknown table \[trainer\]"):
        config_from_dict({"trainer": {}})
    with pytest.raises(InvalidConfigError, match=r"setting\.prior_params\.sigma"):
        config_from_dict(tiny(tmp_path, setting={"prior_params": {"sigma": 1.0}}))
    # L needs a lottery: delta = 0 is legal for M but not for L.
    config_from_dict(tiny(tmp_path, mechanism={"delta": 0.0}))
    with pytest.raises(InvalidConfigError, match=r"mechanism\.delta"):
        config_from_dict(tiny(tmp_path, mechanism={"name": "L", "delta": 0.0}))


def test_toml_loading_resolution_and_syntax_errors(tmp_path: Path) -> None:
    good = tmp_path / "c.toml"
    good.write_text('[mechanism]\nname = "L"\n[run]\ntotal_steps = 100\n', encoding="utf-8")
    cfg = load_config(good)
    assert cfg.mechanism.eps == 0.001  # L's default, made explicit in the resolved config
    assert config_to_dict(cfg)["run"]["total_steps"] == 100
    bad = tmp_path / "bad.toml"
    bad.write_text("[run\ntotal_steps = 1\n", encoding="utf-8")
    with pytest.raises(InvalidConfigError, match="does not parse"):
        load_config(bad)


# -- prior files --------------------------------------------------------------------------


def test_table_prior_file(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("# a comment\nv0,v1,p\n0,0,0.5\n2,1,0.25\n\n2,1,0.25  # listed twice: added\n")
    p = read_table_prior(f, TypeSpace.uniform(2, [0, 1, 2]))
    want = np.zeros((3, 3))
    want[0, 0], want[2, 1] = 0.5, 0.5
    np.testing.assert_allclose(p.table, want)
    f.write_text("0,0,2\n1,1,2\n")
    with pytest.warns(UserWarning, match="normalising"):
        p = read_table_prior(f, TypeSpace.uniform(2, [0, 1, 2]))
    assert p.table[1, 1] == pytest.approx(0.5)


@pytest.mark.parametrize(
    "text, where",
    [
        ("v0,v1,p\n0,0,0.5\n1,x,0.5\n", ":3: column 2"),
        ("0,0,0.5\n1,5,0.5\n", ":2: column 2"),
        ("0,0,0.5\n1,1\n", ":2: expected 3 fields"),
        ("0,0,-0.5\n1,1,1.5\n", ":1: column 3"),
    ],
)
def test_table_prior_errors_name_file_line_column(tmp_path: Path, text: str, where: str) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(InvalidPriorError) as e:
        read_table_prior(f, TypeSpace.uniform(2, [0, 1, 2]))
    assert str(f) + where in str(e.value)
    # Through the config the error also names the key, before training starts.
    d = tiny(
        tmp_path / "out",
        setting={
            "n": 2,
            "prior": "table",
            "prior_file": str(f),
            "prior_params": {},
            "knowledge": "own",
        },
    )
    with pytest.raises(InvalidConfigError, match=r"setting\.prior_file") as e:
        train(d)
    assert where in str(e.value)
    assert not (tmp_path / "out").exists()


def test_binning_rules_by_hand() -> None:
    g = np.array([0, 1, 2])
    x = np.array([0.5, 1.5, 2.7, -0.3, 1.49, 1.0])
    np.testing.assert_array_equal(bin_values(x, g, "nearest"), [0, 1, 2, 0, 1, 1])  # halfway: lower
    np.testing.assert_array_equal(bin_values(x, g, "floor"), [0, 1, 2, -1, 1, 1])
    np.testing.assert_array_equal(bin_values(x, g, "ceil"), [1, 2, -1, 0, 2, 1])


def test_samples_prior_file(tmp_path: Path) -> None:
    f = tmp_path / "obs.csv"
    f.write_text("v0,v1\n0.2,1.6\n0.9,1.1\n1.8,0.4\n0.1,2.0\n")
    space = TypeSpace.uniform(2, [0, 1, 2])
    p = read_samples_prior(f, space, "nearest")  # -> (0,2), (1,1), (2,0), (0,2)
    assert p.table[0, 2] == pytest.approx(0.5)
    assert p.table[1, 1] == pytest.approx(0.25) and p.table[2, 0] == pytest.approx(0.25)
    p = read_samples_prior(f, space, "floor")  # -> (0,1), (0,1), (1,0), (0,2)
    assert p.table[0, 1] == pytest.approx(0.5)
    f.write_text("0.2,1.6\n0.9,-1\n")
    with pytest.raises(InvalidPriorError, match=r"obs\.csv:2: column 2: value -1"):
        read_samples_prior(f, space, "floor")


# -- metrics ------------------------------------------------------------------------------


def _stats_of(agent_factory, mech: str = "M", steps: int = 6) -> dict[str, float]:
    """Training metrics of a fixed agent for bidder 1, through the harness's collector."""
    from crowdauction.envs.vector import SingleLearnerVecEnv

    cfg = config_from_dict(tiny(Path("unused"), mechanism={"name": mech}))
    s = _setup(cfg)
    env = SingleLearnerVecEnv(
        num_auctions=200,
        learner=1,
        seed=11,
        prior=s.knowledge.prior,
        knowledge=s.knowledge,
        mechanism=s.mech,
    )
    agent = agent_factory(s.layout)
    stats = RolloutStats(s.layout, np.full(env.num_envs, 1))
    obs = env.reset()
    for _ in range(steps):
        act = agent.act(obs)
        new_obs, rew, done, infos = env.step(act)
        stats.add(obs, act, rew, done, infos)
        obs = new_obs
    return stats.row()


def test_rollout_metrics_on_fixed_agents() -> None:
    truthful = _stats_of(lambda lay: TruthfulAgent(lay, 1))
    assert truthful["train/truthfulness_rate"] == 1.0
    assert truthful["train/belief_tv"] < 1e-6  # float32 observations
    # Shading at 0.5 on 0..2 is truthful only at value 0.
    shading = _stats_of(lambda lay: ShadingAgent(0.5, lay, 1))
    assert 0.2 < shading["train/truthfulness_rate"] < 0.5
    rnd = _stats_of(lambda lay: RandomAgent(lay, 1, seed=0))
    assert abs(rnd["train/truthfulness_rate"] - 1 / 3) < 0.05
    assert rnd["train/belief_tv"] > 0.2
    assert truthful["train/episodes"] == 600  # 200 auctions, 2 steps each
    assert np.isfinite(truthful["auction/revenue"])


# -- runs ---------------------------------------------------------------------------------


def _no_temps(folder: Path) -> None:
    assert not list(folder.rglob(f"*{TEMP_SUFFIX}"))


def _kill_after_checkpoint(run_dir: Path):
    """A callback that simulates a crash at the first rollout after a checkpoint exists."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Kill(BaseCallback):
        def _on_step(self) -> bool:
            return True

        def _on_rollout_start(self) -> None:
            if latest_checkpoint(run_dir) is not None:
                raise KeyboardInterrupt("simulated kill")

    return Kill()


@pytest.mark.parametrize("mode", ["best_response", "self_play", "independent"])
def test_kill_and_resume_matches_an_uninterrupted_run(tmp_path: Path, mode: str) -> None:
    whole = train(tiny(tmp_path / "a", run={"mode": mode}))
    with pytest.raises(KeyboardInterrupt):
        train(
            tiny(tmp_path / "b", run={"mode": mode}),
            callbacks=[_kill_after_checkpoint(tmp_path / "b" / "r")],
        )
    cut = tmp_path / "b" / "r"
    _no_temps(cut)
    assert not (cut / "model.zip").exists() and latest_checkpoint(cut) is not None
    ckpt_step = pickle.loads(latest_checkpoint(cut).read_bytes())["step"]
    assert 0 < ckpt_step < whole.steps
    done = resume(cut)
    assert done.steps == whole.steps
    a = json.loads((whole.run_dir / "config.json").read_text())
    b = json.loads((cut / "config.json").read_text())
    a["run"].pop("out"), b["run"].pop("out")
    assert a == b
    # Row for row the same metrics: nothing duplicated, nothing lost.
    assert filecmp.cmp(whole.run_dir / "metrics.csv", cut / "metrics.csv", shallow=False)
    _no_temps(cut)
    for p in done.model_paths:
        assert p.exists()
    with pytest.raises(InvalidConfigError, match="already finished"):
        resume(cut)


def test_resume_without_a_checkpoint_restarts_cleanly(tmp_path: Path) -> None:
    from stable_baselines3.common.callbacks import BaseCallback

    class KillThird(BaseCallback):
        def _on_step(self) -> bool:
            return True

        def _on_rollout_start(self) -> None:
            if self.num_timesteps >= 128:
                raise KeyboardInterrupt("simulated kill")

    changes = {"total_steps": 256, "checkpoint_every": 0}
    whole = train(tiny(tmp_path / "a", run=changes))
    with pytest.raises(KeyboardInterrupt):
        train(tiny(tmp_path / "b", run=changes), callbacks=[KillThird()])
    cut = tmp_path / "b" / "r"
    assert len(read_metrics(cut / "metrics.csv")) == 2  # rows at steps 64 and 128 precede it
    done = resume(cut)
    assert done.steps == whole.steps
    assert filecmp.cmp(whole.run_dir / "metrics.csv", cut / "metrics.csv", shallow=False)


def test_same_seed_same_metrics_and_run_directory(tmp_path: Path) -> None:
    a = train(tiny(tmp_path / "a"))
    b = train(tiny(tmp_path / "b"))
    assert filecmp.cmp(a.run_dir / "metrics.csv", b.run_dir / "metrics.csv", shallow=False)
    c = train(tiny(tmp_path / "a", run={"seed": 4}))  # a second run beside the first
    assert c.run_dir.name == "r-1"
    assert not filecmp.cmp(a.run_dir / "metrics.csv", c.run_dir / "metrics.csv", shallow=False)
    # Contents of a finished run directory.
    rows = read_metrics(a.run_dir / "metrics.csv")
    assert [r["step"] for r in rows] == list(range(64, 641, 64))
    assert rows[-1]["eval/truthfulness_rate"] == rows[-1]["eval/truthfulness_rate"]  # final eval
    assert np.isnan(rows[0]["eval/regret"]) and not np.isnan(rows[4]["eval/regret"])  # every 300
    assert sorted(p.name for p in (a.run_dir / "checkpoints").iterdir()) == [
        "step_0000000256.ckpt",
        "step_0000000448.ckpt",
    ]
    assert list((a.run_dir / "tb").iterdir())
    _no_temps(a.run_dir)


def test_tensorboard_has_the_prefixed_keys(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    r = train(tiny(tmp_path, run={"total_steps": 128, "checkpoint_every": 0}))
    acc = EventAccumulator(str(r.run_dir / "tb"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {
        "train/truthfulness_rate",
        "train/belief_tv",
        "train/mean_reward",
        "auction/revenue",
        "eval/regret",
    } <= tags
    steps = [e.step for e in acc.Scalars("train/truthfulness_rate")]
    assert steps == [64, 128]


def test_atomic_write_leaves_no_half_file(tmp_path: Path) -> None:
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")

    def half(p: Path) -> None:
        p.write_bytes(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, half)
    assert target.read_bytes() == b"old"
    _no_temps(tmp_path)


def test_learned_agent_loads_from_the_run_and_reproduces_its_evaluation(tmp_path: Path) -> None:
    r = train(tiny(tmp_path, run={"total_steps": 128, "checkpoint_every": 0}))
    cfg = load_config(r.run_dir / "config.json")
    s = _setup(cfg)
    agent = LearnedAgent.load(r.run_dir, bidder=1)
    from crowdauction.training.run import _opponents

    agents = _opponents(s)
    agents[1] = agent
    again = exact_metrics(s, agents, [1])
    last = r.metrics[-1]
    for k, v in again.items():
        assert last[k] == pytest.approx(v, abs=1e-8)  # torch ran single-threaded in training
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_text((r.run_dir / "config.json").read_text())
    with pytest.raises(InvalidConfigError, match="no final model"):
        LearnedAgent.load(unfinished)
    with pytest.raises(InvalidConfigError, match="not a readable run configuration"):
        LearnedAgent.load(tmp_path)


def test_cli_train_and_resume(tmp_path: Path) -> None:
    from crowdauction.cli import main

    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[setting]\nn = 2\nvalues = [0, 1, 2]\n[mechanism]\nname = "second_price"\n'
        "[algo]\nn_envs = 8\nn_steps = 8\nbatch_size = 32\nnet_arch = [16]\n"
        '[run]\nmode = "self_play"\ntotal_steps = 128\nname = "cli"\n',
        encoding="utf-8",
    )
    assert (
        main(["train", str(cfg), "--out", str(tmp_path / "runs"), "--seed", "2", "--no-progress"])
        == 0
    )
    run = tmp_path / "runs" / "cli"
    assert json.loads((run / "config.json").read_text())["run"]["seed"] == 2
    assert (run / "model.zip").exists()
    assert main(["train", "--resume", str(run)]) == 2  # already finished: a clear error
    bad = tmp_path / "bad.toml"
    bad.write_text('[mechanism]\nname = "nope"\n', encoding="utf-8")
    assert main(["train", str(bad), "--out", str(tmp_path / "runs2")]) == 2
    assert not (tmp_path / "runs2").exists()


# -- learning -----------------------------------------------------------------------------

LEARN: dict[str, Any] = {
    "setting": {
        "n": 3,
        "values": [0, 1, 2],
        "prior": "gaussian_copula",
        "prior_params": {"rho": 0.5},
    },
    "mechanism": {"name": "M", "design": "second_price", "delta": 0.3},
    "algo": {"n_envs": 16, "n_steps": 16, "batch_size": 64, "learning_rate": 1e-3, "n_epochs": 10},
    "run": {"mode": "best_response", "total_steps": 4096, "seed": 0},
    "best_response": {"learner": 0, "opponents": "truthful"},
}


def _learn(tmp_path: Path, steps: int) -> tuple[list[dict[str, float]], float]:
    d = copy.deepcopy(LEARN)
    d["run"].update(out=str(tmp_path), total_steps=steps)
    r = train(d)
    return r.metrics, r.steps_per_second


def test_short_ppo_best_response_beats_the_random_policy(tmp_path: Path) -> None:
    """4096 timesteps under M (seconds): PPO's truthfulness rate rises above random's.

    Measured on this machine: random 0.33 (1/3, three values); PPO's last rollouts
    0.56 and its deterministic policy truthful in every cell (exact rate 1.0).
    """
    rnd = _stats_of(lambda lay: RandomAgent(lay, 1, seed=0))["train/truthfulness_rate"]
    rows, _ = _learn(tmp_path, 4096)
    first = np.mean([r["train/truthfulness_rate"] for r in rows[:3]])
    last = np.mean([r["train/truthfulness_rate"] for r in rows[-3:]])
    assert abs(first - rnd) < 0.08  # it starts out no better than random
    assert last > rnd + 0.1
    assert rows[-1]["eval/truthfulness_rate"] > 1 / 3 + 0.1  # exact, deterministic policy


@pytest.mark.slow
def test_long_ppo_best_response_learns_truthful_play(tmp_path: Path) -> None:
    rows, _ = _learn(tmp_path, 60_000)
    last = np.mean([r["train/truthfulness_rate"] for r in rows[-5:]])
    assert last > 0.65  # measured: 0.69
    assert rows[-1]["eval/regret"] < 0.02  # measured: 0.0089 (one cell on a near-tie)


def test_resume_refuses_a_checkpoint_of_another_setting(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        train(tiny(tmp_path / "b"), callbacks=[_kill_after_checkpoint(tmp_path / "b" / "r")])
    cut = tmp_path / "b" / "r"
    cfg_file = cut / "config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["mechanism"]["eps"] = 0.25  # the run's mechanism changed under the checkpoint
    cfg_file.write_text(json.dumps(cfg))
    with pytest.raises(InvalidConfigError, match="written for another prior, knowledge"):
        resume(cut)
    ckpt = latest_checkpoint(cut)
    ckpt.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(InvalidConfigError, match="does not belong"):
        resume(cut)
