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


def test_temporary_folder_of_someone_else_is_refused_when_asked(tmp_path):
    """With own_tmp_only (kyara build-site), a `.name.tmp` that atomic_dir did not make is left alone and
    refused; one that a killed run left (it carries atomic_dir's mark) is cleared."""
    target = tmp_path / "site"
    (tmp_path / ".site.tmp").mkdir()
    (tmp_path / ".site.tmp" / "mine.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"\.site\.tmp is in the way"):
        with atomic_dir(target, own_tmp_only=True):
            raise AssertionError("never reached")
    assert (tmp_path / ".site.tmp" / "mine.txt").read_text() == "mine" and not target.exists()

    (tmp_path / ".site.tmp" / "mine.txt").unlink()
    (tmp_path / ".site.tmp").rmdir()
    killed = atomic_dir(target, own_tmp_only=True)        # entered and never left: a killed run
    (killed.__enter__() / "half").write_bytes(b"")
    with atomic_dir(target, own_tmp_only=True) as tmp:
        (tmp / "whole").write_bytes(b"")
    assert sorted(p.name for p in target.iterdir()) == ["whole"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


def test_replace_old_decides_what_happens_to_the_old_folder(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target) as tmp:
        (tmp / "built").write_text("1")
    (target / "yours").write_text("keep")
    seen = []

    def replace_old(old, new):
        seen.append(sorted(p.name for p in old.iterdir()))
        (old / "built").unlink()
        (old / "yours").rename(new / "yours")
        old.rmdir()

    with atomic_dir(target, replace_old=replace_old) as tmp:
        (tmp / "built").write_text("2")
    assert seen == [["built", "yours"]]
    assert {p.name: p.read_text() for p in target.iterdir()} == {"built": "2", "yours": "keep"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
