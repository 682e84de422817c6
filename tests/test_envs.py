"""The layout and the PettingZoo env crowdsourced_auction_v0."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test

from crowdauction.envs import EnvLayout, crowdsourced_auction_v0, truthful_action
from crowdauction.envs.core import MECHANISM_NAMES
from crowdauction.envs.layout import ZERO_LOGIT
from crowdauction.errors import InvalidActionError, InvalidConfigError, UnknownNameError
from crowdauction.mechanisms import Prior, evaluate
from crowdauction.mechanisms.typespace import TypeSpace

# Every mechanism the envs accept by name.
MECHANISMS = list(MECHANISM_NAMES)


def make(**kwargs):
    """The parallel env, without myerson's warning about correlated priors."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="myerson", category=UserWarning)
        return crowdsourced_auction_v0.parallel_env(**kwargs)


def zscore(samples: np.ndarray, expected: float) -> float:
    """Distance of the sample mean from ``expected`` in standard errors of the samples."""
    se = samples.std(ddof=1) / np.sqrt(len(samples))
    return float((samples.mean() - expected) / se)


def truthful(env, obs):
    """Truthful actions of the live agents (bidder_i sits at index i)."""
    seat = env.possible_agents.index
    return {a: truthful_action(env.layout, obs[a][None], seat(a))[0] for a in env.agents}


# -- layout ---------------------------------------------------------------------------------


def test_default_layout_dimensions():
    env = make()
    lay = env.layout
    # 3 bidders on 4 values: a belief covers 4 * 4 = 16 profiles of the other two.
    assert (lay.k_max, lay.m_max, lay.act_dim) == (4, 16, 17)
    assert lay.obs_dim == 4 + 1 + 16 + 3 + 1 + 2 == 27
    assert env.observation_space("bidder_0").shape == (27,)
    assert env.action_space("bidder_0").shape == (17,)


def test_softmax_examples():
    lay = EnvLayout(TypeSpace([[0, 1], [0, 1, 2]]))  # bidder 0's belief has 3 entries
    acts = np.array(
        [[0.0, -3, -3, -3], [0.0, 0, 0, 0], [0.0, 1e6, 0, 0], [0.0, 1e308, -1e308, 5]]
    )
    F = lay.decode_belief(acts, 0)
    np.testing.assert_allclose(F[0], [1 / 3] * 3, rtol=1e-15)
    np.testing.assert_allclose(F[1], [1 / 3] * 3, rtol=1e-15)
    assert F[2].tolist() == [1.0, 0.0, 0.0]
    assert F[3].tolist() == [1.0, 0.0, 0.0]
    np.testing.assert_allclose(F.sum(axis=1), 1.0, rtol=1e-15)
    # Bidder 1's belief has 2 entries: the third logit is ignored.
    F1 = lay.decode_belief(np.array([[0.0, 1.0, 1.0, 50.0]]), 1)
    np.testing.assert_allclose(F1, [[0.5, 0.5]])


def test_valuation_decode_pinned_values():
    lay = EnvLayout(TypeSpace.uniform(2, [0, 1, 2, 3]))
    a = np.array([-7.0, -1.0, -0.34, 0.0, 0.34, 1.0, 7.0])[:, None]
    # (a + 1) / 2 * 3 = 0, 0, 0.99, 1.5, 2.01, 3, 3; rint sends 1.5 to 2 (half to even).
    assert lay.decode_valuation(a, 0).tolist() == [0, 0, 1, 2, 2, 3, 3]


def test_valuation_round_trip_every_grid_index():
    space = TypeSpace([[0, 5], [0, 1, 2, 3, 7], [4], [1, 2, 3]])
    lay = EnvLayout(space)
    for i, g in enumerate(space.grids):
        idx = np.arange(len(g))
        enc = lay.encode_valuation(idx, i)
        assert np.all((enc >= -1) & (enc <= 1))
        assert lay.decode_valuation(enc[:, None], i).tolist() == idx.tolist()
    # One bidder per row, grids of different sizes at once.
    who = np.array([0, 1, 1, 2, 3, 3])
    idx = np.array([1, 0, 4, 0, 2, 1])
    back = lay.decode_valuation(lay.encode_valuation(idx, who)[:, None], who)
    assert back.tolist() == idx.tolist()
    with pytest.raises(ValueError, match="off the bidders' grids"):
        lay.encode_valuation(np.array([2]), 0)


def test_belief_round_trip_keeps_zeros_exact():
    lay = EnvLayout(TypeSpace.uniform(3, [0, 1, 2]))
    rng = np.random.default_rng(0)
    F = rng.dirichlet(np.ones(9), size=5)
    F[:, 3] = 0.0
    F /= F.sum(axis=1, keepdims=True)
    logits = lay.encode_belief(F, 0)
    assert np.all(logits[:, 3] == ZERO_LOGIT)
    action = np.concatenate([np.zeros((5, 1)), logits], axis=1)
    back = lay.decode_belief(action, 0)
    assert np.all(back[:, 3] == 0.0)
    np.testing.assert_allclose(back, F, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="sums to"):
        lay.encode_belief(F * 2, 0)


def test_encode_decode_obs_and_truthful_action():
    space = TypeSpace([[0, 1], [0, 2, 4]])
    lay = EnvLayout(space)
    belief = np.array([[0.2, 0.3, 0.5], [0.6, 0.4, 0.0]])
    obs = lay.encode(
        np.array([1, 2]), belief, [True, False], [False, True], [True, True], [False, True], [1, 0],
        bidder=np.array([0, 1]),
    )
    assert obs.dtype == np.float32 and obs.shape == (2, lay.obs_dim)
    assert np.all((obs >= 0) & (obs <= 1))
    assert obs[0, lay.scaled_index] == 1.0 and obs[1, lay.scaled_index] == 1.0  # 1/1 and 4/4
    parts = lay.decode_obs(obs)
    assert parts.value_idx.tolist() == [1, 2]
    assert parts.phase.tolist() == [1, 0]
    assert parts.is_informant.tolist() == [True, False]
    assert parts.is_candidate.tolist() == [False, True]
    assert parts.asked_belief.tolist() == [True, True]
    assert parts.acts_now.tolist() == [False, True]
    np.testing.assert_allclose(parts.belief, belief, atol=1e-7)
    act = truthful_action(lay, obs, np.array([0, 1]))
    assert lay.decode_valuation(act, np.array([0, 1])).tolist() == [1, 2]
    np.testing.assert_allclose(lay.decode_belief(act[:1], 0), belief[:1], atol=1e-7)
    np.testing.assert_allclose(lay.decode_belief(act[1:], 1), belief[1:, :2], atol=1e-7)
    with pytest.raises(ValueError, match="grids differ"):
        lay.encode(np.array([0]), belief[:1], [0], [0], [0], [0], 0)


def test_spaces_cached_and_shared():
    for valuation_action in ["box", "discrete"]:
        env = make(valuation_action=valuation_action)
        a0, a1 = env.possible_agents[:2]
        assert env.action_space(a0) is env.action_space(a0)
        assert env.observation_space(a0) is env.observation_space(a0)
        # Every agent has an equal space (parameter sharing), seedable on its own.
        assert env.action_space(a0) == env.action_space(a1)
        assert env.observation_space(a0) == env.observation_space(a1)
    assert str(env.action_space(a0)).startswith("Dict('belief': Box(-10.0, 10.0, (16,)")


# -- PettingZoo conformance ------------------------------------------------------------------


def make_aec(**kwargs):
    """The AEC env, without myerson's warning about correlated priors."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="myerson", category=UserWarning)
        return crowdsourced_auction_v0.env(**kwargs)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_pettingzoo_api(mechanism):
    parallel_api_test(make(mechanism=mechanism, render_mode="ansi"), num_cycles=20)
    parallel_seed_test(lambda: make(mechanism=mechanism))
    api_test(make_aec(mechanism=mechanism), num_cycles=20)


# The Dict action space is the documented discrete option; PettingZoo's checker only
# recommends Box or Discrete.
@pytest.mark.filterwarnings("ignore:Action space for each agent probably should be")
@pytest.mark.parametrize("mechanism", ["M", "L", "second_price"])
def test_pettingzoo_api_discrete_valuation(mechanism):
    parallel_api_test(make(mechanism=mechanism, valuation_action="discrete"), num_cycles=20)
    parallel_seed_test(lambda: make(mechanism=mechanism, valuation_action="discrete"))
    api_test(make_aec(mechanism=mechanism, valuation_action="discrete"), num_cycles=20)


def test_every_constructor_works_without_arguments():
    par = crowdsourced_auction_v0.parallel_env()
    assert isinstance(par, crowdsourced_auction_v0.CrowdsourcedAuctionEnv)
    assert crowdsourced_auction_v0.env().unwrapped.metadata["name"] == "crowdsourced_auction_v0"
    assert crowdsourced_auction_v0.raw_env().possible_agents == ["bidder_0", "bidder_1", "bidder_2"]
    assert crowdsourced_auction_v0.parallel_env.metadata == {
        "name": "crowdsourced_auction_v0",
        "render_modes": ["ansi"],
        "is_parallelizable": True,
    }


def test_myerson_on_a_correlated_prior_warns():
    with pytest.warns(UserWarning, match="correlated prior"):
        crowdsourced_auction_v0.parallel_env(mechanism="myerson")


# -- seeding ---------------------------------------------------------------------------------


def _record(seed: int, mechanism: str, episodes: int = 50) -> list:
    env = make(mechanism=mechanism)
    rec = []
    obs, infos = env.reset(seed=seed)
    for i, agent in enumerate(env.possible_agents):
        env.action_space(agent).seed(100 + i)
    for ep in range(episodes):
        if ep:
            obs, infos = env.reset()
        rec.append((obs, infos))
        while env.agents:
            actions = {a: env.action_space(a).sample() for a in env.agents}
            obs, rewards, terms, truncs, infos = env.step(actions)
            rec.append((obs, rewards, terms, truncs, infos))
    return rec


@pytest.mark.parametrize("mechanism", ["M", "L", "second_price"])
def test_same_seed_same_episodes_other_seed_differs(mechanism):
    a, b, c = _record(7, mechanism), _record(7, mechanism), _record(8, mechanism)
    steps = 3 if mechanism in ("M", "L") else 2  # reset plus one record per phase
    assert len(a) == len(b) == 50 * steps
    assert data_equivalence(a, b)
    assert not data_equivalence(a, c)
    # Not only the first observations: the rewards differ too.
    rewards = [[r for r in step[1].values()] for step in a if len(step) == 5]
    rewards_c = [[r for r in step[1].values()] for step in c if len(step) == 5]
    assert rewards != rewards_c


# -- episodes by hand ------------------------------------------------------------------------


def point_mass(profile, values=(0, 1, 2, 3)):
    return Prior.from_table([(profile, 1.0)], [list(values)] * len(profile))


def test_second_price_by_hand_with_ties_and_shading():
    env = make(mechanism="second_price", prior=point_mass((3, 1, 2)), render_mode="ansi")
    obs, _ = env.reset(seed=0)
    obs, rewards, terms, truncs, infos = env.step(truthful(env, obs))
    # Truthful (3, 1, 2): bidder 0 wins at the second price 2.
    assert rewards == {"bidder_0": 1.0, "bidder_1": 0.0, "bidder_2": 0.0}
    assert infos["bidder_0"]["allocation"] == 1.0 and infos["bidder_0"]["payment"] == 2.0
    assert infos["bidder_2"]["revenue"] == 2.0
    assert all(terms.values()) and not any(truncs.values()) and env.agents == []
    text = env.render()
    assert "revenue: 2.0000" in text and "bidder_0" in text
    # Bidder 0 shades to 2: a tie with bidder 2 goes to the lower index, at price 2.
    lay = env.layout
    obs, _ = env.reset()
    acts = truthful(env, obs)
    acts["bidder_0"][0] = lay.encode_valuation(np.array([2]), 0)[0]
    _, rewards, _, _, infos = env.step(acts)
    assert rewards["bidder_0"] == 1.0 and infos["bidder_0"]["value_report"] == 2
    # Shading to 1 hands the good to bidder 2 at price 1.
    obs, _ = env.reset()
    acts = truthful(env, obs)
    acts["bidder_0"][0] = lay.encode_valuation(np.array([1]), 0)[0]
    _, rewards, _, _, infos = env.step(acts)
    assert rewards == {"bidder_0": 0.0, "bidder_1": 0.0, "bidder_2": 1.0}


def test_m_by_hand_every_informant():
    # Values (3, 1, 2); inner design plain second price; belief reward eps = 0.05.
    expected = {  # informant -> (utilities, revenue) under truthful play
        0: ([0.05, 0.0, 1.0], 0.95),
        1: ([1.0, 0.05, 0.0], 1.95),
        2: ([2.0, 0.0, 0.05], 0.95),
    }
    env = make(mechanism="M", design="second_price", delta=0.0, prior=point_mass((3, 1, 2)))
    seen = set()
    for seed in range(20):
        obs, infos = env.reset(seed=seed)
        inf = int(np.argmax([obs[a][env.layout.roles_slice.start] for a in env.agents]))
        assert [infos[a]["acts_now"] for a in env.agents] == [i != inf for i in range(3)]
        obs, rewards, terms, _, infos = env.step(truthful(env, obs))
        assert rewards == dict.fromkeys(env.possible_agents, 0.0) and not any(terms.values())
        acts_now = [bool(obs[a][env.layout.acts_index]) for a in env.possible_agents]
        assert acts_now == [i == inf for i in range(3)]
        obs, rewards, terms, _, infos = env.step(truthful(env, obs))
        utils, revenue = expected[inf]
        np.testing.assert_allclose(list(rewards.values()), utils, rtol=1e-12)
        assert infos["bidder_0"]["informant"] == inf
        assert infos[f"bidder_{inf}"]["reward"] == pytest.approx(0.05)
        assert infos[f"bidder_{inf}"]["payment"] == pytest.approx(-0.05)
        assert infos["bidder_1"]["revenue"] == pytest.approx(revenue)
        seen.add(inf)
    assert seen == {0, 1, 2}


def test_l_by_hand_roles_and_phase_one_beliefs():
    prior = Prior.gaussian_copula(3, [0, 1, 2, 3], 0.5)
    env = make(mechanism="L", prior=prior)
    lay = env.layout
    for seed in range(10):
        obs, _ = env.reset(seed=seed)
        acts = truthful(env, obs)
        # Everybody reports its value; the highest (lowest index among ties) is the candidate.
        values = [int(np.argmax(obs[a][lay.value_slice])) for a in env.agents]
        star = int(np.argmax(values))
        obs, rewards, _, _, infos = env.step(acts)
        parts = lay.decode_obs(np.stack([obs[a] for a in env.possible_agents]))
        assert parts.is_candidate.tolist() == [i == star for i in range(3)]
        assert parts.asked_belief.tolist() == [i != star for i in range(3)]
        assert parts.acts_now.tolist() == [i != star for i in range(3)]
        assert parts.phase.tolist() == [1, 1, 1]
        truth = env.mechanism.truthful_beliefs(env.core.knowledge)
        for i in range(3):
            want = truth[i][values[i]] if i != star else env.core.knowledge.beliefs[i][values[i]]
            np.testing.assert_allclose(parts.belief[i], want, atol=1e-7)
        obs, rewards, terms, _, infos = env.step(truthful(env, obs))
        assert infos["bidder_0"]["candidate"] == star and all(terms.values())
        paid = sum(infos[a]["payment"] for a in env.possible_agents)
        assert paid == pytest.approx(infos["bidder_0"]["revenue"])
        for i, a in enumerate(env.possible_agents):
            info = infos[a]
            assert info["value"] == info["truthful_value_report"] == values[i]
            assert rewards[a] == pytest.approx(info["value"] * info["allocation"] - info["payment"])
            assert (info["belief_report"] is None) == (i == star)


def test_ignored_actions_and_equal_images_give_equal_outcomes():
    """Actions of bidders who do not act, and actions with one image, change nothing."""

    def play(seed, variant):
        env = make(mechanism=variant[0])
        lay = env.layout
        noise = np.random.default_rng(variant[1])
        obs, _ = env.reset(seed=seed)
        out = []
        while env.agents:
            acts = truthful(env, obs)
            for a, act in acts.items():
                k = int(np.argmax(obs[a][lay.value_slice]))
                if variant[1]:
                    # Same grid index: elsewhere in the interval, or clipped onto the top.
                    act[0] += 0.1 if k < lay.k_max - 1 else 7.0
                # A point-mass belief report: 1e6 swamps any other logit, exactly.
                act[1:] = noise.uniform(-10, 10, size=lay.m_max)
                act[1 + k] = 1e6
                if not obs[a][lay.acts_index]:
                    act[:] = noise.uniform(-50, 50, size=act.shape)  # ignored
            obs, rewards, _, _, infos = env.step(acts)
            out.append((rewards, infos))
        return out

    for mechanism in ["M", "L"]:
        for seed in range(5):
            assert data_equivalence(play(seed, (mechanism, 0)), play(seed, (mechanism, 1)))
            # ... while a different image does change the outcome's record.
            assert not data_equivalence(play(seed, (mechanism, 0)), play(seed + 1, (mechanism, 0)))


# -- statistics against exact expectations ---------------------------------------------------


@pytest.mark.parametrize("mechanism", ["M", "L", "second_price"])
def test_truthful_rewards_match_exact_expectations(mechanism):
    env = make(mechanism=mechanism)
    episodes = 300
    util = np.zeros((episodes, 3))
    revenue = np.zeros(episodes)
    obs, _ = env.reset(seed=2024)
    for ep in range(episodes):
        if ep:
            obs, _ = env.reset()
        while env.agents:
            obs, rewards, _, _, infos = env.step(truthful(env, obs))
        util[ep] = list(rewards.values())
        revenue[ep] = infos["bidder_0"]["revenue"]
    exact = evaluate(env.mechanism, env.core.knowledge)
    for i in range(3):
        assert abs(zscore(util[:, i], exact.utility[i])) < 3
    assert abs(zscore(revenue, exact.revenue)) < 3
    # The check has teeth: a target 25% off is rejected.
    assert abs(zscore(revenue, 0.75 * exact.revenue)) > 3


# -- bad input -------------------------------------------------------------------------------


def test_bad_actions_raise_with_names_values_and_expected_space():
    env = make()
    obs, _ = env.reset(seed=0)
    acts = truthful(env, obs)
    inf = next(a for a in env.agents if obs[a][env.layout.roles_slice.start])
    actor = next(a for a in env.agents if a != inf)
    for bad in (np.nan, np.inf, -np.inf):
        broken = {a: v.copy() for a, v in acts.items()}
        broken[actor][3] = bad
        want = rf"{actor}.*{str(bad)}.*expected a finite float array of shape \(17,\)"
        with pytest.raises(InvalidActionError, match=want):
            env.step(broken)
    broken = dict(acts, **{actor: np.zeros(5)})
    with pytest.raises(InvalidActionError, match=rf"{actor} has shape \(5,\).*shape \(17,\)"):
        env.step(broken)
    with pytest.raises(InvalidActionError, match="not numbers"):
        env.step(dict(acts, **{actor: "high"}))
    with pytest.raises(InvalidActionError, match=rf"no action for \['{actor}'\]"):
        env.step({a: v for a, v in acts.items() if a != actor})
    with pytest.raises(InvalidActionError, match=r"bidder_7.*not alive"):
        env.step(dict(acts, bidder_7=acts[actor]))
    # The informant does not act in phase 0: its action may be left out.
    env.step({a: v for a, v in acts.items() if a != inf})
    env.step(truthful(env, env._observations()))
    assert env.agents == []
    with pytest.raises(InvalidActionError, match="call reset"):
        env.step({"bidder_0": acts["bidder_0"]})


def test_bad_discrete_actions_raise():
    env = make(valuation_action="discrete", mechanism="second_price")
    env.reset(seed=0)
    good = {a: {"valuation": 1, "belief": np.zeros(16)} for a in env.agents}
    with pytest.raises(InvalidActionError, match=r"bidder_0.*0\.\.3"):
        env.step(dict(good, bidder_0={"valuation": 4, "belief": np.zeros(16)}))
    with pytest.raises(InvalidActionError, match="bidder_1.*nan"):
        env.step(dict(good, bidder_1={"valuation": 1, "belief": np.full(16, np.nan)}))
    with pytest.raises(InvalidActionError, match="bidder_2.*expected a dict"):
        env.step(dict(good, bidder_2=np.zeros(17)))
    _, rewards, *_ = env.step(good)
    assert set(rewards) == set(env.possible_agents)


def test_bad_configuration_raises():
    with pytest.raises(UnknownNameError, match=r"'vickrey'.*'second_price'"):
        crowdsourced_auction_v0.parallel_env(mechanism="vickrey")
    with pytest.raises(UnknownNameError, match=r"render_mode 'human'.*\['ansi'\]"):
        crowdsourced_auction_v0.parallel_env(render_mode="human")
    with pytest.raises(UnknownNameError, match="valuation_action 'int'"):
        crowdsourced_auction_v0.parallel_env(valuation_action="int")
    with pytest.raises(UnknownNameError, match="unknown classical mechanism 'nope'"):
        crowdsourced_auction_v0.parallel_env(mechanism="M", design="nope")
    with pytest.raises(InvalidConfigError, match="n=4 disagrees"):
        crowdsourced_auction_v0.parallel_env(prior=Prior.uniform([0, 1], 3), n=4)
    with pytest.raises(InvalidConfigError, match="eps"):
        crowdsourced_auction_v0.parallel_env(mechanism="M", eps=-1.0)
    with pytest.warns(UserWarning, match="eps ignored"):
        crowdsourced_auction_v0.parallel_env(mechanism="second_price", eps=0.1)
    with pytest.raises(UnknownNameError, match="unknown agent 'bidder_9'"):
        crowdsourced_auction_v0.parallel_env().action_space("bidder_9")


def test_render_modes():
    env = make(render_mode="ansi", mechanism="L")
    assert "no auction yet" in env.render()
    obs, _ = env.reset(seed=3)
    assert "valuation reports" in env.render()
    while env.agents:
        obs, *_ = env.step(truthful(env, obs))
    text = env.render()
    assert "revenue:" in text and "candidate" in text and "lottery:" in text
    quiet = make()
    quiet.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode='ansi'"):
        assert quiet.render() is None
