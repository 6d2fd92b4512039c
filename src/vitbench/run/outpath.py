"""What ``--out`` means for every vitbench command: a folder receives the command's files; a file
path is accepted where the command writes a single file.

- ``vitbench-predict`` writes one file (``predictions.csv``): ``--out`` is that file, or a folder
  (one that exists, or a path ending in ``/``) that receives ``predictions.csv``.
- ``vitbench-sample``, ``vitbench-compare`` and ``vitbench-export`` write several files: ``--out`` is
  the folder that receives them (created when missing); an existing file there is refused.
"""

from __future__ import annotations

import os
from pathlib import Path


def output_file(out: Path | str, name: str) -> Path:
    """The file a single-file command writes: ``out`` itself, or ``out/name`` when ``out`` is a folder
    (an existing one, or a path written with a trailing separator)."""
    text = str(out)
    path = Path(out).expanduser()
    if path.is_dir() or text.endswith((os.sep, "/")):
        return path / name
    return path


def output_folder(out: Path | str, command: str, files: str) -> Path:
    """The folder a several-file command writes ``files`` into; ValueError when ``out`` is a file."""
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(
            f"--out {out} is a file, but {command} writes several files ({files}) into a folder: give a folder "
            "(it is created when missing)."
        )
    return path
