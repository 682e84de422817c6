"""Priors: finite joint distributions over value profiles.

A :class:`Prior` is a dense probability table with one axis per bidder, over a
:class:`~crowdauction.mechanisms.typespace.TypeSpace`. Correlation is allowed and is
the interesting case. Constructors cover independent and i.i.d. priors, explicit
tables, empirical priors from samples, and two correlated families: a common-component
prior (every value is a shared draw plus private noise) and a discretised Gaussian
copula.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import special, stats

from crowdauction.errors import InvalidPriorError
from crowdauction.mechanisms.checks import bidder_index, int_param, real_param
from crowdauction.mechanisms.typespace import TypeSpace

__all__ = ["Prior", "SUM_TOLERANCE"]

#: A prior table must sum to one within this absolute tolerance; it is then renormalised.
SUM_TOLERANCE = 1e-9


def _check_probabilities(p: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(p)):
        raise InvalidPriorError(
            f"{what} holds non-finite entries (NaN or inf); every entry must be a probability"
        )
    if np.any(p < 0):
        raise InvalidPriorError(
            f"{what} holds negative entries (smallest {p.min():.3g}); probabilities must be >= 0"
        )
    total = float(p.sum())
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise InvalidPriorError(
            f"{what} sums to {total!r}, expected 1 within {SUM_TOLERANCE:g}; "
            "divide by its sum if it is a table of weights"
        )


def _distribution(p: Sequence[float], what: str) -> np.ndarray:
    """A non-empty 1-D probability vector, checked."""
    try:
        arr = np.asarray(p, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InvalidPriorError(f"{what} must be a list of probabilities, got {p!r}") from e
    if arr.ndim != 1 or arr.size == 0:
        raise InvalidPriorError(f"{what} must be a non-empty 1-D list of probabilities, got {p!r}")
    _check_probabilities(arr, what)
    return arr


def _num_bidders(n: object) -> int:
    return int_param(n, "n, the number of bidders,", low=1, error=InvalidPriorError)


class Prior:
    """A joint distribution over the profiles of a type space.

    Args:
        table: probabilities, shape ``space.shape``; must be non-negative, finite and
            sum to one within :data:`SUM_TOLERANCE`.
        space: the type space (or the list of grids).
    """

    def __init__(self, table: np.ndarray, space: TypeSpace | Sequence[Sequence[int]]):
        if not isinstance(space, TypeSpace):
            space = TypeSpace(space)
        table = np.asarray(table, dtype=np.float64)
        if table.shape != space.shape:
            raise InvalidPriorError(
                f"prior table has shape {table.shape}, expected {space.shape} "
                "(one axis per bidder, one entry per grid value)"
            )
        _check_probabilities(table, "prior table")
        table = table / table.sum()
        table.setflags(write=False)
        self.table = table
        self.space = space
        self._alias: tuple[np.ndarray, np.ndarray] | None = None
        self._key: bytes | None = None

    # -- constructors ---------------------------------------------------------------

    @classmethod
    def independent(
        cls, marginals: Sequence[Sequence[float]], grids: Sequence[Sequence[int]]
    ) -> Prior:
        """Independent values: bidder i's value follows ``marginals[i]`` on ``grids[i]``."""
        return cls._independent(marginals, TypeSpace(grids))

    @classmethod
    def _independent(cls, marginals: Sequence[Sequence[float]], space: TypeSpace) -> Prior:
        """:meth:`independent` on a type space already built (and size-checked)."""
        if len(marginals) != space.n:
            raise InvalidPriorError(
                f"got {len(marginals)} marginals for {space.n} grids; give one per bidder"
            )
        table = np.ones(())
        for i, m in enumerate(marginals):
            m = np.asarray(m, dtype=np.float64)
            if m.shape != (space.shape[i],):
                raise InvalidPriorError(
                    f"marginal of bidder {i} has shape {m.shape}, expected "
                    f"({space.shape[i]},) to match its grid"
                )
            _check_probabilities(m, f"marginal of bidder {i}")
            table = np.multiply.outer(table, m)
        return cls(table, space)

    @classmethod
    def iid(cls, marginal: Sequence[float], values: Sequence[int], n: int) -> Prior:
        """``n`` bidders with independent values, each distributed as ``marginal`` on ``values``."""
        n = _num_bidders(n)
        return cls._independent([marginal] * n, TypeSpace.uniform(n, values))

    @classmethod
    def uniform(cls, values: Sequence[int], n: int) -> Prior:
        """``n`` i.i.d. bidders uniform on ``values``."""
        n = _num_bidders(n)
        space = TypeSpace.uniform(n, values)  # checks the grid before 1 / len(values)
        k = space.shape[0]
        return cls._independent([np.full(k, 1.0 / k)] * n, space)

    @classmethod
    def from_table(
        cls, rows: Sequence[tuple[Sequence[int], float]], grids: Sequence[Sequence[int]]
    ) -> Prior:
        """From explicit ``(profile, probability)`` rows; profiles not listed get zero."""
        space = TypeSpace(grids)
        table = np.zeros(space.shape)
        if len(rows) == 0:
            raise InvalidPriorError(
                "an explicit prior table needs at least one (profile, probability) row"
            )
        profiles = np.array([r[0] for r in rows])
        probs = np.array([r[1] for r in rows], dtype=np.float64)
        try:
            idx = space.indices_of(profiles, what="profile value")
        except ValueError as e:
            raise InvalidPriorError(f"explicit prior table: {e}") from e
        np.add.at(table, tuple(idx.T), probs)
        if np.any(probs < 0) or not np.all(np.isfinite(probs)):
            raise InvalidPriorError(
                "explicit prior table has invalid probabilities "
                f"{probs[(probs < 0) | ~np.isfinite(probs)][:3]}"
            )
        return cls(table, space)

    @classmethod
    def empirical(cls, samples: np.ndarray, grids: Sequence[Sequence[int]]) -> Prior:
        """The empirical distribution of sampled profiles ``(S, n)``, each on the grids."""
        space = TypeSpace(grids)
        samples = np.asarray(samples)
        if samples.ndim != 2 or samples.shape[0] == 0:
            raise InvalidPriorError(
                f"samples must have shape (S, n) with S >= 1, got {samples.shape}"
            )
        try:
            idx = space.indices_of(samples, what="sampled value")
        except ValueError as e:
            raise InvalidPriorError(
                f"empirical prior: {e}; bin the data onto the grid first"
            ) from e
        counts = np.zeros(space.shape)
        np.add.at(counts, tuple(idx.T), 1.0)
        return cls(counts / counts.sum(), space)

    @classmethod
    def common_component(
        cls,
        n: int,
        common: Sequence[float],
        noise: Sequence[float],
    ) -> Prior:
        """Every value is a shared draw plus private noise: ``theta_i = C + X_i``.

        ``C`` has distribution ``common`` on ``{0, 1, ...}``; the ``X_i`` are i.i.d. with
        distribution ``noise`` on ``{0, 1, ...}``, independent of ``C``. Each bidder's grid
        is ``{0, ..., len(common) + len(noise) - 2}``. The shared draw correlates values.
        """
        n = _num_bidders(n)
        common = _distribution(common, "common-component distribution")
        noise = _distribution(noise, "noise distribution")
        kc, kx = len(common), len(noise)
        values = list(range(kc + kx - 1))
        space = TypeSpace.uniform(n, values)  # refuses a table too large before allocating it
        table = np.zeros(space.shape)
        # Sum over the shared draw: each c contributes an i.i.d. block shifted by c.
        for c in range(kc):
            block = np.ones(())
            shifted = np.zeros(kc + kx - 1)
            shifted[c : c + kx] = noise
            for _ in range(n):
                block = np.multiply.outer(block, shifted)
            table += common[c] * block
        return cls(table, space)

    @classmethod
    def gaussian_copula(
        cls,
        n: int,
        values: Sequence[int],
        rho: float,
        marginal: Sequence[float] | None = None,
    ) -> Prior:
        """Discretised Gaussian copula with equicorrelation ``rho`` and the given marginal.

        Bidder i's value is the grid point whose marginal-quantile interval contains
        ``Phi(Z_i)``, where ``Z`` is standard normal with ``corr(Z_i, Z_j) = rho``. The
        cell probabilities are computed exactly by numerical integration over the
        shared factor of the equicorrelated normal (``rho`` in ``[0, 1)``).
        """
        rho = real_param(
            rho,
            "copula correlation rho",
            low=0.0,
            high=1.0,
            high_open=True,
            error=InvalidPriorError,
        )
        n = _num_bidders(n)
        space = TypeSpace.uniform(n, values)  # checks the grid and its size before any table
        k = space.shape[0]
        if marginal is None:
            m = np.full(k, 1.0 / k)
        else:
            m = _distribution(marginal, "copula marginal")
            if m.shape != (k,):
                raise InvalidPriorError(
                    f"copula marginal has {m.size} entries but the grid has {k} values "
                    f"{space.grids[0].tolist()}; give one probability per grid value"
                )
        cuts = stats.norm.ppf(np.clip(np.concatenate([[0.0], np.cumsum(m)]), 0.0, 1.0))
        # Z_i = sqrt(rho) W + sqrt(1 - rho) E_i; given W the E_i are independent.
        nodes, weights = np.polynomial.hermite_e.hermegauss(80)
        weights = weights / weights.sum()
        s = np.sqrt(1.0 - rho)
        table = np.zeros(space.shape)
        for w, wt in zip(nodes, weights):
            cdf = special.ndtr((cuts - np.sqrt(rho) * w) / s)
            cell = np.clip(np.diff(cdf), 0.0, None)
            block = np.ones(())
            for _ in range(n):
                block = np.multiply.outer(block, cell)
            table += wt * block
        return cls(table / table.sum(), space)

    # -- views ----------------------------------------------------------------------

    @property
    def n(self) -> int:
        return self.space.n

    @property
    def grids(self) -> tuple[np.ndarray, ...]:
        return self.space.grids

    def marginal(self, i: int) -> np.ndarray:
        """Distribution of bidder ``i``'s value over its grid."""
        i = self._bidder(i)
        axes = tuple(j for j in range(self.n) if j != i)
        return self.table.sum(axis=axes)

    def _bidder(self, i: object, what: str = "bidder") -> int:
        return bidder_index(i, self.n, what=what, error=InvalidPriorError)

    def marginals(self) -> list[np.ndarray]:
        return [self.marginal(i) for i in range(self.n)]

    def restrict(self, bidders: Sequence[int]) -> Prior:
        """The joint distribution of the given bidders' values (others summed out)."""
        try:
            bidders = [self._bidder(b) for b in bidders]
        except (TypeError, InvalidPriorError) as e:
            raise InvalidPriorError(
                f"restrict needs distinct bidders in 0..{self.n - 1}, got {bidders!r}: {e}"
            ) from e
        if len(bidders) == 0 or len(set(bidders)) != len(bidders):
            raise InvalidPriorError(
                f"restrict needs distinct bidders in 0..{self.n - 1}, got {bidders}"
            )
        drop = tuple(j for j in range(self.n) if j not in bidders)
        t = self.table.sum(axis=drop)
        kept = sorted(bidders)
        t = np.transpose(t, [kept.index(b) for b in bidders])
        return Prior(t, [self.grids[b] for b in bidders])

    def without(self, i: int) -> Prior:
        """The prior of every bidder but ``i`` (``D_{-i}`` of the paper)."""
        i = self._bidder(i)
        return self.restrict([j for j in range(self.n) if j != i])

    def conditional(self, given: Mapping[int, int]) -> Prior:
        """The distribution of the other bidders given some bidders' values.

        Args:
            given: bidder -> value (a value on that bidder's grid).

        Raises:
            InvalidPriorError: if the event has probability zero.
        """
        if not isinstance(given, Mapping):
            raise InvalidPriorError(
                f"conditional needs a mapping bidder -> value such as {{0: 2}}, got {given!r}"
            )
        sl: list[object] = [slice(None)] * self.n
        fixed = {}
        for b, v in given.items():
            b = self._bidder(b, what="conditioning bidder")
            g = self.grids[b]
            on_grid = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(
                v, (bool, np.bool_)
            )
            k = int(np.searchsorted(g, v)) if on_grid else len(g)
            if k >= len(g) or g[k] != v:
                raise InvalidPriorError(f"value {v!r} is not on bidder {b}'s grid {g.tolist()}")
            sl[b] = k
            fixed[b] = v
        given = fixed
        t = self.table[tuple(sl)]
        mass = float(t.sum())
        if mass <= 0:
            raise InvalidPriorError(
                f"cannot condition on {dict(given)}: the event has probability zero"
            )
        rest = [j for j in range(self.n) if j not in given]
        if not rest:
            raise InvalidPriorError("conditioning on every bidder leaves no distribution")
        return Prior(t / mass, [self.grids[j] for j in rest])

    def is_independent(self, atol: float = 1e-12) -> bool:
        """True when the table is the product of its marginals."""
        prod = np.ones(())
        for m in self.marginals():
            prod = np.multiply.outer(prod, m)
        return bool(np.allclose(prod, self.table, atol=atol, rtol=0))

    def expect(self, f: np.ndarray) -> float:
        """Expectation of a table ``f`` over profiles (shape ``space.shape``)."""
        return float((self.table * f).sum())

    def full_surplus(self, capacity: int = 1) -> float:
        """``E[sum of the top `capacity` values]``: no IR mechanism earns more.

        ``capacity`` is a positive number of units; ``capacity >= n`` sums every value.
        """
        capacity = int_param(
            capacity, "capacity, the number of units,", low=1, error=InvalidPriorError
        )
        vals = np.sort(self.space.profile_values, axis=1)[:, ::-1][:, :capacity].sum(axis=1)
        return float(self.table.ravel() @ vals)

    # -- sampling -------------------------------------------------------------------

    def _alias_table(self) -> tuple[np.ndarray, np.ndarray]:
        # Walker's alias method: O(N) build once, O(1) per draw.
        if self._alias is None:
            p = self.table.ravel()
            size = p.size
            scaled = p * size
            prob = np.zeros(size)
            alias = np.zeros(size, dtype=np.int64)
            small = [i for i in range(size) if scaled[i] < 1.0]
            large = [i for i in range(size) if scaled[i] >= 1.0]
            while small and large:
                s, g = small.pop(), large.pop()
                prob[s] = scaled[s]
                alias[s] = g
                scaled[g] = scaled[g] + scaled[s] - 1.0
                (small if scaled[g] < 1.0 else large).append(g)
            for i in large + small:
                prob[i] = 1.0
                alias[i] = i
            self._alias = (prob, alias)
        return self._alias

    def sample_flat(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``size`` flat profile numbers (C order) with an alias table."""
        prob, alias = self._alias_table()
        col = rng.integers(0, prob.size, size=size)
        keep = rng.random(size) < prob[col]
        return np.where(keep, col, alias[col])

    def sample_indices(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``size`` profiles as grid indices, shape ``(size, n)``."""
        flat = self.sample_flat(size, rng)
        return np.stack(np.unravel_index(flat, self.space.shape), axis=-1)

    def sample(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``size`` profiles as values, shape ``(size, n)``."""
        return self.space.values_of(self.sample_indices(size, rng))

    # -- identity -------------------------------------------------------------------

    def key(self) -> bytes:
        """A hashable fingerprint (shape, table rounded to 12 decimals, grids) for caches."""
        if self._key is None:
            rounded = np.round(self.table, 12)
            shape = np.asarray(self.table.shape, dtype=np.int64).tobytes()
            self._key = (
                shape + b"|" + rounded.tobytes() + b"|" + b"|".join(g.tobytes() for g in self.grids)
            )
        return self._key

    def __repr__(self) -> str:
        return f"Prior(n={self.n}, shape={self.space.shape})"
