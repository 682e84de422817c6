"""The crowdsourced mechanisms of Azar, Chen and Micali, "Crowdsourced Bayesian Auctions".

The seller knows nothing about the prior; the bidders know something about each other.
Both mechanisms ask some bidders for a *belief report* (a distribution over the other
bidders' profiles) and pay for it with a proper scoring rule evaluated on the others'
valuation reports, so that once valuations are reported truthfully, reporting the true
belief is strictly dominant.

* :class:`RandomInformant` is the paper's mechanism M (Section 3): a uniformly random
  informant is removed from the auction, reports a distribution over the others, and
  the others play a classical dominant-strategy-truthful mechanism designed for that
  distribution. Revenue is at least ``(1 - 1/n) OPT - eps`` under truthful play.
* :class:`CrowdsourcedLookahead` is the paper's mechanism L (Section 4): everybody
  reports a value; everybody but the highest reporter reports a belief; the beliefs
  are aggregated (AGG) into the distribution that prices the highest reporter in
  Ronen's 1-lookahead auction, mixed with the Lemma 1 lottery. Revenue is at least
  ``(1 - delta)/2 OPT - eps``.

Belief reports are flat: bidder ``i``'s report is a vector over the others' profiles in
C order of their grids (``space.others_size(i)`` entries), as in
:mod:`crowdauction.mechanisms.knowledge`. In L the report of bidder ``j`` is a
distribution over full profiles whose ``j``-th coordinate is ``j``'s reported value;
that coordinate is implied, so the report carries only the others' part.

Batched: valuation reports ``(B, n)``; beliefs a sequence of ``n`` arrays ``(B, m_i)``
(an entry may be ``None`` for a bidder who is never asked).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from crowdauction.errors import InvalidParameterError, InvalidReportError
from crowdauction.mechanisms.checks import real_param
from crowdauction.mechanisms.classical import (
    Outcome,
    Realised,
    Strictified,
    check_reports,
)
from crowdauction.mechanisms.designs import Design, make_design
from crowdauction.mechanisms.knowledge import Knowledge
from crowdauction.mechanisms.lookahead import candidate_and_floor, lookahead_price
from crowdauction.mechanisms.prior import Prior
from crowdauction.mechanisms.scoring import ScoringRule, check_distribution, get_scoring_rule
from crowdauction.mechanisms.typespace import TypeSpace

__all__ = ["CrowdsourcedMechanism", "RandomInformant", "CrowdsourcedLookahead"]

Beliefs = Sequence[np.ndarray | None]


class CrowdsourcedMechanism:
    """Base class: valuation reports plus belief reports in, outcome out.

    Attributes:
        space: the type space (reports must lie on its grids).
        scoring: the scoring rule paying belief reports.
        eps: the scale of belief rewards.

    An ``eps`` above the largest grid value is legal but warns: belief rewards can then
    exceed anything the auction earns, and revenue can be negative.
    """

    name = "crowdsourced"
    truthful = True

    def __init__(self, space: TypeSpace, scoring: str | ScoringRule, eps: float):
        if not isinstance(space, TypeSpace):
            raise InvalidParameterError(
                f"a crowdsourced mechanism needs a TypeSpace, got {type(space).__name__}"
            )
        if space.n < 2:
            raise InvalidParameterError(
                f"a crowdsourced mechanism needs at least two bidders, got n={space.n}: "
                "with one bidder there is nobody to report about"
            )
        self.eps = real_param(
            eps,
            "eps (the belief-reward scale)",
            low=0.0,
            low_open=True,
            hint="pass a small positive number such as 0.05",
        )
        self.space = space
        self.scoring = get_scoring_rule(scoring)
        top = int(space.all_values.max())
        if self.eps > top:
            warnings.warn(
                f"eps={self.eps:g} exceeds the largest grid value {top}: belief rewards can "
                "exceed what the auction earns, so revenue can be negative; eps is meant to "
                "be small next to the values",
                UserWarning,
                stacklevel=3,
            )

    @property
    def n(self) -> int:
        return self.space.n

    def belief_size(self, i: int) -> int:
        """Length of bidder ``i``'s flat belief report."""
        return self.space.others_size(i)

    def _belief(self, beliefs: Beliefs, i: int, rows: np.ndarray, B: int) -> np.ndarray:
        if len(beliefs) != self.n:
            raise InvalidReportError(
                f"expected {self.n} belief arrays (one per bidder), got {len(beliefs)}"
            )
        F = beliefs[i]
        if F is None:
            raise InvalidReportError(f"bidder {i} is asked for a belief report but none was given")
        F = np.asarray(F, dtype=np.float64)
        m = self.belief_size(i)
        if F.shape != (B, m):
            raise InvalidReportError(
                f"belief reports of bidder {i} have shape {F.shape}, expected ({B}, {m}): "
                "one distribution over the others' profiles per auction"
            )
        return check_distribution(F[rows], what=f"belief report of bidder {i}")

    def outcome(self, reports: np.ndarray, beliefs: Beliefs) -> Outcome:
        raise NotImplementedError

    def sample(self, reports: np.ndarray, beliefs: Beliefs, rng: np.random.Generator) -> Realised:
        raise NotImplementedError

    def asks_belief(self, reports: np.ndarray, informant: np.ndarray | None = None) -> np.ndarray:
        """``(B, n)`` bool: who is asked for a belief report, given the valuation reports."""
        raise NotImplementedError

    def truthful_beliefs(self, knowledge: Knowledge) -> list[np.ndarray]:
        """Per bidder ``(C_i, m_i)``: the belief a truthful bidder holds when asked.

        It is the knowledge-cell belief updated on whatever the mechanism reveals by
        asking; M reveals nothing (the informant is drawn independently of values).
        """
        return [b.copy() for b in knowledge.beliefs]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, eps={self.eps})"


class RandomInformant(CrowdsourcedMechanism):
    """Mechanism M: a random informant's belief designs the auction for the others.

    1. An informant ``i`` is drawn uniformly at random.
    2. ``i`` reports a distribution ``F`` over the others' profiles.
    3. Every other bidder reports a value.
    4. The classical mechanism ``design.build(F)`` runs on the others' reports.
    5. ``i`` gets nothing and is paid ``scoring.reward(v_-i, F, eps)`` (for Brier,
       ``eps/2 * (2 + BSR)``, in ``[0, eps]``).

    The design must be dominant-strategy truthful for *every* distribution and on the
    whole grid, since the informant may report anything.

    Args:
        space: the type space.
        design: the classical design (a :class:`Design` or a registered name); default
            the LP-optimal auction strictified with ``delta``.
        scoring: scoring rule name or instance; default Brier.
        eps: reward scale.
        delta: lottery probability used when ``design`` is given by name.
    """

    name = "M"

    def __init__(
        self,
        space: TypeSpace,
        design: str | Design = "optimal",
        scoring: str | ScoringRule = "brier",
        eps: float = 0.05,
        delta: float = 0.05,
    ):
        super().__init__(space, scoring, eps)
        self.design = make_design(design, delta=delta)
        self.truthful = self.design.truthful and self.scoring.strictly_proper

    def asks_belief(self, reports: np.ndarray, informant: np.ndarray | None = None) -> np.ndarray:
        if informant is None:
            raise InvalidReportError("mechanism M asks only the informant: pass informant=")
        B = np.asarray(reports).shape[0]
        informant = self._informant(informant, B)
        mask = np.zeros((B, self.n), dtype=bool)
        mask[np.arange(B), informant] = True
        return mask

    def _informant(self, informant: np.ndarray, B: int) -> np.ndarray:
        """Validated informants: ``(B,)`` integer bidder indices (floats are refused, not cut)."""
        inf = np.asarray(informant)
        if inf.dtype.kind not in "iu" or inf.shape != (B,):
            raise InvalidReportError(
                f"informant must be ({B},) integer bidder indices in 0..{self.n - 1}, got "
                f"{inf.dtype} array of shape {inf.shape}: {inf.ravel()[:5].tolist()}"
            )
        if np.any((inf < 0) | (inf >= self.n)):
            bad = inf[(inf < 0) | (inf >= self.n)][:3].tolist()
            raise InvalidReportError(
                f"informant must be ({B},) integer bidder indices in 0..{self.n - 1}, got {bad}"
            )
        return inf.astype(np.int64)

    def draw_informant(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """Uniform informants for ``size`` auctions."""
        return rng.integers(0, self.n, size=size)

    def _run(
        self,
        reports: np.ndarray,
        beliefs: Beliefs,
        informant: np.ndarray,
        rng: np.random.Generator | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Allocation (expected or realised), payments, rewards and, when sampled, whether
        the inner mechanism's lottery fired, for given informants."""
        r = check_reports(reports, self.n)
        B = r.shape[0]
        informant = self._informant(informant, B)
        alloc = np.zeros((B, self.n))
        pay = np.zeros((B, self.n))
        reward = np.zeros(B)
        lottery = np.zeros(B, dtype=bool) if rng is not None else None
        for i in range(self.n):
            rows = np.nonzero(informant == i)[0]
            if rows.size == 0:
                continue
            others = [j for j in range(self.n) if j != i]
            sub_space = self.space.others(i)
            sub_idx = sub_space.indices_of(r[rows][:, others])
            F = self._belief(beliefs, i, rows, B)
            w = sub_space.flat_index(sub_idx)
            reward[rows] = self.scoring.reward(w, F, self.eps)
            # Group auctions that share a belief report: one design per distribution,
            # built in one batch (the LP-optimal design solves them in one LP).
            uniq, inv = np.unique(F, axis=0, return_inverse=True)
            inv = inv.reshape(-1)
            order = np.argsort(inv, kind="stable")
            groups = np.split(rows[order], np.cumsum(np.bincount(inv, minlength=len(uniq)))[:-1])
            inners = self.design.build_many(
                [Prior(u.reshape(sub_space.shape), sub_space) for u in uniq]
            )
            for g, inner in zip(groups, inners):
                sub_r = r[g][:, others]
                if rng is None:
                    out = inner.outcome(sub_r)
                    a, p = out.allocation, out.payments
                else:
                    real = inner.sample(sub_r, rng)
                    a, p = real.served.astype(np.float64), real.payments
                    if "lottery" in real.extra:
                        lottery[g] = real.extra["lottery"]
                alloc[np.ix_(g, others)] = a
                pay[np.ix_(g, others)] = p
            pay[rows, i] = -reward[rows]
        return alloc, pay, reward, lottery

    def outcome(
        self, reports: np.ndarray, beliefs: Beliefs, informant: np.ndarray | None = None
    ) -> Outcome:
        """Exact outcome; with ``informant=None`` also averaged over the informant draw."""
        r = check_reports(reports, self.n)
        B = r.shape[0]
        if informant is not None:
            a, p, rew, _ = self._run(r, beliefs, informant, None)
            return Outcome(a, p, {"informant": np.asarray(informant), "reward": rew})
        alloc = np.zeros((B, self.n))
        pay = np.zeros((B, self.n))
        for i in range(self.n):
            a, p, _, _ = self._run(r, beliefs, np.full(B, i), None)
            alloc += a / self.n
            pay += p / self.n
        return Outcome(alloc, pay)

    def sample(
        self,
        reports: np.ndarray,
        beliefs: Beliefs,
        rng: np.random.Generator,
        informant: np.ndarray | None = None,
    ) -> Realised:
        """One realised outcome per auction (informant drawn with ``rng`` unless given)."""
        B = np.asarray(reports).shape[0]
        if informant is None:
            informant = self.draw_informant(B, rng)
        served, pay, rew, lottery = self._run(reports, beliefs, informant, rng)
        extra = {"informant": np.asarray(informant), "reward": rew}
        if self.design.delta > 0:  # the inner designs are strictified
            extra["lottery"] = lottery
        return Realised(served > 0, pay, extra)


class CrowdsourcedLookahead(CrowdsourcedMechanism):
    """Mechanism L: the crowdsourced 1-lookahead auction (single good).

    1. Every bidder reports a value; the highest reporter ``i*`` (lowest index among
       ties) is the candidate winner.
    2. Every ``j != i*`` reports a distribution over full profiles whose ``j``-th
       coordinate is its own reported value (flat over the others' profiles here).
    3. AGG: the lowest-indexed reporter's distribution conditioned on the intersection
       of all reports' supports (unconditioned when they do not intersect).
    4. ``i*`` is offered the 1-lookahead price under the aggregate: the ``p`` maximising
       ``p Pr(theta_i* >= p | theta_-i* = v_-i*, theta_i* >= every other report)``, or
       the highest other report when that event has probability zero.
    5. With probability ``delta`` the Lemma 1 lottery replaces step 4.
    6. Every ``j != i*`` is paid ``scoring.reward(v_-j, F_j, eps / n)`` (for Brier
       ``eps/(2n) (2 + BSR)``); ``i*`` gets a bonus ``eps``.

    The bonus can pay a bidder to overbid into the candidate role without buying; the
    lottery deters that only while ``eps`` is below its strictness margin
    (:meth:`strictness_margin`). A larger ``eps`` is legal but warns: L is then not
    valuation-truthful, and the incentive verifier finds the violation.

    Args:
        space: the type space.
        scoring: scoring rule; default Brier.
        eps: reward scale.
        delta: lottery probability in ``(0, 1)``.
        eps_prime: lottery discount in ``(0, 1)``.
    """

    name = "L"

    def __init__(
        self,
        space: TypeSpace,
        scoring: str | ScoringRule = "brier",
        eps: float = 0.001,
        delta: float = 0.05,
        eps_prime: float = 0.5,
    ):
        super().__init__(space, scoring, eps)
        self.delta = real_param(
            delta,
            "L's lottery probability delta",
            low=0.0,
            high=1.0,
            low_open=True,
            high_open=True,
        )
        self._lottery = Strictified(_NoSale(space), delta, eps_prime=eps_prime, space=space)
        self.truthful = self.scoring.strictly_proper
        if self.eps >= self.strictness_margin():
            warnings.warn(
                f"L with eps={self.eps} >= the lottery's strictness margin "
                f"{self.strictness_margin():.3g}: the candidate bonus can make overbidding pay; "
                "lower eps or raise delta for a valuation-truthful L",
                UserWarning,
                stacklevel=2,
            )

    def truthful_beliefs(self, knowledge: Knowledge) -> list[np.ndarray]:
        """Cell beliefs conditioned on not being the candidate winner (truthful values).

        L asks only the bidders who are not the highest reporter, so being asked tells
        bidder ``j`` that some other bidder reported at least its value (more, for a
        lower index, under the tie rule). A proper scoring rule rewards the belief that
        includes this news; it leaves the price unchanged, because AGG conditions on the
        candidate's value exceeding every other report anyway. Cells in which the bidder
        is always the candidate keep their unconditioned belief (they are never asked).
        """
        out = []
        space = self.space
        for j in range(self.n):
            others = [k for k in range(self.n) if k != j]
            prof = space.others(j).profile_values  # (m_j, n-1)
            b = knowledge.beliefs[j].copy()
            v = space.grids[j][knowledge.cell_value[j]]  # (C_j,)
            lower = np.array([k < j for k in others])
            beaten = np.where(
                lower[None, None, :], prof[None] >= v[:, None, None], prof[None] > v[:, None, None]
            )
            asked = beaten.any(axis=2)  # (C_j, m_j)
            cond = b * asked
            mass = cond.sum(axis=1, keepdims=True)
            out.append(np.where(mass > 0, cond / np.where(mass > 0, mass, 1.0), b))
        return out

    def strictness_margin(self) -> float:
        """Expected loss the lottery inflicts on any valuation misreport (a lower bound)."""
        return self._lottery.strictness_margin(self.n)

    def asks_belief(self, reports: np.ndarray, informant: np.ndarray | None = None) -> np.ndarray:
        r = check_reports(reports, self.n).astype(np.float64)
        star, _, _ = candidate_and_floor(r)
        mask = np.ones(r.shape, dtype=bool)
        mask[np.arange(r.shape[0]), star] = False
        return mask

    def aggregate_weights(
        self, idx: np.ndarray, star: np.ndarray, beliefs: Beliefs, B: int
    ) -> np.ndarray:
        """AGG read at the others' reports: ``(B, K_max)`` mass over ``i*``'s grid values.

        Equivalent to :func:`~crowdauction.mechanisms.knowledge.agg` on the full-profile
        reports followed by conditioning on ``theta_-i* = v_-i*``, without building the
        full tables.
        """
        n = self.n
        kmax = max(self.space.shape)
        out = np.zeros((B, kmax))
        for i in range(n):
            rows = np.nonzero(star == i)[0]
            if rows.size == 0:
                continue
            K = self.space.shape[i]
            slices = []
            for j in range(n):
                if j == i:
                    continue
                F = self._belief(beliefs, j, rows, B).reshape(
                    (rows.size, *self.space.others_shape(j))
                )
                # Axis of bidder i inside j's others-profile, and the fixed others.
                rest = [b for b in range(n) if b != j]
                pos = rest.index(i)
                Fi = np.moveaxis(F, 1 + pos, -1)  # (rows, ..., K_i)
                fixed = tuple(idx[rows][:, b] for b in rest if b != i)
                slices.append(Fi[(np.arange(rows.size), *fixed)])  # (rows, K_i)
            first = slices[0]  # the lowest-indexed reporter
            inter = np.all(np.stack(slices) > 0, axis=0)
            has = inter.any(axis=1, keepdims=True)
            out[rows, :K] = np.where(has, np.where(inter, first, 0.0), first)
        return out

    def _price(
        self, r: np.ndarray, beliefs: Beliefs
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        idx = self.space.indices_of(r)
        rf = r.astype(np.float64)
        B = rf.shape[0]
        star, floor, strict = candidate_and_floor(rf)
        w = self.aggregate_weights(idx, star, beliefs, B)
        price = np.zeros(B)
        informed = np.zeros(B, dtype=bool)
        for i in range(self.n):
            rows = np.nonzero(star == i)[0]
            if rows.size:
                K = self.space.shape[i]
                price[rows], informed[rows] = lookahead_price(
                    w[rows, :K], self.space.grids[i], floor[rows], strict[rows]
                )
        return idx, star, price, informed

    def _rewards(self, idx: np.ndarray, star: np.ndarray, beliefs: Beliefs) -> np.ndarray:
        B = idx.shape[0]
        rew = np.zeros((B, self.n))
        for j in range(self.n):
            rows = np.nonzero(star != j)[0]
            if rows.size == 0:
                continue
            F = self._belief(beliefs, j, rows, B)
            w = self.space.others_flat_index(j, idx[rows])
            rew[rows, j] = self.scoring.reward(w, F, self.eps / self.n)
        rew[np.arange(B), star] = self.eps
        return rew

    def outcome(self, reports: np.ndarray, beliefs: Beliefs) -> Outcome:
        r = check_reports(reports, self.n)
        B = r.shape[0]
        idx, star, price, informed = self._price(r, beliefs)
        rows = np.arange(B)
        sells = r[rows, star] >= price
        look_alloc = np.zeros((B, self.n))
        look_alloc[rows, star] = sells
        lot = self._lottery.lottery(r)
        d = self.delta
        rew = self._rewards(idx, star, beliefs)
        alloc = (1 - d) * look_alloc + d * lot.allocation
        pay = (1 - d) * look_alloc * price[:, None] + d * lot.payments - rew
        return Outcome(
            alloc, pay, {"candidate": star, "price": price, "informed": informed, "reward": rew}
        )

    def sample(self, reports: np.ndarray, beliefs: Beliefs, rng: np.random.Generator) -> Realised:
        r = check_reports(reports, self.n)
        B = r.shape[0]
        idx, star, price, informed = self._price(r, beliefs)
        rows = np.arange(B)
        look = np.zeros((B, self.n), dtype=bool)
        look[rows, star] = r[rows, star] >= price
        look_pay = look * price[:, None]
        lot = self._lottery.sample(r, rng)
        fired = lot.extra["lottery"]
        served = np.where(fired[:, None], lot.served, look)
        rew = self._rewards(idx, star, beliefs)
        pay = np.where(fired[:, None], lot.payments, look_pay) - rew
        extra = {
            "candidate": star,
            "price": price,
            "informed": informed,
            "reward": rew,
            "lottery": fired,
        }
        return Realised(served, pay, extra)


class _NoSale:
    """The empty mechanism: the base of L's lottery when only the lottery is wanted."""

    name = "no_sale"
    truthful = True

    def __init__(self, space: TypeSpace):
        from crowdauction.mechanisms.typespace import SingleGood

        self.space = space
        self.setting = SingleGood()

    def outcome(self, reports: np.ndarray) -> Outcome:
        z = np.zeros(np.shape(reports))
        return Outcome(z, z.copy())

    def sample(self, reports: np.ndarray, rng: np.random.Generator) -> Realised:
        z = np.zeros(np.shape(reports))
        return Realised(z > 0, z.copy())
