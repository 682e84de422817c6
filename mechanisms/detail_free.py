"""Detail-free rivals of the crowdsourced mechanisms: reserves learned from the bids.

These auctions know nothing about the prior and ask for no beliefs. They estimate a
reserve price from some bidders' own valuation reports, and keep dominant-strategy
truthfulness by never letting a bidder's report move its own price. They are the
comparison points of the paper's Section 4.4 (Azar, Chen and Micali, "Crowdsourced
Bayesian Auctions"): with i.i.d. values they approach the optimal revenue as the
number of bidders grows, while the crowdsourced L is close to it at every size.

* :class:`SingleSample` is the single-sample mechanism of Dhangwatnotai, Roughgarden
  and Yan ("Revenue maximization with a single sample"): one bidder drawn uniformly at
  random is set aside and its report becomes the reserve of everybody else, who play
  VCG (for one good, second price) with that reserve.
* :class:`EmpiricalReserve` in the spirit of Segal ("Optimal pricing mechanisms with
  unknown demand") and Baliga and Vohra ("Market research and market design"): the
  monopoly price of the *empirical distribution* of some bidders' reports is the
  reserve for the others. With ``split="halves"`` (the default) a uniformly random
  research group of ``n // 2`` bidders is set aside and its reports price the rest,
  who play VCG with that reserve. With ``split="others"`` the highest reporter is
  offered the larger of the highest other report and the empirical monopoly price of
  all the other reports. That empirical distribution has no mass above the highest
  other report, so its monopoly price never exceeds it: the ``"others"`` reading is
  exactly second price, whatever the prior (kept to show that the reserve must come
  from bidders who do not compete).

The *empirical monopoly price* of reports ``x_1..x_s`` is the ``p`` among them that
maximises ``p * #{l : x_l >= p}``, the lowest among equally good ones (the library's
convention for monopoly prices). Every mechanism here is exact over its own coins in
``outcome`` (the average over every choice of the set-aside bidders) and draws them
with a passed-in generator in ``sample``; both are batched over auctions.
"""

from __future__ import annotations

import itertools
from math import comb

import numpy as np

from crowdauction.errors import InvalidParameterError, InvalidReportError
from crowdauction.mechanisms.checks import int_param
from crowdauction.mechanisms.classical import ClassicalMechanism, Outcome, Realised, check_reports
from crowdauction.mechanisms.lookahead import candidate_and_floor
from crowdauction.mechanisms.typespace import Setting, SingleGood
from crowdauction.mechanisms.vcg import feasible_family, vcg_outcome

__all__ = ["empirical_monopoly_price", "SingleSample", "EmpiricalReserve", "MAX_EXACT_SPLITS"]

#: ``EmpiricalReserve.outcome`` averages over every research group up to this many.
MAX_EXACT_SPLITS = 10_000


def empirical_monopoly_price(reports: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Monopoly price of the empirical distribution of the masked reports, batched.

    Args:
        reports: ``(B, n)`` valuation reports.
        mask: ``(B, n)`` or ``(n,)`` bool, which reports form the sample (at least one
            per auction).

    Returns:
        ``(B,)``: the sampled report ``p`` maximising ``p * #{sampled l : x_l >= p}``,
        the lowest among ties; integer reports make the comparison exact.
    """
    r = np.asarray(reports, dtype=np.float64)
    m = np.broadcast_to(np.asarray(mask, dtype=bool), r.shape)
    if not np.all(m.any(axis=1)):
        raise InvalidReportError(
            "the empirical monopoly price needs at least one sampled report per auction"
        )
    reach = (r[:, None, :] >= r[:, :, None]) & m[:, None, :]  # [b, k, l]: x_l >= x_k
    rev = np.where(m, r * reach.sum(axis=2), -np.inf)
    best = rev.max(axis=1, keepdims=True)
    return np.where(rev >= best, r, np.inf).min(axis=1)


class SingleSample(ClassicalMechanism):
    """Dhangwatnotai-Roughgarden-Yan: a random bidder's report is everybody else's reserve.

    A bidder ``j`` drawn uniformly at random is not served; the others play VCG for the
    setting with the anonymous reserve ``v_j`` (a report exactly at it is eligible).
    Truthful because ``j`` cannot win and nobody else's report moves its own reserve.

    Args:
        setting: a downward-closed setting; single good by default.
    """

    name = "single_sample"

    def __init__(self, setting: Setting | None = None):
        super().__init__(setting if setting is not None else SingleGood())

    def _reserves(self, r: np.ndarray, j: np.ndarray) -> np.ndarray:
        B, n = r.shape
        res = np.repeat(r[np.arange(B), j][:, None], n, axis=1)
        res[np.arange(B), j] = np.inf
        return res

    def outcome(self, reports: np.ndarray) -> Outcome:
        """Exact outcome, averaged over the set-aside bidder."""
        r = check_reports(reports).astype(np.float64)
        B, n = r.shape
        fam = feasible_family(self.setting, n)
        alloc = np.zeros((B, n))
        pay = np.zeros((B, n))
        for j in range(n):
            out = vcg_outcome(r, fam, self._reserves(r, np.full(B, j)))
            alloc += out.allocation / n
            pay += out.payments / n
        return Outcome(alloc, pay)

    def sample(self, reports: np.ndarray, rng: np.random.Generator) -> Realised:
        r = check_reports(reports).astype(np.float64)
        B, n = r.shape
        j = rng.integers(0, n, size=B)
        out = vcg_outcome(r, feasible_family(self.setting, n), self._reserves(r, j))
        return Realised(out.allocation > 0, out.payments, {"reserve_bidder": j})


class EmpiricalReserve(ClassicalMechanism):
    """Reserve from the empirical distribution of other bidders' reports.

    Args:
        split: ``"halves"``: a uniformly random research group is set aside and its
            empirical monopoly price is the anonymous reserve of the others, who play
            VCG; ``"others"``: the highest reporter (lowest index among ties) is offered
            ``max(highest other report, empirical monopoly price of the other
            reports)``, single good only (it coincides with second price, see the
            module docstring).
        research_size: size of the research group for ``"halves"``; default ``n // 2``.
        setting: a downward-closed setting for ``"halves"``; single good by default.
    """

    name = "empirical_reserve"

    def __init__(
        self,
        split: str = "halves",
        research_size: int | None = None,
        setting: Setting | None = None,
    ):
        super().__init__(setting if setting is not None else SingleGood())
        if split not in ("halves", "others"):
            raise InvalidParameterError(f"unknown split {split!r}; expected 'halves' or 'others'")
        if split == "others" and self.setting.capacity(2) != 1:
            raise InvalidParameterError(
                "the 'others' split prices a single highest bidder; use split='halves'"
            )
        if research_size is not None:
            research_size = int_param(research_size, "research_size", low=1)
        self.split = split
        self.research_size = research_size
        self.name = f"empirical_reserve_{split}"

    def _size(self, n: int) -> int:
        s = n // 2 if self.research_size is None else int(self.research_size)
        if not 1 <= s <= n - 1:
            raise InvalidReportError(
                f"the research group must leave someone to sell to: size {s} for n={n} bidders "
                "(need 1 <= size <= n - 1, so n >= 2)"
            )
        return s

    def _halves(self, r: np.ndarray, research: np.ndarray) -> Outcome:
        """Outcome for given research groups ``research`` ``(B, n)`` bool."""
        B, n = r.shape
        price = empirical_monopoly_price(r, research)
        res = np.where(research, np.inf, price[:, None])
        return vcg_outcome(r, feasible_family(self.setting, n), res)

    def _others(self, r: np.ndarray) -> Outcome:
        B, n = r.shape
        rows = np.arange(B)
        if n < 2:
            raise InvalidReportError("the 'others' split needs at least two bidders")
        star, floor, _ = candidate_and_floor(r)
        mask = np.ones((B, n), dtype=bool)
        mask[rows, star] = False
        price = np.maximum(floor, empirical_monopoly_price(r, mask))
        alloc = np.zeros((B, n))
        alloc[rows, star] = r[rows, star] >= price
        return Outcome(alloc, alloc * price[:, None])

    def outcome(self, reports: np.ndarray) -> Outcome:
        """Exact outcome, averaged over every research group of the chosen size."""
        r = check_reports(reports).astype(np.float64)
        B, n = r.shape
        if self.split == "others":
            return self._others(r)
        s = self._size(n)
        if comb(n, s) > MAX_EXACT_SPLITS:
            raise InvalidReportError(
                f"{comb(n, s)} research groups of size {s} among {n} bidders is more than "
                f"{MAX_EXACT_SPLITS} to average exactly; use sample() instead"
            )
        alloc = np.zeros((B, n))
        pay = np.zeros((B, n))
        groups = list(itertools.combinations(range(n), s))
        for g in groups:
            research = np.zeros((B, n), dtype=bool)
            research[:, list(g)] = True
            out = self._halves(r, research)
            alloc += out.allocation
            pay += out.payments
        return Outcome(alloc / len(groups), pay / len(groups))

    def sample(self, reports: np.ndarray, rng: np.random.Generator) -> Realised:
        r = check_reports(reports).astype(np.float64)
        B, n = r.shape
        if self.split == "others":
            out = self._others(r)
            return Realised(out.allocation > 0, out.payments)
        s = self._size(n)
        # The s smallest of n uniform keys: a uniformly random group of size s.
        keys = rng.random((B, n))
        rank = np.argsort(np.argsort(keys, axis=1), axis=1)
        research = rank < s
        out = self._halves(r, research)
        return Realised(out.allocation > 0, out.payments, {"research": research})
