"""Atomic writes: a file or folder appears whole at its path, or not at all.

Every writer in p5rec that replaces a file a reader may be looking at (a model directory, an ID
index, a report, a checkpoint, a recommendation table) goes through here, so they share one
behaviour instead of hand-copied variants:

* the content is written to a fresh hidden sibling (same folder, so the final rename stays on one
  file system and is atomic), flushed to disk, then renamed over the target;
* on any error, including KeyboardInterrupt, the sibling is removed and the target is untouched;
* the sibling is created with the process's umask (not `mkstemp`'s 0600), so the file is readable
  by whoever can read the folder, as a plain `open(path, "w")` would be.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path


def _sibling(path: Path, kind: str) -> Path:
    """A new hidden name beside `path`, unique to this process and call."""
    return path.with_name(f".{path.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path to write one file to; it replaces `path` when the block ends without error.

    Use it for writers that want a path (``torch.save``, ``pq.write_table``, ``savefig``):

    >>> with atomic_path("out/report.json") as tmp:       # doctest: +SKIP
    ...     tmp.write_text(text)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(path, "tmp")
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """A new temporary folder to fill; it replaces `path` (a folder, replaced whole) when the block ends without error.

    >>> with atomic_dir("runs/model") as tmp:             # doctest: +SKIP
    ...     (tmp / "weights.bin").write_bytes(data)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(path, "tmp")
    tmp.mkdir()
    try:
        yield tmp
        replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # our own scratch folder: nothing else is in it
        raise


def replace_dir(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Move the finished folder `src` to `dst`, replacing a folder there whole.

    Two renames: `dst` aside, `src` into place (if the second fails, `dst` is put back). The old
    copy is then deleted; if that fails the new folder is in place all the same, and a warning names
    the leftover to delete by hand.
    """
    src, dst = Path(src), Path(dst)
    if not dst.exists():
        src.rename(dst)
        return
    old = _sibling(dst, "old")
    dst.rename(old)
    try:
        src.rename(dst)
    except BaseException:
        old.rename(dst)
        raise
    try:
        shutil.rmtree(old)
    except OSError as e:
        warnings.warn(f"{dst} was replaced, but its previous copy {old} could not be deleted ({e})", stacklevel=2)
