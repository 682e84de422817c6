"""Training metrics: what is measured, the CSV file and the TensorBoard events.

One row per rollout, keyed by ``step`` (stable-baselines3 timesteps so far, summed over
learners in independent mode). Columns, in this order (:data:`COLUMNS`):

* ``step``; ``learner``: the bidder that trained in this row (-1: a shared policy).
* ``train/truthfulness_rate``: share of the learners' valuation reports in the rollout
  that equal their true value (only reports the mechanism reads: M's informant is not
  counted). Reports come from the sampled (exploring) policy.
* ``train/belief_tv``: mean total-variation distance ``0.5 ||F - G||_1`` between the
  learners' belief reports and the truthful belief of that phase (the one in the
  observation), over the reports the mechanism asked for; empty without a belief phase.
* ``train/mean_reward``: the learners' mean realised utility per finished auction.
* ``auction/revenue``: mean realised revenue per finished auction.
* ``train/episodes``: learner episodes finished in the rollout (an integer).
* ``eval/...``: exact evaluation of the current deterministic policy, when due (see
  :func:`crowdauction.training.run.exact_metrics`): ``eval/truthfulness_rate``
  (probability that a learner's valuation report is truthful), ``eval/belief_tv``,
  ``eval/regret`` (what a learner gains by best-responding), ``eval/utility`` and
  ``eval/revenue``; empty otherwise.

The CSV holds no wall-clock quantity, so a run is reproducible row for row; the
throughput goes to the log and to TensorBoard (``time/steps_per_second``).

The file only ever gains whole lines: a row is formatted completely before the file is
opened and written with one call, and a ``KeyboardInterrupt`` between that call and
closing the file still flushes it. A line that a hard kill cut short (no final
newline, or too few fields) is skipped by :func:`read_metrics`, and the rewrite on
resume drops it.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crowdauction.envs.layout import EnvLayout
from crowdauction.training.io import atomic_write_text

__all__ = ["COLUMNS", "INTEGER_COLUMNS", "RolloutStats", "MetricsWriter", "read_metrics"]

COLUMNS = (
    "step",
    "learner",
    "train/truthfulness_rate",
    "train/belief_tv",
    "train/mean_reward",
    "auction/revenue",
    "train/episodes",
    "eval/truthfulness_rate",
    "eval/belief_tv",
    "eval/regret",
    "eval/utility",
    "eval/revenue",
)

#: Columns that hold counts; :func:`read_metrics` returns them as ``int`` when present.
INTEGER_COLUMNS = ("step", "learner", "train/episodes")


class RolloutStats:
    """Accumulates the ``train/`` and ``auction/`` metrics over one rollout.

    Args:
        layout: the env layout (to decode observations and actions).
        row_bidder: ``(num_envs,)`` the bidder each vec-env row plays.
    """

    def __init__(self, layout: EnvLayout, row_bidder: np.ndarray):
        self.layout = layout
        self.row_bidder = np.asarray(row_bidder, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        self.truthful = 0
        self.valuations = 0
        self.tv_sum = 0.0
        self.beliefs = 0
        self.reward_sum = 0.0
        self.revenue_sum = 0.0
        self.episodes = 0

    def add(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        dones: np.ndarray,
        infos: Sequence[Mapping[str, Any]],
    ) -> None:
        """One vec-env step: the observations that produced ``actions``, and the results."""
        lay = self.layout
        parts = lay.decode_obs(obs)
        acts = np.asarray(actions, dtype=np.float64)
        rows0 = np.nonzero((parts.phase == 0) & parts.acts_now)[0]
        if rows0.size:
            idx = lay.decode_valuation(acts[rows0], self.row_bidder[rows0])
            self.truthful += int((idx == parts.value_idx[rows0]).sum())
            self.valuations += int(rows0.size)
        rows1 = np.nonzero((parts.phase == 1) & parts.acts_now)[0]
        if rows1.size:
            who = self.row_bidder[rows1]
            F = lay.decode_belief(acts[rows1], who)
            valid = np.arange(lay.m_max)[None, :] < lay.belief_sizes[who][:, None]
            G = np.where(valid, parts.belief[rows1], 0.0)
            G = G / G.sum(axis=1, keepdims=True)
            self.tv_sum += float(0.5 * np.abs(F - G).sum())
            self.beliefs += int(rows1.size)
        done = np.nonzero(np.asarray(dones))[0]
        if done.size:
            self.reward_sum += float(np.asarray(rewards, dtype=np.float64)[done].sum())
            self.revenue_sum += float(sum(float(infos[k].get("revenue", 0.0)) for k in done))
            self.episodes += int(done.size)

    def row(self) -> dict[str, float]:
        """The rollout's metrics (NaN where nothing was measured; episodes an ``int``)."""
        nan = float("nan")
        return {
            "train/truthfulness_rate": self.truthful / self.valuations if self.valuations else nan,
            "train/belief_tv": self.tv_sum / self.beliefs if self.beliefs else nan,
            "train/mean_reward": self.reward_sum / self.episodes if self.episodes else nan,
            "auction/revenue": self.revenue_sum / self.episodes if self.episodes else nan,
            "train/episodes": self.episodes,
        }


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    x = float(v)
    if math.isnan(x):
        return ""
    # repr of a float round-trips exactly: equal runs give equal files.
    return repr(x)


class MetricsWriter:
    """Appends metric rows to ``metrics.csv`` and, optionally, TensorBoard.

    Args:
        path: the CSV file; created with a header if missing.
        tb_dir: TensorBoard log folder, or ``None``.
        keep_until: on resume, rows with ``step`` above this are dropped first (they
            were written after the checkpoint being resumed), and TensorBoard events
            from later steps are purged.
    """

    def __init__(self, path: Path, tb_dir: Path | None = None, keep_until: int | None = None):
        self.path = Path(path)
        if keep_until is not None and self.path.exists():
            rows = [r for r in read_metrics(self.path) if r["step"] <= keep_until]
            atomic_write_text(self.path, _render(rows))
        elif not self.path.exists():
            atomic_write_text(self.path, _render([]))
        self.writer = None
        if tb_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if keep_until is None else keep_until + 1
            self.writer = SummaryWriter(log_dir=str(tb_dir), purge_step=purge)

    def write(self, row: Mapping[str, Any]) -> None:
        """Append one row (missing columns empty) and log its numbers to TensorBoard."""
        line = ",".join(_fmt(row.get(c)) for c in COLUMNS) + "\n"
        with open(self.path, "a", encoding="utf-8", newline="") as f:
            f.write(line)
        if self.writer is not None:
            step = int(row["step"])
            for key, v in row.items():
                if key in ("step", "learner") or v is None:
                    continue
                x = float(v)
                if not math.isnan(x):
                    self.writer.add_scalar(key, x, step)

    def scalar(self, key: str, value: float, step: int) -> None:
        """A TensorBoard-only scalar (e.g. wall-clock throughput)."""
        if self.writer is not None:
            self.writer.add_scalar(key, float(value), int(step))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
            self.writer = None


def _render(rows: Sequence[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    buf.write(",".join(COLUMNS) + "\n")
    for r in rows:
        buf.write(",".join(_fmt(r.get(c)) for c in COLUMNS) + "\n")
    return buf.getvalue()


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """Rows of a metrics CSV as dicts.

    Empty cells are NaN; :data:`INTEGER_COLUMNS` are ``int`` where present (``learner``
    -1 where empty). A line a crash cut short (the last one without its newline, or one
    with the wrong number of fields) is skipped.
    """
    text = Path(path).read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # the last line is torn
    out: list[dict[str, float]] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        return out
    for fields in reader:
        if len(fields) != len(header):
            continue  # a line a crash cut short
        try:
            row: dict[str, float] = {
                k: (float(v) if v != "" else float("nan"))
                for k, v in zip(header, fields, strict=True)
            }
        except ValueError:
            continue
        for k in INTEGER_COLUMNS:
            if k in row and not math.isnan(row[k]):
                row[k] = int(row[k])
        row["learner"] = row.get("learner", -1)
        if math.isnan(row["learner"]):
            row["learner"] = -1
        row["step"] = int(row["step"])
        out.append(row)
    return out
