"""Agents: exact best responses, Hedge, fixed agents, and act/strategy_for agreement.

The values pinned here come from theory or from hand computation:

* Against truthful opponents, truthful play is the exact best response under M (inner
  design strictified, Brier rewards) and under L (eps below the strictness margin),
  in value and in belief, for every type of a correlated prior in which bidder 1
  observes bidder 0 (Azar, Chen, Micali, Lemmas 2 and 4).
* Under first price it is not: a two-bidder instance solved by hand below.
* If the others report zero, the informant's best belief report is the point mass on
  the all-zero profile (the remark after Lemma 2).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from crowdauction.agents import (
    BestResponseAgent,
    Hedge,
    HedgeAgent,
    LearnedAgent,
    MisreportAgent,
    RandomAgent,
    ShadingAgent,
    TruthfulAgent,
    best_response,
    default_learning_rate,
    optimal_belief,
    profile_strategy,
    regret,
    report_weights,
    role_observations,
)
from crowdauction.envs.core import build_core
from crowdauction.envs.layout import EnvLayout
from crowdauction.errors import InvalidReportError
from crowdauction.mechanisms import (
    CrowdsourcedLookahead,
    FirstPrice,
    Knowledge,
    LinearScore,
    Prior,
    RandomInformant,
    SecondPrice,
    Strategy,
    Strictified,
    evaluate,
)

# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corr4() -> Knowledge:
    """3 bidders, values 0..3, Gaussian copula rho=0.5; bidder 1 observes bidder 0."""
    prior = Prior.gaussian_copula(3, [0, 1, 2, 3], 0.5)
    return Knowledge.from_spec(prior, ["own", [0], "own"])


@pytest.fixture(scope="module")
def corr3() -> Knowledge:
    """3 bidders, values 0..2, Gaussian copula rho=0.5; bidder 1 observes bidder 0."""
    prior = Prior.gaussian_copula(3, [0, 1, 2], 0.5)
    return Knowledge.from_spec(prior, ["own", [0], "own"])


@pytest.fixture(scope="module")
def hand2() -> Knowledge:
    """2 independent bidders, values 0..3, each with marginal (0.4, 0.3, 0.2, 0.1)."""
    m = [0.4, 0.3, 0.2, 0.1]
    return Knowledge(Prior.independent([m, m], [[0, 1, 2, 3]] * 2))


def _second_best_gap(br) -> np.ndarray:
    """Per cell: best utility minus the best utility of any other report (> 0: strict)."""
    U = br.utility_table
    masked = U.copy()
    masked[br.report, np.arange(U.shape[1])] = -np.inf
    return br.utility_by_cell - masked.max(axis=0)


# -- exact best response ----------------------------------------------------------------


@pytest.mark.parametrize("mech_name", ["M_optimal", "M_second_price", "L"])
def test_best_response_to_truthful_is_truthful(corr4: Knowledge, mech_name: str) -> None:
    space = corr4.space
    if mech_name == "L":
        mech = CrowdsourcedLookahead(space, eps=0.001, delta=0.05)
    else:
        mech = RandomInformant(space, design=mech_name[2:], delta=0.05, eps=0.05)
    truthful = Strategy.truthful(corr4, mech)
    for i in range(3):
        br = best_response(corr4, mech, truthful, i)
        np.testing.assert_array_equal(br.report, corr4.cell_value[i])
        np.testing.assert_allclose(br.belief, truthful.belief[i], atol=1e-12)
        # Strictly: every other report loses at least 1e-4 in every cell (the lottery).
        assert _second_best_gap(br).min() > 1e-4
        # ... and the best response earns exactly what truthful play earns.
        assert br.utility == pytest.approx(evaluate(mech, corr4, truthful).utility[i], abs=1e-12)


def test_best_response_first_price_hand_instance(hand2: Knowledge) -> None:
    """Bidder 0 wins ties, bidder 1 loses them; the other bids truthfully.

    Bidder 0 with value v reporting r wins iff v1 <= r: P = 0.4, 0.7, 0.9, 1, so
    u(3, r) = (3 - r) P(r) = 1.2, 1.4, 0.9, 0 -> r = 1; u(2, r) = 0.8, 0.7 -> r = 0;
    u(1, r) = 0.4, 0 -> r = 0. Bidder 1 wins iff v0 < r: P = 0, 0.4, 0.7, 0.9, so
    u(3, r) = 0, 0.8, 0.7, 0 -> r = 1; u(2, r) = 0, 0.4, 0 -> r = 1; with value 1 every
    report r <= 1 earns 0 and the tie keeps the truthful report.
    """
    mech = FirstPrice()
    truthful = Strategy.truthful(hand2, mech)
    b0 = best_response(hand2, mech, truthful, 0)
    b1 = best_response(hand2, mech, truthful, 1)
    np.testing.assert_array_equal(b0.report, [0, 0, 0, 1])
    np.testing.assert_array_equal(b1.report, [0, 1, 1, 1])
    np.testing.assert_allclose(b0.utility_by_cell, [0.0, 0.4, 0.8, 1.4], atol=1e-12)
    np.testing.assert_allclose(b1.utility_by_cell, [0.0, 0.0, 0.4, 0.8], atol=1e-12)
    np.testing.assert_allclose(b0.utility_table[:, 3], [1.2, 1.4, 0.9, 0.0], atol=1e-12)
    gain, by_cell = regret(hand2, mech, truthful, 0)
    # Truthful first-price bidding earns exactly 0 (a winner pays its value).
    np.testing.assert_allclose(by_cell, [0.0, 0.4, 0.8, 1.4], atol=1e-12)
    assert gain == pytest.approx(0.3 * 0.4 + 0.2 * 0.8 + 0.1 * 1.4, abs=1e-12)


def test_best_response_first_price_correlated_shades(corr4: Knowledge) -> None:
    mech = FirstPrice()
    truthful = Strategy.truthful(corr4, mech)
    for i in range(3):
        br = best_response(corr4, mech, truthful, i)
        assert np.all(br.report <= corr4.cell_value[i])  # never overbids
        shaded = br.report < corr4.cell_value[i]
        assert corr4.cell_prob[i][shaded].sum() > 0.05  # shades in a positive share of types
        assert br.utility > evaluate(mech, corr4, truthful).utility[i] + 0.01  # truthful earns 0


def test_informant_best_belief_when_others_report_zero(corr4: Knowledge) -> None:
    """The paper's remark after Lemma 2: the best report is the point mass on zeros."""
    mech = RandomInformant(corr4.space, design="second_price", delta=0.05)
    zero = Strategy.truthful(corr4, mech)
    for j in range(3):
        zero.valuation[j][:] = 0.0
        zero.valuation[j][:, 0] = 1.0
    for i in range(3):
        br = best_response(corr4, mech, zero, i)
        point = np.zeros_like(br.belief)
        point[:, 0] = 1.0
        np.testing.assert_allclose(br.belief, point, atol=1e-12)
        # It differs from the truthful belief, which puts mass elsewhere.
        assert np.abs(br.belief - corr4.beliefs[i]).sum(axis=1).min() > 0.5


def test_report_weights_under_l_condition_on_being_asked(corr4: Knowledge) -> None:
    """With truthful play, G under L equals L's truthful (not-the-candidate) belief."""
    mech = CrowdsourcedLookahead(corr4.space, eps=0.001, delta=0.05)
    truthful = Strategy.truthful(corr4, mech)
    want = mech.truthful_beliefs(corr4)
    for i in range(3):
        W = report_weights(corr4, mech, truthful, i, truthful.valuation[i])
        mass = W.sum(axis=1)
        asked = mass > 0
        G = W[asked] / mass[asked, None]
        np.testing.assert_allclose(G, want[i][asked], atol=1e-12)
        # ... and the conditioning matters: it is not the cell belief in every cell.
        assert np.abs(want[i] - corr4.beliefs[i]).max() > 0.1


def test_improper_rule_gives_point_mass_on_the_mode(corr4: Knowledge) -> None:
    """Under the linear (improper) rule the best belief report is not the truthful one."""
    mech = RandomInformant(corr4.space, design="second_price", delta=0.05, scoring="linear")
    truthful = Strategy.truthful(corr4, mech)
    br = best_response(corr4, mech, truthful, 0)
    modes = np.argmax(corr4.beliefs[0], axis=1)
    point = np.zeros_like(br.belief)
    point[np.arange(point.shape[0]), modes] = 1.0
    np.testing.assert_allclose(br.belief, point, atol=1e-12)
    # The spherical rule is strictly proper: truthful again.
    sph = RandomInformant(corr4.space, design="second_price", delta=0.05, scoring="spherical")
    br = best_response(corr4, sph, Strategy.truthful(corr4, sph), 0)
    np.testing.assert_allclose(br.belief, corr4.beliefs[0], atol=1e-12)


def test_optimal_belief_search_matches_brute_force() -> None:
    """A concave improper objective: score (F, a) = -||F - a||^2 peaks at proj(a)."""

    class Pull(LinearScore):
        name = "pull"
        bounds = (-4.0, 0.0)

        def score_all(self, F: np.ndarray) -> np.ndarray:
            a = np.array([0.7, 0.2, 0.1])
            return np.broadcast_to(-((F - a) ** 2).sum(axis=-1, keepdims=True), F.shape).copy()

    G = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    F = optimal_belief(Pull(), G)
    np.testing.assert_allclose(F, [[0.7, 0.2, 0.1]] * 2, atol=1e-4)
    # Linear rule: a point mass on the mode, found exactly among the candidates.
    F = optimal_belief(LinearScore(), np.array([[0.2, 0.5, 0.3]]))
    np.testing.assert_array_equal(F, [[0.0, 1.0, 0.0]])


# -- Hedge --------------------------------------------------------------------------------


def test_hedge_converges_to_truthful_under_strict_second_price(corr3: Knowledge) -> None:
    """Second price with the Lemma 1 lottery (delta 0.1): truthful is strictly dominant.

    Stated bound: with eta = 20 the learner puts >= 0.99 on the truthful report in every
    cell within 40 rounds (measured: 16 for bidder 1 alone; 28 with all three learning).
    """
    mech = Strictified(SecondPrice(), 0.1, space=corr3.space)
    res = Hedge(corr3, mech, learners=[1], eta=20.0).run(60)
    rounds = res.rounds_to_concentrate(1, corr3.cell_value[1], mass=0.99)
    assert rounds is not None and rounds <= 40
    all3 = Hedge(corr3, mech, learners=[0, 1, 2], eta=20.0).run(60)
    for i in range(3):
        r = all3.rounds_to_concentrate(i, corr3.cell_value[i], mass=0.99)
        assert r is not None and r <= 40


def test_hedge_splits_exact_ties_under_plain_second_price(corr3: Knowledge) -> None:
    """Plain second price on a grid is only weakly truthful: exact ties stay split.

    Bidder 1 observing v0 = 0 with value 2 earns the same with reports 1 and 2
    (they differ only when v2 = 2, where report 2 wins at price 2 and report 1 loses),
    so Hedge keeps their weights equal forever.
    """
    mech = SecondPrice()
    res = Hedge(corr3, mech, learners=[1], eta=20.0).run(60)
    cell = int(np.nonzero((corr3.cell_value[1] == 2) & (np.arange(9) // 3 == 0))[0][0])
    np.testing.assert_allclose(res.last.valuation[1][cell], [0.0, 0.5, 0.5], atol=1e-9)
    assert res.rounds_to_concentrate(1, corr3.cell_value[1], mass=0.99) is None


def test_hedge_shades_under_first_price(hand2: Knowledge) -> None:
    """Hedge's last iterate reaches the hand-computed shaded reports (0, 0, 0, 1).

    Stated bound: eta = 5, >= 0.99 mass within 15 rounds (measured: 10).
    """
    mech = FirstPrice()
    res = Hedge(hand2, mech, learners=[0], eta=5.0).run(30)
    rounds = res.rounds_to_concentrate(0, [0, 0, 0, 1], mass=0.99)
    assert rounds is not None and rounds <= 15
    assert res.rounds_to_concentrate(0, hand2.cell_value[0], mass=0.99) is None
    agent = HedgeAgent(res, hand2, mech, 0)
    np.testing.assert_array_equal(agent.valuation.argmax(axis=1), [0, 0, 0, 1])


def test_hedge_regret_within_the_theoretical_bound(hand2: Knowledge) -> None:
    """Default rate tuned for T rounds: average regret <= R sqrt(ln K / (2T))."""
    mech = FirstPrice()
    T = 200
    eta = default_learning_rate(hand2, mech, T)
    R = 2.0 * 3  # 2 v_max + eps, eps = 0 for a classical mechanism
    assert eta == pytest.approx(math.sqrt(8 * math.log(4) / T) / R)
    res = Hedge(hand2, mech, learners=[0], horizon=T).run(T)
    bound = R * math.sqrt(math.log(4) / (2 * T))
    assert 0.0 <= res.regret[0] <= bound
    assert res.regret_curve.shape == (T, 1)
    assert res.regret_curve[-1, 0] == pytest.approx(res.regret[0])
    # The time average is a mixture; the last iterate is (near) the best response.
    assert res.average.valuation[0][3, 1] < res.last.valuation[0][3, 1]


# -- fixed agents ---------------------------------------------------------------------------


def test_shading_and_misreport_tables(corr4: Knowledge) -> None:
    mech = SecondPrice()
    val, bel = ShadingAgent(0.5).strategy_for(corr4, 0, mech)
    np.testing.assert_array_equal(val.argmax(axis=1), [0, 0, 1, 1])  # 0.5*v rounded down
    np.testing.assert_allclose(bel, corr4.beliefs[0])
    val, _ = ShadingAgent(1.0).strategy_for(corr4, 2, mech)
    np.testing.assert_array_equal(val.argmax(axis=1), corr4.cell_value[2])
    val, _ = MisreportAgent({3: 1, 0: 2}).strategy_for(corr4, 0, mech)
    np.testing.assert_array_equal(val.argmax(axis=1), [2, 1, 2, 1])
    with pytest.raises(InvalidReportError, match="not on the grid"):
        MisreportAgent({3: 7}).strategy_for(corr4, 0, mech)
    val, bel = RandomAgent().strategy_for(corr4, 1, mech)
    np.testing.assert_allclose(val, 0.25)
    np.testing.assert_allclose(bel, 1.0 / 16)
    with pytest.raises(InvalidReportError):
        ShadingAgent(1.5)


def test_profile_of_truthful_agents_matches_strategy_truthful(corr4: Knowledge) -> None:
    mech = CrowdsourcedLookahead(corr4.space, eps=0.001, delta=0.05)
    agents = [TruthfulAgent() for _ in range(3)]
    s = profile_strategy(agents, corr4, mech)
    ref = Strategy.truthful(corr4, mech)
    a, b = evaluate(mech, corr4, s), evaluate(mech, corr4, ref)
    assert a.revenue == pytest.approx(b.revenue, abs=1e-12)
    np.testing.assert_allclose(a.utility, b.utility, atol=1e-12)
    with pytest.raises(InvalidReportError, match="one per bidder"):
        profile_strategy(agents[:2], corr4, mech)


def _play(core, agents, B=400, seed=0):
    """Run B auctions of ``core`` with one agent per bidder; record phase by phase."""
    rng = np.random.default_rng(seed)
    st = core.reset(B, rng)
    record = []
    for _ in range(core.phases):
        obs = core.observe(st)
        acts = np.stack([agents[i].act(obs[:, i]) for i in range(core.n)], axis=1)
        record.append((st.phase, obs, acts, st.asked.copy()))
        core.step(st, acts, rng)
    return st, record


@pytest.mark.parametrize("mech_name", ["M", "L", "first_price"])
def test_act_agrees_with_strategy_for(corr4: Knowledge, mech_name: str) -> None:
    """What an agent does in the env is what it declares for exact evaluation."""
    space = corr4.space
    mech = {
        "M": RandomInformant(space, design="second_price", delta=0.05),
        "L": CrowdsourcedLookahead(space, eps=0.001, delta=0.05),
        "first_price": FirstPrice(),
    }[mech_name]
    core = build_core(mech, corr4.prior, corr4)
    lay = core.layout
    truthful = Strategy.truthful(corr4, mech)
    kinds = [
        [TruthfulAgent(lay, i) for i in range(3)],
        [ShadingAgent(0.6, lay, i) for i in range(3)],
        [MisreportAgent({1: 2, 3: 0}, lay, i) for i in range(3)],
        [BestResponseAgent(corr4, mech, i, truthful, layout=lay) for i in range(3)],
    ]
    for agents in kinds:
        tables = [a.strategy_for(corr4, i, mech) for i, a in enumerate(agents)]
        st, record = _play(core, agents)
        for phase, _obs, acts, asked in record:
            for i in range(3):
                cells = st.cells[:, i]
                if phase == 0:
                    got = lay.decode_valuation(acts[:, i], i)
                    np.testing.assert_array_equal(got, tables[i][0][cells].argmax(axis=1))
                else:
                    rows = asked[:, i]
                    got = lay.decode_belief(acts[rows, i], i)
                    np.testing.assert_allclose(got, tables[i][1][cells[rows]], atol=1e-6)


def test_random_agent_is_uniform_and_seeded(corr4: Knowledge) -> None:
    core = build_core("second_price", corr4.prior, corr4)
    lay = core.layout
    obs = core.observe(core.reset(6000, np.random.default_rng(1)))[:, 0]
    a = RandomAgent(lay, 0, seed=5).act(obs)
    b = RandomAgent(lay, 0, seed=5).act(obs)
    np.testing.assert_array_equal(a, b)
    counts = np.bincount(lay.decode_valuation(a, 0), minlength=4) / 6000
    np.testing.assert_allclose(counts, 0.25, atol=0.03)
    np.testing.assert_allclose(lay.decode_belief(a, 0), 1.0 / 16, atol=1e-12)


class _FakePolicy:
    """A deterministic 'model': reports (value - 1) clipped at 0 and the shown belief."""

    def __init__(self, layout: EnvLayout):
        self.layout = layout
        self.seen: list[np.ndarray] = []

    def predict(self, obs: np.ndarray, deterministic: bool = True):
        self.seen.append(np.asarray(obs))
        parts = self.layout.decode_obs(obs)
        out = np.zeros((obs.shape[0], self.layout.act_dim), dtype=np.float32)
        out[:, 0] = self.layout.encode_valuation(np.maximum(parts.value_idx - 1, 0), 0)
        F = parts.belief / parts.belief.sum(axis=1, keepdims=True)
        out[:, 1:] = np.maximum(self.layout.encode_belief(F, 0), -10.0)
        return out, None


@pytest.mark.parametrize("mech_name", ["M", "L"])
def test_learned_agent_builds_the_env_observations(corr4: Knowledge, mech_name: str) -> None:
    """strategy_for must show the policy what the env shows it in each role."""
    space = corr4.space
    mech = (
        RandomInformant(space, design="second_price", delta=0.05)
        if mech_name == "M"
        else CrowdsourcedLookahead(space, eps=0.001, delta=0.05)
    )
    core = build_core(mech, corr4.prior, corr4)
    lay = core.layout
    agents = [LearnedAgent(_FakePolicy(lay), lay, i) for i in range(3)]
    tables = [a.strategy_for(corr4, i, mech) for i, a in enumerate(agents)]
    for i in range(3):
        np.testing.assert_array_equal(
            tables[i][0].argmax(axis=1), np.maximum(corr4.cell_value[i] - 1, 0)
        )
        want = mech.truthful_beliefs(corr4)[i]
        big = want > 1e-4  # logits clipped at -10 in the fake policy blur tiny masses
        np.testing.assert_allclose(tables[i][1][big], want[big], rtol=1e-3)
    # The role observations equal the env's observations of the same cell and phase.
    st, record = _play(core, agents, B=300, seed=3)
    for phase, obs, _, _asked in record:
        for i in range(3):
            obs0, obs1 = role_observations(lay, corr4, i, mech)
            ref = obs0 if phase == 0 else obs1
            rows = np.nonzero(lay.decode_obs(obs[:, i]).acts_now)[0]
            assert rows.size > 0
            np.testing.assert_allclose(obs[rows, i], ref[st.cells[rows, i]], atol=1e-7)
