"""Crowdsourced Bayesian auction, version 0: one auction per episode, two phases.

This env lets learning bidders play the auctions of Azar, Chen and Micali,
"Crowdsourced Bayesian Auctions" (ITCS 2012), and the classical auctions they are
measured against. A seller sells one good to ``n`` bidders whose values are drawn from
a joint, possibly correlated, prior. Each bidder knows its own value and, through its
knowledge partition, holds a belief about the others' values. Mechanism M picks a
random *informant*, asks it for its belief about the others and runs an auction designed
for that belief on the others; mechanism L asks every bidder for a value and every
bidder but the highest for a belief, and prices the highest. Beliefs are paid with a
proper scoring rule, so reporting them truthfully pays.

=====================  =====================================================================
Import                 ``from crowdauction.envs import crowdsourced_auction_v0``
Actions                continuous (``Box``), or a discrete valuation plus ``Box`` logits
Parallel API           yes
Manual control         no
Agents                 ``bidder_0 .. bidder_{n-1}`` (default 3)
Action shape           ``(1 + m_max,)``: 17 by default (``m_max`` = the others' profiles)
Action values          valuation ``[-1, 1]``, belief logits ``[-10, 10]`` (sampling range)
Observation shape      ``(k_max + 1 + m_max + 3 + 1 + 2,)``: 27 by default
Observation values     ``[0, 1]``
=====================  =====================================================================

Usage::

    from crowdauction.envs import crowdsourced_auction_v0

    env = crowdsourced_auction_v0.parallel_env(mechanism="L", render_mode="ansi")
    observations, infos = env.reset(seed=7)
    while env.agents:
        actions = {a: env.action_space(a).sample() for a in env.agents}
        observations, rewards, terminations, truncations, infos = env.step(actions)
    print(env.render())

Episode. ``reset`` draws a value profile from the prior (and M's informant) with the
env's own generator, ``np.random.default_rng(seed)``; later resets without a seed go on
drawing from it. Phase 0: valuation reports; every bidder acts except M's informant.
Phase 1: belief reports, from M's informant or from every bidder but L's candidate
(highest report, lowest index among ties). Classical mechanisms (``second_price``,
``first_price``, ``myerson``, ``optimal``, ``lookahead``, ``monopoly_reserve``, built
for the true prior) end after phase 0. Every live agent steps every phase; the
observation's ``acts_now`` flag says whose action is read, and the others' actions
are ignored, though they must still be valid if given.

Observation space. ``Box(0, 1)``, the same for every agent; see
:mod:`crowdauction.envs.layout`: own value (one-hot and scaled), own belief over the
others' profiles, role flags (informant, candidate, asked for a belief), ``acts_now``
and the phase. In phase 1 an asked bidder sees the belief a truthful report should
carry then: for L it is conditioned on not being the candidate, since being asked
reveals that.

Action space. ``valuation_action="box"`` (default, for stable-baselines3):
``Box(1 + m_max)``; entry 0 maps to a grid value deterministically, and the softmax of
the next ``m_i`` entries is the belief report, so any finite reals are valid and two
actions with the same image get the same reward. ``valuation_action="discrete"``:
``Dict(valuation=Discrete(k_max), belief=Box(-10, 10, (m_max,)))``; the integer is the
grid index (clipped to a smaller grid's top). NaN or infinite entries, a wrong shape,
an action for an agent that is not alive, or a missing action for an agent that acts
raise :class:`~crowdauction.errors.InvalidActionError`.

Rewards. Zero until the last phase, then each bidder's realised utility: its value if
served minus its realised payment; belief rewards are negative payments, so M's
informant earns its scoring reward and L's candidate its bonus. With
``reward="expected"`` the rewards are instead the exact expected utilities over the
mechanism's own coins (lottery, randomised allocation; M's informant stays as drawn at
reset), which cuts reward noise for learners and leaves every incentive unchanged;
infos stay realised. Under the logarithmic scoring rule (``scoring="log"``) every
decoded belief probability is floored at
:data:`~crowdauction.envs.layout.BELIEF_FLOOR` (``1e-12``) and the belief renormalised,
so every belief report has full support and finite actions always earn finite rewards;
under bounded rules beliefs are decoded exactly. After the last phase every agent
terminates and ``agents`` empties; nothing truncates.

Infos. After the last phase, per agent: ``allocation``, ``payment``, ``utility``,
``revenue``, ``reward`` (belief reward), ``value``, ``value_report``,
``belief_report``, ``asked_belief``, ``informant`` and ``candidate`` (-1 when none),
``truthful_value_report``, ``truthful_belief_report``, and ``lottery``/``price`` when the
mechanism reports them (L, strictified classical designs). Before it: ``phase`` and
``acts_now``.

Arguments (all optional)::

    crowdsourced_auction_v0.parallel_env(mechanism="M", prior=None, knowledge="own",
        n=None, values=None, eps=None, delta=None, design=None, scoring=None,
        reward="realised", render_mode=None, valuation_action="box")

``mechanism``: a name above or a mechanism instance. ``prior``: default
``Prior.gaussian_copula(3, [0, 1, 2, 3], 0.5)`` (``n`` and ``values`` change the
default). ``knowledge``: a ``Knowledge`` or a spec (``"own"``, ``"all"``, lists of
observed bidders). ``eps``, ``delta``, ``design`` (M's inner design, default
``"optimal"``), ``scoring``: passed to the mechanism. ``render_mode``: ``None`` or
``"ansi"`` (a text table). Unknown names raise
:class:`~crowdauction.errors.UnknownNameError`.

Version history:

* v0: initial release.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec

from crowdauction.errors import InvalidActionError, UnknownNameError
from crowdauction.envs.core import AuctionCore, AuctionState, build_core, check_action

__all__ = [
    "CrowdsourcedAuctionEnv",
    "parallel_env",
    "raw_env",
    "env",
    "check_render_mode",
    "RENDER_MODES",
    "VALUATION_ACTIONS",
]

RENDER_MODES = ("ansi",)
VALUATION_ACTIONS = ("box", "discrete")


def check_render_mode(render_mode: str | None) -> None:
    """Raise :class:`UnknownNameError` unless ``render_mode`` is ``None`` or ``"ansi"``."""
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise UnknownNameError(
            f"unknown render_mode {render_mode!r}; expected None or one of {list(RENDER_MODES)}"
        )


class CrowdsourcedAuctionEnv(ParallelEnv):
    """PettingZoo parallel env of one auction per episode (see the module docstring).

    Args:
        render_mode: ``None`` or ``"ansi"``.
        valuation_action: ``"box"`` or ``"discrete"``.
        **kwargs: the auction: ``mechanism``, ``prior``, ``knowledge``, ``n``, ``values``,
            ``eps``, ``delta``, ``design``, ``scoring`` (see
            :func:`crowdauction.envs.core.build_core`).
    """

    metadata = {
        "name": "crowdsourced_auction_v0",
        "render_modes": ["ansi"],
        "is_parallelizable": True,
    }

    def __init__(
        self, render_mode: str | None = None, valuation_action: str = "box", **kwargs: Any
    ):
        check_render_mode(render_mode)
        if valuation_action not in VALUATION_ACTIONS:
            raise UnknownNameError(
                f"unknown valuation_action {valuation_action!r}; "
                f"expected one of {list(VALUATION_ACTIONS)}"
            )
        self.render_mode = render_mode
        self.valuation_action = valuation_action
        self.core: AuctionCore = build_core(**kwargs)
        self.layout = self.core.layout
        self.possible_agents = [f"bidder_{i}" for i in range(self.core.n)]
        self._seat = {a: i for i, a in enumerate(self.possible_agents)}
        self.agents: list[str] = []
        # One space object per agent, all equal: agents can be seeded independently.
        agents = self.possible_agents
        self.observation_spaces = {a: self.layout.observation_space() for a in agents}
        self.action_spaces = {a: self.layout.action_space(valuation_action) for a in agents}
        self._rng: np.random.Generator | None = None
        self.auction: AuctionState | None = None

    @property
    def mechanism(self) -> Any:
        """The mechanism the env runs."""
        return self.core.mechanism

    def observation_space(self, agent: str) -> spaces.Box:
        return self.observation_spaces[self._known(agent)]

    def action_space(self, agent: str) -> spaces.Space:
        return self.action_spaces[self._known(agent)]

    def _known(self, agent: str) -> str:
        if agent not in self._seat:
            raise UnknownNameError(
                f"unknown agent {agent!r}; expected one of {self.possible_agents}"
            )
        return agent

    # -- episode ------------------------------------------------------------------------

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Draw a new auction. ``options`` is accepted for the API and not read."""
        if seed is not None or self._rng is None:
            self._rng = np.random.default_rng(seed)
        self.auction = self.core.reset(1, self._rng)
        self.agents = self.possible_agents[:]
        return self._observations(), self._phase_infos()

    def step(self, actions: Mapping[str, Any]) -> tuple[
        dict[str, np.ndarray],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        """Read one phase of actions; see the module docstring for the rules."""
        if self.auction is None or not self.agents:
            raise InvalidActionError("no auction is running: call reset() before step()")
        if not isinstance(actions, Mapping):
            raise InvalidActionError(
                f"step() takes a dict agent -> action, got {type(actions).__name__}"
            )
        dead = [a for a in actions if a not in self.agents]
        if dead:
            raise InvalidActionError(
                f"actions given for {dead}, which are not alive; live agents are {self.agents}"
            )
        acting = self.core.acting(self.auction)[0]
        missing = [a for a in self.agents if acting[self._seat[a]] and a not in actions]
        if missing:
            raise InvalidActionError(
                f"no action for {missing}, who act in this phase; give every agent whose "
                "observation has acts_now = 1 an action"
            )
        flat = np.zeros((1, self.core.n, self.layout.act_dim))
        for agent, action in actions.items():
            flat[0, self._seat[agent]] = self._flat_action(agent, action)
        rewards = self.core.step(self.auction, flat, self._rng)[0]
        obs = self._observations()
        live = self.agents
        done = self.auction.done
        if done:
            infos = dict(zip(self.possible_agents, self.core.agent_infos(self.auction, 0)))
            self.agents = []
        else:
            infos = self._phase_infos()
        return (
            obs,
            {a: float(rewards[self._seat[a]]) for a in live},
            {a: done for a in live},
            {a: False for a in live},
            {a: infos[a] for a in live},
        )

    def _observations(self) -> dict[str, np.ndarray]:
        obs = self.core.observe(self.auction)[0]
        return {a: obs[i].copy() for i, a in enumerate(self.possible_agents)}

    def _phase_infos(self) -> dict[str, dict[str, Any]]:
        acting = self.core.acting(self.auction)[0]
        phase = int(self.auction.phase)
        return {
            a: {"phase": phase, "acts_now": bool(acting[i])}
            for i, a in enumerate(self.possible_agents)
        }

    def _flat_action(self, agent: str, action: Any) -> np.ndarray:
        """Validate one agent's action and return it in the flat ``Box`` form."""
        lay = self.layout
        seat = self._seat[agent]
        if self.valuation_action == "discrete":
            want = (
                f"a dict with 'valuation' (an int in 0..{lay.k_max - 1}) and 'belief' "
                f"(a finite float array of shape ({lay.m_max},))"
            )
            if not isinstance(action, Mapping) or set(action) != {"valuation", "belief"}:
                raise InvalidActionError(f"action for {agent} is {action!r}; expected {want}")
            v = np.asarray(action["valuation"])
            ok = v.size == 1 and v.dtype.kind in "iu"
            if not ok or not 0 <= int(v.reshape(-1)[0]) < lay.k_max:
                raise InvalidActionError(
                    f"valuation action for {agent} is {action['valuation']!r}; expected {want}"
                )
            logits = check_action(agent, action["belief"], (lay.m_max,), want)
            index = min(int(v.reshape(-1)[0]), int(lay.grid_sizes[seat]) - 1)
            return np.concatenate([lay.encode_valuation(np.array([index]), seat), logits])
        return check_action(agent, action, (lay.act_dim,), lay.describe_action())

    # -- rendering ------------------------------------------------------------------------

    def render(self) -> str | None:
        """``"ansi"``: a text table of the auction; ``None`` without a render mode."""
        return self.core.render_mode_text(self.render_mode, self.auction, 0, self.possible_agents)

    def close(self) -> None:
        """Nothing to release (text rendering only)."""


#: The PettingZoo parallel env constructor: ``parallel_env(**kwargs)``.
parallel_env = CrowdsourcedAuctionEnv


def raw_env(**kwargs: Any) -> AECEnv:
    """The AEC version of the env (``parallel_to_aec``, which enforces the call order)."""
    return parallel_to_aec(CrowdsourcedAuctionEnv(**kwargs))


def env(**kwargs: Any) -> AECEnv:
    """The AEC env, as PettingZoo's ``env()`` constructors return it."""
    return raw_env(**kwargs)
