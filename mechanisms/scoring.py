"""Scoring rules for belief reports.

A scoring rule ``S(w, F)`` pays a forecaster who reported the distribution ``F`` when
outcome ``w`` occurs. It is *strictly proper* when reporting the true distribution is
the unique way to maximise the expected score. Rules here work on batches: ``F`` has
shape ``(B, m)`` (B reports over m outcomes) and outcomes ``w`` shape ``(B,)``.

Declared facts: :attr:`ScoringRule.bounds` (the range of the score, ``-inf`` where it
is unbounded), :attr:`ScoringRule.strictly_proper`.

The mechanisms pay a reward ``reward(w, F, eps)``: for a bounded rule the score
rescaled affinely into ``[0, eps]``; for the logarithmic rule ``eps * (a + b log F(w))``,
which is unbounded below.
"""

from __future__ import annotations

import numpy as np

from crowdauction.errors import InvalidReportError, UnknownNameError
from crowdauction.mechanisms.checks import real_param

__all__ = [
    "ScoringRule",
    "Brier",
    "Logarithmic",
    "Spherical",
    "LinearScore",
    "SIMPLEX_TOLERANCE",
    "check_distribution",
    "get_scoring_rule",
    "SCORING_RULES",
]

#: Belief reports must sum to one within this tolerance.
SIMPLEX_TOLERANCE = 1e-6


def check_distribution(F: np.ndarray, what: str = "belief report") -> np.ndarray:
    """Validate a batch of distributions ``(..., m)``: finite, non-negative, summing to one."""
    F = np.asarray(F, dtype=np.float64)
    if F.ndim < 1 or F.shape[-1] == 0:
        raise InvalidReportError(f"{what} must have a last axis over outcomes, got shape {F.shape}")
    if not np.all(np.isfinite(F)):
        raise InvalidReportError(
            f"{what} has non-finite entries; a distribution needs finite probabilities"
        )
    if np.any(F < -1e-12):
        raise InvalidReportError(
            f"{what} has negative entries (smallest {F.min():.3g}); it must lie on the simplex"
        )
    s = F.sum(axis=-1)
    if np.any(np.abs(s - 1.0) > SIMPLEX_TOLERANCE):
        bad = s[np.abs(s - 1.0) > SIMPLEX_TOLERANCE]
        raise InvalidReportError(
            f"{what} sums to {bad.ravel()[:3].tolist()}, expected 1 within {SIMPLEX_TOLERANCE:g}; "
            "normalise it (a softmax maps any real vector onto the simplex)"
        )
    return np.clip(F, 0.0, None)


class ScoringRule:
    """Base class: subclasses define :meth:`score_all`."""

    name: str = "rule"
    bounds: tuple[float, float] = (-np.inf, np.inf)
    strictly_proper: bool = True

    def score_all(self, F: np.ndarray) -> np.ndarray:
        """Score of report ``F`` ``(B, m)`` for every possible outcome: ``(B, m)``."""
        raise NotImplementedError

    def score(self, w: np.ndarray, F: np.ndarray) -> np.ndarray:
        """Score of report ``F`` ``(B, m)`` when outcome ``w`` ``(B,)`` occurs: ``(B,)``."""
        F = np.asarray(F, dtype=np.float64)
        w = np.asarray(w, dtype=np.int64)
        return np.take_along_axis(self.score_all(F), w[..., None], axis=-1)[..., 0]

    def expected_score(self, F: np.ndarray, G: np.ndarray) -> np.ndarray:
        """Expected score of reporting ``F`` when the outcome follows ``G``: ``(B,)``.

        Outcomes ``G`` gives probability zero contribute nothing, even where the score
        is minus infinity; an outcome ``G`` deems possible that ``F`` scores at minus
        infinity makes the expectation minus infinity.
        """
        S = self.score_all(np.asarray(F, dtype=np.float64))
        G = np.asarray(G, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            terms = np.where(G > 0, G * S, 0.0)
        return terms.sum(axis=-1)

    @property
    def bounded(self) -> bool:
        return bool(np.isfinite(self.bounds[0]) and np.isfinite(self.bounds[1]))

    def reward(self, w: np.ndarray, F: np.ndarray, eps: float) -> np.ndarray:
        """Payment to the forecaster, in ``[0, eps]`` for a bounded rule."""
        lo, hi = self.bounds
        return eps * (self.score(w, F) - lo) / (hi - lo)

    def expected_reward(self, F: np.ndarray, G: np.ndarray, eps: float) -> np.ndarray:
        lo, hi = self.bounds
        return eps * (self.expected_score(F, G) - lo) / (hi - lo)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Brier(ScoringRule):
    """Brier's quadratic rule ``2 F(w) - sum_s F(s)^2 - 1``, in ``[-2, 0]``, strictly proper.

    Its expected score is ``sum G^2 - 1 - ||G - F||^2``: misreporting costs exactly the
    squared distance to the truth.
    """

    name = "brier"
    bounds = (-2.0, 0.0)

    def score_all(self, F: np.ndarray) -> np.ndarray:
        F = np.asarray(F, dtype=np.float64)
        return 2.0 * F - (F * F).sum(axis=-1, keepdims=True) - 1.0


class Logarithmic(ScoringRule):
    """Good's logarithmic rule ``a + b log F(w)`` with ``b > 0``; unbounded below.

    A report with zero mass on the realised outcome scores minus infinity. The reward is
    ``eps * (a + b log F(w))``; it is positive in expectation for suitable ``a, b`` but a
    truthful forecaster can still end with a negative realised reward. Through the
    mechanism API a report with zeros can therefore earn a reward (and make a payment)
    of minus infinity: that is the rule, not an error. The envs floor every decoded
    belief at :data:`crowdauction.envs.layout.BELIEF_FLOOR` under this rule, so their
    rewards stay finite.

    Args:
        a: the constant term, a finite real.
        b: the scale of the log, a positive finite real.
    """

    name = "log"
    strictly_proper = True

    def __init__(self, a: float = 1.0, b: float = 0.1):
        self.a = real_param(a, "the logarithmic rule's constant a")
        self.b = real_param(b, "the logarithmic rule's scale b", low=0.0, low_open=True)
        self.bounds = (-np.inf, self.a)

    def score_all(self, F: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return self.a + self.b * np.log(np.asarray(F, dtype=np.float64))

    def reward(self, w: np.ndarray, F: np.ndarray, eps: float) -> np.ndarray:
        return eps * self.score(w, F)

    def expected_reward(self, F: np.ndarray, G: np.ndarray, eps: float) -> np.ndarray:
        return eps * self.expected_score(F, G)

    def __repr__(self) -> str:
        return f"Logarithmic(a={self.a}, b={self.b})"


class Spherical(ScoringRule):
    """The spherical rule ``F(w) / ||F||_2``, in ``[0, 1]``, strictly proper."""

    name = "spherical"
    bounds = (0.0, 1.0)

    def score_all(self, F: np.ndarray) -> np.ndarray:
        F = np.asarray(F, dtype=np.float64)
        return F / np.linalg.norm(F, axis=-1, keepdims=True)


class LinearScore(ScoringRule):
    """The improper rule ``F(w)``: it rewards putting all mass on the likeliest outcome.

    It is here as a negative control: a mechanism paying it is not belief-truthful,
    and the incentive verifier must say so.
    """

    name = "linear"
    bounds = (0.0, 1.0)
    strictly_proper = False

    def score_all(self, F: np.ndarray) -> np.ndarray:
        return np.asarray(F, dtype=np.float64).copy()


SCORING_RULES: dict[str, type[ScoringRule]] = {
    "brier": Brier,
    "log": Logarithmic,
    "spherical": Spherical,
    "linear": LinearScore,
}


def get_scoring_rule(rule: str | ScoringRule) -> ScoringRule:
    """Resolve a rule by name (``brier``, ``log``, ``spherical``, ``linear``), or pass it on."""
    if isinstance(rule, ScoringRule):
        return rule
    try:
        return SCORING_RULES[rule]()
    except KeyError:
        raise UnknownNameError(
            f"unknown scoring rule {rule!r}; expected one of {sorted(SCORING_RULES)}"
        ) from None
