"""Argument checks shared by the mechanisms, envs and agents.

Each check returns the cleaned value (a Python ``float`` or ``int``) or raises the given
error class (by default :class:`~crowdauction.errors.InvalidParameterError`) with a
message that names the parameter, the bad value and what was expected. Booleans are
refused wherever a number is expected: ``eps=True`` is a slip, not the number 1.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from crowdauction.errors import CrowdAuctionError, InvalidParameterError

__all__ = ["real_param", "int_param", "bidder_index"]


def _scalar(value: object) -> object:
    """Unwrap a 0-d numpy array into its Python scalar; anything else is returned as is."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    return value


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def real_param(
    value: object,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    hint: str = "",
    error: type[CrowdAuctionError] = InvalidParameterError,
) -> float:
    """A finite real number inside the given interval, as a ``float``.

    Args:
        value: what the caller passed.
        name: how the message names the parameter (e.g. ``"eps (the reward scale)"``).
        low, high: the bounds; ``None`` leaves that side unbounded.
        low_open, high_open: whether a bound itself is excluded.
        hint: appended to the message (how to fix it).
        error: the exception class to raise.
    """
    v = _scalar(value)
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    interval = f"{left}{lo}, {hi}{right}"
    ok = _is_real(v) and math.isfinite(float(v))  # type: ignore[arg-type]
    if ok:
        f = float(v)  # type: ignore[arg-type]
        if low is not None and (f < low or (low_open and f == low)):
            ok = False
        if high is not None and (f > high or (high_open and f == high)):
            ok = False
    if not ok:
        suffix = f"; {hint}" if hint else ""
        raise error(f"{name} must lie in {interval} (a finite real number), got {value!r}{suffix}")
    return f


def int_param(
    value: object,
    name: str,
    *,
    low: int | None = None,
    high: int | None = None,
    hint: str = "",
    error: type[CrowdAuctionError] = InvalidParameterError,
) -> int:
    """An integer (an integral float such as ``3.0`` counts) inside ``[low, high]``."""
    v = _scalar(value)
    ok = _is_real(v) and math.isfinite(float(v)) and float(v).is_integer()  # type: ignore[arg-type]
    if ok:
        k = int(v)  # type: ignore[call-overload]
        ok = (low is None or k >= low) and (high is None or k <= high)
    if not ok:
        if low is not None and high is not None:
            want = f"an integer in {low}..{high}"
        elif low is not None:
            want = f"an integer >= {low}"
        elif high is not None:
            want = f"an integer <= {high}"
        else:
            want = "an integer"
        suffix = f"; {hint}" if hint else ""
        raise error(f"{name} must be {want}, got {value!r}{suffix}")
    return k


def bidder_index(
    i: object,
    n: int,
    what: str = "bidder",
    error: type[CrowdAuctionError] = InvalidParameterError,
) -> int:
    """A bidder index in ``0..n-1`` (negative indices are refused, not wrapped)."""
    v = _scalar(i)
    if not isinstance(v, (numbers.Integral, np.integer)) or isinstance(v, (bool, np.bool_)):
        raise error(f"{what} must be an integer bidder index in 0..{n - 1}, got {i!r}")
    k = int(v)
    if not 0 <= k < n:
        raise error(
            f"{what} {k} is out of range: there are {n} bidders, numbered 0..{n - 1}"
        )
    return k
