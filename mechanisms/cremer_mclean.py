"""Cremer and McLean's full-surplus extraction for correlated priors.

When values are correlated, a seller who knows the prior can make every bidder bet on
the others' reports. Cremer and McLean ("Optimal selling strategies under uncertainty
for a discriminating monopolist when demands are interdependent", Econometrica 1985)
run an efficient dominant-strategy auction and add, for every bidder ``i``, a lottery
``c_i(v_-i)`` that depends only on the *others'* reports. A lottery that ignores ``i``'s
own report cannot change ``i``'s incentives, so the auction stays dominant-strategy
truthful; the lotteries are chosen so that, for every own value ``t``,

    sum over v_-i of D(v_-i | theta_i = t) c_i(v_-i) = U_i(t),

the expected utility type ``t`` gets from the base auction. Every type's expected
utility is then exactly zero (interim individual rationality binds), and the seller
keeps the whole expected welfare of the base auction: for second price, the full
surplus ``E[max theta]``. The system has a solution for every right-hand side when the
*conditional matrix* ``Gamma_i[t, w] = D(w | t)`` (own values with positive probability
by the others' profiles) has full row rank; the minimum-norm solution is used.

What it costs, and why the paper (Azar, Chen and Micali, "Crowdsourced Bayesian
Auctions", Appendix F) does not build on it: the seller must know ``D`` exactly, the
bidders' beliefs must be exactly ``D``'s conditionals, and individual rationality holds
only in expectation over the others' values: in some profiles a truthful bidder pays
its lottery and ends with negative utility.
"""

from __future__ import annotations

import numpy as np

from crowdauction.errors import InvalidPriorError
from crowdauction.mechanisms.classical import (
    ClassicalMechanism,
    Outcome,
    Realised,
    SecondPrice,
    check_reports,
)
from crowdauction.mechanisms.prior import Prior

__all__ = ["CremerMcLean", "conditional_matrix", "RESIDUAL_TOLERANCE"]

#: Largest residual of the lottery equations accepted, relative to the largest rent.
RESIDUAL_TOLERANCE = 1e-9


def conditional_matrix(prior: Prior, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Bidder ``i``'s beliefs about the others given its value, as a matrix.

    Args:
        prior: the joint prior.
        i: the bidder.

    Returns:
        ``(Gamma, live)``: ``Gamma`` of shape ``(K_live, m_i)``, row ``t`` the
        distribution of the others' profile (flat, C order) given that ``i``'s value is
        the ``t``-th grid value of positive probability; ``live`` the grid indices of
        those values.
    """
    t = np.moveaxis(prior.table, i, 0).reshape(prior.space.shape[i], -1)
    mass = t.sum(axis=1)
    live = np.nonzero(mass > 0)[0]
    return t[live] / mass[live, None], live


class CremerMcLean(ClassicalMechanism):
    """Second price (or another DST base) plus Cremer-McLean lotteries on the others' reports.

    Args:
        prior: the prior the seller knows; each bidder's conditional matrix must have
            full row rank.
        base: the dominant-strategy auction whose rents are extracted; default second
            price (efficient, so the revenue is the full surplus).

    Attributes:
        lotteries: per bidder ``(m_i,)``, the payment ``c_i`` at each others' profile
            (flat, C order); negative entries are paid to the bidder.
        rents: per bidder ``(K_i,)``, the base auction's expected utility by own value
            (0 for values of probability zero).

    Raises:
        InvalidPriorError: if some bidder's conditional matrix is rank deficient, so
            no lottery can extract that bidder's rent.
    """

    name = "cremer_mclean"

    def __init__(self, prior: Prior, base: ClassicalMechanism | None = None):
        base = base if base is not None else SecondPrice()
        super().__init__(base.setting)
        self.prior = prior
        self.space = prior.space
        self.base = base
        prof = self.space.profile_values
        util = base.outcome(prof).utilities(prof).reshape((*self.space.shape, self.space.n))
        self.lotteries: list[np.ndarray] = []
        self.rents: list[np.ndarray] = []
        for i in range(self.space.n):
            gamma, live = conditional_matrix(prior, i)
            u = np.moveaxis(util[..., i], i, 0).reshape(self.space.shape[i], -1)
            rent = np.zeros(self.space.shape[i])
            rent[live] = (gamma * u[live]).sum(axis=1)
            rank = int(np.linalg.matrix_rank(gamma))
            if rank < live.size:
                raise InvalidPriorError(
                    f"bidder {i}'s conditional matrix (own values "
                    f"{self.space.grids[i][live].tolist()} by {gamma.shape[1]} profiles of the "
                    f"others) has rank {rank} < {live.size}; "
                    "Cremer-McLean needs full row rank: correlate the values more, or give the "
                    "others at least as many profiles as this bidder has values"
                )
            c, *_ = np.linalg.lstsq(gamma, rent[live], rcond=None)
            resid = float(np.abs(gamma @ c - rent[live]).max(initial=0.0))
            if resid > RESIDUAL_TOLERANCE * max(1.0, float(np.abs(rent).max())):
                raise InvalidPriorError(
                    f"the lottery equations of bidder {i} leave a residual {resid:.3g}; the "
                    "conditional matrix is too close to rank deficient to extract the rent"
                )
            c.setflags(write=False)
            rent.setflags(write=False)
            self.lotteries.append(c)
            self.rents.append(rent)

    def lottery_payments(self, reports: np.ndarray) -> np.ndarray:
        """``(B, n)``: each bidder's lottery payment at the others' reports."""
        r = check_reports(reports, self.space.n)
        idx = self.space.indices_of(r)
        out = np.empty(r.shape, dtype=np.float64)
        for i in range(self.space.n):
            out[:, i] = self.lotteries[i][self.space.others_flat_index(i, idx)]
        return out

    def outcome(self, reports: np.ndarray) -> Outcome:
        out = self.base.outcome(reports)
        return Outcome(out.allocation, out.payments + self.lottery_payments(reports))

    def sample(self, reports: np.ndarray, rng: np.random.Generator) -> Realised:
        real = self.base.sample(reports, rng)
        return Realised(real.served, real.payments + self.lottery_payments(reports), real.extra)
