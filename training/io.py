"""Atomic file writes for run directories.

Every file a run writes that a reader might see half-written (configuration,
checkpoints, the final model, the rewritten metrics file) is first written to a
temporary file in the same folder and then moved over the target with
:func:`os.replace`, which is atomic on POSIX and Windows when both paths lie on one
file system. A crash leaves either the old file or the new one, and at worst a stray
``*.tmp`` file, which :func:`remove_stale_temps` clears on resume.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "TEMP_SUFFIX",
    "atomic_write",
    "atomic_write_text",
    "atomic_write_bytes",
    "remove_stale_temps",
]

#: Suffix of the temporary files; a finished run directory holds none.
TEMP_SUFFIX = ".tmp"


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` on a fresh temporary path beside ``path``, then move it.

    Args:
        path: the final file.
        write: writes the complete content to the path it is given.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        with open(tmp_path, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    atomic_write(path, lambda p: p.write_bytes(data))


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete temporary files a crashed writer left in ``folder`` (recursively)."""
    gone = []
    for p in Path(folder).rglob(f"*{TEMP_SUFFIX}"):
        if p.is_file():
            p.unlink()
            gone.append(p)
    return gone
