"""The atomic-write helper: a reader sees the old content or the new, and a failed write leaves no trace."""
from __future__ import annotations

import pytest

from common.files import atomic_dir, atomic_path, write_text_atomic


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = write_text_atomic(tmp_path / "report.json", "old")
    with pytest.raises(OSError, match="disk full"):
        with atomic_path(target) as tmp:
            assert tmp.suffix == ".json" and tmp.parent == tmp_path   # the format stays readable from the name
            tmp.write_text("half")
            raise OSError("disk full")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_folder_is_replaced_whole_or_not_at_all(tmp_path):
    target = tmp_path / "packed"
    with atomic_dir(target) as tmp:
        (tmp / "a.npy").write_bytes(b"1")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "b.npy").write_bytes(b"2")
            raise RuntimeError
    assert [p.name for p in target.iterdir()] == ["a.npy"] and sorted(p.name for p in tmp_path.iterdir()) == ["packed"]
    (tmp_path / ".packed.tmp").mkdir()                      # what a killed run leaves behind
    (tmp_path / ".packed.tmp" / "stale").write_bytes(b"")
    with atomic_dir(target) as tmp:
        (tmp / "c.npy").write_bytes(b"3")
    assert [p.name for p in target.iterdir()] == ["c.npy"] and sorted(p.name for p in tmp_path.iterdir()) == ["packed"]
