"""Files written whole or not at all (vitbench.run.files)."""

from __future__ import annotations

import json
import os
import stat

import pytest

from vitbench.run.files import atomic_path, write_atomic, write_json_atomic


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_json_is_written_indented_with_a_final_newline_and_an_ordinary_mode(tmp_path):
    path = write_json_atomic(tmp_path / "run" / "results.json", {"model": "vit", "test_acc": 0.5})
    assert path.read_text() == '{\n  "model": "vit",\n  "test_acc": 0.5\n}\n'
    assert json.loads(path.read_text()) == {"model": "vit", "test_acc": 0.5}
    umask = os.umask(0)
    os.umask(umask)
    # As a plain open() makes it (mkstemp's private 0600 would hide it from another user's dashboard).
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert _leftovers(path.parent) == []


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_one(tmp_path):
    path = write_atomic(tmp_path / "bench.json", "old\n")
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(path) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("disk full")
    assert path.read_text() == "old\n"
    assert _leftovers(tmp_path) == []


def test_the_block_may_make_a_link_and_a_durable_write_replaces_the_file(tmp_path):
    target = write_atomic(tmp_path / "idx", b"\x00\x01")
    with atomic_path(tmp_path / "cache" / "link") as tmp:
        assert not tmp.exists() and tmp.parent == tmp_path / "cache"
        tmp.symlink_to(target)
    assert (tmp_path / "cache" / "link").read_bytes() == b"\x00\x01"
    with atomic_path(target, durable=True) as tmp:
        tmp.write_bytes(b"\x02")
    assert target.read_bytes() == b"\x02" and _leftovers(tmp_path) == []
