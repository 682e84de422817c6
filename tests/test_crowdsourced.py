"""Mechanisms M and L: revenue bounds, ex-post IR, reward ranges, AGG, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crowdauction.errors import InvalidReportError
from crowdauction.mechanisms import (
    CrowdsourcedLookahead,
    Knowledge,
    Lookahead,
    Prior,
    RandomInformant,
    Strategy,
    Strictified,
    agg,
    evaluate,
)
from crowdauction.mechanisms.optimal import optimal_revenue

EPS = 0.05
DELTA = 0.05


@st.composite
def small_correlated_worlds(draw):
    """A random correlated prior on 2-3 bidders with 2-3 values and random knowledge."""
    n = draw(st.integers(2, 3))
    k = draw(st.integers(2, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    values = sorted(rng.choice(np.arange(0, 7), size=k, replace=False).tolist())
    table = rng.dirichlet(np.full(k**n, 0.6)).reshape((k,) * n)
    prior = Prior(table, [values] * n)
    spec = [draw(st.sampled_from(["own", "all"])) for _ in range(n)]
    return Knowledge.from_spec(prior, spec)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_correlated_worlds())
def test_m_meets_theorem_1_and_stays_ex_post_ir(know):
    prior = know.prior
    n = prior.n
    opt = optimal_revenue(prior)
    M = RandomInformant(prior.space, design="optimal", eps=EPS, delta=DELTA)
    res = evaluate(M, know)
    assert res.revenue >= (1 - DELTA) * (1 - 1 / n) * opt - EPS - 1e-9
    assert res.revenue <= prior.full_surplus() + 1e-9
    assert res.min_utility >= -1e-9  # every truthful bidder, every reached profile
    # Realised outcomes: ex-post IR for truthful bidders, rewards in [0, eps].
    rng = np.random.default_rng(0)
    idx = prior.sample_indices(300, rng)
    values = prior.space.values_of(idx)
    beliefs = [know.belief_at(i, idx) for i in range(n)]
    real = M.sample(values, beliefs, rng)
    assert real.utilities(values).min() >= -1e-9
    rew = real.extra["reward"]
    assert rew.min() >= 0 and rew.max() <= EPS + 1e-12
    inf = real.extra["informant"]
    assert not real.served[np.arange(300), inf].any()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_correlated_worlds())
def test_l_meets_theorem_2_and_stays_ex_post_ir(know):
    prior = know.prior
    opt = optimal_revenue(prior)
    L = CrowdsourcedLookahead(prior.space, eps=0.001, delta=DELTA)
    res = evaluate(L, know)
    assert res.revenue >= (1 - DELTA) / 2 * opt - L.eps - 1e-9
    assert res.min_utility >= -1e-9
    rng = np.random.default_rng(1)
    idx = prior.sample_indices(300, rng)
    values = prior.space.values_of(idx)
    truthful = L.truthful_beliefs(know)
    beliefs = [truthful[i][know.cell_of(i, idx)] for i in range(prior.n)]
    real = L.sample(values, beliefs, rng)
    assert real.utilities(values).min() >= -1e-9
    rew = real.extra["reward"]
    assert rew.min() >= 0 and rew.max() <= L.eps + 1e-12


def test_m_with_one_cell_per_value_and_second_price_inside_is_hand_computable():
    """Two i.i.d. fair bits, M over second price, eps = 0.1.

    The informant is removed; the single remaining bidder faces second price alone and
    pays 0, so M earns nothing but pays the informant eps/2 (2 + BSR). The informant's
    belief (the other bit is fair) scores 2 F(w) - |F|^2 - 1 = 1 - 1/2 - 1 = -1/2 for
    either outcome, so the reward is 0.05 (2 - 1/2) = 0.075 and revenue is -0.075.
    """
    prior = Prior.uniform([0, 1], 2)
    M = RandomInformant(prior.space, design="second_price", eps=0.1, delta=0.0)
    assert evaluate(M, Knowledge(prior)).revenue == pytest.approx(-0.075)


def test_l_without_news_is_strictified_lookahead_minus_rewards():
    """With self-knowledge, L's price equals Ronen's under the prior.

    L's truthful beliefs are the posteriors given one's own value and given not being
    the candidate, so AGG recovers D(theta_i* | v_-i*, i* is the highest) and L earns
    the strictified 1-lookahead revenue minus the bonus eps and the scoring rewards.
    """
    prior = Prior.gaussian_copula(3, [0, 1, 2, 3], 0.5)
    know = Knowledge(prior)
    L = CrowdsourcedLookahead(prior.space, eps=0.001, delta=DELTA)
    strict = Strictified(Lookahead(prior), DELTA, space=prior.space)
    strategy = Strategy.truthful(know, L)
    idx = prior.space.profile_indices
    values = prior.space.values_of(idx)
    beliefs = [strategy.belief[i][know.cell_of(i, idx)] for i in range(3)]
    out = L.outcome(values, beliefs)
    base = strict.outcome(values)
    rew = out.extra["reward"].sum(axis=1)
    live = prior.table.ravel() > 0
    np.testing.assert_allclose((out.revenue + rew)[live], base.revenue[live], atol=1e-12)


def test_l_fast_aggregation_matches_the_reference_agg():
    rng = np.random.default_rng(5)
    prior = Prior(rng.dirichlet(np.ones(27)).reshape(3, 3, 3), [[0, 1, 2]] * 3)
    space = prior.space
    L = CrowdsourcedLookahead(space, eps=0.001)
    B = 200
    reports = space.values_of(prior.sample_indices(B, rng))
    # Sparse random beliefs, so that supports often fail to intersect.
    beliefs = []
    for j in range(3):
        F = rng.dirichlet(np.ones(9), size=B) * (rng.random((B, 9)) < 0.6)
        F[F.sum(1) == 0, 0] = 1.0
        beliefs.append(F / F.sum(1, keepdims=True))
    idx = space.indices_of(reports)
    star = np.argmax(reports, axis=1)  # first maximiser = lowest index among ties
    fast = L.aggregate_weights(idx, star, beliefs, B)
    for b in range(B):
        i = int(star[b])
        reporters = [j for j in range(3) if j != i]
        full = []
        for j in reporters:
            t = np.zeros(space.shape)
            sl = [slice(None)] * 3
            sl[j] = idx[b, j]
            t[tuple(sl)] = beliefs[j][b].reshape(space.others_shape(j))
            full.append(t)
        ref = agg(i, np.stack(full)[None], reporters)[0]
        sl = [int(x) for x in idx[b]]
        sl[i] = slice(None)
        # Compare up to normalisation: the price depends only on the direction.
        r = ref[tuple(sl)]
        f = fast[b, :3]
        if r.sum() > 0:
            np.testing.assert_allclose(f / f.sum(), r / r.sum(), atol=1e-12)
        else:
            assert f.sum() == 0


def test_l_warns_when_the_bonus_outweighs_the_lottery():
    space = Prior.uniform([0, 1, 2], 3).space
    with pytest.warns(UserWarning, match="strictness margin"):
        CrowdsourcedLookahead(space, eps=0.5, delta=0.05)


def test_bad_belief_reports_raise_our_errors():
    prior = Prior.uniform([0, 1], 2)
    M = RandomInformant(prior.space, design="second_price", delta=0.0)
    reports = np.array([[0, 1]])
    good = [np.array([[0.5, 0.5]]), np.array([[0.5, 0.5]])]
    with pytest.raises(InvalidReportError, match="sums to"):
        M.outcome(reports, [np.array([[0.5, 0.6]]), good[1]], informant=np.array([0]))
    with pytest.raises(InvalidReportError, match=r"shape \(1, 3\), expected \(1, 2\)"):
        M.outcome(reports, [np.array([[0.2, 0.3, 0.5]]), good[1]], informant=np.array([0]))
    with pytest.raises(InvalidReportError, match="expected 2 belief arrays"):
        M.outcome(reports, good[:1])
    with pytest.raises(InvalidReportError, match="off its grid"):
        M.outcome(np.array([[0, 3]]), good, informant=np.array([0]))
    with pytest.raises(ValueError, match="eps"):
        RandomInformant(prior.space, eps=0.0)


@pytest.mark.parametrize("which", ["M", "L"])
def test_every_valuation_misreport_loses_strictly_in_expectation(which):
    """Exact enumeration: against truthful others, each cell's every misreport loses."""
    prior = Prior.gaussian_copula(3, [0, 1, 2], 0.5)
    know = Knowledge.from_spec(prior, [[1], "own", "all"])
    if which == "M":
        mech = RandomInformant(prior.space, design="optimal", eps=EPS, delta=DELTA)
    else:
        mech = CrowdsourcedLookahead(prior.space, eps=0.001, delta=DELTA)
    truthful = Strategy.truthful(know, mech)
    base = evaluate(mech, know, truthful).utility_by_cell
    for i in range(3):
        K = prior.space.shape[i]
        for k in range(K):
            dev = truthful.copy()
            dev.valuation[i] = np.zeros_like(dev.valuation[i])
            dev.valuation[i][:, k] = 1.0
            got = evaluate(mech, know, dev).utility_by_cell[i]
            liars = (know.cell_value[i] != k) & (know.cell_prob[i] > 0)
            assert np.all(got[liars] < base[i][liars] - 1e-9), (i, k)


def test_m_reports_whether_the_inner_lottery_fired():
    prior = Prior.uniform([0, 1, 2], 3)
    know = Knowledge(prior)
    M = RandomInformant(prior.space, design="second_price", delta=0.4)
    rng = np.random.default_rng(2)
    idx = prior.sample_indices(4000, rng)
    values = prior.space.values_of(idx)
    real = M.sample(values, [know.belief_at(i, idx) for i in range(3)], rng)
    fired = real.extra["lottery"]
    assert abs(fired.mean() - 0.4) < 4 * np.sqrt(0.4 * 0.6 / 4000)
    # Without the lottery the inner second price charges at most the top other report.
    plain = ~fired
    assert np.all(real.payments[plain].max(axis=1) <= values[plain].max(axis=1))
    assert "lottery" not in RandomInformant(prior.space, "second_price", delta=0.0).sample(
        values[:5], [know.belief_at(i, idx[:5]) for i in range(3)], rng
    ).extra
