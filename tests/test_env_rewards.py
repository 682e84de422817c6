"""The env's reward modes: realised utilities, or their expectation over the mechanism's coins."""

from __future__ import annotations

import numpy as np
import pytest

from crowdauction.envs import AuctionVecEnv
from crowdauction.envs.layout import truthful_action
from crowdauction.errors import UnknownNameError
from crowdauction.mechanisms import evaluate


def play(venv: AuctionVecEnv, episodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-episode rewards ``(E * B, n)`` and realised utilities of truthful play."""
    obs = venv.reset()
    who = np.tile(np.arange(venv.n), venv.num_auctions)
    rewards, realised = [], []
    for _ in range(episodes):
        total = np.zeros(venv.num_envs)
        done = False
        while not done:
            obs, r, dones, _ = venv.step(truthful_action(venv.layout, obs, who))
            total += r
            done = bool(dones[0])
        rewards.append(total.reshape(-1, venv.n))
        realised.append(venv.last_outcome["utility"])
    return np.concatenate(rewards), np.concatenate(realised)


@pytest.mark.parametrize("mechanism", ["M", "L"])
def test_expected_rewards_are_unbiased_and_less_noisy(mechanism):
    kw = {"mechanism": mechanism, "delta": 0.3, "num_auctions": 500}
    if mechanism == "M":
        kw["design"] = "second_price"
    exp_env = AuctionVecEnv(seed=3, reward="expected", **kw)
    real_env = AuctionVecEnv(seed=3, **kw)
    r_exp, u_exp = play(exp_env, 8)
    r_real, u_real = play(real_env, 8)
    # Same seed, same draws: the realised outcomes coincide; only the rewards differ.
    np.testing.assert_allclose(u_exp, u_real)
    np.testing.assert_allclose(r_real, u_real)
    exact = evaluate(exp_env.core.mechanism, exp_env.core.knowledge).utility
    se = r_exp.std(axis=0, ddof=1) / np.sqrt(len(r_exp))
    assert np.all(np.abs(r_exp.mean(axis=0) - exact) <= 4 * se)
    # Averaging out the lottery (and M's randomised inner allocation) cuts the variance.
    assert np.all(r_exp.var(axis=0) < r_real.var(axis=0))


def test_deterministic_mechanism_gives_identical_rewards():
    a, _ = play(AuctionVecEnv(mechanism="second_price", seed=1, num_auctions=50), 4)
    b, _ = play(
        AuctionVecEnv(mechanism="second_price", seed=1, num_auctions=50, reward="expected"), 4
    )
    np.testing.assert_array_equal(a, b)


def test_unknown_reward_mode_is_named():
    with pytest.raises(UnknownNameError, match="unknown reward mode 'mean'"):
        AuctionVecEnv(reward="mean")


def test_training_config_rejects_an_unknown_reward_mode_by_key():
    from crowdauction.errors import InvalidConfigError
    from crowdauction.training.config import config_from_dict

    with pytest.raises(InvalidConfigError, match="algo.reward"):
        config_from_dict({"algo": {"reward": "mean"}})
    assert config_from_dict({"algo": {"reward": "expected"}}).algo.reward == "expected"
