"""Canonical tables: the one shape every data source is turned into.

Every loader (Amazon, Yelp, MovieLens, P5 files, synthetic) produces a :class:`RecData`;
everything downstream (ID schemes, prompt rendering, training, evaluation) reads only this.

Tables are `datasets.Dataset` objects with typed columns:

* ``items``: ``item_id`` (str, the raw ID: ASIN, business_id, movieId), ``title`` (str, may be
  empty), ``category`` (str, may be empty), ``description`` (str, may be empty).
* ``interactions``: one row per (user, item) event: ``user_id`` (str), ``item_id`` (str),
  ``rating`` (float32, 0.0 when the source has none), ``timestamp`` (int64, seconds),
  ``review`` (str), ``summary`` (str, the review title), ``feature`` (str) and ``explanation``
  (str): the explanation target extracted from the review ("" when none was found).

Rows of ``interactions`` are kept sorted by (user_id, timestamp, original order), so a user's
sequence is a contiguous, time-ordered run of rows.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np

ITEM_COLUMNS: dict[str, str] = {"item_id": "string", "title": "string", "category": "string", "description": "string"}
INTERACTION_COLUMNS: dict[str, str] = {
    "user_id": "string",
    "item_id": "string",
    "rating": "float32",
    "timestamp": "int64",
    "review": "string",
    "summary": "string",
    "feature": "string",
    "explanation": "string",
}
_FORMAT_VERSION = 1
_META_FILE = "p5rec_data.json"
_ENTRIES = ("items", "interactions", _META_FILE)  # everything a dataset folder holds that p5rec wrote


def _features(columns: dict[str, str]) -> datasets.Features:
    return datasets.Features({name: datasets.Value(dtype) for name, dtype in columns.items()})


def _defaults(columns: dict[str, str]) -> dict[str, Any]:
    return {
        name: (0.0 if dtype.startswith("float") else 0 if dtype.startswith("int") else "")
        for name, dtype in columns.items()
    }


def make_table(
    rows: Iterable[dict[str, Any]] | dict[str, list], columns: dict[str, str], what: str
) -> datasets.Dataset:
    """Build a typed table from rows (or columns), filling optional fields with empty defaults.

    Required fields are the ID fields (``user_id``/``item_id``); a row missing one is an error
    naming the row, so a loader bug shows where it is rather than as an empty string later.
    """
    required = [c for c in ("user_id", "item_id") if c in columns]
    if isinstance(rows, dict):
        cols = dict(rows)
        n = len(next(iter(cols.values()))) if cols else 0
    else:
        rows = list(rows)
        n = len(rows)
        cols = {name: [r.get(name) for r in rows] for name in columns}
    defaults = _defaults(columns)
    for name in columns:
        values = cols.get(name)
        if values is None:
            if name in required:
                raise ValueError(f"{what}: required column `{name}` is missing")
            cols[name] = [defaults[name]] * n
            continue
        for i, v in enumerate(values):
            if v is None:
                if name in required:
                    raise ValueError(f"{what}: row {i} has no `{name}`")
                values[i] = defaults[name]
    unknown = set(cols) - set(columns)
    for name in unknown:
        cols.pop(name)
    return datasets.Dataset.from_dict({name: cols[name] for name in columns}, features=_features(columns))


@dataclass
class RecData:
    """A dataset in canonical form: an item catalog and time-stamped interactions.

    Args:
        name: a short name used in reports and saved with the model (``"synthetic"``, ``"amazon-musical"``).
        items: the catalog table (see module docstring).
        interactions: the event table, sorted by user then time.
        info: free-form provenance and statistics (source files, filters applied, malformed lines).
    """

    name: str
    items: datasets.Dataset
    interactions: datasets.Dataset
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_rows(
        cls,
        name: str,
        items: Iterable[dict[str, Any]],
        interactions: Iterable[dict[str, Any]],
        info: dict[str, Any] | None = None,
    ) -> RecData:
        """Build from plain dict rows; interactions are sorted by user, then time (stable)."""
        item_table = make_table(items, ITEM_COLUMNS, f"{name} items")
        inter = make_table(interactions, INTERACTION_COLUMNS, f"{name} interactions")
        return cls(name, item_table, sort_interactions(inter), dict(info or {})).check()

    # ------------------------------------------------------------------ checks
    def check(self) -> RecData:
        """Raise a ValueError naming the problem if the tables are inconsistent."""
        for table, columns, what in (
            (self.items, ITEM_COLUMNS, "items"),
            (self.interactions, INTERACTION_COLUMNS, "interactions"),
        ):
            missing = set(columns) - set(table.column_names)
            if missing:
                raise ValueError(f"{self.name}: {what} table lacks column(s) {sorted(missing)}")
        if len(self.interactions) == 0:
            raise ValueError(f"{self.name}: the interactions table is empty")
        ids = self.items["item_id"]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{self.name}: duplicate item_id in the items table")
        known = set(ids)
        unknown = {i for i in self.interactions.unique("item_id") if i not in known}
        if unknown:
            sample = sorted(unknown)[:5]
            raise ValueError(f"{self.name}: {len(unknown)} interacted item(s) are not in the catalog, e.g. {sample}")
        return self

    # --------------------------------------------------------------- accessors
    @property
    def item_ids(self) -> list[str]:
        return self.column("items", "item_id")

    @property
    def user_ids(self) -> list[str]:
        """Users in the order their rows appear (sorted by user_id)."""
        return list(dict.fromkeys(self.column("interactions", "user_id")))

    def catalog(self) -> dict[str, dict[str, str]]:
        """raw item id -> {"title", "category"}: what the API shows next to a recommended item."""
        cols = [self.column("items", c) for c in ("item_id", "title", "category")]
        return {raw: {"title": t, "category": c} for raw, t, c in zip(*cols)}

    def titles(self) -> dict[str, str]:
        return dict(zip(self.column("items", "item_id"), self.column("items", "title")))

    def column(self, table: str, name: str) -> list:
        """A whole column as a Python list, read through Arrow (row-by-row access is slow)."""
        return getattr(self, table).with_format("arrow")[name].to_pylist()

    def sequences(self) -> dict[str, list[str]]:
        """Each user's items in time order (the table is kept sorted, so this is one pass)."""
        seqs: dict[str, list[str]] = {}
        for u, i in zip(self.column("interactions", "user_id"), self.column("interactions", "item_id")):
            seqs.setdefault(u, []).append(i)
        return seqs

    def ratings(self) -> dict[str, list[tuple[str, float]]]:
        """Each user's rated items as (item, stars) in time order; interactions without a rating are left out."""
        out: dict[str, list[tuple[str, float]]] = {}
        cols = (self.column("interactions", c) for c in ("user_id", "item_id", "rating"))
        for u, i, r in zip(*cols):
            if r > 0:
                out.setdefault(u, []).append((i, float(r)))
        return out

    def stats(self) -> dict[str, Any]:
        """Users, items, interactions, density, sequence lengths and task coverage (computed in Arrow)."""
        import pyarrow.compute as pc

        inter = self.interactions.with_format("arrow")[:]
        n, n_items = inter.num_rows, len(self.items)
        lengths = pc.value_counts(inter["user_id"]).field("counts").to_numpy() if n else np.zeros(1)
        n_users = len(lengths) if n else 0

        def share(column, total: int) -> float:
            nonempty = pc.sum(pc.greater(pc.utf8_length(column), 0)).as_py() or 0
            return nonempty / max(1, total)

        titles = self.items.with_format("arrow")[:]["title"]
        rated = pc.sum(pc.greater(inter["rating"], 0)).as_py() or 0
        return {
            "users": n_users,
            "items": n_items,
            "interactions": n,
            "density": n / max(1, n_users * n_items),
            "seq_len_mean": float(lengths.mean()),
            "seq_len_median": float(np.median(lengths)),
            "seq_len_min": int(lengths.min()),
            "seq_len_max": int(lengths.max()),
            "coverage": {
                "rating": rated / max(1, n),
                "review": share(inter["review"], n),
                "summary": share(inter["summary"], n),
                "explanation": share(inter["explanation"], n),
                "item_title": share(titles, n_items),
            },
        }

    # -------------------------------------------------------------------- disk
    def save_to_disk(self, path: str | os.PathLike, overwrite: bool = False) -> None:
        """Write atomically: build in a temp folder beside `path`, then rename it into place.

        An interrupted save leaves the previous dataset (or nothing) at `path`, never half of one.
        `path` must not exist, or be an empty folder or a p5rec dataset (see
        :func:`check_output_dir`); only p5rec's own entries (``items``, ``interactions``,
        ``p5rec_data.json``) are ever replaced, so other files in the folder are kept.

        Args:
            path: the dataset folder.
            overwrite: also write into a non-empty folder that is not a dataset (its other files are kept).
        """
        path = Path(path)
        check_output_dir(path, overwrite)
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_scratch(path)
        tmp = scratch_dir(path, "save")
        try:
            self.items.save_to_disk(str(tmp / "items"))
            self.interactions.save_to_disk(str(tmp / "interactions"))
            meta = {"format_version": _FORMAT_VERSION, "name": self.name, "info": self.info, "stats": self.stats()}
            (tmp / _META_FILE).write_text(json.dumps(meta, indent=2, default=str))
            _publish(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def load_from_disk(cls, path: str | os.PathLike) -> RecData:
        path = Path(path)
        meta_file = path / _META_FILE
        if not meta_file.is_file():
            raise FileNotFoundError(
                f"{path} is not a prepared p5rec dataset: {_META_FILE} is missing (run `p5rec data prepare` first)"
            )
        meta = json.loads(meta_file.read_text())
        if meta.get("format_version", 0) > _FORMAT_VERSION:
            raise ValueError(
                f"{path}: dataset format {meta['format_version']} is newer than this p5rec reads ({_FORMAT_VERSION})"
            )
        try:
            items = datasets.load_from_disk(str(path / "items"))
            inter = datasets.load_from_disk(str(path / "interactions"))
        except Exception as e:  # datasets raises several types for a damaged folder
            raise ValueError(f"{path}: the dataset tables could not be read ({e})") from e
        return cls(meta["name"], items, inter, meta.get("info", {})).check()


def sort_interactions(table: datasets.Dataset) -> datasets.Dataset:
    """Sort by (user_id, timestamp) with the original row order as a stable tie-break."""
    users = np.asarray(table["user_id"], dtype=object)
    times = np.asarray(table["timestamp"], dtype=np.int64)
    order = np.lexsort((np.arange(len(table)), times, users.astype(str)))
    if np.array_equal(order, np.arange(len(table))):
        return table
    return table.select(order.tolist()).flatten_indices()


# ------------------------------------------------------------------ output folders and scratch space
def is_dataset_dir(path: str | os.PathLike) -> bool:
    """True when `path` is a folder written by :meth:`RecData.save_to_disk`."""
    return (Path(path) / _META_FILE).is_file()


def check_output_dir(path: str | os.PathLike, overwrite: bool = False, flag: str = "out") -> None:
    """Refuse an output folder that holds someone else's files, before any work is done.

    `path` may not exist yet, be an empty folder, or hold a p5rec dataset (which is replaced).
    A non-empty folder that is not a dataset is refused unless `overwrite`; even then only
    p5rec's entries are written into it, nothing else in it is deleted.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"`{flag}` ({str(path)!r}) is a file, not a folder: choose a new folder name")
    if overwrite or not path.exists() or is_dataset_dir(path):
        return
    foreign = sorted(p.name for p in path.iterdir() if p.name not in _ENTRIES)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise ValueError(
            f"`{flag}` ({str(path)!r}) is a folder that is not a p5rec dataset and is not empty ({shown}): "
            "choose a new or empty folder, or pass `overwrite=True` / `--overwrite` to write the dataset into it "
            "(its other files are kept)"
        )


def _publish(tmp: Path, path: Path) -> None:
    """Move the finished dataset in `tmp` to `path`, replacing only p5rec's entries there."""
    if not path.exists():
        tmp.rename(path)
        return
    if all(p.name in _ENTRIES for p in path.iterdir()):
        # Nothing but an earlier dataset (or nothing): swap whole folders, atomic but for one rename.
        old = scratch_dir(path, "old")
        old.rmdir()
        path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)
        return
    # The folder also holds the user's files: replace p5rec's entries one by one. The metadata file
    # goes first and comes back last, so an interruption leaves "no dataset", never a mixed one.
    trash = scratch_dir(path, "old")
    try:
        for name in (_META_FILE, "items", "interactions"):
            if (path / name).exists() or (path / name).is_symlink():
                (path / name).rename(trash / name)
        for name in ("items", "interactions", _META_FILE):
            (tmp / name).rename(path / name)
    finally:
        shutil.rmtree(trash, ignore_errors=True)
    shutil.rmtree(tmp, ignore_errors=True)


_SCRATCH_TAG = "p5rec-tmp"


def scratch_dir(path: str | os.PathLike, kind: str) -> Path:
    """A new hidden work folder beside `path` (same disk, so renames are atomic), named after this process.

    The name ``.<name>.p5rec-tmp-<kind>-<host>-<pid>-<random>`` lets :func:`remove_stale_scratch`
    tell the leftovers of a killed run from the folders of a run still going.
    """
    path = Path(path)
    prefix = f".{path.name}.{_SCRATCH_TAG}-{kind}-{_host()}-{os.getpid()}-"
    return Path(tempfile.mkdtemp(prefix=prefix, dir=path.parent))


def remove_stale_scratch(path: str | os.PathLike) -> list[Path]:
    """Delete the work folders beside `path` left by p5rec processes of this machine that no longer run.

    A process killed mid-write (``kill -9``, power loss) cannot clean up after itself; the next
    write to the same place does. Folders of live processes, of other machines (a shared disk) and
    anything not named by :func:`scratch_dir` are left alone. Returns the folders removed.
    """
    path = Path(path)
    removed: list[Path] = []
    if not path.parent.is_dir():
        return removed
    prefix = f".{path.name}.{_SCRATCH_TAG}-"
    for entry in path.parent.iterdir():
        if not entry.name.startswith(prefix) or not entry.is_dir() or entry.is_symlink():
            continue
        parts = entry.name[len(prefix) :].split("-")
        if len(parts) < 4 or parts[1] != _host() or not parts[2].isdigit() or _alive(int(parts[2])):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


def _host() -> str:
    """A short, file-name-safe tag of this machine (scratch folders may sit on a shared disk)."""
    import hashlib
    import socket

    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
