"""VCG for single-parameter downward-closed settings, batched.

A single-parameter setting says which *sets* of bidders may be served together; it is
downward closed when every subset of a feasible set is feasible (the paper's
downward-closure condition). Given valuation reports, VCG serves a feasible set of
largest total reported value and charges every winner its *critical value*: the
smallest report at which it would still be served, which equals the loss in the
others' best total that its presence causes (the Clarke pivot payment,
``best total of the others without i`` minus ``the others' total in the chosen set``).
Losers pay nothing. VCG is dominant-strategy truthful and ex-post individually
rational, and it maximises reported welfare.

Tie rule, deterministic and the library's usual one: among sets of equal total value
the set whose 0/1 indicator vector is lexicographically largest wins, so the lowest
index is served first (reports (5, 5, 3) for one good serve bidder 0), and bidders
reporting 0 are served (at price 0) when that costs nobody anything, exactly like
:class:`~crowdauction.mechanisms.classical.SecondPrice`. A fixed order over sets keeps
the allocation monotone in every bidder's own report, so the critical value is
well defined. On an integer grid the critical value is the real-valued threshold, not
the smallest winning grid value.

Optional per-bidder reserves: a bidder reporting below its reserve is removed before
the welfare maximisation (a report exactly at the reserve stays), and a winner pays
the larger of its reserve and its critical value among the remaining bidders. A
reserve of ``+inf`` removes a bidder outright, which is how
:mod:`crowdauction.mechanisms.detail_free` sets some bidders aside.

For k units VCG is the k-unit Vickrey auction (:class:`SecondPrice`); the tests pin
the two to the same outcome on every profile.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from crowdauction.errors import InvalidParameterError, InvalidReportError
from crowdauction.mechanisms.classical import (
    ClassicalMechanism,
    Outcome,
    Realised,
    check_reports,
    check_reserves,
)
from crowdauction.mechanisms.typespace import DownwardClosed, Setting, SingleGood

__all__ = ["VCG", "feasible_family", "vcg_outcome", "MAX_FAMILY_SIZE"]

#: Largest number of feasible winner sets enumerated for one setting.
MAX_FAMILY_SIZE = 1 << 16
# Rows of the (B, m) welfare table computed at once, to bound memory on large batches.
_CHUNK_CELLS = 1 << 22


def feasible_family(setting: Setting, n: int) -> np.ndarray:
    """Every feasible winner set of ``setting`` for ``n`` bidders, in tie-rule order.

    The family is the downward closure of ``setting.feasible_sets(n)`` (its maximal
    sets), the empty set included, as 0/1 rows sorted so that the lexicographically
    largest indicator vector comes first.

    Args:
        setting: a single-parameter setting.
        n: number of bidders.

    Returns:
        ``(m, n)`` int8 rows, distinct.

    Raises:
        InvalidParameterError: if the family would have more than :data:`MAX_FAMILY_SIZE` sets.
    """
    maximal = np.asarray(setting.feasible_sets(n), dtype=np.int8)
    if maximal.ndim != 2 or maximal.shape[1] != n:
        raise InvalidParameterError(
            f"setting {setting!r} gave maximal sets of shape {maximal.shape}, expected (m, {n})"
        )
    total = int(sum(2 ** int(row.sum()) for row in maximal))
    if total > MAX_FAMILY_SIZE:
        raise InvalidParameterError(
            f"setting {setting!r} has up to {total} feasible winner sets for n={n}, more than "
            f"{MAX_FAMILY_SIZE}; VCG enumerates them all, so use fewer or smaller maximal sets"
        )
    seen: set[tuple[int, ...]] = set()
    for row in maximal:
        members = np.nonzero(row)[0].tolist()
        for r in range(len(members) + 1):
            for sub in itertools.combinations(members, r):
                ind = [0] * n
                for b in sub:
                    ind[b] = 1
                seen.add(tuple(ind))
    # Descending lexicographic order of the indicators: the lowest index first.
    rows = sorted(seen, reverse=True)
    return np.array(rows, dtype=np.int8).reshape(len(rows), n)


def vcg_outcome(reports: np.ndarray, family: np.ndarray, reserves: np.ndarray) -> Outcome:
    """VCG with per-auction, per-bidder reserves over an explicit family, batched.

    Args:
        reports: ``(B, n)`` non-negative valuation reports.
        family: ``(m, n)`` 0/1 feasible sets in tie-rule order (first wins ties),
            downward closed, the empty set included.
        reserves: ``(B, n)`` reserves; ``+inf`` removes a bidder.

    Returns:
        The deterministic outcome: 0/1 allocation and critical-value payments.
    """
    r = np.asarray(reports, dtype=np.float64)
    B, n = r.shape
    F = np.asarray(family, dtype=np.float64)
    res = np.broadcast_to(np.asarray(reserves, dtype=np.float64), (B, n))
    alloc = np.zeros((B, n))
    pay = np.zeros((B, n))
    step = max(1, _CHUNK_CELLS // max(1, F.shape[0]))
    for lo in range(0, B, step):
        sl = slice(lo, min(B, lo + step))
        a, p = _vcg_chunk(r[sl], F, res[sl])
        alloc[sl] = a
        pay[sl] = p
    return Outcome(alloc, pay)


def _vcg_chunk(r: np.ndarray, F: np.ndarray, res: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    B, n = r.shape
    out = ~(r >= res)  # removed bidders (below reserve, or reserve +inf)
    value = np.where(out, 0.0, r)
    welfare = value @ F.T  # (B, m)
    n_out = out.astype(np.float64) @ F.T  # removed members of each set
    usable = np.where(n_out > 0, -np.inf, welfare)
    choice = np.argmax(usable, axis=1)  # first maximum: the tie-rule order
    alloc = F[choice] * ~out
    pay = np.zeros((B, n))
    for i in range(n):
        has_i = F[:, i] > 0
        # Sets without i that avoid every removed bidder.
        w_without = usable[:, ~has_i].max(axis=1)
        # Sets with i whose other members all remain, valued without i's report.
        others_out = n_out[:, has_i] - out[:, i : i + 1]
        w_with = np.where(others_out > 0, -np.inf, welfare[:, has_i] - value[:, i : i + 1])
        critical = w_without - w_with.max(axis=1)
        price = np.maximum(res[:, i], np.maximum(critical, 0.0))
        pay[:, i] = np.where(alloc[:, i] > 0, price, 0.0)
    return alloc, pay


class VCG(ClassicalMechanism):
    """VCG (critical-value payments) for a downward-closed single-parameter setting.

    Args:
        setting: the feasible winner sets, as a :class:`KUnits` or
            :class:`DownwardClosed` setting; single good by default.
        reserve: ``None``, one reserve for everybody, or one per bidder.

    Example:
        Two groups that cannot both be served, ``{0}`` and ``{1, 2}``::

            VCG(DownwardClosed(((0,), (1, 2)))).outcome(np.array([[3, 2, 2]]))

        serves bidders 1 and 2 (total 4 beats 3); each pays ``3 - 2 = 1``.
    """

    name = "vcg"

    def __init__(
        self,
        setting: Setting | None = None,
        reserve: float | Sequence[float] | np.ndarray | None = None,
    ):
        super().__init__(setting if setting is not None else SingleGood())
        self.reserve: np.ndarray | None = check_reserves(reserve, "VCG", allow_infinite=True)
        if self.reserve is not None:
            self.name = "vcg_reserve"
        self._families: dict[int, np.ndarray] = {}

    @classmethod
    def from_sets(cls, sets: Sequence[Sequence[int]], **kwargs: object) -> VCG:
        """VCG for the downward closure of an explicit family of winner sets."""
        setting = DownwardClosed(tuple(tuple(s) for s in sets))
        return cls(setting, **kwargs)  # type: ignore[arg-type]

    def family(self, n: int) -> np.ndarray:
        """The feasible winner sets for ``n`` bidders, in tie-rule order (cached)."""
        fam = self._families.get(n)
        if fam is None:
            fam = feasible_family(self.setting, n)
            self._families[n] = fam
        return fam

    def _reserves(self, B: int, n: int) -> np.ndarray:
        if self.reserve is None:
            return np.zeros((B, n))
        if self.reserve.ndim == 1 and self.reserve.size != n:
            raise InvalidReportError(
                f"VCG has {self.reserve.size} personalised reserves but the reports have "
                f"n={n} bidders"
            )
        return np.broadcast_to(self.reserve, (B, n))

    def outcome(self, reports: np.ndarray) -> Outcome:
        r = check_reports(reports)
        B, n = r.shape
        return vcg_outcome(r, self.family(n), self._reserves(B, n))

    def sample(self, reports: np.ndarray, rng: np.random.Generator) -> Realised:
        out = self.outcome(reports)  # deterministic
        return Realised(out.allocation > 0, out.payments.copy())
