"""Input validation: every user-caused error is ours, names the bad value, and fires early.

The numbers pinned here are hand computations:

* Profile counts: ``2000**3 = 8e9`` profiles need ``6.4e10`` bytes (64 GB) as one
  float64 table; ``3**18 = 387,420,489`` profiles need 3.1 GB.
* Two i.i.d. bidders uniform on ``{0, 1, 2}``: ``E[max] = (1*3 + 2*5) / 9 = 13/9``,
  ``E[v_0 + v_1] = 2``, second-price revenue ``E[min] = (1*3 + 2*1) / 9 = 5/9``.
* The log rule (``a = 1``, ``b = 0.1``) on a point-mass report floored at ``1e-12`` over
  ``m`` outcomes scores ``1 + 0.1 log(1e-12 / (1 + (m - 1) 1e-12))`` on any other outcome.
"""

from __future__ import annotations

import json
import math
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import crowdauction
from crowdauction.agents import LearnedAgent, MisreportAgent, TabularAgent, TruthfulAgent
from crowdauction.envs import crowdsourced_auction_v0
from crowdauction.envs.core import build_core
from crowdauction.envs.layout import BELIEF_FLOOR, EnvLayout
from crowdauction.errors import (
    CrowdAuctionError,
    InvalidConfigError,
    InvalidParameterError,
    InvalidPartitionError,
    InvalidPriorError,
    InvalidReportError,
)
from crowdauction.mechanisms import typespace
from crowdauction.mechanisms.classical import SecondPrice, Strictified
from crowdauction.mechanisms.crowdsourced import CrowdsourcedLookahead, RandomInformant
from crowdauction.mechanisms.designs import make_design
from crowdauction.mechanisms.exact import Strategy, evaluate
from crowdauction.mechanisms.knowledge import Knowledge, agg, coarse_signal
from crowdauction.mechanisms.lookahead import Lookahead
from crowdauction.mechanisms.naive import NaiveCommonPrior
from crowdauction.mechanisms.prior import Prior
from crowdauction.mechanisms.scoring import Logarithmic
from crowdauction.mechanisms.typespace import DownwardClosed, KUnits, TypeSpace

SP3 = TypeSpace.uniform(3, [0, 1, 2, 3])


@pytest.fixture
def uniform2() -> Knowledge:
    """Two i.i.d. bidders uniform on {0, 1, 2}, each knowing only its own value."""
    return Knowledge(Prior.uniform([0, 1, 2], 2))


# -- 1. size guard --------------------------------------------------------------------------


def test_huge_type_space_is_refused_with_counts_and_fix() -> None:
    with pytest.raises(InvalidParameterError, match=r"8,000,000,000 profiles") as e:
        Prior.uniform(list(range(2000)), 3)
    msg = str(e.value)
    assert "MAX_PROFILES = 20,000,000" in msg
    assert "64 GB" in msg  # 8e9 profiles * 8 bytes
    assert "fewer bidders or a coarser value grid" in msg
    with pytest.raises(InvalidParameterError, match=r"387,420,489 profiles.*3\.1 GB"):
        TypeSpace.uniform(18, [0, 1, 2])


@pytest.mark.parametrize(
    "build",
    [
        lambda: Prior.uniform([0, 1, 2], 18),
        lambda: Prior.iid([0.2, 0.3, 0.5], [0, 1, 2], 18),
        lambda: Prior.independent([[1.0, 0.0, 0.0]] * 18, [[0, 1, 2]] * 18),
        lambda: Prior.common_component(18, [0.5, 0.5], [0.5, 0.5]),  # grids {0, 1, 2}
        lambda: Prior.gaussian_copula(18, [0, 1, 2], 0.5),
    ],
    ids=["uniform", "iid", "independent", "common_component", "gaussian_copula"],
)
def test_size_guard_fires_before_any_table_is_allocated(build: Callable[[], Prior]) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(InvalidParameterError, match="387,420,489 profiles"):
            build()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000  # the 3.1 GB table was never started


def test_size_guard_boundary_and_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(typespace, "MAX_PROFILES", 100)
    monkeypatch.setattr(typespace, "WARN_PROFILES", 50)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert TypeSpace.uniform(2, range(7)).size == 49  # below both limits: silent
    with pytest.warns(UserWarning, match="100 profiles.*exact evaluation.*slow"):
        assert TypeSpace.uniform(2, range(10)).size == 100  # at the limit: allowed
    with pytest.raises(InvalidParameterError, match="121 profiles"):
        TypeSpace.uniform(2, range(11))


def test_default_warning_threshold() -> None:
    with pytest.warns(UserWarning, match=r"2,097,152 profiles"):
        TypeSpace.uniform(7, range(8))  # 8**7, over WARN_PROFILES = 1,000,000


# -- 2. strategy validation ---------------------------------------------------------------


def test_valid_strategy_still_evaluates_to_the_hand_value(uniform2: Knowledge) -> None:
    res = evaluate(SecondPrice(), uniform2)
    assert res.revenue == pytest.approx(5 / 9, abs=1e-12)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda s: s.valuation[0].__setitem__(1, [5.0, 0, 0]),
         r"valuation row of bidder 0, cell 1 sums to 5, expected 1"),
        (lambda s: s.valuation[1].__setitem__(2, [1.5, -0.5, 0]),
         r"valuation row of bidder 1, cell 2 holds -0\.5 at grid index 1"),
        (lambda s: s.valuation[0].__setitem__(0, [np.nan, 1, 0]),
         r"valuation row of bidder 0, cell 0 holds nan at grid index 0"),
        (lambda s: s.belief[1].__setitem__(2, [0.5, 0.5, 0.5]),
         r"belief row of bidder 1, cell 2 sums to 1\.5"),
        (lambda s: s.belief[0].__setitem__(1, [np.inf, 0, 0]),
         r"belief row of bidder 0, cell 1 holds inf"),
        (lambda s: s.valuation.__setitem__(0, s.valuation[0][:2]),
         r"valuation table of bidder 0 has shape \(2, 3\), expected \(3, 3\)"),
        (lambda s: s.belief.__setitem__(1, s.belief[1][:2]),
         r"belief table of bidder 1 has shape \(2, 3\), expected \(3, 3\)"),
        (lambda s: s.belief.pop(),
         r"2 valuation and 1 belief tables for 2 bidders"),
    ],
)
def test_evaluate_rejects_bad_strategies(uniform2: Knowledge, edit: Callable, match: str) -> None:
    mech = RandomInformant(uniform2.space, design="second_price")
    s = Strategy.truthful(uniform2, mech)
    edit(s)
    with pytest.raises(InvalidReportError, match=match):
        evaluate(mech, uniform2, s)


def test_evaluate_accepts_mixed_rows_within_tolerance(uniform2: Knowledge) -> None:
    mech = RandomInformant(uniform2.space, design="second_price")
    s = Strategy.truthful(uniform2, mech)
    s.valuation[0][1] = [0.25, 0.75 + 1e-9, 0.0]  # a Hedge mixture with rounding
    evaluate(mech, uniform2, s)


def test_mechanism_on_another_type_space_is_refused(uniform2: Knowledge) -> None:
    other = TypeSpace.uniform(2, [0, 1])
    with pytest.raises(InvalidReportError, match="different type spaces.*one TypeSpace"):
        evaluate(RandomInformant(other, design="second_price"), uniform2)
    with pytest.raises(InvalidReportError, match="different type spaces"):
        evaluate(Lookahead(Prior.uniform([0, 1], 2)), uniform2)
    # A mechanism without a type space of its own runs on any.
    assert evaluate(SecondPrice(), uniform2).revenue == pytest.approx(5 / 9, abs=1e-12)


def test_tabular_agent_validates_its_tables(uniform2: Knowledge) -> None:
    mech = SecondPrice()
    val = np.eye(3)
    bel = uniform2.beliefs[0].copy()
    TabularAgent(uniform2, mech, 0, val, bel)
    bad = val.copy()
    bad[1] = [5.0, 0, 0]
    with pytest.raises(InvalidReportError, match="valuation row of bidder 0, cell 1 sums to 5"):
        TabularAgent(uniform2, mech, 0, bad, bel)
    bel_bad = bel.copy()
    bel_bad[2] = [-1.0, 1.0, 1.0]
    with pytest.raises(InvalidReportError, match="belief row of bidder 0, cell 2 holds -1"):
        TabularAgent(uniform2, mech, 0, val, bel_bad)


# -- 3. our error classes for bad parameters -------------------------------------------------


def test_invalid_parameter_error_is_exported_and_refines_both_builtins() -> None:
    assert crowdauction.InvalidParameterError is InvalidParameterError
    assert "InvalidParameterError" in crowdauction.__all__
    assert issubclass(InvalidParameterError, CrowdAuctionError)
    assert issubclass(InvalidParameterError, ValueError)
    assert issubclass(InvalidParameterError, TypeError)


BAD_PARAMETERS: list[tuple[str, Callable[[], object], str]] = [
    ("no grids", lambda: TypeSpace([]), "at least one bidder"),
    ("decreasing grid", lambda: TypeSpace([[2, 1]]), "strictly increasing"),
    ("fractional n", lambda: TypeSpace.uniform(2.5, [0, 1]), r"integer >= 1, got 2\.5"),
    ("eps 0", lambda: RandomInformant(SP3, eps=0), r"eps .* must lie in \(0, inf\)"),
    ("eps string", lambda: RandomInformant(SP3, eps="a"), r"eps .*got 'a'"),
    ("M delta 1", lambda: RandomInformant(SP3, delta=1), r"delta .* must lie in \[0, 1\)"),
    ("L delta 0", lambda: CrowdsourcedLookahead(SP3, delta=0), r"delta must lie in \(0, 1\)"),
    ("L eps_prime 1", lambda: CrowdsourcedLookahead(SP3, eps_prime=1), "eps_prime must lie in"),
    ("M one bidder", lambda: RandomInformant(TypeSpace([[0, 1]])), "at least two bidders"),
    ("L one bidder", lambda: CrowdsourcedLookahead(TypeSpace([[0, 1]])), "at least two bidders"),
    ("naive one bidder", lambda: NaiveCommonPrior(TypeSpace([[0, 1]])), "at least two bidders"),
    ("strictified delta 0", lambda: Strictified(SecondPrice(), 0, space=SP3), "delta must lie in"),
    ("negative reserve", lambda: SecondPrice(reserve=-1), r"non-negative, got -1\.0"),
    ("2-D reserve", lambda: SecondPrice(reserve=[[1, 2]]), r"shape \(1, 2\)"),
    ("string reserve", lambda: SecondPrice(reserve="a"), "reserve must be a number"),
    ("zero units", lambda: KUnits(0), "number of units, must be an integer >= 1, got 0"),
    ("no feasible sets", lambda: DownwardClosed(()), "at least one feasible set"),
    ("log b 0", lambda: Logarithmic(b=0), r"scale b must lie in \(0, inf\)"),
    ("log b string", lambda: Logarithmic(b="x"), "scale b"),
    ("design delta string", lambda: make_design("optimal", delta="a"), r"delta .*got 'a'"),
    ("misreport key", lambda: MisreportAgent({"a": 1}), "true value of value_map"),
    ("misreport fraction", lambda: MisreportAgent({1.5: 1}), r"got 1\.5"),
    ("agent bidder", lambda: TruthfulAgent(EnvLayout(SP3), bidder=3), "agent bidder 3 is out of"),
    ("agent bidder str", lambda: TruthfulAgent(bidder="x"), "agent bidder must be None"),
]


@pytest.mark.parametrize("build, match", [b[1:] for b in BAD_PARAMETERS],
                         ids=[b[0] for b in BAD_PARAMETERS])
def test_bad_parameters_raise_invalid_parameter_error(build: Callable, match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        build()


def test_env_keyword_errors_stay_config_errors() -> None:
    with pytest.raises(InvalidConfigError, match=r"cannot build mechanism 'M': eps") as e:
        build_core("M", eps=0, design="second_price")
    assert isinstance(e.value.__cause__, InvalidParameterError)


# -- 4. raw IndexError / ZeroDivisionError / TypeError from bad input -----------------------


def test_empty_grids_and_copula_marginal_length() -> None:
    with pytest.raises(InvalidParameterError, match="non-empty 1-D list"):
        Prior.uniform([], 2)
    with pytest.raises(InvalidParameterError, match="non-empty 1-D list"):
        Prior.gaussian_copula(2, [], 0.5)
    with pytest.raises(InvalidPriorError, match="3 entries but the grid has 2 values"):
        Prior.gaussian_copula(2, [0, 1], 0.5, [0.3, 0.3, 0.4])
    with pytest.raises(InvalidPriorError, match="rho must lie in"):
        Prior.gaussian_copula(2, [0, 1], "high")


def test_conditional_names_the_bad_bidder() -> None:
    p = Prior.uniform([0, 1, 2], 3)
    with pytest.raises(InvalidPriorError, match="conditioning bidder 5 is out of range"):
        p.conditional({5: 0})
    with pytest.raises(InvalidPriorError, match="conditioning bidder -1 is out of range"):
        p.conditional({-1: 0})
    with pytest.raises(InvalidPriorError, match="value 'x' is not on bidder 0's grid"):
        p.conditional({0: "x"})
    # A good one: given v_0 = 2, the others stay uniform on 9 profiles.
    np.testing.assert_allclose(p.conditional({0: 2}).table, np.full((3, 3), 1 / 9))


def test_knowledge_specs_and_bidder_indices() -> None:
    p = Prior.uniform([0, 1, 2], 3)
    with pytest.raises(InvalidPartitionError, match="observed bidder must be an integer"):
        Knowledge.from_spec(p, [[1.5], "own", "own"])
    with pytest.raises(InvalidPartitionError, match="unknown knowledge spec 1 for bidder 0"):
        Knowledge.from_spec(p, [1, "own", "own"])
    with pytest.raises(InvalidPartitionError, match="observed bidder 3 is out of range"):
        Knowledge.from_spec(p, [[3], "own", "own"])
    k = Knowledge(p)
    for bad in (7, -1):
        with pytest.raises(InvalidPartitionError, match=f"bidder {bad} is out of range"):
            k.belief(bad, [0, 0, 0])
    with pytest.raises(InvalidPartitionError, match="bidder -1 is out of range"):
        k.belief_at(-1, np.zeros((1, 3), dtype=int))
    with pytest.raises(InvalidPartitionError, match="observed bidder j 9 is out of range"):
        coarse_signal(p.space, 0, 9, 1)
    with pytest.raises(InvalidPartitionError, match="signal width must be an integer >= 1"):
        coarse_signal(p.space, 0, 1, float("inf"))
    np.testing.assert_allclose(k.belief(1, [0, 2, 1]), np.full((3, 3), 1 / 9))


@pytest.mark.parametrize(
    "values",
    [[0, 1, 99999999999999999999], [0, 2**63], [0, 1e19], [0, "1"], [0, None], [False, True]],
    ids=["huge int", "2**63", "huge float", "string", "None", "bool"],
)
def test_grid_values_must_be_int64_integers(values: list) -> None:
    with pytest.raises(InvalidParameterError, match="representable in int64"):
        TypeSpace([values])


def test_largest_int64_value_is_a_valid_grid_value() -> None:
    assert TypeSpace([[0, 2**63 - 1]]).grids[0].tolist() == [0, 2**63 - 1]


# -- 5. bidder indices and capacities of a prior ----------------------------------------------


def test_prior_bidder_indices_and_capacity(uniform2: Knowledge) -> None:
    p = uniform2.prior
    for bad in (5, -1, 1.0, True):
        with pytest.raises(InvalidPriorError, match="bidder"):
            p.marginal(bad)
        with pytest.raises(InvalidPriorError, match="bidder"):
            p.without(bad)
    with pytest.raises(InvalidPriorError, match="bidder 2 is out of range: there are 2 bidders"):
        p.marginal(2)
    for bad in (-1, 0, 1.5, "2"):
        with pytest.raises(InvalidPriorError, match="capacity, the number of units"):
            p.full_surplus(bad)
    assert p.full_surplus(1) == pytest.approx(13 / 9, abs=1e-12)
    assert p.full_surplus(2) == pytest.approx(2.0, abs=1e-12)
    assert p.full_surplus(5) == pytest.approx(2.0, abs=1e-12)  # more units than bidders
    np.testing.assert_allclose(p.marginal(1), [1 / 3] * 3)


# -- 6. AGG checks its reports --------------------------------------------------------------


def test_agg_rejects_bad_reports_and_keeps_the_hand_value() -> None:
    top = np.array([[0.5, 0.5], [0.0, 0.0]])
    flat = np.full((2, 2), 0.25)
    # reporters [2, 1]: report 0 is bidder 2's, report 1 is bidder 1's (the lowest).
    reports = np.stack([top, flat])[None]
    np.testing.assert_allclose(agg(0, reports, [2, 1])[0], top)  # 1's, cut to the overlap
    bad = reports.copy()
    bad[0, 1, 0, 0] = np.nan
    with pytest.raises(InvalidReportError, match="AGG report has non-finite"):
        agg(0, bad, [2, 1])
    bad = reports.copy()
    bad[0, 1] = [[0.75, 0.5], [0.0, -0.25]]
    with pytest.raises(InvalidReportError, match="AGG report has negative"):
        agg(0, bad, [2, 1])
    with pytest.raises(InvalidReportError, match="sums to"):
        agg(0, reports * 2, [2, 1])
    with pytest.raises(InvalidReportError, match="at least one reporter"):
        agg(0, np.zeros((1, 0, 2, 2)), [])


# -- 7. finite env rewards under the log rule -------------------------------------------------


def _point_mass_actions(core, B: int) -> np.ndarray:
    """Every bidder reports value 0 and a belief with all mass on the others' last profile,
    which nobody reports (they all report 0): the realised profile gets probability 0."""
    a = np.full((B, core.n, core.layout.act_dim), -1e300)
    a[:, :, 0] = -1.0
    a[:, :, -1] = 0.0
    return a


@pytest.mark.parametrize("mechanism", ["M", "L"])
def test_log_rule_env_rewards_are_finite_for_extreme_logits(mechanism: str) -> None:
    kwargs = {"design": "second_price"} if mechanism == "M" else {}
    core = build_core(mechanism, scoring="log", **kwargs)
    assert core.belief_floor == BELIEF_FLOOR
    rng = np.random.default_rng(0)
    st = core.reset(400, rng)
    actions = _point_mass_actions(core, 400)
    for _ in range(core.phases):
        rewards = core.step(st, actions, rng)
    assert np.all(np.isfinite(rewards))
    m = core.layout.m_max  # 16 profiles of the other two bidders
    floored = BELIEF_FLOOR / (1 + (m - 1) * BELIEF_FLOOR)
    score = 1.0 + 0.1 * math.log(floored)  # a = 1, b = 0.1: about -1.763
    if mechanism == "M":
        # The informant is not served and is paid eps * score, eps = 0.05.
        got = core.outcome_arrays(st)["reward"][np.arange(400), st.informant]
        np.testing.assert_allclose(got, 0.05 * score, rtol=1e-12)
    else:
        # Everybody but the candidate (bidder 0: all report 0) is paid eps / n * score.
        assert np.all(st.candidate == 0)
        got = core.outcome_arrays(st)["reward"][:, 1:]
        np.testing.assert_allclose(got, 0.001 / 3 * score, rtol=1e-12)


def test_log_rule_parallel_env_rewards_are_finite() -> None:
    env = crowdsourced_auction_v0.parallel_env(
        mechanism="M", design="second_price", scoring="log"
    )
    for seed in range(20):
        env.reset(seed=seed)
        total = {a: 0.0 for a in env.agents}
        while env.agents:
            # Report 0, and put all belief mass on the others' last profile, never reported.
            act = np.full(env.action_space(env.agents[0]).shape, -1e300)
            act[0], act[-1] = -1.0, 0.0
            _, rewards, _, _, _ = env.step({a: act.copy() for a in env.agents})
            for a, r in rewards.items():
                total[a] += r
        assert all(math.isfinite(r) for r in total.values())


def test_bounded_rules_keep_zeros_exact() -> None:
    assert build_core("M", design="second_price").belief_floor == 0.0  # Brier
    assert build_core("L", scoring="spherical").belief_floor == 0.0
    lay = EnvLayout(TypeSpace([[0, 1], [0, 1, 2]]))  # bidder 0's belief has 3 entries
    action = np.array([[0.0, 0.0, -1e300, -1e300]])
    assert lay.decode_belief(action, 0).tolist() == [[1.0, 0.0, 0.0]]
    floored = lay.decode_belief(action, 0, floor=1e-12)
    np.testing.assert_allclose(floored, [[1.0, 1e-12, 1e-12]] / np.float64(1 + 2e-12), rtol=1e-15)
    with pytest.raises(InvalidParameterError, match="belief floor"):
        lay.decode_belief(action, 0, floor=0.5)  # 3 entries cannot all be >= 0.5


def test_log_rule_through_the_mechanism_api_is_minus_infinity() -> None:
    # Documented: the rule itself is unbounded below; only the envs floor beliefs.
    assert Logarithmic().reward(np.array([1]), np.array([[1.0, 0.0]]), 0.05)[0] == -np.inf


# -- 8. silent coercions ----------------------------------------------------------------------


def test_value_map_off_the_grid_is_refused(uniform2: Knowledge) -> None:
    with pytest.raises(InvalidReportError, match=r"to 1\.5, not on its grid \[0, 1, 2\]"):
        Strategy.from_maps(uniform2, value_map=lambda *_: 1.5)
    with pytest.raises(InvalidReportError, match="to '1', not on its grid"):
        Strategy.from_maps(uniform2, value_map=lambda *_: "1")
    s = Strategy.from_maps(uniform2, value_map=lambda i, c, v: 1.0)  # on the grid
    assert s.valuation[0].argmax(axis=1).tolist() == [1, 1, 1]
    with pytest.raises(InvalidReportError, match="belief row of bidder 0, cell 0 sums to 2"):
        Strategy.from_maps(uniform2, belief_map=lambda i, c, b: 2 * b)


def test_informant_must_be_integers(uniform2: Knowledge) -> None:
    mech = RandomInformant(uniform2.space, design="second_price")
    reports = np.array([[1, 2]])
    beliefs = [np.full((1, 3), 1 / 3)] * 2
    with pytest.raises(InvalidReportError, match="integer bidder indices"):
        mech.outcome(reports, beliefs, informant=np.array([0.7]))
    with pytest.raises(InvalidReportError, match="integer bidder indices"):
        mech.asks_belief(reports, informant=np.array([1.0]))
    with pytest.raises(InvalidReportError, match=r"in 0\.\.1, got \[2\]"):
        mech.outcome(reports, beliefs, informant=np.array([2]))
    # Informant 1: bidder 0 alone in second price (price 0) strictified with delta 0.05;
    # the lottery sells at price 1 of the prices {1, 2} for 1 - 0.5. Bidder 1's uniform
    # belief scores Brier 2/3 - 1/3 - 1 = -2/3, a reward of 0.05 (2 - 2/3) / 2 = 1/30.
    out = mech.outcome(reports, beliefs, informant=np.array([1]))
    np.testing.assert_allclose(out.allocation, [[0.95 + 0.05 / 2, 0.0]], rtol=1e-12)
    np.testing.assert_allclose(out.payments, [[0.05 * 0.5 / 2, -1 / 30]], rtol=1e-12)


def test_learned_agent_load_checks_the_bidder(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps({"setting": {"n": 3, "values": [0, 1, 2, 3]}}), encoding="utf-8"
    )
    with pytest.raises(InvalidParameterError, match="bidder must be None or an integer"):
        LearnedAgent.load(tmp_path, bidder="x")
    with pytest.raises(InvalidParameterError, match="bidder 3 is out of range"):
        LearnedAgent.load(tmp_path, bidder=3)
    with pytest.raises(InvalidConfigError, match="no final model"):
        LearnedAgent.load(tmp_path, bidder=2)


# -- 9. eps above the grid warns ----------------------------------------------------------


@pytest.mark.parametrize("cls", [RandomInformant, CrowdsourcedLookahead])
def test_eps_above_the_largest_value_warns(cls: type) -> None:
    kwargs = {"design": "second_price"} if cls is RandomInformant else {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cls(SP3, eps=100, **kwargs)  # L also warns about its strictness margin
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert any("eps=100 exceeds the largest grid value 3" in m for m in messages), messages
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RandomInformant(SP3, design="second_price", eps=3)  # at the top value: silent


def test_a_mechanism_on_another_type_space_is_named_before_any_indexing():
    from crowdauction.errors import InvalidReportError
    from crowdauction.mechanisms import CrowdsourcedLookahead, Knowledge, Prior, Strategy, TypeSpace
    from crowdauction.mechanisms import evaluate as evaluate_exact

    L = CrowdsourcedLookahead(TypeSpace.uniform(3, [0, 1, 2]))
    know = Knowledge(Prior.gaussian_copula(3, [0, 1, 2, 3], 0.5))
    with pytest.raises(InvalidReportError, match="different type spaces"):
        evaluate_exact(L, know)
    with pytest.raises(InvalidReportError, match="different type spaces"):
        Strategy.truthful(know, L)
