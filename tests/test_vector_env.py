"""The batched vector envs: AuctionVecEnv, SingleLearnerVecEnv, SingleLearnerEnv."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence

from crowdauction.envs import (
    AuctionVecEnv,
    SingleLearnerEnv,
    SingleLearnerVecEnv,
    crowdsourced_auction_v0,
    spawn_seeds,
    truthful_action,
)
from crowdauction.errors import InvalidActionError, InvalidConfigError, UnknownNameError
from crowdauction.mechanisms import Strategy, evaluate


def zscore(samples: np.ndarray, expected: float) -> float:
    """Distance of the sample mean from ``expected`` in standard errors of the samples."""
    se = samples.std(ddof=1) / np.sqrt(len(samples))
    return float((samples.mean() - expected) / se)


def seats(venv: AuctionVecEnv) -> np.ndarray:
    return np.tile(np.arange(venv.n), venv.num_auctions)


def play_truthful(venv: AuctionVecEnv, episodes: int, shade: bool = False):
    """Per-episode utilities ``(E * B, n)`` and revenues of truthful (or shaded) play."""
    obs = venv.reset()
    who = seats(venv)
    utils, revenues = [], []
    for _ in range(episodes):
        total = np.zeros(venv.num_envs)
        done = False
        while not done:
            act = truthful_action(venv.layout, obs, who)
            if shade:  # report one grid step below the value (the lowest stays)
                k = venv.layout.decode_valuation(act, who)
                act[:, 0] = venv.layout.encode_valuation(np.maximum(k - 1, 0), who)
            obs, rewards, dones, infos = venv.step(act)
            total += rewards
            done = bool(dones[0])
        assert dones.all()
        utils.append(total.reshape(-1, venv.n))
        revenues.append(venv.last_outcome["revenue"][:, 0])
    return np.concatenate(utils), np.concatenate(revenues)


@pytest.mark.parametrize("mechanism", ["M", "L", "second_price"])
def test_truthful_vec_env_matches_exact_expectations(mechanism):
    venv = AuctionVecEnv(num_auctions=1000, seed=11, mechanism=mechanism)
    utils, revenue = play_truthful(venv, episodes=4)  # 4000 auctions, three auto-resets
    exact = evaluate(venv.core.mechanism, venv.core.knowledge)
    assert utils.shape == (4000, 3)
    for i in range(3):
        assert abs(zscore(utils[:, i], exact.utility[i])) < 3
    assert abs(zscore(revenue, exact.revenue)) < 3


def test_the_statistical_check_rejects_shaded_play():
    """Shaded bids move second-price revenue far from the truthful value, onto their own."""
    venv = AuctionVecEnv(num_auctions=4000, seed=5, mechanism="second_price")
    utils, revenue = play_truthful(venv, episodes=1, shade=True)
    knowledge = venv.core.knowledge
    truthful = evaluate(venv.core.mechanism, knowledge)
    shaded = evaluate(
        venv.core.mechanism,
        knowledge,
        Strategy.from_maps(knowledge, value_map=lambda i, c, v: max(v - 1, 0)),
    )
    assert zscore(revenue, truthful.revenue) < -3
    assert abs(zscore(revenue, shaded.revenue)) < 3
    for i in range(3):
        assert abs(zscore(utils[:, i], shaded.utility[i])) < 3


def test_lockstep_phases_rewards_and_terminal_observations():
    venv = AuctionVecEnv(num_auctions=5, seed=0, mechanism="L")
    lay = venv.layout
    obs = venv.reset()
    assert obs.shape == (15, lay.obs_dim) and obs.dtype == np.float32
    first = lay.decode_obs(obs)
    assert first.phase.tolist() == [0] * 15 and first.acts_now.all()
    obs, rewards, dones, infos = venv.step(truthful_action(lay, obs, seats(venv)))
    assert not dones.any() and np.all(rewards == 0) and infos == [{}] * 15
    mid = lay.decode_obs(obs)
    # Exactly one candidate per auction, who alone is not asked.
    assert mid.is_candidate.reshape(5, 3).sum(axis=1).tolist() == [1] * 5
    assert np.array_equal(mid.acts_now, ~mid.is_candidate)
    obs, rewards, dones, infos = venv.step(truthful_action(lay, obs, seats(venv)))
    assert dones.all() and rewards.dtype == np.float32
    terminal = np.stack([info["terminal_observation"] for info in infos])
    ended = lay.decode_obs(terminal)
    assert not ended.acts_now.any() and ended.phase.tolist() == [1] * 15
    np.testing.assert_allclose(rewards, [info["utility"] for info in infos], rtol=1e-6)
    assert all(info["candidate"] >= 0 and "lottery" in info for info in infos)
    # The returned observations are the next auctions', back in phase 0.
    assert lay.decode_obs(obs).phase.tolist() == [0] * 15
    # A classical mechanism ends after one step.
    sp = AuctionVecEnv(num_auctions=2, seed=0, mechanism="second_price")
    obs = sp.reset()
    _, rewards, dones, infos = sp.step(truthful_action(sp.layout, obs, seats(sp)))
    assert dones.all() and "terminal_observation" in infos[0]


# -- seeding ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["M", "L", "second_price"])
def test_vec_env_plays_the_pettingzoo_env_auctions(mechanism):
    """num_auctions=1 and the same seed: same draws, same outcomes, episode by episode."""
    seed = 123
    par = crowdsourced_auction_v0.parallel_env(mechanism=mechanism)
    venv = AuctionVecEnv(num_auctions=1, seed=seed, mechanism=mechanism)
    acts_rng = np.random.default_rng(0)
    p_obs, _ = par.reset(seed=seed)
    v_obs = venv.reset()
    for _ in range(30):
        while True:
            assert np.array_equal(np.stack(list(p_obs.values())), v_obs)
            actions = acts_rng.uniform(-2, 2, size=(3, venv.layout.act_dim))
            p_obs, p_rew, p_term, _, p_info = par.step(dict(zip(par.possible_agents, actions)))
            v_obs, v_rew, v_done, v_info = venv.step(actions)
            np.testing.assert_allclose(v_rew, list(p_rew.values()), rtol=1e-6, atol=1e-7)
            if not par.agents:
                break
        assert v_done.all()
        for i, agent in enumerate(par.possible_agents):
            for key in ("value", "allocation", "payment", "revenue", "informant", "candidate"):
                assert v_info[i][key] == p_info[agent][key]
        terminal = np.stack([x["terminal_observation"] for x in v_info])
        assert np.array_equal(np.stack(list(p_obs.values())), terminal)
        p_obs, _ = par.reset()


def test_copies_differ_and_seeds_reproduce():
    a = AuctionVecEnv(num_auctions=64, seed=1)
    a.reset()
    profiles = a.auction.profile
    # The 64 auctions of one env are different draws, not one auction repeated.
    assert len(np.unique(profiles, axis=0)) > 20
    b = AuctionVecEnv(num_auctions=64, seed=1)
    b.reset()
    assert np.array_equal(b.auction.profile, profiles)
    assert np.array_equal(b.auction.informant, a.auction.informant)
    s1, s2 = spawn_seeds(1, 2)
    assert spawn_seeds(1, 2) == [s1, s2] and s1 != s2
    c, d = AuctionVecEnv(num_auctions=64, seed=s1), AuctionVecEnv(num_auctions=64, seed=s2)
    c.reset()
    d.reset()
    assert not np.array_equal(c.auction.profile, d.auction.profile)
    # stable-baselines3's seed() takes effect at the next reset.
    a.seed(s1)
    a.reset()
    assert np.array_equal(a.auction.profile, c.auction.profile)


def test_single_learner_env_plays_the_pettingzoo_env_auctions():
    """Truthful others, the same learner actions: the same episodes as the parallel env."""
    par = crowdsourced_auction_v0.parallel_env(mechanism="L")
    single = SingleLearnerEnv(learner=2, mechanism="L")
    svec = SingleLearnerVecEnv(num_auctions=1, learner=2, seed=9, mechanism="L")
    lay = par.layout
    acts_rng = np.random.default_rng(4)
    p_obs, _ = par.reset(seed=9)
    s_obs, _ = single.reset(seed=9)
    v_obs = svec.reset()
    for _ in range(20):
        while True:
            assert np.array_equal(p_obs["bidder_2"], s_obs) and np.array_equal(v_obs[0], s_obs)
            mine = acts_rng.uniform(-3, 3, size=lay.act_dim)
            actions = {
                a: truthful_action(lay, p_obs[a][None], i)[0]
                for i, a in enumerate(par.possible_agents)
            }
            actions["bidder_2"] = mine
            p_obs, p_rew, _, _, p_info = par.step(actions)
            s_obs, s_rew, s_term, s_trunc, s_info = single.step(mine)
            v_obs, v_rew, v_done, v_info = svec.step(mine[None])
            assert s_rew == p_rew["bidder_2"] and v_rew[0] == np.float32(s_rew)
            if not par.agents:
                break
        assert s_term and not s_trunc and v_done[0]
        assert s_info["payment"] == p_info["bidder_2"]["payment"] == v_info[0]["payment"]
        assert v_info[0]["learner"] == s_info["learner"] == 2
        p_obs, _ = par.reset()
        s_obs, _ = single.reset()


def test_random_learner_seat_does_not_shift_the_auctions():
    fixed = SingleLearnerVecEnv(num_auctions=200, learner=0, seed=3)
    rand = SingleLearnerVecEnv(num_auctions=200, learner=None, seed=3)
    fixed.reset()
    rand.reset()
    assert np.array_equal(fixed.auction.profile, rand.auction.profile)
    assert set(rand.learner.tolist()) == {0, 1, 2}
    obs = rand.reset()
    lay = rand.layout
    # Each row observes the value of its own auction's learner.
    values = rand.auction.profile[np.arange(200), rand.learner]
    assert np.array_equal(lay.decode_obs(obs).value_idx, values)


# -- policies and the single-learner statistics ----------------------------------------------


def test_single_learner_truthful_matches_exact_utility():
    venv = SingleLearnerVecEnv(num_auctions=4000, learner=1, seed=21, mechanism="M")
    obs = venv.reset()
    total = np.zeros(4000)
    for _ in range(2):
        obs, rewards, dones, infos = venv.step(truthful_action(venv.layout, obs, 1))
        total += rewards
    assert dones.all()
    exact = evaluate(venv.core.mechanism, venv.core.knowledge)
    assert abs(zscore(total, exact.utility[1])) < 3


def test_policies_per_bidder_and_shared():
    calls = []

    def overbid(obs):
        calls.append(obs.shape)
        out = np.zeros((obs.shape[0], 17))
        out[:, 0] = 1.0  # always the top value
        return out

    venv = SingleLearnerVecEnv(
        num_auctions=10, learner=0, seed=0, mechanism="second_price", policies=[None, overbid, None]
    )
    obs = venv.reset()
    _, rewards, _, infos = venv.step(truthful_action(venv.layout, obs, 0))
    assert calls == [(10, 27)]
    assert venv.last_outcome["value_report"][:, 1].tolist() == [3] * 10
    # Bidder 1 always reports the top value 3. The truthful learner (bidder 0) wins only
    # with value 3, by the tie rule, at price 3: utility 0 in every auction.
    assert np.all(rewards == 0)
    assert any(info["allocation"] == 1.0 for info in infos)
    shared = SingleLearnerVecEnv(num_auctions=4, learner=None, seed=0, policies=overbid)
    obs = shared.reset()
    calls.clear()
    shared.step(np.zeros((4, 17)))
    assert calls == [(8, 27)]  # one call for all the others' rows
    with pytest.raises(InvalidConfigError, match="3 callables"):
        SingleLearnerVecEnv(policies=[overbid])
    broken = SingleLearnerVecEnv(num_auctions=2, policies=lambda o: np.full((len(o), 17), np.nan))
    obs = broken.reset()
    with pytest.raises(InvalidActionError, match="fixed policy"):
        broken.step(np.zeros((2, 17)))


# -- stable-baselines3 -----------------------------------------------------------------------


@pytest.mark.parametrize("learner", [0, None])
def test_sb3_check_env(learner):
    from stable_baselines3.common.env_checker import check_env

    with warnings.catch_warnings():
        # The belief logits are sampled from [-10, 10] by contract, not SB3's [-1, 1].
        warnings.filterwarnings("ignore", message="We recommend you to use a symmetric")
        for mechanism in ["M", "second_price"]:
            check_env(SingleLearnerEnv(learner=learner, mechanism=mechanism))


def test_ppo_learns_on_both_vec_envs():
    from stable_baselines3 import PPO

    for venv in (
        AuctionVecEnv(num_auctions=4, seed=0, mechanism="L"),
        SingleLearnerVecEnv(num_auctions=8, learner=None, seed=0, mechanism="M"),
    ):
        model = PPO("MlpPolicy", venv, n_steps=32, batch_size=64, n_epochs=2, seed=0, device="cpu")
        model.learn(256)
        assert model.num_timesteps >= 256
        action, _ = model.predict(venv.reset(), deterministic=True)
        assert action.shape == (venv.num_envs, 17)


# -- bad input -------------------------------------------------------------------------------


def test_vec_env_bad_actions_and_config():
    venv = AuctionVecEnv(num_auctions=2, seed=0)
    with pytest.raises(InvalidActionError, match="reset"):
        venv.step(np.zeros((6, 17)))
    venv.reset()
    bad = np.zeros((6, 17))
    bad[4, 2] = np.nan
    with pytest.raises(InvalidActionError, match=r"row 4 \(auction 1, bidder_1\).*nan"):
        venv.step(bad)
    bad[4, 2] = np.inf
    with pytest.raises(InvalidActionError, match=r"row 4.*inf"):
        venv.step(bad)
    with pytest.raises(InvalidActionError, match=r"shape \(6, 16\), expected \(6, 17\)"):
        venv.step(np.zeros((6, 16)))
    with pytest.raises(UnknownNameError, match="'vickrey'"):
        AuctionVecEnv(mechanism="vickrey")
    with pytest.raises(UnknownNameError, match="render_mode 'human'"):
        AuctionVecEnv(render_mode="human")
    with pytest.raises(InvalidConfigError, match="num_auctions"):
        AuctionVecEnv(num_auctions=0)
    with pytest.raises(InvalidConfigError, match="learner"):
        SingleLearnerVecEnv(learner=3)
    single = SingleLearnerEnv()
    single.reset(seed=0)
    with pytest.raises(InvalidActionError, match=r"shape \(3,\)"):
        single.step(np.zeros(3))
    single.step(np.zeros(17))
    single.step(np.zeros(17))
    with pytest.raises(InvalidActionError, match="call reset"):
        single.step(np.zeros(17))


def test_constructors_work_without_arguments():
    assert AuctionVecEnv().num_envs == 8 * 3
    assert SingleLearnerVecEnv().num_envs == 8
    single = SingleLearnerEnv()
    obs, info = single.reset(seed=0)
    assert obs.shape == (27,) and set(info) == {"learner", "phase", "acts_now"}
    assert info["learner"] == 0 and info["phase"] == 0
    # Under M (the default) the learner acts in phase 0 exactly when it is not the informant.
    parts = single.layout.decode_obs(obs)
    assert info["acts_now"] == (parts.is_informant[0] == 0) == (parts.acts_now[0] == 1)


def test_vec_render_contains_revenue():
    venv = AuctionVecEnv(num_auctions=2, seed=0, render_mode="ansi", mechanism="second_price")
    obs = venv.reset()
    venv.step(truthful_action(venv.layout, obs, seats(venv)))
    assert "revenue:" in venv.render()
    assert data_equivalence(venv.get_attr("render_mode"), ["ansi"] * 6)
    single = SingleLearnerEnv(render_mode="ansi", mechanism="L")
    single.reset(seed=1)
    single.step(np.zeros(17))
    single.step(np.zeros(17))
    assert "revenue:" in single.render()
    with pytest.warns(UserWarning, match="render_mode='ansi'"):
        assert SingleLearnerEnv().render() is None


def test_vec_envs_pickle_and_resume_identically():
    """Training checkpoints pickle the env: the copy goes on with the same draws."""
    import pickle

    envs = (
        AuctionVecEnv(num_auctions=3, seed=0),
        SingleLearnerVecEnv(num_auctions=3, learner=None, seed=0),
    )
    for venv in envs:
        venv.reset()
        venv.step(np.zeros((venv.num_envs, 17)))
        copy = pickle.loads(pickle.dumps(venv))
        for _ in range(3):
            a = venv.step(np.full((venv.num_envs, 17), 0.3))
            b = copy.step(np.full((venv.num_envs, 17), 0.3))
            assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
