"""Priors read from files: explicit tables and observed value profiles.

Two CSV formats, both comma-separated, ``#`` starting a comment, blank lines skipped,
and an optional header line. The first row is a header only if *none* of its fields
parses as a number (``v0,v1,p``); a first row with any number in it is data, so a typo
there (``0,0,O.5``) is reported with its line and column instead of being dropped.
Fields separated by anything but commas (``0;0;1``) are an error that says so.

* **Table** (:func:`read_table_prior`): one profile per row, ``v_0, ..., v_{n-1}, p``:
  the bidders' values (each on its grid) and the probability of that profile.
  Profiles not listed get probability zero; a profile listed twice has its
  probabilities added. Probabilities must be finite and non-negative; if they do not
  sum to one (within ``1e-9``) they are read as weights, normalised, and a warning says
  so (also when their sum overflows the float range: they are then scaled by the
  largest before normalising).
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
import re
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


#: Separators people use instead of commas, named for the error message.
_OTHER_SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "bars"}


def _rows(path: Path) -> list[tuple[int, list[str], str]]:
    """Non-blank, non-comment CSV rows: ``(1-based line number, fields, raw text)``."""
    try:
        # utf-8-sig: a spreadsheet's byte-order mark must not glue itself to field 1.
        text = path.read_text(encoding="utf-8-sig")
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
        out.append((lineno, [f.strip() for f in fields], body))
    return out


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _other_separator(body: str) -> str | None:
    """The name of the non-comma separator ``body`` seems to use, or ``None``."""
    for sep, name in _OTHER_SEPARATORS.items():
        if sep in body:
            return name
    if "," not in body and len(body.split()) > 1:
        return "spaces"
    return None


def _is_header(fields: Sequence[str], body: str, width: int) -> bool:
    """Whether a first row is a header: none of its fields is a number.

    A row of the wrong width whose pieces between semicolons, tabs, bars or spaces
    hold a number (``0;0;1``) is data with the wrong separator, not a header.
    """
    if any(_is_number(f) for f in fields):
        return False
    if len(fields) != width and _other_separator(body) is not None:
        pieces = re.split(r"[;\t| ]+", body)
        return not any(_is_number(p) for p in pieces)
    return True


def _numbers(
    path: Path, rows: list[tuple[int, list[str], str]], width: int, what: str
) -> tuple[np.ndarray, list[int]]:
    """Parse rows of ``width`` numbers; returns ``(values (R, width), line numbers)``."""
    if rows and _is_header(rows[0][1], rows[0][2], width):
        rows = rows[1:]
        first_is_data = False
    else:
        first_is_data = True
    if not rows:
        raise InvalidPriorError(
            f"prior file {str(path)!r} has no data rows; expected {what} per line"
        )
    data = np.empty((len(rows), width))
    lines = []
    for r, (lineno, fields, body) in enumerate(rows):
        if len(fields) == width + 1 and fields[-1] == "":
            raise InvalidPriorError(
                f"{path}:{lineno}: column {width + 1}: empty field after the last value "
                f"(a trailing comma?); expected {width} fields ({what})"
            )
        if len(fields) != width:
            sep = _other_separator(body)
            hint = f"; separate the fields with commas, not {sep}" if sep else ""
            raise InvalidPriorError(
                f"{path}:{lineno}: expected {width} fields ({what}), "
                f"got {len(fields)}: {body!r}{hint}"
            )
        for c, f in enumerate(fields):
            try:
                x = float(f)
            except ValueError:
                # A first row holding any number is data, never a header: say why.
                note = (
                    " (a first line is a header only if none of its fields is a number)"
                    if r == 0 and first_is_data
                    else ""
                )
                shown = "an empty field" if f == "" else f"{f!r}"
                raise InvalidPriorError(
                    f"{path}:{lineno}: column {c + 1}: {shown} is not a number; "
                    f"expected {what}{note}"
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
    with np.errstate(over="ignore"):
        total = float(p.sum())
    if total <= 0:
        raise InvalidPriorError(
            f"{path}: probabilities sum to {total:g}; at least one must be positive"
        )
    if not math.isfinite(total):
        # Every entry is finite, so the sum overflowed: scale by the largest first.
        warnings.warn(
            f"{path}: probabilities sum past the largest float ({np.finfo(np.float64).max:g}; "
            f"largest entry {p.max():g}), not 1; reading them as weights and normalising",
            UserWarning,
            stacklevel=2,
        )
        w = p / p.max()
        p, total = w, float(w.sum())
    elif abs(total - 1.0) > 1e-9:
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
