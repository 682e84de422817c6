"""Knowledge partitions, beliefs, the meet, and the aggregator AGG.

Each bidder's knowledge is a partition of the profiles (a cell label for every
profile). A partition must be consistent with the bidder knowing its own value: every
cell fixes that bidder's coordinate. When the profile is drawn from the prior, the
bidder's *belief* is the prior conditioned on the cell that contains it, read as a
distribution over the other bidders' profiles. The coarsest partition, "knows only its
own value", gives the plain Bayesian posterior; finer ones model bidders who know more
about each other. Nothing here makes beliefs common knowledge.

A belief over the others is stored flat: entry ``o`` is the probability of the others'
profile whose grid indices, in bidder order without ``i``, have C-order number ``o``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from crowdauction.errors import InvalidPartitionError, InvalidReportError
from crowdauction.mechanisms.checks import bidder_index, int_param
from crowdauction.mechanisms.prior import Prior
from crowdauction.mechanisms.scoring import check_distribution
from crowdauction.mechanisms.typespace import TypeSpace

__all__ = [
    "Knowledge",
    "own_value",
    "knows_everything",
    "observes",
    "coarse_signal",
    "meet",
    "agg",
]


def _bidder(space: TypeSpace, i: object, what: str = "bidder") -> int:
    return bidder_index(i, space.n, what=what, error=InvalidPartitionError)


def own_value(space: TypeSpace, i: int) -> np.ndarray:
    """Labels for bidder ``i`` who knows only its own value."""
    i = _bidder(space, i)
    return np.broadcast_to(
        np.arange(space.shape[i]).reshape([-1 if j == i else 1 for j in range(space.n)]),
        space.shape,
    ).copy()


def knows_everything(space: TypeSpace, i: int) -> np.ndarray:
    """Labels for a bidder who observes the whole profile."""
    _bidder(space, i)
    return np.arange(space.size).reshape(space.shape)


def observes(space: TypeSpace, i: int, others: Sequence[int]) -> np.ndarray:
    """Labels for bidder ``i`` who knows its value and the values of ``others``."""
    i = _bidder(space, i)
    if isinstance(others, (str, bytes)) or not hasattr(others, "__iter__"):
        raise InvalidPartitionError(
            f"bidder {i} must observe a list of other bidders, got {others!r}"
        )
    others = list(others)
    try:
        seen = sorted({i, *(_bidder(space, b, what="observed bidder") for b in others)})
    except InvalidPartitionError as e:
        raise InvalidPartitionError(
            f"observed bidders of bidder {i} must lie in 0..{space.n - 1}, got {others}: {e}"
        ) from e
    idx = np.indices(space.shape)
    return np.ravel_multi_index(tuple(idx[b] for b in seen), tuple(space.shape[b] for b in seen))


def coarse_signal(space: TypeSpace, i: int, j: int, width: int) -> np.ndarray:
    """Labels for bidder ``i`` who sees a garbled signal of bidder ``j``'s value.

    Partitions are deterministic functions of the profile, so the noise is a garbling:
    ``i`` learns only which block of ``width`` consecutive grid values of ``j``
    contains ``j``'s value (``width=1`` is full observation of ``j``).
    """
    i = _bidder(space, i)
    j = _bidder(space, j, what="observed bidder j")
    if i == j:
        raise InvalidPartitionError("a bidder's signal must be about another bidder (i != j)")
    width = int_param(width, "signal width", low=1, error=InvalidPartitionError)
    idx = np.indices(space.shape)
    block = idx[j] // width
    nblocks = -(-space.shape[j] // width)
    return idx[i] * nblocks + block


def meet(*labels: np.ndarray) -> np.ndarray:
    """The meet of partitions as the paper defines it: cells are the intersections.

    The cell of a profile is the intersection of its cells in every given partition
    (the common refinement), so a bidder with the meet knows what all of them know.
    """
    if not labels:
        raise InvalidPartitionError("meet needs at least one partition")
    shape = np.shape(labels[0])
    if any(np.shape(lab) != shape for lab in labels):
        raise InvalidPartitionError(
            f"partitions to meet must share a shape, got {[np.shape(x) for x in labels]}"
        )
    stacked = np.stack(
        [np.unique(np.asarray(lab), return_inverse=True)[1].reshape(shape) for lab in labels], -1
    )
    _, inv = np.unique(stacked.reshape(-1, len(labels)), axis=0, return_inverse=True)
    return inv.reshape(shape)


class Knowledge:
    """Every bidder's knowledge partition over a prior's profiles, and the beliefs it gives.

    Args:
        prior: the true joint distribution.
        labels: per bidder, an integer cell label for every profile (shape
            ``prior.space.shape``); each cell must fix that bidder's own value.
            ``None`` means "knows only its own value" for every bidder.

    Attributes:
        cells: per bidder, the cell number (0..C_i-1) of every profile, same shape.
        beliefs: per bidder, an array ``(C_i, |others|)``: the belief in each cell.
        cell_value: per bidder, the own grid index that each cell fixes, ``(C_i,)``.
        cell_prob: per bidder, the prior probability of each cell, ``(C_i,)``.
    """

    def __init__(self, prior: Prior, labels: Sequence[np.ndarray] | None = None):
        space = prior.space
        if labels is None:
            labels = [own_value(space, i) for i in range(space.n)]
        if len(labels) != space.n:
            raise InvalidPartitionError(
                f"got {len(labels)} partitions for {space.n} bidders; give one per bidder"
            )
        self.prior = prior
        self.space = space
        self.cells: list[np.ndarray] = []
        self.beliefs: list[np.ndarray] = []
        self.cell_value: list[np.ndarray] = []
        self.cell_prob: list[np.ndarray] = []
        flat_p = prior.table.ravel()
        prof = space.profile_indices
        for i, lab in enumerate(labels):
            lab = np.asarray(lab)
            if lab.shape != space.shape:
                raise InvalidPartitionError(
                    f"partition of bidder {i} has shape {lab.shape}, expected {space.shape} "
                    "(a label per profile)"
                )
            _, cell = np.unique(lab.ravel(), return_inverse=True)
            cell = cell.reshape(-1)
            ncell = int(cell.max()) + 1
            own = prof[:, i]
            lo = np.full(ncell, np.iinfo(np.int64).max)
            hi = np.full(ncell, -1)
            np.minimum.at(lo, cell, own)
            np.maximum.at(hi, cell, own)
            if np.any(lo != hi):
                c = int(np.nonzero(lo != hi)[0][0])
                vals = space.grids[i][np.unique(own[cell == c])].tolist()
                raise InvalidPartitionError(
                    f"partition of bidder {i} hides its own value: one cell holds profiles "
                    f"where bidder {i} has values {vals}; every cell must fix the bidder's "
                    "own value (split the cell by it)"
                )
            others = space.others_flat_index(i, prof)
            m = space.others_size(i)
            b = np.zeros((ncell, m))
            np.add.at(b, (cell, others), flat_p)
            mass = b.sum(axis=1)
            # A cell of probability zero is never drawn; give it the uniform belief over
            # its profiles so that every cell has a well-defined belief.
            members = np.zeros((ncell, m))
            np.add.at(members, (cell, others), 1.0)
            empty = mass <= 0
            b[empty] = members[empty]
            b /= b.sum(axis=1, keepdims=True)
            b.setflags(write=False)
            self.cells.append(cell.reshape(space.shape))
            self.beliefs.append(b)
            self.cell_value.append(lo)
            self.cell_prob.append(mass)

    @classmethod
    def from_spec(cls, prior: Prior, spec: Sequence[str | Sequence[int]] | str) -> Knowledge:
        """Build from a short spec per bidder.

        Each entry is ``"own"`` (only its own value), ``"all"`` (the whole profile) or
        a list of other bidders it observes. A single string applies to every bidder.
        """
        space = prior.space
        if isinstance(spec, str):
            spec = [spec] * space.n
        if len(spec) != space.n:
            raise InvalidPartitionError(
                f"knowledge spec has {len(spec)} entries for {space.n} bidders"
            )
        labels = []
        for i, s in enumerate(spec):
            if s == "own":
                labels.append(own_value(space, i))
            elif s == "all":
                labels.append(knows_everything(space, i))
            elif isinstance(s, str) or not hasattr(s, "__iter__"):
                raise InvalidPartitionError(
                    f"unknown knowledge spec {s!r} for bidder {i}; "
                    "expected 'own', 'all' or a list of bidders"
                )
            else:
                labels.append(observes(space, i, s))
        return cls(prior, labels)

    @property
    def n(self) -> int:
        return self.space.n

    def num_cells(self, i: int) -> int:
        """Number of cells ``C_i`` of bidder ``i``'s partition."""
        return self.beliefs[_bidder(self.space, i)].shape[0]

    def cell_of(self, i: int, indices: np.ndarray) -> np.ndarray:
        """Cell numbers of bidder ``i`` for profiles given as grid indices ``(..., n)``."""
        i = _bidder(self.space, i)
        indices = np.asarray(indices)
        return self.cells[i][tuple(np.moveaxis(indices, -1, 0))]

    def belief(self, i: int, profile: Sequence[int]) -> np.ndarray:
        """Bidder ``i``'s belief over the others' profiles at a profile given by values.

        Returns an array of shape ``space.others_shape(i)``.
        """
        i = _bidder(self.space, i)
        idx = self.space.indices_of(np.asarray(profile)[None, :], what="profile value")[0]
        c = self.cells[i][tuple(idx)]
        return self.beliefs[i][c].reshape(self.space.others_shape(i))

    def belief_at(self, i: int, indices: np.ndarray) -> np.ndarray:
        """Flat beliefs ``(B, |others|)`` of bidder ``i`` at profiles as indices ``(B, n)``."""
        i = _bidder(self.space, i)
        return self.beliefs[i][self.cell_of(i, indices)]

    def is_finer_than(self, other: Knowledge, i: int) -> bool:
        """True when bidder ``i``'s partition here refines its partition in ``other``."""
        i = _bidder(self.space, i)
        a = self.cells[i].ravel()
        b = other.cells[i].ravel()
        pairs = np.unique(np.stack([a, b], 1), axis=0)
        return len(np.unique(pairs[:, 0])) == len(pairs)


def agg(i_star: int, reports: np.ndarray, reporters: Sequence[int]) -> np.ndarray:
    """The knowledge aggregator AGG of the paper (Section 4.1), batched.

    Args:
        i_star: the bidder whose value the reports are aggregated about (excluded).
        reports: full-profile distributions ``(B, len(reporters), *shape)``, one per
            reporter ``j != i_star`` in the order of ``reporters``.
        reporters: the bidders who reported, ascending.

    Returns:
        ``(B, *shape)``: the lowest-indexed reporter's distribution conditioned on the
        intersection of all reporters' supports, or that distribution unchanged when
        the supports do not intersect.
    """
    reports = np.asarray(reports, dtype=np.float64)
    reporters = list(reporters)
    if len(reporters) == 0:
        raise InvalidReportError("AGG needs at least one reporter; got an empty list")
    if reports.ndim < 3 or reports.shape[1] != len(reporters):
        raise InvalidReportError(
            f"AGG expects reports (B, {len(reporters)}, *shape), got shape {reports.shape}"
        )
    if i_star in reporters:
        raise InvalidReportError(f"bidder {i_star} cannot report to AGG about itself")
    # Each report is a distribution over full profiles: check it over the flattened axes.
    check_distribution(
        reports.reshape(reports.shape[:2] + (int(np.prod(reports.shape[2:])),)),
        what="AGG report",
    )
    order = np.argsort(reporters)
    first = reports[:, order[0]]
    inter = np.all(reports > 0, axis=1)
    cond = np.where(inter, first, 0.0)
    mass = cond.reshape(cond.shape[0], -1).sum(axis=1)
    keep = (mass > 0).reshape((-1,) + (1,) * (cond.ndim - 1))
    safe = np.where(mass > 0, mass, 1.0).reshape(keep.shape)
    return np.where(keep, cond / safe, first)
