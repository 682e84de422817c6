"""The episode logic every auction env shares, batched over auctions.

One :class:`AuctionCore` turns actions into reports, calls the mechanism and hands back
utilities for ``B`` auctions at once; the PettingZoo env runs it with ``B = 1`` and the
vector envs of :mod:`crowdauction.envs.vector` with any ``B``, so there is one
implementation of the rules. An episode is one auction:

1. :meth:`AuctionCore.reset` draws ``B`` profiles from the prior and, for the
   random-informant mechanism M, the ``B`` informants.
2. Phase 0, valuation reports. Every bidder acts except M's informant.
3. Phase 1, belief reports, for crowdsourced mechanisms only: M asks its informant, L
   every bidder but the candidate (the highest reporter, lowest index among ties).
   Classical mechanisms end after phase 0.
4. After the last phase the mechanism's ``sample`` draws the realised outcome and every
   bidder's reward is its realised utility: its value if served, minus what it paid
   (belief rewards are negative payments, so the informant's utility is its reward).

Seeding: a front end owns one ``np.random.Generator`` and the core draws from it in a
fixed order: at reset the profiles (``prior.sample_indices``) and then M's informants;
after the last phase the mechanism's coins. A batch of one auction therefore uses the
stream exactly as the PettingZoo env does, whichever front end runs it; the ``B``
auctions of a batch are different rows of the same draws, so they never repeat each
other. :func:`spawn_seeds` gives independent seeds for several envs (one per worker).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crowdauction.errors import (
    CrowdAuctionError,
    InvalidActionError,
    InvalidConfigError,
    InvalidParameterError,
    UnknownNameError,
)
from crowdauction.envs.layout import BELIEF_FLOOR, EnvLayout
from crowdauction.mechanisms.checks import int_param
from crowdauction.mechanisms.classical import ClassicalMechanism
from crowdauction.mechanisms.crowdsourced import (
    CrowdsourcedLookahead,
    CrowdsourcedMechanism,
    RandomInformant,
)
from crowdauction.mechanisms.designs import make_design
from crowdauction.mechanisms.knowledge import Knowledge
from crowdauction.mechanisms.prior import Prior
from crowdauction.mechanisms.scoring import ScoringRule

__all__ = [
    "AuctionCore",
    "AuctionState",
    "build_core",
    "spawn_seeds",
    "check_action",
    "non_finite_rows",
    "MECHANISM_NAMES",
    "DEFAULT_N",
    "DEFAULT_VALUES",
    "DEFAULT_RHO",
    "DEFAULT_DESIGN",
    "N_PHASES",
    "PHASE_VALUATION",
    "PHASE_BELIEF",
]

#: Mechanism names the envs accept (a mechanism instance is accepted too).
MECHANISM_NAMES = (
    "M",
    "L",
    "second_price",
    "first_price",
    "myerson",
    "optimal",
    "lookahead",
    "monopoly_reserve",
)
#: The default auction: 3 bidders on values 0..3 with a Gaussian-copula prior.
DEFAULT_N = 3
DEFAULT_VALUES = (0, 1, 2, 3)
DEFAULT_RHO = 0.5
#: M's default inner design: the LP-optimal auction, as in the paper.
DEFAULT_DESIGN = "optimal"
#: What rewards hand back: realised utilities, or their expectation over the mechanism's coins.
REWARD_MODES = ("realised", "expected")
#: Length of the phase one-hot in every observation, whatever the mechanism.
N_PHASES = 2
PHASE_VALUATION, PHASE_BELIEF = 0, 1


def spawn_seeds(seed: int | None, count: int) -> list[int]:
    """``count`` independent integer seeds derived from ``seed`` by ``SeedSequence.spawn``.

    Use them to seed several envs (one per worker) so that their streams are
    independent; the same ``seed`` gives the same list.
    """
    children = np.random.SeedSequence(seed).spawn(int(count))
    return [int.from_bytes(c.generate_state(4).tobytes(), "little") for c in children]


def check_action(agent: str, value: Any, shape: tuple[int, ...], want: str) -> np.ndarray:
    """One agent's action as finite floats of ``shape``, or our error naming the agent."""
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InvalidActionError(
            f"action for {agent} is {value!r}, not numbers; expected {want}"
        ) from e
    if a.shape != shape:
        raise InvalidActionError(f"action for {agent} has shape {a.shape}; expected {want}")
    bad = np.nonzero(~np.isfinite(a))[0]
    if bad.size:
        raise InvalidActionError(
            f"action for {agent} holds {a[bad[:3]].tolist()} at entries "
            f"{bad[:3].tolist()}; expected {want}"
        )
    return a


def non_finite_rows(actions: np.ndarray) -> np.ndarray:
    """Indices of the rows of ``(R, d)`` actions that hold NaN or an infinity."""
    return np.nonzero(~np.all(np.isfinite(actions), axis=1))[0]


@dataclass
class AuctionState:
    """Where ``B`` auctions stand (all in the same phase: episodes run in lockstep).

    Attributes:
        profile: ``(B, n)`` true grid indices.
        values: ``(B, n)`` true values.
        cells: ``(B, n)`` each bidder's knowledge cell.
        informant: ``(B,)`` M's informant, -1 for other mechanisms.
        phase: the phase whose actions the next step reads (the last one once done).
        done: whether the outcome has been drawn.
        asked: ``(B, n)`` who is asked for a belief report (M: from the start).
        candidate: ``(B,)`` L's candidate winner once known, else -1.
        value_report: ``(B, n)`` reported grid index, -1 where none was read.
        belief_report: per bidder ``(B, m_i)`` belief reports once read (uniform where
            the bidder was not asked, which the mechanism does not read).
        served, payments, utility, scoring_reward: ``(B, n)`` once done.
        reward: ``(B, n)`` the rewards handed back once done: the realised utilities,
            or their expectation over the mechanism's coins (``reward="expected"``).
        lottery: ``(B,)`` whether the Lemma 1 lottery fired, when the mechanism says.
        price: ``(B,)`` L's price for the candidate, when the mechanism says.
    """

    profile: np.ndarray
    values: np.ndarray
    cells: np.ndarray
    informant: np.ndarray
    asked: np.ndarray
    candidate: np.ndarray
    value_report: np.ndarray
    phase: int = PHASE_VALUATION
    done: bool = False
    belief_report: list[np.ndarray] | None = None
    served: np.ndarray | None = None
    payments: np.ndarray | None = None
    utility: np.ndarray | None = None
    reward: np.ndarray | None = None
    scoring_reward: np.ndarray | None = None
    lottery: np.ndarray | None = None
    price: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Number of auctions ``B``."""
        return int(self.profile.shape[0])


class AuctionCore:
    """Rules of one auction, batched: reset, observe, step, outcome.

    Args:
        prior: the joint distribution of values.
        knowledge: every bidder's knowledge partition over the prior.
        mechanism: a crowdsourced mechanism (M, L or another subclass of
            :class:`~crowdauction.mechanisms.crowdsourced.CrowdsourcedMechanism`) or a
            classical one.
        label: a short description for renders.
        reward: ``"realised"`` (default) hands back realised utilities;
            ``"expected"`` hands back their exact expectation over the mechanism's own
            coins (lottery, randomised allocation; M's informant is drawn at reset and
            stays drawn), a variance reduction for learners that leaves every incentive
            unchanged. Outcome records stay realised either way.

    Attributes:
        kind: ``"informant"`` (M), ``"crowdsourced"`` (L and others) or ``"classical"``.
        phases: how many phases an episode has (2 or 1).
        layout: the observation and action layout.
        belief_floor: smallest decoded belief probability: :data:`BELIEF_FLOOR` when the
            mechanism's scoring rule is unbounded below (log), so rewards stay finite;
            else 0.
        truthful_beliefs: per bidder ``(C_i, m_i)``: what a truthful bidder reports when
            asked (the mechanism's ``truthful_beliefs``; the cell beliefs if classical).
    """

    def __init__(
        self,
        prior: Prior,
        knowledge: Knowledge,
        mechanism: CrowdsourcedMechanism | ClassicalMechanism,
        label: str = "",
        reward: str = "realised",
    ):
        if reward not in REWARD_MODES:
            raise UnknownNameError(
                f"unknown reward mode {reward!r}; expected one of {list(REWARD_MODES)}"
            )
        self.reward_mode = reward
        self.prior = prior
        self.knowledge = knowledge
        self.mechanism = mechanism
        self.space = prior.space
        self.n = self.space.n
        self.label = label or str(getattr(mechanism, "name", type(mechanism).__name__))
        if isinstance(mechanism, RandomInformant):
            self.kind = "informant"
        elif isinstance(mechanism, CrowdsourcedMechanism):
            self.kind = "crowdsourced"
        else:
            self.kind = "classical"
        self.phases = 1 if self.kind == "classical" else 2
        self.layout = EnvLayout(self.space, N_PHASES)
        # A rule unbounded below (log) scores a zero probability at minus infinity: floor
        # decoded beliefs so that finite actions get finite rewards.
        scoring = getattr(mechanism, "scoring", None)
        unbounded = isinstance(scoring, ScoringRule) and not np.isfinite(scoring.bounds[0])
        self.belief_floor = BELIEF_FLOOR if unbounded else 0.0
        n, m_max = self.n, self.layout.m_max
        if self.kind == "classical":
            truthful = [b.copy() for b in knowledge.beliefs]
        else:
            truthful = mechanism.truthful_beliefs(knowledge)
        self.truthful_beliefs: list[np.ndarray] = truthful
        c_max = max(knowledge.num_cells(i) for i in range(n))
        # Padded (bidder, cell) -> belief tables, so that a batch is one fancy index.
        self._belief0 = np.zeros((n, c_max, m_max))
        self._belief1 = np.zeros((n, c_max, m_max))
        for i in range(n):
            c, m = knowledge.beliefs[i].shape
            self._belief0[i, :c, :m] = knowledge.beliefs[i]
            self._belief1[i, :c, :m] = truthful[i]
        self._cells = np.stack([knowledge.cells[i].ravel() for i in range(n)])  # (n, N)
        self._seat = np.arange(n)

    # -- episode ------------------------------------------------------------------------

    def reset(self, size: int, rng: np.random.Generator) -> AuctionState:
        """Draw ``size`` new auctions: profiles, then M's informants."""
        n = self.n
        profile = self.prior.sample_indices(size, rng)
        flat = self.space.flat_index(profile)
        cells = self._cells[:, flat].T
        if self.kind == "informant":
            informant = np.asarray(self.mechanism.draw_informant(size, rng), dtype=np.int64)
            asked = self._seat[None, :] == informant[:, None]
        else:
            informant = np.full(size, -1, dtype=np.int64)
            asked = np.zeros((size, n), dtype=bool)
        return AuctionState(
            profile=profile,
            values=self.space.values_of(profile),
            cells=cells,
            informant=informant,
            asked=asked,
            candidate=np.full(size, -1, dtype=np.int64),
            value_report=np.full((size, n), -1, dtype=np.int64),
        )

    def acting(self, st: AuctionState) -> np.ndarray:
        """``(B, n)`` bool: whose actions the next step reads."""
        if st.done:
            return np.zeros((st.size, self.n), dtype=bool)
        if st.phase == PHASE_BELIEF:
            return st.asked.copy()
        return self._seat[None, :] != st.informant[:, None]

    def observe(self, st: AuctionState) -> np.ndarray:
        """Observations ``(B, n, obs_dim)`` float32 of every bidder."""
        B, n = st.size, self.n
        who = np.tile(self._seat, B)
        cells = st.cells.reshape(-1)
        belief = self._belief0[who, cells]
        if st.phase == PHASE_BELIEF:
            # Asked bidders see the belief a truthful report should carry in this phase.
            belief = np.where(st.asked.reshape(-1, 1), self._belief1[who, cells], belief)
        obs = self.layout.encode(
            st.profile.reshape(-1),
            belief,
            is_informant=(self._seat[None, :] == st.informant[:, None]).reshape(-1),
            is_candidate=(self._seat[None, :] == st.candidate[:, None]).reshape(-1),
            asked_belief=st.asked.reshape(-1),
            acts_now=self.acting(st).reshape(-1),
            phase=st.phase,
            bidder=who,
        )
        return obs.reshape(B, n, self.layout.obs_dim)

    def step(self, st: AuctionState, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Read one phase of actions ``(B, n, act_dim)``; return rewards ``(B, n)``.

        Rewards are zero until the last phase, then the realised utilities. Actions of
        bidders who do not act this phase are ignored. Callers validate actions first
        (finite, right shape) so that their errors can name agents.
        """
        if st.done:
            raise InvalidActionError("these auctions are over; reset before stepping again")
        B, n, d = st.size, self.n, self.layout.act_dim
        a = np.asarray(actions, dtype=np.float64)
        if a.shape != (B, n, d):
            raise InvalidActionError(f"actions must have shape ({B}, {n}, {d}), got {a.shape}")
        if st.phase == PHASE_VALUATION:
            idx = self.layout.decode_valuation(a.reshape(B * n, d), np.tile(self._seat, B))
            st.value_report = np.where(self.acting(st), idx.reshape(B, n), -1)
            if self.kind == "classical":
                self._finish(st, rng)
                return st.reward
            if self.kind == "crowdsourced":
                asked = self.mechanism.asks_belief(self.reported_values(st))
                st.asked = np.asarray(asked, dtype=bool)
                lone = (~st.asked).sum(axis=1) == 1
                st.candidate = np.where(lone, np.argmax(~st.asked, axis=1), -1)
            st.phase = PHASE_BELIEF
            return np.zeros((B, n))
        beliefs = []
        for i in range(n):
            F = self.layout.decode_belief(a[:, i, :], i, floor=self.belief_floor)
            uniform = np.full_like(F, 1.0 / F.shape[1])
            beliefs.append(np.where(st.asked[:, i : i + 1], F, uniform))
        st.belief_report = beliefs
        self._finish(st, rng)
        return st.reward

    def reported_values(self, st: AuctionState) -> np.ndarray:
        """``(B, n)`` reported values; an unread report (M's informant) is the lowest value."""
        return self.space.values_of(np.maximum(st.value_report, 0))

    def _finish(self, st: AuctionState, rng: np.random.Generator) -> None:
        reports = self.reported_values(st)
        mech = self.mechanism
        if self.kind == "informant":
            real = mech.sample(reports, st.belief_report, rng, informant=st.informant)
        elif self.kind == "crowdsourced":
            real = mech.sample(reports, st.belief_report, rng)
        else:
            real = mech.sample(reports, rng)
        B, n = st.size, self.n
        st.served = np.asarray(real.served, dtype=bool)
        st.payments = np.asarray(real.payments, dtype=np.float64)
        st.utility = st.values * st.served - st.payments
        if self.reward_mode == "expected":
            if self.kind == "informant":
                exact = mech.outcome(reports, st.belief_report, informant=st.informant)
            elif self.kind == "crowdsourced":
                exact = mech.outcome(reports, st.belief_report)
            else:
                exact = mech.outcome(reports)
            st.reward = exact.utilities(st.values)
        else:
            st.reward = st.utility
        reward = real.extra.get("reward")
        scoring = np.zeros((B, n))
        if reward is not None and self.kind == "informant":
            scoring[np.arange(B), st.informant] = reward  # M: one reward, the informant's
        elif reward is not None and np.ndim(reward) == 2:
            scoring[:] = reward
        st.scoring_reward = scoring
        st.lottery = real.extra.get("lottery")
        st.price = real.extra.get("price")
        if "candidate" in real.extra:
            st.candidate = np.asarray(real.extra["candidate"], dtype=np.int64)
        st.extra = dict(real.extra)
        st.done = True

    # -- outcome records ---------------------------------------------------------------

    def outcome_arrays(self, st: AuctionState) -> dict[str, np.ndarray]:
        """The outcome of finished auctions as ``(B, n)`` arrays (per-auction ones broadcast).

        Keys: ``allocation`` (1.0 if served), ``payment``, ``utility``, ``revenue``,
        ``reward`` (belief reward, plus L's candidate bonus), ``value``,
        ``value_report`` (-1 where not read), ``asked_belief``, ``informant`` and
        ``candidate`` (-1 when none), and ``lottery`` and ``price`` when the mechanism
        reports them.
        """
        if not st.done:
            raise InvalidActionError("the outcome exists only after the last phase")
        B, n = st.size, self.n
        reports = np.where(st.value_report >= 0, self.reported_values(st), -1)
        out = {
            "allocation": st.served.astype(np.float64),
            "payment": st.payments,
            "utility": st.utility,
            "revenue": np.broadcast_to(st.payments.sum(axis=1)[:, None], (B, n)),
            "reward": st.scoring_reward,
            "value": st.values,
            "value_report": reports,
            "asked_belief": st.asked,
            "informant": np.broadcast_to(st.informant[:, None], (B, n)),
            "candidate": np.broadcast_to(st.candidate[:, None], (B, n)),
        }
        if st.lottery is not None:
            out["lottery"] = np.broadcast_to(np.asarray(st.lottery, dtype=bool)[:, None], (B, n))
        if st.price is not None:
            out["price"] = np.broadcast_to(np.asarray(st.price, dtype=np.float64)[:, None], (B, n))
        return out

    def agent_infos(self, st: AuctionState, b: int) -> list[dict[str, Any]]:
        """Per bidder of auction ``b``: the info dict after the last phase.

        Scalars are Python numbers; ``truthful_belief_report`` is the belief a truthful
        bidder reports when asked and ``belief_report`` the report read (``None`` when
        the bidder was not asked). ``value_report`` is ``None`` when not read.
        """
        arrays = self.outcome_arrays(st)
        infos = []
        for i in range(self.n):
            info: dict[str, Any] = {}
            for key, arr in arrays.items():
                info[key] = arr[b, i].item()
            info["allocation"] = float(info["allocation"])
            if info["value_report"] < 0:
                info["value_report"] = None
            info["truthful_value_report"] = int(st.values[b, i])
            info["truthful_belief_report"] = self.truthful_beliefs[i][st.cells[b, i]].copy()
            asked = bool(st.asked[b, i]) and st.belief_report is not None
            info["belief_report"] = st.belief_report[i][b].copy() if asked else None
            infos.append(info)
        return infos

    def row_infos(
        self, st: AuctionState, keys: Sequence[str], seats: np.ndarray | None = None
    ) -> list[dict[str, Any]]:
        """Info dicts with the scalar outcome ``keys`` of finished auctions.

        Args:
            st: finished auctions.
            keys: keys of :meth:`outcome_arrays` to copy (missing ones are skipped).
            seats: ``(B,)`` one bidder per auction; default every bidder, ``B * n``
                dicts in (auction, bidder) order.
        """
        arrays = self.outcome_arrays(st)
        names = [k for k in keys if k in arrays]
        if seats is None:
            columns = [arrays[k].reshape(-1).tolist() for k in names]
        else:
            rows = np.arange(st.size)
            columns = [arrays[k][rows, seats].tolist() for k in names]
        return [dict(zip(names, row)) for row in zip(*columns)]

    # -- rendering ------------------------------------------------------------------------

    def render_mode_text(
        self,
        render_mode: str | None,
        st: AuctionState | None,
        b: int = 0,
        names: Sequence[str] | None = None,
    ) -> str | None:
        """What an env's ``render()`` returns: the text table, or ``None`` (with a warning)
        when the env was built without a render mode."""
        if render_mode is None:
            warnings.warn(
                "render() called without a render mode; construct the env with render_mode='ansi'",
                UserWarning,
                stacklevel=3,
            )
            return None
        return self.render(st, b, names)

    def render(
        self, st: AuctionState | None, b: int = 0, names: Sequence[str] | None = None
    ) -> str:
        """A text table of auction ``b``: values, reports, allocation, payments, revenue."""
        if st is None:
            return f"{self.label}: no auction yet; call reset()"
        names = list(names) if names is not None else [f"bidder_{i}" for i in range(self.n)]
        width = max(8, *(len(x) for x in names))
        phase = "done" if st.done else ("valuation reports" if st.phase == 0 else "belief reports")
        lines = [f"{self.label} | phase: {phase}"]
        head = (
            f"{'agent':<{width}} {'value':>6} {'report':>6} {'role':>10} {'served':>6} "
            f"{'payment':>9} {'utility':>9}"
        )
        lines.append(head)
        lines.append("-" * len(head))
        reports = self.reported_values(st)
        for i in range(self.n):
            rep = str(int(reports[b, i])) if st.value_report[b, i] >= 0 else "-"
            role = "asked" if st.asked[b, i] else ""
            if st.informant[b] == i:
                role = "informant"
            elif st.candidate[b] == i:
                role = "candidate"
            if st.done:
                served = "yes" if st.served[b, i] else "no"
                pay, util = f"{st.payments[b, i]:9.4f}", f"{st.utility[b, i]:9.4f}"
            else:
                served, pay, util = "", "", ""
            lines.append(
                f"{names[i]:<{width}} {int(st.values[b, i]):>6} {rep:>6} {role:>10} "
                f"{served:>6} {pay:>9} {util:>9}"
            )
        if st.done:
            tail = [f"revenue: {st.payments[b].sum():.4f}"]
            if st.lottery is not None:
                tail.append(f"lottery: {'fired' if st.lottery[b] else 'not fired'}")
            if st.price is not None:
                tail.append(f"price: {float(st.price[b]):g}")
            lines.append(" | ".join(tail))
        return "\n".join(lines)


# -- configuration ----------------------------------------------------------------------


def _default_prior(n: int | None, values: Sequence[int] | None) -> Prior:
    n = DEFAULT_N if n is None else n
    values = DEFAULT_VALUES if values is None else values
    try:
        n = int_param(n, "n", low=2, error=InvalidConfigError)
    except InvalidConfigError as e:
        raise InvalidConfigError(f"n must be an integer number of bidders >= 2, got {n!r}") from e
    try:
        return Prior.gaussian_copula(n, list(values), DEFAULT_RHO)
    except (TypeError, ValueError) as e:
        raise InvalidConfigError(f"cannot build the default prior on values {values!r}: {e}") from e


def _check_prior(prior: Prior, n: int | None, values: Sequence[int] | None) -> None:
    if not isinstance(prior, Prior):
        raise InvalidConfigError(f"prior must be a crowdauction Prior, got {type(prior).__name__}")
    if n is not None and n != prior.n:
        raise InvalidConfigError(
            f"n={n!r} disagrees with the prior's {prior.n} bidders; drop n or fix it"
        )
    if values is not None and not all(np.array_equal(g, np.asarray(values)) for g in prior.grids):
        raise InvalidConfigError(
            f"values={list(values)!r} disagree with the prior's grids "
            f"{[g.tolist() for g in prior.grids]}; drop values or fix them"
        )


def _ignored(what: dict[str, Any], mechanism: str) -> None:
    given = sorted(k for k, v in what.items() if v is not None)
    if given:
        warnings.warn(
            f"{', '.join(given)} ignored: mechanism {mechanism!r} does not use "
            f"{'it' if len(given) == 1 else 'them'}",
            UserWarning,
            stacklevel=4,
        )


def build_core(
    mechanism: str | CrowdsourcedMechanism | ClassicalMechanism = "M",
    prior: Prior | None = None,
    knowledge: Knowledge | str | Sequence[str | Sequence[int]] = "own",
    n: int | None = None,
    values: Sequence[int] | None = None,
    eps: float | None = None,
    delta: float | None = None,
    design: str | None = None,
    scoring: str | ScoringRule | None = None,
    reward: str = "realised",
) -> AuctionCore:
    """Resolve the env keyword arguments into an :class:`AuctionCore`.

    Args:
        mechanism: a name of :data:`MECHANISM_NAMES` or a mechanism instance. Classical
            names build the design for the true prior (the seller knows it: a benchmark).
        prior: the prior; default ``Prior.gaussian_copula(n, values, 0.5)``.
        knowledge: a :class:`Knowledge` over ``prior`` or a spec for
            :meth:`Knowledge.from_spec` (``"own"``, ``"all"``, lists of observed bidders).
        n: number of bidders for the default prior (3).
        values: the grid for the default prior ((0, 1, 2, 3)).
        eps: belief-reward scale of M or L (default theirs: 0.05 and 0.001).
        delta: lottery probability: of M's inner design (0.05), of L (0.05), of a
            classical design (0: none).
        design: M's inner classical design (default ``"optimal"``).
        scoring: scoring rule of M or L (default Brier).
        reward: ``"realised"`` or ``"expected"`` utilities as rewards (see
            :class:`AuctionCore`).

    Raises:
        UnknownNameError: for an unknown mechanism, design or scoring name.
        InvalidConfigError: for inconsistent or invalid arguments.
    """
    if isinstance(knowledge, Knowledge):
        if prior is None:
            prior = knowledge.prior
        elif prior.key() != knowledge.prior.key():
            raise InvalidConfigError(
                "knowledge was built over a different prior than prior=; pass one of them"
            )
    if prior is None:
        prior = _default_prior(n, values)
    else:
        _check_prior(prior, n, values)
    if not isinstance(knowledge, Knowledge):
        knowledge = Knowledge.from_spec(prior, knowledge)
    space = prior.space
    try:
        if isinstance(mechanism, str):
            if mechanism not in MECHANISM_NAMES:
                raise UnknownNameError(
                    f"unknown mechanism {mechanism!r}; expected one of {list(MECHANISM_NAMES)} "
                    "or a mechanism instance"
                )
            given = {"eps": eps, "delta": delta, "scoring": scoring}
            kwargs = {k: v for k, v in given.items() if v is not None}
            if mechanism == "M":
                name = design if design is not None else DEFAULT_DESIGN
                mech = RandomInformant(space, design=name, **kwargs)
                label = (
                    f"M (design {name}, delta {mech.design.delta:g}, eps {mech.eps:g}, "
                    f"{mech.scoring.name})"
                )
            elif mechanism == "L":
                _ignored({"design": design}, mechanism)
                mech = CrowdsourcedLookahead(space, **kwargs)
                label = f"L (delta {mech.delta:g}, eps {mech.eps:g}, {mech.scoring.name})"
            else:
                _ignored({"eps": eps, "scoring": scoring, "design": design}, mechanism)
                d = 0.0 if delta is None else delta
                mech = make_design(mechanism, delta=d).build(prior)
                label = mechanism + (f" (delta {d:g})" if d > 0 else "")
        elif isinstance(mechanism, (CrowdsourcedMechanism, ClassicalMechanism)):
            name = type(mechanism).__name__
            _ignored({"eps": eps, "delta": delta, "scoring": scoring, "design": design}, name)
            own = getattr(mechanism, "space", None)
            if own is not None and own != space:
                raise InvalidConfigError(
                    f"the mechanism was built for {own!r} but the prior lives on {space!r}; "
                    "build both on one type space"
                )
            mech = mechanism
            label = str(getattr(mechanism, "name", name))
        else:
            raise InvalidConfigError(
                f"mechanism must be a name in {list(MECHANISM_NAMES)} or a mechanism instance, "
                f"got {type(mechanism).__name__}"
            )
    except InvalidParameterError as e:  # a bad env keyword: a configuration error here
        raise InvalidConfigError(f"cannot build mechanism {mechanism!r}: {e}") from e
    except CrowdAuctionError:
        raise
    except ValueError as e:
        raise InvalidConfigError(f"cannot build mechanism {mechanism!r}: {e}") from e
    return AuctionCore(prior, knowledge, mech, label, reward=reward)
