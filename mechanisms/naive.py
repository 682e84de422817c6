"""The naive common-prior mechanism of the paper's Appendix F, and why it fails.

Suppose the prior ``D`` is common knowledge among the bidders but unknown to the
seller. A tempting way to learn it: ask *every* bidder to report the whole prior; if
all reports agree, run the optimal auction for the reported distribution on the
valuation reports; otherwise fine everybody and stop. Truthful reporting is an
equilibrium, since a lone deviator only triggers the fine. But so is *every* profile in
which all bidders report the same distribution ``F``, true or not, and the bidders may
well prefer a common lie (a distribution that makes the auction cheap for them). The
paper (Azar, Chen and Micali, "Crowdsourced Bayesian Auctions") contrasts this
equilibrium-selection problem with its mechanism M, where a proper scoring rule makes
the truthful belief report strictly dominant once valuations are truthful.

Belief reports here are distributions over *full* profiles (``space.size`` entries, C
order of the prior's table), not over the others' profiles as in M and L, and nobody
is paid for them: the library's best-response agent, which assumes that a belief
report only moves its reporter's scoring reward, does not apply to this mechanism.
"""

from __future__ import annotations

import numpy as np

from crowdauction.errors import InvalidParameterError
from crowdauction.mechanisms.checks import real_param
from crowdauction.mechanisms.classical import Outcome, Realised, check_reports
from crowdauction.mechanisms.crowdsourced import Beliefs, CrowdsourcedMechanism
from crowdauction.mechanisms.designs import Design, make_design
from crowdauction.mechanisms.knowledge import Knowledge
from crowdauction.mechanisms.prior import Prior
from crowdauction.mechanisms.typespace import TypeSpace

__all__ = ["NaiveCommonPrior", "AGREEMENT_TOLERANCE"]

#: Belief reports whose entries differ by at most this much count as agreeing.
AGREEMENT_TOLERANCE = 1e-9


class NaiveCommonPrior(CrowdsourcedMechanism):
    """Everybody reports the prior; used if all agree, fines otherwise.

    1. Every bidder reports a value and a distribution over full profiles.
    2. If every distribution equals the first (within ``tol``), run
       ``design.build(F)`` on all ``n`` valuation reports.
    3. Otherwise nobody is served and every bidder pays ``fine``.

    Args:
        space: the type space.
        design: the classical design run on an agreed distribution (a :class:`Design`
            or a registered name); default the LP-optimal auction.
        fine: what each bidder pays on disagreement; default ten times the largest
            grid value.
        delta: lottery probability when ``design`` is given by name.
        tol: agreement tolerance.
    """

    name = "naive"

    def __init__(
        self,
        space: TypeSpace,
        design: str | Design = "optimal",
        fine: float | None = None,
        delta: float = 0.0,
        tol: float = AGREEMENT_TOLERANCE,
    ):
        # Not the base initialiser: nobody is paid by a scoring rule here.
        if not isinstance(space, TypeSpace):
            raise InvalidParameterError(
                f"the naive mechanism needs a TypeSpace, got {type(space).__name__}"
            )
        if space.n < 2:
            raise InvalidParameterError(
                f"the naive mechanism needs at least two bidders, got n={space.n}"
            )
        self.space = space
        self.design = make_design(design, delta=delta)
        if fine is None:
            fine = 10.0 * float(space.all_values.max())
        self.fine = real_param(fine, "the disagreement fine", low=0.0, low_open=True)
        self.tol = real_param(tol, "the agreement tolerance", low=0.0)
        self.eps = 0.0
        self.truthful = False  # every common report is an equilibrium, not only the truth

    def belief_size(self, i: int) -> int:
        """Every bidder reports a distribution over full profiles."""
        return self.space.size

    def asks_belief(self, reports: np.ndarray, informant: np.ndarray | None = None) -> np.ndarray:
        return np.ones(np.asarray(reports).shape, dtype=bool)

    def truthful_beliefs(self, knowledge: Knowledge) -> list[np.ndarray]:
        """Per bidder ``(C_i, space.size)``: the prior itself, in every cell."""
        flat = knowledge.prior.table.ravel()
        return [np.tile(flat, (knowledge.num_cells(i), 1)) for i in range(self.n)]

    def agreement(self, beliefs: Beliefs, B: int) -> np.ndarray:
        """``(B,)`` bool: whether all belief reports agree in each auction."""
        rows = np.arange(B)
        F = [self._belief(beliefs, i, rows, B) for i in range(self.n)]
        return np.all([np.abs(f - F[0]).max(axis=1) <= self.tol for f in F[1:]], axis=0)

    def _run(
        self, reports: np.ndarray, beliefs: Beliefs, rng: np.random.Generator | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r = check_reports(reports, self.n)
        B = r.shape[0]
        agree = self.agreement(beliefs, B)
        alloc = np.zeros((B, self.n))
        pay = np.full((B, self.n), self.fine)
        rows = np.nonzero(agree)[0]
        if rows.size:
            # Reports are validated by agreement(); group equal distributions.
            F = np.asarray(beliefs[0], dtype=np.float64)[rows]
            uniq, inv = np.unique(F, axis=0, return_inverse=True)
            inv = inv.reshape(-1)
            for u in range(uniq.shape[0]):
                g = rows[inv == u]
                table = np.clip(uniq[u], 0.0, None)
                agreed = Prior((table / table.sum()).reshape(self.space.shape), self.space)
                inner = self.design.build(agreed)
                if rng is None:
                    out = inner.outcome(r[g])
                    alloc[g], pay[g] = out.allocation, out.payments
                else:
                    real = inner.sample(r[g], rng)
                    alloc[g], pay[g] = real.served.astype(np.float64), real.payments
        return alloc, pay, agree

    def outcome(self, reports: np.ndarray, beliefs: Beliefs) -> Outcome:
        alloc, pay, agree = self._run(reports, beliefs, None)
        return Outcome(alloc, pay, {"agree": agree})

    def sample(self, reports: np.ndarray, beliefs: Beliefs, rng: np.random.Generator) -> Realised:
        alloc, pay, agree = self._run(reports, beliefs, rng)
        return Realised(alloc > 0, pay, {"agree": agree})
