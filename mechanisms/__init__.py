"""The mathematics of crowdsourced Bayesian auctions, in batched numpy.

Type spaces and settings, priors, knowledge partitions, scoring rules, classical
mechanisms (second price, reserves, first price, Myerson, Ronen's 1-lookahead, the
LP-optimal dominant-strategy auction, the Lemma 1 lottery) and the crowdsourced
mechanisms M and L of Azar, Chen and Micali, "Crowdsourced Bayesian Auctions"
(ITCS 2012), with exact expectations over finite type spaces. No gymnasium, torch or
stable-baselines3 import happens here.
"""

from crowdauction.mechanisms.classical import (
    ClassicalMechanism,
    FirstPrice,
    Outcome,
    Realised,
    SecondPrice,
    Strictified,
    TableMechanism,
    dst_violation,
    ir_violation,
    payments_from_allocation,
)
from crowdauction.mechanisms.cremer_mclean import CremerMcLean
from crowdauction.mechanisms.crowdsourced import (
    CrowdsourcedLookahead,
    CrowdsourcedMechanism,
    RandomInformant,
)
from crowdauction.mechanisms.designs import CLASSICAL, Design, make_design
from crowdauction.mechanisms.detail_free import EmpiricalReserve, SingleSample
from crowdauction.mechanisms.exact import ExactResult, Strategy, evaluate, mechanism_outcome
from crowdauction.mechanisms.knowledge import Knowledge, agg, meet
from crowdauction.mechanisms.lookahead import Lookahead
from crowdauction.mechanisms.myerson import (
    monopoly_reserves,
    myerson,
    myerson_revenue,
    second_price_monopoly_reserves,
)
from crowdauction.mechanisms.naive import NaiveCommonPrior
from crowdauction.mechanisms.optimal import optimal_mechanism, optimal_mechanisms, optimal_revenue
from crowdauction.mechanisms.prior import Prior
from crowdauction.mechanisms.scoring import (
    Brier,
    LinearScore,
    Logarithmic,
    ScoringRule,
    Spherical,
    get_scoring_rule,
)
from crowdauction.mechanisms.typespace import DownwardClosed, KUnits, SingleGood, TypeSpace
from crowdauction.mechanisms.vcg import VCG

__all__ = [
    "CLASSICAL",
    "VCG",
    "CremerMcLean",
    "EmpiricalReserve",
    "NaiveCommonPrior",
    "SingleSample",
    "monopoly_reserves",
    "myerson",
    "myerson_revenue",
    "optimal_mechanism",
    "optimal_mechanisms",
    "optimal_revenue",
    "second_price_monopoly_reserves",
    "Brier",
    "ClassicalMechanism",
    "CrowdsourcedLookahead",
    "CrowdsourcedMechanism",
    "Design",
    "DownwardClosed",
    "ExactResult",
    "FirstPrice",
    "KUnits",
    "Knowledge",
    "LinearScore",
    "Logarithmic",
    "Lookahead",
    "Outcome",
    "Prior",
    "RandomInformant",
    "Realised",
    "ScoringRule",
    "SecondPrice",
    "SingleGood",
    "Spherical",
    "Strategy",
    "Strictified",
    "TableMechanism",
    "TypeSpace",
    "agg",
    "dst_violation",
    "evaluate",
    "get_scoring_rule",
    "ir_violation",
    "make_design",
    "mechanism_outcome",
    "meet",
    "payments_from_allocation",
]
