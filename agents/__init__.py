"""Agents: policies from observations to actions, with exact strategies for evaluation.

Every agent maps a batch of observations ``(B, obs_dim)`` (the layout of
:class:`~crowdauction.envs.layout.EnvLayout`) to actions ``(B, act_dim)`` with
``act(obs, rng=None)``, and says what it reports in every knowledge cell with
``strategy_for(knowledge, bidder, mech)``; :func:`profile_strategy` turns one agent per
bidder into a :class:`~crowdauction.mechanisms.exact.Strategy` for exact evaluation.

* :class:`TruthfulAgent`, :class:`RandomAgent`, :class:`ShadingAgent`,
  :class:`MisreportAgent`: fixed behaviour read off the observation.
* :func:`best_response` / :class:`BestResponseAgent`: the exact best response to given
  opponents, valuation and belief report per cell.
* :class:`Hedge` / :class:`HedgeAgent`: multiplicative weights with exact
  full-information feedback, a no-regret learner to compare reinforcement learning with.
* :class:`LearnedAgent`: a trained stable-baselines3 policy, loadable from a run
  directory.
"""

from crowdauction.agents.base import Agent, TabularAgent, profile_strategy, truthful_tables
from crowdauction.agents.best_response import (
    BestResponse,
    BestResponseAgent,
    best_response,
    best_response_profile,
    optimal_belief,
    regret,
    report_weights,
)
from crowdauction.agents.hedge import Hedge, HedgeAgent, HedgeResult, default_learning_rate
from crowdauction.agents.heuristic import MisreportAgent, RandomAgent, ShadingAgent, TruthfulAgent
from crowdauction.agents.learned import LearnedAgent, model_file, role_observations

__all__ = [
    "Agent",
    "BestResponse",
    "BestResponseAgent",
    "Hedge",
    "HedgeAgent",
    "HedgeResult",
    "LearnedAgent",
    "MisreportAgent",
    "RandomAgent",
    "ShadingAgent",
    "TabularAgent",
    "TruthfulAgent",
    "best_response",
    "best_response_profile",
    "default_learning_rate",
    "model_file",
    "optimal_belief",
    "profile_strategy",
    "regret",
    "report_weights",
    "role_observations",
    "truthful_tables",
]
