"""Type spaces and settings.

A :class:`TypeSpace` holds, for every bidder, a finite sorted list of non-negative
integer values (the single-parameter case of the paper: a bidder's valuation is the
value it has for being served). Profiles are addressed either by their values or by
their *indices* into the per-bidder grids; tables over profiles (priors, allocation
tables) have one axis per bidder in bidder order.

A *setting* says which sets of bidders may be served at once (the paper's environment
E; we say setting so that "env" always means a PettingZoo environment):
:class:`SingleGood`, :class:`KUnits` (k identical units, unit demand) and
:class:`DownwardClosed` (any family of feasible winner sets closed under removal).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from crowdauction.errors import InvalidParameterError, InvalidReportError
from crowdauction.mechanisms.checks import bidder_index, int_param

__all__ = [
    "TypeSpace",
    "Setting",
    "SingleGood",
    "KUnits",
    "DownwardClosed",
    "MAX_PROFILES",
    "WARN_PROFILES",
    "MAX_VALUE",
]

#: Most profiles a type space may have. Priors, knowledge partitions and mechanism tables
#: are dense arrays over every profile (8 bytes per float64 entry, times n for tables with
#: a bidder axis), so 20 million profiles already need 160 MB per table.
MAX_PROFILES = 20_000_000
#: Above this many profiles a type space warns: exact evaluation enumerates every profile
#: (and every report profile a strategy can make), which takes minutes, not seconds.
WARN_PROFILES = 1_000_000
#: Largest grid value: values are stored as int64.
MAX_VALUE = 2**63 - 1


def _nbytes(count: int) -> str:
    """A byte count in readable units."""
    size = float(count)
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if size < 1000 or unit == "PB":
            return f"{size:.3g} {unit}"
        size /= 1000
    return f"{size:.3g} PB"  # unreachable: the loop returns at PB


def _check_size(sizes: Sequence[int], warn: bool = False) -> None:
    """Refuse a type space of more than :data:`MAX_PROFILES` profiles; warn above
    :data:`WARN_PROFILES` when ``warn``."""
    count = math.prod(int(k) for k in sizes)
    if count > MAX_PROFILES:
        raise InvalidParameterError(
            f"a type space of grid sizes {tuple(sizes)} has {count:,} profiles, more than "
            f"MAX_PROFILES = {MAX_PROFILES:,}: one dense float64 table over it would need "
            f"{_nbytes(8 * count)}; use fewer bidders or a coarser value grid"
        )
    if warn and count > WARN_PROFILES:
        warnings.warn(
            f"a type space of {count:,} profiles (grid sizes {tuple(sizes)}), more than "
            f"{WARN_PROFILES:,}: every table over it takes {_nbytes(8 * count)} and exact "
            "evaluation enumerates every profile, so it will be slow; use fewer bidders or "
            "a coarser value grid if you can",
            UserWarning,
            stacklevel=3,
        )


def _clean_grid(i: int, g: object) -> np.ndarray:
    """Bidder ``i``'s grid as a strictly increasing int64 array of non-negative values."""
    try:
        arr = np.asarray(g)
    except (TypeError, ValueError) as e:
        raise InvalidParameterError(
            f"grid of bidder {i} must be a non-empty 1-D list of values, got {g!r}"
        ) from e
    if arr.ndim != 1 or arr.size == 0:
        raise InvalidParameterError(
            f"grid of bidder {i} must be a non-empty 1-D list of values, got {g!r}"
        )
    # Integers too large for int64 arrive as an object array; strings, booleans and
    # None are not values either.
    integral = arr.dtype.kind in "iu" or (
        arr.dtype.kind == "f" and bool(np.all(np.isfinite(arr) & (arr == np.round(arr))))
    )
    if not integral or np.any(arr < 0) or np.any(arr > MAX_VALUE):
        raise InvalidParameterError(
            f"grid of bidder {i} must hold non-negative integers representable in int64 "
            f"(0 .. 2**63 - 1), got {arr.tolist()}"
        )
    if arr.dtype.kind == "f" and np.any(arr >= 2.0**63):  # float64(2**63 - 1) rounds up
        raise InvalidParameterError(
            f"grid of bidder {i} must hold non-negative integers representable in int64 "
            f"(0 .. 2**63 - 1), got {arr.tolist()}"
        )
    arr = arr.astype(np.int64)
    if np.any(np.diff(arr) <= 0):
        raise InvalidParameterError(
            f"grid of bidder {i} must be strictly increasing, got {arr.tolist()}; "
            "sort it and drop repeats"
        )
    return arr


class TypeSpace:
    """Per-bidder finite value grids.

    Every table over the profiles is dense, so the number of profiles (the product of
    the grid sizes) is capped at :data:`MAX_PROFILES` and checked before any array is
    built; above :data:`WARN_PROFILES` the constructor warns that exact evaluation will
    be slow.

    Args:
        grids: one sequence of values per bidder; each must be strictly increasing
            non-negative integers representable in int64.

    Raises:
        InvalidParameterError: for no grids, an empty, unsorted or non-integer grid, or
            more than :data:`MAX_PROFILES` profiles.
    """

    def __init__(self, grids: Sequence[Sequence[int]]):
        try:
            grids = list(grids)
        except TypeError as e:
            raise InvalidParameterError(
                f"a type space needs a list of grids (one list of values per bidder), got {grids!r}"
            ) from e
        if len(grids) < 1:
            raise InvalidParameterError(
                "a type space needs at least one bidder; got an empty list of grids"
            )
        # Count the profiles before any array is built: a huge grid costs memory too.
        sizes = [len(g) if hasattr(g, "__len__") else None for g in grids]
        if all(k is not None for k in sizes):
            _check_size(sizes)  # type: ignore[arg-type]  # no None left
        clean = [_clean_grid(i, g) for i, g in enumerate(grids)]
        _check_size([len(g) for g in clean], warn=True)
        for arr in clean:
            arr.setflags(write=False)
        self.grids: tuple[np.ndarray, ...] = tuple(clean)

    @classmethod
    def uniform(cls, n: int, values: Sequence[int]) -> TypeSpace:
        """The same grid for each of ``n`` bidders."""
        n = int_param(n, "the number of bidders n", low=1)
        return cls([values] * n)

    @property
    def n(self) -> int:
        """Number of bidders."""
        return len(self.grids)

    @property
    def shape(self) -> tuple[int, ...]:
        """Grid sizes, one per bidder: the shape of every table over profiles."""
        return tuple(len(g) for g in self.grids)

    @property
    def size(self) -> int:
        """Number of profiles (at most :data:`MAX_PROFILES`)."""
        return math.prod(self.shape)

    def others(self, i: int) -> TypeSpace:
        """The type space of every bidder but ``i`` (needs ``n >= 2``)."""
        i = bidder_index(i, self.n)
        return TypeSpace([g for j, g in enumerate(self.grids) if j != i])

    def others_shape(self, i: int) -> tuple[int, ...]:
        """Grid sizes of every bidder but ``i``."""
        i = bidder_index(i, self.n)
        return tuple(k for j, k in enumerate(self.shape) if j != i)

    def others_size(self, i: int) -> int:
        """Number of profiles of every bidder but ``i``."""
        return math.prod(self.others_shape(i))

    @cached_property
    def all_values(self) -> np.ndarray:
        """Sorted union of every bidder's grid (the price grid of the Lemma 1 lottery)."""
        return np.unique(np.concatenate(self.grids))

    @cached_property
    def profile_indices(self) -> np.ndarray:
        """Every profile as grid indices, shape ``(size, n)``, in C order of the tables."""
        idx = np.indices(self.shape).reshape(self.n, -1).T
        return np.ascontiguousarray(idx)

    @cached_property
    def profile_values(self) -> np.ndarray:
        """Every profile as values, shape ``(size, n)``, in C order of the tables."""
        return self.values_of(self.profile_indices)

    def values_of(self, indices: np.ndarray) -> np.ndarray:
        """Map grid indices ``(..., n)`` to values ``(..., n)``."""
        indices = np.asarray(indices)
        out = np.empty(indices.shape, dtype=np.int64)
        for i, g in enumerate(self.grids):
            out[..., i] = g[indices[..., i]]
        return out

    def indices_of(self, values: np.ndarray, what: str = "valuation report") -> np.ndarray:
        """Map values ``(..., n)`` to grid indices, raising if any value is off its grid."""
        values = np.asarray(values)
        if values.ndim < 1 or values.shape[-1] != self.n:
            raise InvalidReportError(
                f"{what}s must have a last axis of length n={self.n}, got shape {values.shape}"
            )
        if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
            raise InvalidReportError(
                f"{what}s must be finite, got {values[~np.isfinite(values)][:3]}"
            )
        out = np.empty(values.shape, dtype=np.int64)
        for i, g in enumerate(self.grids):
            v = values[..., i]
            k = np.searchsorted(g, v)
            k_clip = np.minimum(k, len(g) - 1)
            bad = g[k_clip] != v
            if np.any(bad):
                raise InvalidReportError(
                    f"{what} of bidder {i} is off its grid: got {np.asarray(v)[bad][:5].tolist()}, "
                    f"expected one of {g.tolist()}"
                )
            out[..., i] = k_clip
        return out

    def flat_index(self, indices: np.ndarray) -> np.ndarray:
        """Flat (C-order) profile number of grid indices ``(..., n)``."""
        return np.ravel_multi_index(tuple(np.moveaxis(np.asarray(indices), -1, 0)), self.shape)

    def others_flat_index(self, i: int, indices: np.ndarray) -> np.ndarray:
        """Flat index into ``others_shape(i)`` of the others' part of profiles ``(..., n)``."""
        indices = np.asarray(indices)
        rest = np.delete(indices, i, axis=-1)
        if rest.shape[-1] == 0:
            return np.zeros(indices.shape[:-1], dtype=np.int64)
        return np.ravel_multi_index(tuple(np.moveaxis(rest, -1, 0)), self.others_shape(i))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TypeSpace)
            and len(other.grids) == len(self.grids)
            and all(np.array_equal(a, b) for a, b in zip(self.grids, other.grids))
        )

    def __hash__(self) -> int:
        return hash(tuple(g.tobytes() for g in self.grids))

    def __repr__(self) -> str:
        return f"TypeSpace({[g.tolist() for g in self.grids]})"


class Setting:
    """Which sets of bidders can be served together (single-parameter settings)."""

    name = "setting"

    def capacity(self, n: int) -> int:
        """Largest number of bidders that can be served at once."""
        raise NotImplementedError

    def feasible_sets(self, n: int) -> np.ndarray:
        """The maximal feasible winner sets as 0/1 rows of shape ``(m, n)``."""
        raise NotImplementedError

    def is_unit_cap(self) -> bool:
        """True when feasibility is just "at most k winners" (k-unit settings)."""
        return False


@dataclass(frozen=True)
class KUnits(Setting):
    """``k`` identical units, each bidder wants at most one."""

    k: int = 1

    def __post_init__(self) -> None:
        k = int_param(self.k, "k, the number of units,", low=1)
        object.__setattr__(self, "k", k)  # 2.0 -> 2, so that names and hashes agree

    @property
    def name(self) -> str:  # type: ignore[override]
        return "single_good" if self.k == 1 else f"{self.k}_units"

    def capacity(self, n: int) -> int:
        return min(self.k, n)

    def feasible_sets(self, n: int) -> np.ndarray:
        k = self.capacity(n)
        rows = []
        for combo in itertools.combinations(range(n), k):
            row = np.zeros(n, dtype=np.int8)
            row[list(combo)] = 1
            rows.append(row)
        return np.array(rows, dtype=np.int8)

    def is_unit_cap(self) -> bool:
        return True


def SingleGood() -> KUnits:  # noqa: N802 - reads as a class at call sites
    """One indivisible good: at most one winner."""
    return KUnits(1)


@dataclass(frozen=True)
class DownwardClosed(Setting):
    """Any set of bidders contained in one of ``maximal`` may be served together.

    Args:
        maximal: the maximal feasible winner sets, each a tuple of bidder indices.
    """

    maximal: tuple[tuple[int, ...], ...]
    name: str = "downward_closed"

    def __post_init__(self) -> None:
        try:
            sets = [list(s) for s in self.maximal]
        except TypeError as e:
            raise InvalidParameterError(
                "a downward-closed setting needs its maximal feasible sets as a list of lists "
                f"of bidder indices, got {self.maximal!r}"
            ) from e
        if len(sets) == 0:
            raise InvalidParameterError(
                "a downward-closed setting needs at least one feasible set, got none"
            )
        clean = []
        for s in sets:
            bidders = {int_param(b, f"a bidder of feasible set {s}", low=0) for b in s}
            clean.append(tuple(sorted(bidders)))
        object.__setattr__(self, "maximal", tuple(clean))

    def capacity(self, n: int) -> int:
        return max(len(s) for s in self.maximal)

    def feasible_sets(self, n: int) -> np.ndarray:
        rows = np.zeros((len(self.maximal), n), dtype=np.int8)
        for r, s in enumerate(self.maximal):
            if any(b < 0 or b >= n for b in s):
                raise InvalidParameterError(
                    f"feasible set {s} names a bidder outside 0..{n - 1}; "
                    f"the setting must fit the {n} bidders"
                )
            rows[r, list(s)] = 1
        return rows
