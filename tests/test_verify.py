"""The incentive verifier: it must find the violations theory predicts and only those."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from crowdauction.evaluation.verify import (
    ZERO_GAIN_TOLERANCE,
    belief_candidates,
    belief_check,
    belief_distance,
    belief_outcome_distribution,
    brier_misreport_loss,
    profile_check,
    truthfulness_rate,
    valuation_check,
    verify,
)
from crowdauction.mechanisms import (
    Brier,
    CrowdsourcedLookahead,
    FirstPrice,
    Knowledge,
    Prior,
    RandomInformant,
    SecondPrice,
    Strategy,
    Strictified,
)


@pytest.fixture(scope="module")
def small() -> Knowledge:
    """Three correlated bidders on {0, 1, 2}; bidder 0 observes bidder 1."""
    prior = Prior.gaussian_copula(3, [0, 1, 2], 0.5)
    return Knowledge.from_spec(prior, [[1], "own", "own"])


@pytest.fixture(scope="module")
def coin() -> Knowledge:
    """Two bidders i.i.d. uniform on {0, 1}, each knowing only its own value."""
    return Knowledge(Prior.uniform([0, 1], 2))


# -- valuation step -------------------------------------------------------------------


def test_second_price_is_truthful_but_not_strictly(small: Knowledge) -> None:
    check = valuation_check(SecondPrice(), small, strictness=True)
    assert check.max_gain == 0.0
    assert check.truthful and check.where == {}
    # Ties make some misreports cost nothing: second price is not *strictly* DST.
    assert check.min_loss == 0.0


def test_first_price_violation_found_where_theory_puts_it(small: Knowledge) -> None:
    check = valuation_check(FirstPrice(), small)
    # Value 2 against two zero reports: bid 0, win the tie (lowest index) and keep 2.
    assert check.max_gain == pytest.approx(2.0, abs=1e-12)
    assert check.where == {"bidder": 0, "value": 2, "report": 0, "others": [0, 0]}
    assert not check.truthful


def test_strictified_second_price_loses_by_at_least_the_margin(small: Knowledge) -> None:
    mech = Strictified(SecondPrice(), 0.05, space=small.space)
    check = valuation_check(mech, small, strictness=True)
    assert check.max_gain <= ZERO_GAIN_TOLERANCE
    # delta / (n P) * min(eps', 1 - eps') with n = 3 bidders and P = 2 positive prices.
    assert check.min_loss == pytest.approx(mech.strictness_margin(3), abs=1e-12)
    assert check.min_loss == pytest.approx(0.05 / 6 * 0.5, abs=1e-12)


def test_m_with_brier_is_strictly_truthful_for_every_informant_report(small: Knowledge) -> None:
    mech = RandomInformant(small.space)
    check = valuation_check(mech, small, strictness=True)
    assert check.max_gain <= ZERO_GAIN_TOLERANCE
    # Truthful beliefs that occur (4+3+3... cells) plus uniform, Dirichlet and points.
    live = sum(int((small.cell_prob[i] > 0).sum()) for i in range(3))
    assert check.belief_profiles == live + 3 * (1 + 4 + 3)
    # The inner auction has n - 1 = 2 bidders: lottery margin delta / (2 * 2) * 0.5.
    assert check.min_loss == pytest.approx(0.05 / 4 * 0.5, abs=1e-12)


def test_m_with_first_price_inside_is_caught(small: Knowledge) -> None:
    mech = RandomInformant(small.space, design="first_price")
    check = valuation_check(mech, small)
    # Value 2 bids 0 against zeros: keeps 2 with probability 1 - delta; the lottery
    # (probability delta, 2 bidders, prices 1 and 2) would have sold at 0.5 and 1.5.
    delta = 0.05
    assert check.max_gain == pytest.approx((1 - delta) * 2 - delta / 4 * (1.5 + 0.5), abs=1e-12)
    assert check.where["value"] == 2 and check.where["report"] == 0
    assert "informant" in check.where


def test_l_default_eps_is_strictly_truthful(small: Knowledge) -> None:
    mech = CrowdsourcedLookahead(small.space)
    assert mech.eps < mech.strictness_margin()
    check = valuation_check(mech, small, strictness=True)
    assert check.max_gain <= ZERO_GAIN_TOLERANCE
    # Overbidding into the candidate role buys at most the bonus eps, and the lottery
    # takes at least its margin: every misreport loses at least margin - eps.
    assert check.min_loss >= mech.strictness_margin() - mech.eps - 1e-12
    assert check.min_loss > 0


def test_l_large_eps_makes_overbidding_pay(small: Knowledge) -> None:
    with pytest.warns(UserWarning, match="strictness margin"):
        mech = CrowdsourcedLookahead(small.space, eps=0.05)
    check = valuation_check(mech, small)
    # The bonus eps minus the lottery's margin, when the deviator's own belief earns
    # nothing and the price it faces equals the highest other report.
    bound = mech.eps - mech.strictness_margin()
    assert check.max_gain == pytest.approx(bound, abs=1e-9)
    assert check.where["report"] > check.where["value"]


# -- belief step ----------------------------------------------------------------------


def test_brier_loss_closed_form_matches_the_rule() -> None:
    rng = np.random.default_rng(3)
    F = rng.dirichlet(np.ones(5), size=20)
    G = rng.dirichlet(np.ones(5), size=20)
    rule = Brier()
    direct = rule.expected_reward(G, G, 0.7) - rule.expected_reward(F, G, 0.7)
    np.testing.assert_allclose(brier_misreport_loss(F, G, 0.7), direct, atol=1e-14)


def test_m_and_l_with_brier_have_no_belief_gain(small: Knowledge) -> None:
    for mech in (RandomInformant(small.space), CrowdsourcedLookahead(small.space)):
        check = belief_check(mech, small)
        assert check.method == "closed form"
        assert check.max_gain <= ZERO_GAIN_TOLERANCE


def test_m_with_linear_score_pays_the_point_mass_on_the_likeliest_profile(
    small: Knowledge,
) -> None:
    mech = RandomInformant(small.space, scoring="linear")
    check = belief_check(mech, small)
    assert check.method == "search"
    # Linear reward eps * F(w): the point mass on the mode earns eps * max G against
    # eps * ||G||^2 for the truth; the informant is asked with probability 1/n.
    best = max(
        mech.eps / 3 * (b.max() - b @ b)
        for i in range(3)
        for b, p in zip(small.beliefs[i], small.cell_prob[i])
        if p > 0
    )
    assert check.max_gain == pytest.approx(best, abs=1e-12)
    assert check.max_gain > 1e-4
    report = np.asarray(check.where["report"])
    assert report.max() == pytest.approx(1.0)


def test_logarithmic_rule_search_finds_no_gain(small: Knowledge) -> None:
    check = belief_check(RandomInformant(small.space, scoring="log"), small)
    assert check.method == "search"
    assert check.max_gain <= ZERO_GAIN_TOLERANCE


class _ForgetfulL(CrowdsourcedLookahead):
    """L whose declared truthful beliefs ignore what being asked reveals (a bug)."""

    def truthful_beliefs(self, knowledge: Knowledge) -> list[np.ndarray]:
        return [b.copy() for b in knowledge.beliefs]


def test_belief_check_catches_a_wrong_truthful_belief(small: Knowledge) -> None:
    mech = _ForgetfulL(small.space)
    check = belief_check(mech, small)
    i = check.where["bidder"]
    G, p_ask = belief_outcome_distribution(mech, small, i)
    c = check.where["cell"]
    T = small.beliefs[i][c]
    expected = p_ask[c] * mech.eps / 3 / 2 * float(((G[c] - T) ** 2).sum())
    assert check.max_gain == pytest.approx(expected, rel=1e-12)
    assert check.max_gain > ZERO_GAIN_TOLERANCE


def test_belief_outcome_distribution_matches_l_truthful_beliefs(small: Knowledge) -> None:
    mech = CrowdsourcedLookahead(small.space)
    declared = mech.truthful_beliefs(small)
    for i in range(3):
        G, p_ask = belief_outcome_distribution(mech, small, i)
        live = p_ask > 0
        np.testing.assert_allclose(G[live], declared[i][live], atol=1e-12)


def test_belief_candidates_are_seeded_distributions() -> None:
    a = belief_candidates(6, np.random.default_rng(1), np.eye(6)[:2])
    b = belief_candidates(6, np.random.default_rng(1), np.eye(6)[:2])
    np.testing.assert_array_equal(a.reports, b.reports)
    np.testing.assert_allclose(a.reports.sum(axis=1), 1.0)
    assert a.labels[:3] == ["truthful cell 0", "truthful cell 1", "uniform"]


# -- agent profiles -------------------------------------------------------------------


def test_profile_check_first_price_truthful_play_by_hand(coin: Knowledge) -> None:
    # Bidder 0 with value 1 bids 0 instead and wins the tie when bidder 1 has value 0:
    # utility 1/2 in that cell, 1/4 ex ante. Bidder 1 loses ties, so it cannot gain.
    check = profile_check(FirstPrice(), coin, Strategy.truthful(coin))
    np.testing.assert_allclose(check.utility_loss, [0.25, 0.0], atol=1e-12)
    np.testing.assert_allclose(check.worst_loss, [0.5, 0.0], atol=1e-12)
    np.testing.assert_allclose(check.truthfulness, [1.0, 1.0])
    assert np.all(np.isnan(check.belief_distance))


def test_profile_check_second_price_truthful_has_no_loss(small: Knowledge) -> None:
    check = profile_check(SecondPrice(), small, Strategy.truthful(small))
    np.testing.assert_allclose(check.utility_loss, 0.0, atol=1e-12)


def test_truthfulness_and_belief_distance_of_a_deviating_profile(coin: Knowledge) -> None:
    mech = RandomInformant(coin.space)
    s = Strategy.from_maps(coin, value_map=lambda i, c, v: 0, mech=mech)
    s.belief[0] = np.array([[1.0, 0.0], [1.0, 0.0]])  # point mass on "bidder 1 has 0"
    # Everyone reports 0: truthful only in the value-0 cell, which has probability 1/2.
    np.testing.assert_allclose(truthfulness_rate(coin, s), [0.5, 0.5])
    # True beliefs are (1/2, 1/2): total variation 1/2 in both cells of bidder 0.
    np.testing.assert_allclose(belief_distance(mech, coin, s), [0.5, 0.0])


def test_verify_bundles_the_checks(small: Knowledge) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v = verify(RandomInformant(small.space), small, Strategy.truthful(small))
    assert v.truthful and v.belief is not None and v.profile is not None
    np.testing.assert_allclose(v.profile.utility_loss, 0.0, atol=1e-9)
    assert verify(FirstPrice(), small).belief is None


# -- the summary a person reads -------------------------------------------------------


def test_summary_of_a_truthful_mechanism_and_profile(small: Knowledge) -> None:
    mech = RandomInformant(small.space)
    text = verify(mech, small, Strategy.truthful(small, mech), strictness=True).summary()
    lines = text.splitlines()
    assert lines[0] == "M"
    assert lines[1] == "  mechanism: truthful reporting is dominant (exact)"
    assert "    valuation step: largest misreport gain 0 over 39 belief-report profiles" in lines
    # The lottery's margin delta / (2 * 2) * 0.5 with the n - 1 = 2 inner bidders.
    assert "    valuation step: smallest misreport loss 0.00625" in lines
    assert "    belief step (brier, closed form): largest gain 0" in lines
    given = lines.index("  given profile: every bidder plays a best response (exact)")
    assert given > lines.index("    belief step (brier, closed form): largest gain 0")
    assert "    utility loss per bidder 0, 0, 0" in lines
    assert "    truthfulness rate per bidder 1, 1, 1" in lines
    assert "e-" not in text  # no rounding noise such as 8.3e-35 printed as a figure


def test_summary_of_first_price(coin: Knowledge) -> None:
    text = verify(FirstPrice(), coin, Strategy.truthful(coin)).summary()
    lines = text.splitlines()
    assert lines[1] == "  mechanism: truthful reporting is NOT dominant (exact)"
    # Value 1 bids 0 against a 0 and wins the tie: gain 1 (see the profile test above).
    assert lines[2] == (
        "    valuation step: largest misreport gain 1 at bidder 0, value 1, report 0, others [0]"
    )
    assert "belief step" not in text  # first price asks no beliefs
    assert lines[3] == (
        "  given profile: NOT an equilibrium: bidder 0 gains up to 0.5 in a cell by "
        "deviating (exact)"
    )
    assert "    utility loss per bidder 0.25, 0" in lines
    assert "belief distance" not in text


def test_summary_prints_noise_as_zero() -> None:
    from crowdauction.evaluation.verify import ProfileCheck, ValuationCheck, Verification

    tiny = 8.3e-35
    prof = ProfileCheck(
        "X",
        utility_loss=np.array([tiny, 1e-3]),
        worst_loss=np.array([tiny, 2e-3]),
        truthfulness=np.array([1.0, 1.0]),
        belief_distance=np.array([np.nan, np.nan]),
        utility=np.zeros(2),
        revenue=0.5,
    )
    v = Verification("X", ValuationCheck("X", tiny, {}), None, prof)
    text = v.summary()
    assert "largest misreport gain 0\n" in text + "\n"
    assert "    utility loss per bidder 0, 0.001" in text
    assert "    worst-cell loss per bidder 0, 0.002" in text
    assert "given profile: NOT an equilibrium: bidder 1 gains up to 0.002" in text
    assert "8.3e-35" not in text
    # Just above the tolerance is a real gain and is printed as one.
    v.valuation.max_gain = 2 * ZERO_GAIN_TOLERANCE
    assert "NOT dominant" in v.summary() and "gain 2e-09" in v.summary()
