"""Classical (valuation-only) mechanisms, batched over a leading axis.

Every mechanism maps valuation reports of shape ``(B, n)`` (B auctions at once, values
on the bidders' grids) to an :class:`Outcome`: allocation probabilities ``(B, n)`` and
expected payments ``(B, n)``, exact over the mechanism's own coins. :meth:`sample`
draws a realised outcome with a passed-in generator; a randomised allocation charges
only the bidder who is served, its expected payment divided by its serving probability,
so an outcome that is IR in expectation is IR ex post.

Tie rule, the same everywhere in the library: among equal highest reports the lowest
bidder index wins (bids (5, 5, 3) serve bidder 0 at price 5).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from crowdauction.errors import InvalidParameterError, InvalidReportError
from crowdauction.mechanisms.checks import real_param
from crowdauction.mechanisms.typespace import KUnits, Setting, SingleGood, TypeSpace

__all__ = [
    "Outcome",
    "Realised",
    "ClassicalMechanism",
    "SecondPrice",
    "FirstPrice",
    "TableMechanism",
    "Strictified",
    "payments_from_allocation",
    "dst_violation",
    "ir_violation",
    "sample_marginals",
    "check_reports",
    "check_reserves",
]


@dataclass
class Outcome:
    """Exact outcome of B auctions over the mechanism's coins.

    Attributes:
        allocation: ``(B, n)`` probability that each bidder is served.
        payments: ``(B, n)`` expected payment of each bidder (negative: paid to it).
        extra: named per-auction arrays a mechanism adds (scoring rewards, roles).
    """

    allocation: np.ndarray
    payments: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def revenue(self) -> np.ndarray:
        """``(B,)`` expected revenue: the sum of payments."""
        return self.payments.sum(axis=1)

    def utilities(self, values: np.ndarray) -> np.ndarray:
        """``(B, n)`` expected utilities of bidders whose true values are ``values``."""
        return np.asarray(values, dtype=np.float64) * self.allocation - self.payments

    def welfare(self, values: np.ndarray) -> np.ndarray:
        return (np.asarray(values, dtype=np.float64) * self.allocation).sum(axis=1)


@dataclass
class Realised:
    """One realised outcome per auction.

    Attributes:
        served: ``(B, n)`` bool, who got a unit.
        payments: ``(B, n)`` realised payments (negative: paid to the bidder).
        extra: named per-auction arrays (which coin fired, informant, rewards).
    """

    served: np.ndarray
    payments: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def revenue(self) -> np.ndarray:
        return self.payments.sum(axis=1)

    def utilities(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=np.float64) * self.served - self.payments


def check_reports(reports: np.ndarray, n: int | None = None) -> np.ndarray:
    """Validate valuation reports ``(B, n)``: finite and non-negative."""
    r = np.asarray(reports)
    if r.ndim != 2 or (n is not None and r.shape[1] != n):
        want = f"(B, {n})" if n is not None else "(B, n)"
        raise InvalidReportError(f"valuation reports must have shape {want}, got {r.shape}")
    if r.dtype.kind not in "iuf":
        raise InvalidReportError(f"valuation reports must be numbers, got dtype {r.dtype}")
    if r.dtype.kind == "f" and not np.all(np.isfinite(r)):
        raise InvalidReportError(
            "valuation reports hold NaN or infinite entries; report values on the grid"
        )
    if np.any(r < 0):
        raise InvalidReportError(
            f"valuation reports must be non-negative, got {r[r < 0][:3].tolist()}"
        )
    return r


def sample_marginals(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Serve each bidder with probability ``x[:, i]`` by systematic sampling.

    With one uniform draw per auction, bidder i is served when an integer lies in
    ``[cum_{i-1} - U, cum_i - U)``; the number served is at most ``ceil(sum x)``, so a
    k-unit allocation stays feasible and the marginals are exact.
    """
    u = rng.random(x.shape[0])[:, None]
    cum = np.cumsum(x, axis=1)
    prev = cum - x
    return (np.floor(cum - u + 1e-12) - np.floor(prev - u + 1e-12)) > 0


class ClassicalMechanism:
    """Base class of valuation-only mechanisms.

    Attributes:
        name: short registry-style name.
        setting: which sets of bidders can be served together.
        truthful: whether the mechanism is declared dominant-strategy truthful.
        space: the type space the mechanism was built for, or ``None`` if it works on
            any non-negative integer reports.
    """

    name = "classical"
    truthful = True
    space: TypeSpace | None = None

    def __init__(self, setting: Setting | None = None):
        if setting is not None and not isinstance(setting, Setting):
            raise InvalidParameterError(
                "setting must be a Setting such as KUnits(k) or DownwardClosed(...), "
                f"got {setting!r}"
            )
        self.setting = setting if setting is not None else SingleGood()

    def outcome(self, reports: np.ndarray) -> Outcome:
        """Exact outcome of valuation reports ``(B, n)``."""
        raise NotImplementedError

    def sample(self, reports: np.ndarray, rng: np.random.Generator) -> Realised:
        """One realised outcome per auction, drawn with ``rng``."""
        out = self.outcome(reports)
        served = sample_marginals(out.allocation, rng)
        return Realised(served, _charge_served(out, served))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _charge_served(out: Outcome, served: np.ndarray) -> np.ndarray:
    """Realised payments: a served bidder pays expected payment / serving probability."""
    x = out.allocation
    with np.errstate(divide="ignore", invalid="ignore"):
        per_unit = np.where(x > 0, out.payments / np.where(x > 0, x, 1.0), 0.0)
    # Payments made when nobody is served (a transfer to the bidder) are paid as is.
    unconditional = np.where(x > 0, 0.0, out.payments)
    return np.where(served, per_unit, 0.0) + unconditional


def _ranked(reports: np.ndarray) -> np.ndarray:
    """Bidder order by report, highest first, lowest index first among ties: ``(B, n)``."""
    n = reports.shape[1]
    # A stable sort of the negated reports keeps lower indices first among ties.
    return np.argsort(-reports.astype(np.float64), axis=1, kind="stable")[:, :n]


def check_reserves(
    reserve: float | np.ndarray | None, owner: str, allow_infinite: bool = False
) -> np.ndarray | None:
    """Validate reserves: ``None``, one number, or a flat array with one per bidder.

    Args:
        reserve: the reserve(s) as given.
        owner: the mechanism's name, for messages.
        allow_infinite: whether ``inf`` (never serve that bidder) is allowed.
    """
    if reserve is None:
        return None
    try:
        r = np.asarray(reserve, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InvalidParameterError(
            f"{owner} reserve must be a number or one number per bidder, got {reserve!r}"
        ) from e
    if r.ndim > 1:
        raise InvalidParameterError(
            f"{owner} reserve must be a number or a flat list with one per bidder, got shape "
            f"{r.shape}: {r.tolist()}"
        )
    finite = ~np.isnan(r) if allow_infinite else np.isfinite(r)
    if not np.all(finite) or np.any(r < 0):
        kind = "non-negative (inf allowed)" if allow_infinite else "finite and non-negative"
        raise InvalidParameterError(f"{owner} reserves must be {kind}, got {r.tolist()}")
    return r


class SecondPrice(ClassicalMechanism):
    """Vickrey: the highest reports are served and pay the critical value.

    With ``k`` units the top ``k`` eligible reports win and each pays
    ``max(its reserve, the (k+1)-th highest eligible report)``. A bidder is eligible
    when its report reaches its reserve (a report exactly at the reserve sells).

    Args:
        reserve: ``None`` (no reserve), a number (anonymous reserve) or one reserve
            per bidder (personalised reserves).
        setting: a :class:`KUnits` setting; single good by default.
    """

    name = "second_price"

    def __init__(self, reserve: float | np.ndarray | None = None, setting: Setting | None = None):
        super().__init__(setting)
        if not isinstance(self.setting, KUnits):
            raise InvalidParameterError(
                f"second price runs on k-unit settings; got {self.setting!r} (use VCG)"
            )
        self.reserve = check_reserves(reserve, "second price")
        if self.reserve is not None:
            self.name = "second_price_reserve"

    def outcome(self, reports: np.ndarray) -> Outcome:
        r = check_reports(reports)
        B, n = r.shape
        k = self.setting.capacity(n)
        # Checked before broadcasting, which would fail first with numpy's own message.
        if self.reserve is not None and np.ndim(self.reserve) == 1 and len(self.reserve) != n:
            raise InvalidReportError(f"{len(self.reserve)} personalised reserves for {n} bidders")
        res = np.zeros(n) if self.reserve is None else np.broadcast_to(self.reserve, (n,))
        if k == 1:
            return self._single_good(r, res)
        r = r.astype(np.float64)
        eligible = r >= res
        # Ineligible bidders rank below every eligible one.
        key = np.where(eligible, r, -1.0)
        order = _ranked(key)
        top = order[:, :k]
        rows = np.arange(B)[:, None]
        win = np.zeros((B, n), dtype=bool)
        win[rows, top] = eligible[rows, top]
        if k < n:
            nxt = np.maximum(key[np.arange(B), order[:, k]], 0.0)[:, None]
        else:
            nxt = np.zeros((B, 1))
        price = np.maximum(res[None, :], nxt)
        alloc = win.astype(np.float64)
        return Outcome(alloc, alloc * price)

    @staticmethod
    def _single_good(r: np.ndarray, res: np.ndarray) -> Outcome:
        """The one-unit case in a few passes over the bidders, with no per-row sort.

        Keeps the highest and second-highest eligible report of every auction; the
        winner is the first bidder whose report equals the highest (lowest index among
        ties). Same numbers as the general path above, several times faster. Works on
        one contiguous row per bidder, so the returned ``(B, n)`` arrays are transposed
        views of ``(n, B)`` buffers (Fortran order).
        """
        n, B = r.shape[1], r.shape[0]
        cols = np.ascontiguousarray(r.T)
        keys = np.where(cols >= res[:, None], cols, -1.0) if np.any(res > 0) else cols
        top = keys[0].astype(np.float64)
        second = np.full(B, -np.inf)
        scratch = np.empty(B)  # reused: fresh temporaries cost page faults at this size
        for i in range(1, n):
            np.maximum(second, np.minimum(top, keys[i], out=scratch), out=second)
            np.maximum(top, keys[i], out=top)
        np.maximum(second, 0.0, out=second)
        alloc = np.empty((n, B))
        pay = np.empty((n, B))
        left = top >= 0  # the highest key is an eligible report
        for i in range(n):
            won = left & (keys[i] == top)
            left &= ~won
            alloc[i] = won
            np.multiply(won, np.maximum(second, res[i], out=scratch), out=pay[i])
        return Outcome(alloc.T, pay.T)

    def sample(self, reports: np.ndarray, rng: np.random.Generator) -> Realised:
        out = self.outcome(reports)  # deterministic
        return Realised(out.allocation > 0, out.payments.copy())


class FirstPrice(ClassicalMechanism):
    """Pay your bid: the top ``k`` reports win and pay what they reported.

    Not truthful: the standard control for the incentive verifier.
    """

    name = "first_price"
    truthful = False

    def outcome(self, reports: np.ndarray) -> Outcome:
        r = check_reports(reports).astype(np.float64)
        B, n = r.shape
        k = self.setting.capacity(n)
        top = _ranked(r)[:, :k]
        alloc = np.zeros((B, n))
        alloc[np.arange(B)[:, None], top] = 1.0
        return Outcome(alloc, alloc * r)

    def sample(self, reports: np.ndarray, rng: np.random.Generator) -> Realised:
        out = self.outcome(reports)
        return Realised(out.allocation > 0, out.payments.copy())


def payments_from_allocation(alloc: np.ndarray, space: TypeSpace) -> np.ndarray:
    """Revenue-maximal truthful payments for a monotone allocation table.

    For bidder i and fixed others, with own grid ``v_0 < ... < v_{K-1}``, the payment
    at ``v_k`` is ``v_k x_k - sum_{j<k} (v_{j+1} - v_j) x_j``: adjacent downward
    truthfulness binds and the lowest type gets utility ``v_0 x_0 - p_0 = 0``.

    Args:
        alloc: ``(*space.shape, n)`` serving probabilities, monotone in own value.

    Returns:
        ``(*space.shape, n)`` expected payments.
    """
    pay = np.empty_like(alloc, dtype=np.float64)
    for i, g in enumerate(space.grids):
        x = np.moveaxis(alloc[..., i], i, 0)
        v = g.astype(np.float64).reshape((-1,) + (1,) * (x.ndim - 1))
        gaps = np.diff(g).astype(np.float64).reshape((-1,) + (1,) * (x.ndim - 1))
        rent = np.zeros_like(x)
        if len(g) > 1:
            rent[1:] = np.cumsum(gaps * x[:-1], axis=0)
        pay[..., i] = np.moveaxis(v * x - rent, 0, i)
    return pay


class TableMechanism(ClassicalMechanism):
    """A mechanism given by allocation and payment tables over a type space's profiles.

    Args:
        space: the grids; reports must lie on them.
        allocation: ``(*space.shape, n)`` serving probabilities.
        payments: ``(*space.shape, n)`` expected payments; default: the truthful
            payments of :func:`payments_from_allocation`.
        name: registry-style name.
    """

    def __init__(
        self,
        space: TypeSpace,
        allocation: np.ndarray,
        payments: np.ndarray | None = None,
        name: str = "table",
        setting: Setting | None = None,
        truthful: bool = True,
    ):
        super().__init__(setting)
        want = (*space.shape, space.n)
        allocation = np.asarray(allocation, dtype=np.float64)
        if allocation.shape != want:
            raise InvalidParameterError(
                f"allocation table has shape {allocation.shape}, expected {want} "
                "(one axis per bidder, then one serving probability per bidder)"
            )
        if payments is None:
            payments = payments_from_allocation(allocation, space)
        payments = np.asarray(payments, dtype=np.float64)
        if payments.shape != want:
            raise InvalidParameterError(
                f"payment table has shape {payments.shape}, expected {want}"
            )
        self.space = space
        self.alloc_table = allocation
        self.pay_table = payments
        self.name = name
        self.truthful = truthful

    def outcome(self, reports: np.ndarray) -> Outcome:
        r = check_reports(reports, self.space.n)
        idx = tuple(self.space.indices_of(r).T)
        return Outcome(self.alloc_table[idx], self.pay_table[idx])


class Strictified(ClassicalMechanism):
    """The strictifying lottery of the paper's Lemma 1 around a classical mechanism.

    With probability ``1 - delta`` run the base mechanism; with probability ``delta``
    pick a bidder and a price from ``prices`` uniformly at random and sell that bidder
    one unit at ``price - eps_prime`` if its report reaches the price. Any misreport then
    loses strictly in expectation, and revenue keeps at least a ``1 - delta`` share.

    Args:
        base: the mechanism to strictify.
        delta: lottery probability in ``(0, 1)``.
        prices: the price grid; default the positive values of ``base.space`` (or of
            ``space``). Positive prices suffice for strictness on integer grids and keep
            the lottery's revenue non-negative.
        eps_prime: discount in ``(0, 1)``.
        space: the type space, when ``base`` has none of its own.
    """

    def __init__(
        self,
        base: ClassicalMechanism,
        delta: float,
        prices: np.ndarray | None = None,
        eps_prime: float = 0.5,
        space: TypeSpace | None = None,
    ):
        if not hasattr(base, "outcome") or not hasattr(base, "setting"):
            raise InvalidParameterError(
                f"Strictified needs a classical mechanism to strictify, got {base!r}"
            )
        super().__init__(base.setting)
        self.delta = real_param(
            delta, "lottery probability delta", low=0.0, high=1.0, low_open=True, high_open=True
        )
        self.eps_prime = real_param(
            eps_prime,
            "lottery discount eps_prime",
            low=0.0,
            high=1.0,
            low_open=True,
            high_open=True,
        )
        self.base = base
        self.space = base.space if base.space is not None else space
        if prices is None:
            if self.space is None:
                raise InvalidParameterError(
                    "Strictified needs a price grid: pass prices= or space="
                )
            prices = self.space.all_values[self.space.all_values > 0]
        try:
            prices = np.asarray(prices, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise InvalidParameterError(f"lottery prices must be numbers, got {prices!r}") from e
        if prices.ndim != 1 or prices.size == 0 or not np.all(np.isfinite(prices)):
            raise InvalidParameterError(
                f"lottery prices must be a non-empty 1-D grid of finite numbers, got {prices!r}"
            )
        self.prices = np.sort(prices)
        self.name = f"{base.name}_strict"
        self.truthful = base.truthful

    def lottery(self, reports: np.ndarray) -> Outcome:
        """Exact outcome of the lottery alone."""
        r = np.asarray(reports, dtype=np.float64)
        n = r.shape[1]
        reach = r[..., None] >= self.prices  # (B, n, P)
        P = self.prices.size
        alloc = reach.sum(-1) / (n * P)
        pay = (reach * (self.prices - self.eps_prime)).sum(-1) / (n * P)
        return Outcome(alloc, pay)

    def outcome(self, reports: np.ndarray) -> Outcome:
        base = self.base.outcome(reports)
        lot = self.lottery(reports)
        d = self.delta
        return Outcome(
            (1 - d) * base.allocation + d * lot.allocation,
            (1 - d) * base.payments + d * lot.payments,
        )

    def sample(self, reports: np.ndarray, rng: np.random.Generator) -> Realised:
        r = check_reports(reports).astype(np.float64)
        B, n = r.shape
        fired = rng.random(B) < self.delta
        base = self.base.sample(r, rng)
        who = rng.integers(0, n, size=B)
        price = self.prices[rng.integers(0, self.prices.size, size=B)]
        sells = r[np.arange(B), who] >= price
        lot_served = np.zeros((B, n), dtype=bool)
        lot_served[np.arange(B), who] = sells
        lot_pay = lot_served * (price - self.eps_prime)[:, None]
        served = np.where(fired[:, None], lot_served, base.served)
        pay = np.where(fired[:, None], lot_pay, base.payments)
        return Realised(served, pay, {"lottery": fired})

    def strictness_margin(self, n: int) -> float:
        """A lower bound on the expected loss of any valuation misreport.

        The lottery alone costs a misreport at least
        ``delta / (n P) * min(eps_prime, 1 - eps_prime)`` (prices ``P`` on the grid).
        """
        return self.delta / (n * self.prices.size) * min(self.eps_prime, 1 - self.eps_prime)


def dst_violation(
    mech: ClassicalMechanism, space: TypeSpace, misreports_only: bool = False
) -> tuple[float, dict]:
    """Largest gain any bidder gets from any valuation misreport, over every profile.

    Dominance check on the whole grid: for each bidder, true value, misreport and the
    others' reports, compare expected utilities. Returns ``(max_gain, where)`` with
    ``where`` naming bidder, true value, misreport and the others' reports.

    With ``misreports_only`` the truthful report is left out of the maximum, so a
    negative result means every misreport loses strictly (strict dominance).
    """
    prof = space.profile_values  # (N, n)
    best = -np.inf
    where: dict = {}
    for i, g in enumerate(space.grids):
        K = len(g)
        # Every profile (truth for i, reports for the others) against every report of i.
        rep = np.repeat(prof, K, axis=0)
        rep[:, i] = np.tile(g, len(prof))
        out = mech.outcome(rep)
        util = (prof[:, i].repeat(K) * out.allocation[:, i] - out.payments[:, i]).reshape(-1, K)
        own = np.searchsorted(g, prof[:, i])
        truthful = util[np.arange(len(prof)), own]
        # Equal utilities gain nothing, also when both are -inf (an unbounded score).
        gain = np.where(util == truthful[:, None], 0.0, util - truthful[:, None])
        if misreports_only:
            gain[np.arange(len(prof)), own] = -np.inf
        f, kk = np.unravel_index(int(np.argmax(gain)), gain.shape)
        if gain[f, kk] > best:
            best = float(gain[f, kk])
            where = {
                "bidder": i,
                "value": int(prof[f, i]),
                "report": int(g[kk]),
                "others": [int(v) for j, v in enumerate(prof[f]) if j != i],
            }
    return best, where


def ir_violation(mech: ClassicalMechanism, space: TypeSpace) -> float:
    """Largest shortfall below zero of any truthful bidder's expected utility (0 if IR)."""
    prof = space.profile_values
    out = mech.outcome(prof)
    return float(max(0.0, -out.utilities(prof).min()))
