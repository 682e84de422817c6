"""The exceptions of crowdauction.

Every error a user can cause derives from :class:`CrowdAuctionError`, and also from the
builtin it refines (``ValueError`` or ``KeyError``), so ``except ValueError`` keeps
working. Messages name the bad value, what was expected and how to fix it.

:class:`InvalidParameterError` is both a ``ValueError`` and a ``TypeError``: a parameter
of the wrong type (``eps="a"``) and one out of range (``eps=0``) raise the same class, and
code that caught either builtin around these calls keeps working (numpy's ``AxisError``
is likewise both a ``ValueError`` and an ``IndexError``).
"""

from __future__ import annotations


class CrowdAuctionError(Exception):
    """Base class of every error raised by crowdauction on bad input or failure."""


class InvalidPriorError(CrowdAuctionError, ValueError):
    """A prior is not a probability table on the type space (sign, NaN, sum, shape)."""


class InvalidPartitionError(CrowdAuctionError, ValueError):
    """A knowledge partition has the wrong shape or hides a bidder's own value."""


class InvalidReportError(CrowdAuctionError, ValueError):
    """A valuation or belief report is off the grid, off the simplex or misshaped."""


class InvalidParameterError(CrowdAuctionError, ValueError, TypeError):
    """A mechanism, setting or agent parameter is out of range or of the wrong type.

    Also raised for a type space too large to tabulate (see
    :data:`crowdauction.mechanisms.typespace.MAX_PROFILES`).
    """


class InvalidActionError(CrowdAuctionError, ValueError):
    """An environment action is NaN, infinite, misshaped or for an agent not alive."""


class InvalidConfigError(CrowdAuctionError, ValueError):
    """A training or experiment configuration has an unknown key or a bad value."""


class SolverError(CrowdAuctionError, RuntimeError):
    """The linear-program solver failed or returned a solution that does not verify."""


class UnknownNameError(CrowdAuctionError, KeyError):
    """A registry lookup (mechanism, scoring rule, prior family) found no such name."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""
