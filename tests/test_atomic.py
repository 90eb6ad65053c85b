"""The one atomic-write helper every saver uses: whole or nothing, no leftovers, ordinary permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from p5rec._atomic import atomic_dir, atomic_path, replace_dir, write_text


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_written_file_replaces_the_old_one_and_is_readable_by_others(tmp_path, umask_022):
    target = tmp_path / "sub" / "report.json"
    write_text(target, "old")
    write_text(target, "new")
    assert target.read_text() == "new" and sorted(p.name for p in target.parent.iterdir()) == ["report.json"]
    # mkstemp would make it 0600: a table or index others are meant to read would be private.
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "index.json"
    write_text(target, "old")
    with pytest.raises(OSError, match="disk full"), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise OSError("disk full")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["index.json"]


def test_a_folder_is_replaced_whole_or_not_at_all(tmp_path, umask_022):
    target = tmp_path / "model"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("1")
        (tmp / "b.txt").write_text("1")
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"] and (target / "a.txt").read_text() == "2"
    assert stat.S_IMODE(target.stat().st_mode) == 0o755  # not mkdtemp's 0700
    with pytest.raises(KeyboardInterrupt), atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("3")
        raise KeyboardInterrupt
    assert (target / "a.txt").read_text() == "2" and [p.name for p in tmp_path.iterdir()] == ["model"]


def test_replace_dir_puts_the_old_folder_back_when_the_new_one_cannot_move_in(tmp_path, monkeypatch):
    old, new = tmp_path / "ckpt", tmp_path / "ckpt.tmp"
    old.mkdir()
    (old / "state.json").write_text("old")
    new.mkdir()
    rename = Path.rename

    def failing(self, target):
        if self == new:
            raise OSError("no space left")
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", failing)
    with pytest.raises(OSError, match="no space left"):
        replace_dir(new, old)
    assert (old / "state.json").read_text() == "old"
