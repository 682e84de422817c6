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
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from crowdauction.errors import InvalidReportError

__all__ = ["TypeSpace", "Setting", "SingleGood", "KUnits", "DownwardClosed"]


class TypeSpace:
    """Per-bidder finite value grids.

    Args:
        grids: one sequence of values per bidder; each must be strictly increasing
            non-negative integers.
    """

    def __init__(self, grids: Sequence[Sequence[int]]):
        if len(grids) < 1:
            raise ValueError("a type space needs at least one bidder; got an empty list of grids")
        clean = []
        for i, g in enumerate(grids):
            arr = np.asarray(g)
            if arr.ndim != 1 or arr.size == 0:
                raise ValueError(
                    f"grid of bidder {i} must be a non-empty 1-D list of values, got {g!r}"
                )
            if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)) or np.any(arr < 0):
                raise ValueError(
                    f"grid of bidder {i} must hold non-negative integers, got {arr.tolist()}"
                )
            arr = arr.astype(np.int64)
            if np.any(np.diff(arr) <= 0):
                raise ValueError(
                    f"grid of bidder {i} must be strictly increasing, got {arr.tolist()}; "
                    "sort it and drop repeats"
                )
            arr.setflags(write=False)
            clean.append(arr)
        self.grids: tuple[np.ndarray, ...] = tuple(clean)

    @classmethod
    def uniform(cls, n: int, values: Sequence[int]) -> TypeSpace:
        """The same grid for each of ``n`` bidders."""
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
        """Number of profiles."""
        return int(np.prod(self.shape))

    def others(self, i: int) -> TypeSpace:
        """The type space of every bidder but ``i``."""
        return TypeSpace([g for j, g in enumerate(self.grids) if j != i])

    def others_shape(self, i: int) -> tuple[int, ...]:
        return tuple(k for j, k in enumerate(self.shape) if j != i)

    def others_size(self, i: int) -> int:
        return int(np.prod(self.others_shape(i)))

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
            raise InvalidReportError(f"{what}s must be finite, got {values[~np.isfinite(values)][:3]}")
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
        return isinstance(other, TypeSpace) and len(other.grids) == len(self.grids) and all(
            np.array_equal(a, b) for a, b in zip(self.grids, other.grids)
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
        if int(self.k) != self.k or self.k < 1:
            raise ValueError(f"k must be a positive integer number of units, got {self.k!r}")

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
        if len(self.maximal) == 0:
            raise ValueError("a downward-closed setting needs at least one feasible set")
        object.__setattr__(self, "maximal", tuple(tuple(sorted(set(s))) for s in self.maximal))

    def capacity(self, n: int) -> int:
        return max(len(s) for s in self.maximal)

    def feasible_sets(self, n: int) -> np.ndarray:
        rows = np.zeros((len(self.maximal), n), dtype=np.int8)
        for r, s in enumerate(self.maximal):
            if any(b < 0 or b >= n for b in s):
                raise ValueError(f"feasible set {s} names a bidder outside 0..{n - 1}")
            rows[r, list(s)] = 1
        return rows
