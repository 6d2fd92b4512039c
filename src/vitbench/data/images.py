"""Image files: decoding to uint8 tensors, and what happens to the ones that will not decode.

Decoding uses ``torchvision.io.decode_image`` (libjpeg-turbo, libpng, libwebp) on the file's bytes:
measured here at 2,950 JPEGs of ~256 px a second on one core against 1,930 for PIL. Formats it does
not read (BMP, TIFF, PPM, ...) fall back to PIL, so a folder holds anything PIL reads, as
torchvision's ``ImageFolder`` promises. Both storages (memory and stream) decode through
:func:`decode`, so they see the same pixels.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import tempfile
import weakref

import numpy as np
import torch
import torchvision
from PIL import Image
from torch.utils.data import get_worker_info
from torchvision.io import ImageReadMode

log = logging.getLogger(__name__)

SKIP_HINT = (
    "Replace or delete the file, or set data.skip_bad_images=true to skip unreadable images "
    "(they are counted, and the first ones named, in the log and results.json)."
)


class BadImageError(ValueError):
    """An image file that does not decode; the message names the file and the fix."""

    def __init__(self, message: str) -> None:
        # A DataLoader worker's exception is raised again in the main process as
        # BadImageError("Caught BadImageError in DataLoader worker process 0.\nOriginal Traceback ...
        # BadImageError: <message>"): keep <message> alone, so the run stops with one line naming the file.
        marker = f"{type(self).__name__}: "
        if message.startswith("Caught ") and marker in message:
            message = message.rsplit(marker, 1)[1].strip()
        super().__init__(message)


def decode(data: torch.Tensor, in_chans: int, name: str) -> torch.Tensor:
    """A file's bytes -> uint8 ``(in_chans, H, W)``; grey becomes RGB or RGB grey as ``in_chans`` asks.

    Args:
        data: uint8 ``(num_bytes,)``, the encoded file.
        in_chans: 1 or 3.
        name: the file's path (or dataset row) for the error message.

    Raises:
        BadImageError: neither torchvision nor PIL can decode it (truncated, corrupt, not an image).
    """
    mode = ImageReadMode.GRAY if in_chans == 1 else ImageReadMode.RGB
    try:
        image = torchvision.io.decode_image(data, mode=mode)
    except RuntimeError as tv_error:
        image = _decode_pil(data, in_chans, name, tv_error)
    if image.dtype != torch.uint8:  # 16-bit PNG: keep the 8 most significant bits
        image = (image.to(torch.int32) >> 8).to(torch.uint8)
    return image


def _decode_pil(data: torch.Tensor, in_chans: int, name: str, tv_error: Exception) -> torch.Tensor:
    """PIL for the formats torchvision.io does not read; a file neither reads is a BadImageError."""
    try:
        with Image.open(io.BytesIO(data.numpy().tobytes())) as im:
            array = np.array(im.convert("L" if in_chans == 1 else "RGB"))
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as pil_error:
        unsupported = "Unsupported image file" in str(tv_error)
        reason = pil_error if unsupported else str(tv_error).rsplit(", ", 1)[-1]
        raise BadImageError(f"Cannot decode image {name}: {reason}. {SKIP_HINT}") from None
    tensor = torch.from_numpy(array)
    # (C, H, W), kept (H, W, C) in memory as decode_image's output is.
    return tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)


class BadImages:
    """Images skipped because they do not decode: counted once each, the first few kept by name.

    DataLoader workers are other processes: each appends what it meets to a file of its own in a
    private folder, which the main process reads (:meth:`drain`) after each batch and whenever the
    record is asked for. A file cannot block or deadlock a worker, as a full pipe or queue can.

    Args:
        skip: skip and count (True) or stop the run at the first one (False).
        keep: how many paths to keep for the log and results.json.
    """

    def __init__(self, skip: bool, keep: int = 10) -> None:
        self.skip, self.keep = skip, keep
        self.count, self.first = 0, []
        self._seen: set[str] = set()
        self._read: dict[str, int] = {}  # bytes already read of each worker's file
        self._folder = tempfile.mkdtemp(prefix="vitbench-bad-images-") if skip else None
        if self._folder:
            weakref.finalize(self, shutil.rmtree, self._folder, ignore_errors=True)

    def met(self, error: BadImageError, name: str) -> None:
        """Called where an image failed to decode: raise, or record it (through a file from a worker)."""
        if not self.skip:
            raise error
        if get_worker_info() is None:
            self._add(name, str(error))
            return
        line = json.dumps([name, str(error)]) + "\n"
        with open(os.path.join(self._folder, f"{os.getpid()}.jsonl"), "a") as f:
            f.write(line)

    def _add(self, name: str, reason: str) -> None:
        if name in self._seen:  # met again in a later epoch
            return
        self._seen.add(name)
        self.count += 1
        if len(self.first) < self.keep:
            self.first.append(name)
        log.warning("Skipped unreadable image %d (data.skip_bad_images=true): %s", self.count, reason)

    def drain(self) -> None:
        """Take in what workers reported since the last call (only whole lines)."""
        if self._folder is None:
            return
        for entry in os.scandir(self._folder):
            done = self._read.get(entry.name, 0)
            if entry.stat().st_size <= done:
                continue
            with open(entry.path, "rb") as f:
                f.seek(done)
                data = f.read()
            whole = data[: data.rfind(b"\n") + 1]  # a line being written is read next time
            self._read[entry.name] = done + len(whole)
            for line in whole.decode().splitlines():
                self._add(*json.loads(line))

    def record(self) -> dict:
        """``{"count": int, "first": [paths]}`` for the log and results.json."""
        self.drain()
        return {"count": self.count, "first": list(self.first)}

    def gather(self) -> dict:
        """:meth:`record` of every DDP rank together (a collective: every rank must call it)."""
        mine = self.record()
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return mine
        records: list = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(records, mine)
        first = [p for r in records for p in r["first"]]
        return {"count": sum(r["count"] for r in records), "first": first[: self.keep]}
