"""Priors read from files: explicit tables and observed value profiles.

Two CSV formats, both comma-separated, ``#`` starting a comment, blank lines skipped,
and an optional header line (a first row that does not parse as numbers):

* **Table** (:func:`read_table_prior`): one profile per row, ``v_0, ..., v_{n-1}, p``:
  the bidders' values (each on its grid) and the probability of that profile.
  Profiles not listed get probability zero; a profile listed twice has its
  probabilities added. Probabilities must be finite and non-negative; if they do not
  sum to one (within ``1e-9``) they are read as weights, normalised, and a warning says
  so.
* **Samples** (:func:`read_samples_prior`): one observed auction per row,
  ``x_0, ..., x_{n-1}``, real numbers. Each value is *binned* onto its bidder's grid,
  and the prior is the empirical distribution of the binned profiles. Binning rules
  (:data:`BINNING`):

  - ``"nearest"``: the closest grid value; halfway between two grid values goes to
    the lower one; values outside the grid go to its nearest end.
  - ``"floor"``: the largest grid value ``<= x`` (a bidder never gets credited with
    more than it was observed to have); a value below the grid's minimum is an error.
  - ``"ceil"``: the smallest grid value ``>= x``; a value above the grid's maximum is
    an error.

Errors name the file, the line (1-based, as an editor shows it) and the column
(1-based field number), and say what was expected.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from crowdauction.errors import InvalidPriorError
from crowdauction.mechanisms.prior import Prior
from crowdauction.mechanisms.typespace import TypeSpace

__all__ = ["BINNING", "read_table_prior", "read_samples_prior", "bin_values"]

#: Names of the binning rules of :func:`bin_values`.
BINNING = ("nearest", "floor", "ceil")


def _rows(path: Path) -> list[tuple[int, list[str]]]:
    """Non-blank, non-comment CSV rows with their 1-based line numbers."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise InvalidPriorError(f"cannot read prior file {str(path)!r}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise InvalidPriorError(f"prior file {str(path)!r} is not UTF-8 text: {e}") from e
    out = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        body = line.split("#", 1)[0].strip()
        if not body:
            continue
        fields = next(csv.reader([body]))
        out.append((lineno, [f.strip() for f in fields]))
    return out


def _is_header(fields: Sequence[str]) -> bool:
    for f in fields:
        try:
            float(f)
        except ValueError:
            return True
    return False


def _numbers(
    path: Path, rows: list[tuple[int, list[str]]], width: int, what: str
) -> tuple[np.ndarray, list[int]]:
    """Parse rows of ``width`` numbers; returns ``(values (R, width), line numbers)``."""
    if rows and _is_header(rows[0][1]):
        rows = rows[1:]
    if not rows:
        raise InvalidPriorError(f"prior file {str(path)!r} has no data rows; expected {what}")
    data = np.empty((len(rows), width))
    lines = []
    for r, (lineno, fields) in enumerate(rows):
        if len(fields) != width:
            raise InvalidPriorError(
                f"{path}:{lineno}: expected {width} fields ({what}), "
                f"got {len(fields)}: {','.join(fields)!r}"
            )
        for c, f in enumerate(fields):
            try:
                x = float(f)
            except ValueError:
                raise InvalidPriorError(
                    f"{path}:{lineno}: column {c + 1}: {f!r} is not a number; expected {what}"
                ) from None
            if not math.isfinite(x):
                raise InvalidPriorError(f"{path}:{lineno}: column {c + 1}: {f!r} is not finite")
            data[r, c] = x
        lines.append(lineno)
    return data, lines


def read_table_prior(path: str | Path, space: TypeSpace) -> Prior:
    """Read an explicit prior table (``v_0, ..., v_{n-1}, probability`` per row).

    Args:
        path: the CSV file.
        space: the type space; every value must lie on its bidder's grid.

    Raises:
        InvalidPriorError: naming the file, line and column of the first bad field.
    """
    path = Path(path)
    n = space.n
    data, lines = _numbers(path, _rows(path), n + 1, f"{n} values and a probability")
    table = np.zeros(space.shape)
    idx = np.empty((data.shape[0], n), dtype=np.int64)
    for c, g in enumerate(space.grids):
        col = data[:, c]
        k = np.clip(np.searchsorted(g, col), 0, len(g) - 1)
        bad = np.nonzero(g[k] != col)[0]
        if bad.size:
            r = int(bad[0])
            raise InvalidPriorError(
                f"{path}:{lines[r]}: column {c + 1}: value {col[r]:g} of bidder {c} is not on "
                f"its grid {g.tolist()}"
            )
        idx[:, c] = k
    p = data[:, n]
    neg = np.nonzero(p < 0)[0]
    if neg.size:
        r = int(neg[0])
        raise InvalidPriorError(
            f"{path}:{lines[r]}: column {n + 1}: probability {p[r]:g} is negative"
        )
    total = float(p.sum())
    if total <= 0:
        raise InvalidPriorError(
            f"{path}: probabilities sum to {total:g}; at least one must be positive"
        )
    if abs(total - 1.0) > 1e-9:
        warnings.warn(
            f"{path}: probabilities sum to {total:.12g}, not 1; "
            "reading them as weights and normalising",
            UserWarning,
            stacklevel=2,
        )
    np.add.at(table, tuple(idx.T), p / total)
    return Prior(table, space)


def bin_values(values: np.ndarray, grid: np.ndarray, rule: str = "nearest") -> np.ndarray:
    """Grid indices of real values under a binning rule (see the module docstring).

    Args:
        values: ``(S,)`` observed values.
        grid: ``(K,)`` strictly increasing grid.
        rule: one of :data:`BINNING`.

    Returns:
        ``(S,)`` grid indices; ``-1`` marks values the rule cannot place (below the
        grid for ``floor``, above it for ``ceil``).
    """
    g = np.asarray(grid, dtype=np.float64)
    x = np.asarray(values, dtype=np.float64)
    if rule == "floor":
        k = np.searchsorted(g, x, side="right") - 1
        return np.where(k >= 0, k, -1)
    if rule == "ceil":
        k = np.searchsorted(g, x, side="left")
        return np.where(k < len(g), k, -1)
    if rule == "nearest":
        hi = np.clip(np.searchsorted(g, x, side="left"), 0, len(g) - 1)
        lo = np.clip(hi - 1, 0, len(g) - 1)
        # Halfway goes to the lower grid value.
        return np.where(np.abs(x - g[lo]) <= np.abs(g[hi] - x), lo, hi)
    raise InvalidPriorError(f"unknown binning rule {rule!r}; expected one of {list(BINNING)}")


def read_samples_prior(path: str | Path, space: TypeSpace, binning: str = "nearest") -> Prior:
    """The empirical prior of observed value profiles (one auction per row).

    Args:
        path: the CSV file with ``n`` real values per row.
        space: the type space whose grids the values are binned onto.
        binning: ``"nearest"``, ``"floor"`` or ``"ceil"``.

    Raises:
        InvalidPriorError: naming the file, line and column of the first bad field.
    """
    if binning not in BINNING:
        raise InvalidPriorError(
            f"unknown binning rule {binning!r}; expected one of {list(BINNING)}"
        )
    path = Path(path)
    n = space.n
    data, lines = _numbers(path, _rows(path), n, f"{n} observed values, one per bidder")
    idx = np.empty(data.shape, dtype=np.int64)
    for c, g in enumerate(space.grids):
        k = bin_values(data[:, c], g, binning)
        bad = np.nonzero(k < 0)[0]
        if bad.size:
            r = int(bad[0])
            side = "below the smallest" if binning == "floor" else "above the largest"
            raise InvalidPriorError(
                f"{path}:{lines[r]}: column {c + 1}: value {data[r, c]:g} of bidder {c} "
                f"lies {side} "
                f"grid value {g.tolist()} and cannot be binned with {binning!r}; use 'nearest' or "
                "widen the grid"
            )
        idx[:, c] = k
    return Prior.empirical(space.values_of(idx), [g.tolist() for g in space.grids])
