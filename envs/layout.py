"""How an auction looks to one bidder: the observation and action vectors.

:class:`EnvLayout` fixes, for a type space, the flat vectors every environment of
:mod:`crowdauction.envs` exchanges with its bidders. It is pure numpy; only
:meth:`EnvLayout.observation_space` and :meth:`EnvLayout.action_space` import gymnasium,
and only when called. Every bidder of an auction uses the same layout, so one policy
can play any seat (parameter sharing); grids of different sizes are zero-padded to the
largest.

Observation, ``obs_dim = k_max + 1 + m_max + 3 + 1 + n_phases`` float32 entries, each
in ``[0, 1]``:

==========================  ===========  ==============================================
part                        length       content
==========================  ===========  ==============================================
own value, one-hot          ``k_max``    1 at the own value's grid index
own value, scaled           1            value / the bidder's top grid value (0 if 0)
own belief                  ``m_max``    belief over the others' profiles (C order of
                                         their grids), zero-padded to ``m_max``
role flags                  3            is_informant, is_candidate, asked_belief
acts_now                    1            1 when this bidder's action is read this step
phase, one-hot              ``n_phases`` 0 valuation reports, 1 belief reports
==========================  ===========  ==============================================

Action, ``act_dim = 1 + m_max`` reals:

* entry 0, the valuation: ``a`` maps to grid index
  ``clip(rint((clip(a, -1, 1) + 1) / 2 * (K_i - 1)), 0, K_i - 1)``, where ``rint``
  rounds half to even; :meth:`EnvLayout.encode_valuation` returns the centre of an
  index's interval, which decodes back to that index.
* entries ``1 .. m_i``, the belief logits: their softmax is the belief report. Any
  finite reals are valid; entries past ``m_i`` are ignored.
  :meth:`EnvLayout.encode_belief` inverts the softmax with ``log`` and sends zero
  probabilities to :data:`ZERO_LOGIT`, whose exponential underflows to exactly zero,
  so supports survive the round trip.
* Under a scoring rule that is unbounded below (the logarithmic rule), a report with a
  zero would earn a reward of minus infinity, so the envs decode beliefs with a floor:
  every probability is raised to at least :data:`BELIEF_FLOOR` (``1e-12``) and the
  row renormalised, every belief report has full support, and finite actions always
  get finite rewards. Under bounded rules (Brier, spherical, linear) nothing is floored
  and zeros stay exact.

The action space's bounds (``[-1, 1]`` for the valuation, ``[-10, 10]`` for the logits)
are a sampling range for exploration; the decoders accept any finite real.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from crowdauction.errors import InvalidActionError, InvalidParameterError, InvalidReportError
from crowdauction.mechanisms.checks import int_param, real_param
from crowdauction.mechanisms.scoring import check_distribution
from crowdauction.mechanisms.typespace import TypeSpace

if TYPE_CHECKING:  # gymnasium is imported only by the space builders
    from gymnasium import spaces

__all__ = [
    "EnvLayout",
    "ObsParts",
    "truthful_action",
    "VALUE_LOW",
    "VALUE_HIGH",
    "LOGIT_LOW",
    "LOGIT_HIGH",
    "ZERO_LOGIT",
    "BELIEF_FLOOR",
    "FLAG_INFORMANT",
    "FLAG_CANDIDATE",
    "FLAG_ASKED",
    "FLAG_ACTS",
]

#: Sampling range of the valuation entry (values outside are clipped onto it).
VALUE_LOW, VALUE_HIGH = -1.0, 1.0
#: Sampling range of the belief logits (any finite real is accepted).
LOGIT_LOW, LOGIT_HIGH = -10.0, 10.0
#: Logit that :meth:`EnvLayout.encode_belief` gives a zero probability. Every positive
#: double has a log above -745, so after the softmax's shift its exponential is exactly 0.
ZERO_LOGIT = -1.0e4
#: Smallest probability of a decoded belief under a scoring rule unbounded below: the
#: log rule then scores at least ``a + b log(BELIEF_FLOOR / (1 + m BELIEF_FLOOR))``,
#: about ``a - 27.6 b``, instead of minus infinity.
BELIEF_FLOOR = 1e-12
#: Columns of :attr:`ObsParts.flags`.
FLAG_INFORMANT, FLAG_CANDIDATE, FLAG_ASKED, FLAG_ACTS = 0, 1, 2, 3


class ObsParts(NamedTuple):
    """The parts of a batch of observations (see :meth:`EnvLayout.decode_obs`).

    Attributes:
        value_idx: ``(B,)`` own grid index.
        belief: ``(B, m_max)`` own belief, zero-padded.
        flags: ``(B, 4)`` bool: is_informant, is_candidate, asked_belief, acts_now
            (columns :data:`FLAG_INFORMANT` .. :data:`FLAG_ACTS`).
        phase: ``(B,)`` phase number.
    """

    value_idx: np.ndarray
    belief: np.ndarray
    flags: np.ndarray
    phase: np.ndarray

    @property
    def is_informant(self) -> np.ndarray:
        return self.flags[:, FLAG_INFORMANT]

    @property
    def is_candidate(self) -> np.ndarray:
        return self.flags[:, FLAG_CANDIDATE]

    @property
    def asked_belief(self) -> np.ndarray:
        return self.flags[:, FLAG_ASKED]

    @property
    def acts_now(self) -> np.ndarray:
        return self.flags[:, FLAG_ACTS]


class EnvLayout:
    """Observation and action vectors of the auction envs for one type space.

    Args:
        space: the bidders' value grids.
        n_phases: length of the phase one-hot (2: valuation, then belief reports).

    Attributes:
        n: number of bidders.
        k_max: largest grid size.
        m_max: largest belief length, ``max_i space.others_size(i)``.
        obs_dim: observation length.
        act_dim: action length, ``1 + m_max``.
        grid_sizes: ``(n,)`` grid size per bidder.
        belief_sizes: ``(n,)`` belief length per bidder.
    """

    def __init__(self, space: TypeSpace, n_phases: int = 2):
        if not isinstance(space, TypeSpace):
            raise InvalidParameterError(
                f"EnvLayout needs a TypeSpace, got {type(space).__name__}"
            )
        n_phases = int_param(n_phases, "n_phases", low=1)
        self.space = space
        self.n = space.n
        self.n_phases = int(n_phases)
        self.grid_sizes = np.array(space.shape, dtype=np.int64)
        self.belief_sizes = np.array([space.others_size(i) for i in range(self.n)], dtype=np.int64)
        self.k_max = int(self.grid_sizes.max())
        self.m_max = int(self.belief_sizes.max())
        # Grids padded with their top value, so that (bidder, index) lookups vectorise.
        self._grid_table = np.array(
            [np.pad(g, (0, self.k_max - len(g)), mode="edge") for g in space.grids],
            dtype=np.int64,
        )
        top = np.array([g[-1] for g in space.grids], dtype=np.float64)
        self._inv_top = np.where(top > 0, 1.0 / np.where(top > 0, top, 1.0), 0.0)
        k, m = self.k_max, self.m_max
        self.value_slice = slice(0, k)
        self.scaled_index = k
        self.belief_slice = slice(k + 1, k + 1 + m)
        self.roles_slice = slice(k + 1 + m, k + 4 + m)
        self.acts_index = k + 4 + m
        self.phase_slice = slice(k + 5 + m, k + 5 + m + self.n_phases)
        self.obs_dim = k + 5 + m + self.n_phases
        self.act_dim = 1 + m

    # -- helpers --------------------------------------------------------------------

    def bidders(self, bidder: int | np.ndarray | None, size: int) -> np.ndarray:
        """Bidder indices ``(size,)`` from an int, an array, or ``None`` (equal grids only)."""
        if bidder is None:
            if not all(np.array_equal(g, self.space.grids[0]) for g in self.space.grids):
                raise InvalidReportError(
                    "the bidders' grids differ, so the bidder must be given: pass bidder= "
                    "as an int or one index per row"
                )
            return np.zeros(size, dtype=np.int64)
        b = np.asarray(bidder)
        if b.ndim == 0:
            b = np.full(size, int(b), dtype=np.int64)
        if b.shape != (size,) or b.dtype.kind not in "iu":
            raise InvalidReportError(
                f"bidder must be an int or an integer array of shape ({size},), got {bidder!r}"
            )
        if np.any((b < 0) | (b >= self.n)):
            bad = b[(b < 0) | (b >= self.n)][:3]
            raise InvalidReportError(f"bidder indices must lie in 0..{self.n - 1}, got {bad}")
        return b.astype(np.int64)

    def describe_action(self) -> str:
        """One line naming the expected action, for error messages."""
        return (
            f"a finite float array of shape ({self.act_dim},): entry 0 the valuation "
            f"(sampled from [{VALUE_LOW:g}, {VALUE_HIGH:g}]), entries 1..{self.m_max} belief "
            f"logits (any finite reals, sampled from [{LOGIT_LOW:g}, {LOGIT_HIGH:g}])"
        )

    def _actions(self, action: np.ndarray, width: int) -> np.ndarray:
        a = np.asarray(action, dtype=np.float64)
        if a.ndim != 2 or a.shape[1] < width:
            raise InvalidActionError(
                f"actions must have shape (B, {self.act_dim}), got {a.shape}; "
                f"expected {self.describe_action()}"
            )
        return a

    # -- observations -----------------------------------------------------------------

    def encode(
        self,
        value_idx: np.ndarray,
        belief: np.ndarray,
        is_informant: np.ndarray,
        is_candidate: np.ndarray,
        asked_belief: np.ndarray,
        acts_now: np.ndarray,
        phase: np.ndarray,
        bidder: int | np.ndarray | None = None,
    ) -> np.ndarray:
        """Build observations ``(B, obs_dim)`` float32 (layout in the module docstring).

        Args:
            value_idx: ``(B,)`` own grid index.
            belief: ``(B, m)`` own belief with ``m <= m_max``; zero-padded to ``m_max``.
            is_informant, is_candidate, asked_belief, acts_now: ``(B,)`` flags.
            phase: ``(B,)`` phase number in ``0..n_phases-1``, or an int for all rows.
            bidder: whose grid scales the value: an int or ``(B,)``; may be omitted
                when every bidder has the same grid.
        """
        value_idx = np.asarray(value_idx, dtype=np.int64)
        B = value_idx.shape[0]
        who = self.bidders(bidder, B)
        if value_idx.shape != (B,) or np.any((value_idx < 0) | (value_idx >= self.grid_sizes[who])):
            raise InvalidReportError(
                f"value_idx must be (B,) indices on the bidders' grids, got {value_idx}"
            )
        belief = np.asarray(belief, dtype=np.float64)
        if belief.ndim != 2 or belief.shape[0] != B or belief.shape[1] > self.m_max:
            raise InvalidReportError(
                f"belief must have shape ({B}, <= {self.m_max}), got {belief.shape}"
            )
        ph = np.broadcast_to(np.asarray(phase, dtype=np.int64), (B,))
        if np.any((ph < 0) | (ph >= self.n_phases)):
            raise InvalidReportError(
                f"phase must lie in 0..{self.n_phases - 1}, got {np.unique(ph)}"
            )
        obs = np.zeros((B, self.obs_dim), dtype=np.float32)
        rows = np.arange(B)
        obs[rows, value_idx] = 1.0
        obs[:, self.scaled_index] = self._grid_table[who, value_idx] * self._inv_top[who]
        start = self.belief_slice.start
        obs[:, start : start + belief.shape[1]] = belief
        roles = self.roles_slice.start
        for offset, flag in enumerate((is_informant, is_candidate, asked_belief)):
            obs[:, roles + offset] = np.broadcast_to(np.asarray(flag, dtype=bool), (B,))
        obs[:, self.acts_index] = np.broadcast_to(np.asarray(acts_now, dtype=bool), (B,))
        obs[rows, self.phase_slice.start + ph] = 1.0
        return obs

    def decode_obs(self, obs: np.ndarray) -> ObsParts:
        """Split observations ``(B, obs_dim)`` (or one ``(obs_dim,)``) into their parts."""
        o = np.asarray(obs, dtype=np.float64)
        if o.ndim == 1:
            o = o[None, :]
        if o.ndim != 2 or o.shape[1] != self.obs_dim:
            raise InvalidReportError(
                f"observations must have shape (B, {self.obs_dim}), got {np.shape(obs)}"
            )
        acts = o[:, self.acts_index : self.acts_index + 1]
        flags = np.concatenate([o[:, self.roles_slice], acts], axis=1)
        return ObsParts(
            value_idx=np.argmax(o[:, self.value_slice], axis=1),
            belief=o[:, self.belief_slice].copy(),
            flags=flags > 0.5,
            phase=np.argmax(o[:, self.phase_slice], axis=1),
        )

    # -- actions ------------------------------------------------------------------------

    def decode_valuation(self, action: np.ndarray, bidder: int | np.ndarray) -> np.ndarray:
        """Grid index ``(B,)`` of each action's valuation entry (see the module docstring)."""
        a = self._actions(action, 1)[:, 0]
        if not np.all(np.isfinite(a)):
            raise InvalidActionError(
                f"valuation entries must be finite, got {a[~np.isfinite(a)][:3]}"
            )
        K = self.grid_sizes[self.bidders(bidder, a.shape[0])]
        idx = np.rint((np.clip(a, VALUE_LOW, VALUE_HIGH) + 1.0) / 2.0 * (K - 1))
        return np.clip(idx, 0, K - 1).astype(np.int64)

    def encode_valuation(self, index: np.ndarray, bidder: int | np.ndarray) -> np.ndarray:
        """Valuation entry ``(B,)``: the centre of the interval that decodes to ``index``."""
        index = np.asarray(index, dtype=np.int64)
        if index.ndim != 1:
            raise InvalidReportError(f"index must have shape (B,), got {index.shape}")
        K = self.grid_sizes[self.bidders(bidder, index.shape[0])]
        if np.any((index < 0) | (index >= K)):
            bad = index[(index < 0) | (index >= K)][:3]
            raise InvalidReportError(f"grid indices {bad} are off the bidders' grids")
        span = np.maximum(K - 1, 1).astype(np.float64)
        lo = np.maximum(VALUE_LOW, 2.0 * (index - 0.5) / span - 1.0)
        hi = np.minimum(VALUE_HIGH, 2.0 * (index + 0.5) / span - 1.0)
        return np.where(K > 1, (lo + hi) / 2.0, 0.0)

    def decode_belief(
        self, action: np.ndarray, bidder: int | np.ndarray, floor: float = 0.0
    ) -> np.ndarray:
        """Belief reports from the logits: softmax of ``action[:, 1:1+m_i]``.

        Args:
            action: ``(B, >= 1 + m)`` actions.
            bidder: an int or ``(B,)``.
            floor: smallest probability of a decoded entry, in ``[0, 1 / m_max)``: each
                entry is raised to at least ``floor`` and the row renormalised, so
                ``floor > 0`` gives full support. The envs pass :data:`BELIEF_FLOOR`
                under a scoring rule unbounded below, else 0 (exact zeros).

        Returns ``(B, m_i)`` for an int ``bidder``; for one bidder per row, ``(B, m_max)``
        with zeros past each row's ``m_i``.
        """
        floor = real_param(floor, "belief floor", low=0.0, high=1.0 / self.m_max, high_open=True)
        scalar = np.ndim(bidder) == 0
        a = self._actions(action, 1)
        who = self.bidders(bidder, a.shape[0])
        width = int(self.belief_sizes[self.bidders(bidder, 1)[0]]) if scalar else self.m_max
        a = self._actions(a, 1 + width)
        logits = a[:, 1 : 1 + width]
        valid = np.arange(width)[None, :] < self.belief_sizes[who][:, None]
        if not np.all(np.isfinite(logits[valid])):
            bad = logits[valid & ~np.isfinite(logits)][:3]
            raise InvalidActionError(f"belief logits must be finite, got {bad}")
        z = np.where(valid, logits, -np.inf)
        with np.errstate(over="ignore", invalid="ignore"):
            # Shift by the row maximum: the largest entry becomes exp(0) = 1, nothing overflows.
            e = np.where(valid, np.exp(z - z.max(axis=1, keepdims=True)), 0.0)
        F = e / e.sum(axis=1, keepdims=True)
        if floor > 0:
            F = np.where(valid, np.maximum(F, floor), 0.0)
            F /= F.sum(axis=1, keepdims=True)
        return F

    def encode_belief(self, F: np.ndarray, bidder: int | np.ndarray) -> np.ndarray:
        """Logits ``(B, m_max)`` whose softmax is ``F``: ``log F``, zero mass to :data:`ZERO_LOGIT`.

        Args:
            F: ``(B, m_i)`` or zero-padded ``(B, m_max)`` distributions.
            bidder: an int or ``(B,)``.
        """
        F = np.asarray(F, dtype=np.float64)
        if F.ndim != 2 or F.shape[1] > self.m_max:
            raise InvalidReportError(f"F must have shape (B, <= {self.m_max}), got {F.shape}")
        who = self.bidders(bidder, F.shape[0])
        pad = np.zeros((F.shape[0], self.m_max))
        pad[:, : F.shape[1]] = F
        valid = np.arange(self.m_max)[None, :] < self.belief_sizes[who][:, None]
        if np.any(pad[~valid] != 0):
            raise InvalidReportError("F puts mass past a bidder's belief length; pad with zeros")
        check_distribution(pad, what="belief to encode")
        with np.errstate(divide="ignore"):
            logits = np.where(pad > 0, np.log(np.where(pad > 0, pad, 1.0)), ZERO_LOGIT)
        return np.where(valid, logits, 0.0)

    # -- spaces (gymnasium imported here only) ------------------------------------------

    def observation_space(self) -> spaces.Box:
        """``Box(0, 1, (obs_dim,), float32)``: a new object on every call."""
        from gymnasium import spaces

        return spaces.Box(0.0, 1.0, shape=(self.obs_dim,), dtype=np.float32)

    def action_space(self, valuation_action: str = "box") -> spaces.Space:
        """A new action space object.

        Args:
            valuation_action: ``"box"``: ``Box`` of ``act_dim`` with the sampling ranges of
                the module docstring. ``"discrete"``: ``Dict(valuation=Discrete(k_max),
                belief=Box(-10, 10, (m_max,)))``; the integer is the grid index, clipped
                to ``K_i - 1`` for a bidder with a smaller grid.
        """
        from gymnasium import spaces

        logits = spaces.Box(LOGIT_LOW, LOGIT_HIGH, shape=(self.m_max,), dtype=np.float32)
        if valuation_action == "discrete":
            return spaces.Dict({"valuation": spaces.Discrete(self.k_max), "belief": logits})
        low = np.concatenate([[VALUE_LOW], np.full(self.m_max, LOGIT_LOW)]).astype(np.float32)
        high = np.concatenate([[VALUE_HIGH], np.full(self.m_max, LOGIT_HIGH)]).astype(np.float32)
        return spaces.Box(low, high, dtype=np.float32)

    def __repr__(self) -> str:
        return (
            f"EnvLayout(n={self.n}, k_max={self.k_max}, m_max={self.m_max}, "
            f"obs_dim={self.obs_dim})"
        )


def truthful_action(
    layout: EnvLayout, obs: np.ndarray, bidder: int | np.ndarray | None = None
) -> np.ndarray:
    """Truthful actions ``(B, act_dim)`` float64: report the observed value and belief.

    Args:
        layout: the env's layout.
        obs: ``(B, obs_dim)`` observations.
        bidder: an int or ``(B,)``; may be omitted when all grids are equal.
    """
    parts = layout.decode_obs(obs)
    B = parts.value_idx.shape[0]
    who = layout.bidders(bidder, B)
    valid = np.arange(layout.m_max)[None, :] < layout.belief_sizes[who][:, None]
    F = np.where(valid, parts.belief, 0.0)
    # Observations hold float32 beliefs: renormalise the rounding away.
    F = F / F.sum(axis=1, keepdims=True)
    out = np.empty((B, layout.act_dim))
    out[:, 0] = layout.encode_valuation(parts.value_idx, who)
    out[:, 1:] = layout.encode_belief(F, who)
    return out
