"""Files written whole or not at all: every vitbench file that a crash must not leave half-written
(results.json, checkpoints, predictions, pictures, the W&B dashboard's selection, the dataset cache).

A file is written to a temporary name in its own folder and renamed over its place: a rename within
one folder is atomic on POSIX file systems, so a reader sees the old file or the new one, never half
of one, and a killed writer leaves at most a hidden ``.<name>.*.tmp`` beside it. Torch-free:
``vitbench-compare`` imports it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: Path, durable: bool = False) -> Iterator[Path]:
    """A free temporary path beside ``path`` to write to; renamed over ``path`` when the block ends.

    The temporary name is unique (``mkstemp``), so parallel writers of one file (joblib jobs) never
    share it, and it does not exist yet: the block may create a file or a symbolic link there, and
    the file gets the mode an ordinary ``open`` gives (mkstemp's own file would stay private). A block
    that raises leaves no temporary file behind and ``path`` as it was.

    Args:
        path: Where the file ends up; its folder is created.
        durable: Also flush the file and the rename to the disk (``fsync``), so that a power cut
            after the block keeps the new file (checkpoints).

    Example:
        >>> with atomic_path(folder / "predictions.csv") as tmp, open(tmp, "w") as f:
        ...     f.write("file,class\\n")
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        tmp.unlink()
        yield tmp
        if durable:
            _fsync_file(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            tmp.unlink()
    if durable:
        _fsync_folder(path.parent)  # the rename itself


def write_atomic(path: Path, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` through :func:`atomic_path`; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def write_json_atomic(path: Path, record: dict[str, Any]) -> Path:
    """Write ``record`` as indented JSON with a final newline, through :func:`atomic_path`."""
    return write_atomic(path, json.dumps(record, indent=2) + "\n")


def _fsync_file(path: Path) -> None:
    """Flush the file ``path`` to the disk (an error raises: the write is not durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Flush ``folder``'s entries (a rename) to the disk; a file system that cannot is left as it is."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
