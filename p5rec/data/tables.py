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
    def save_to_disk(self, path: str | os.PathLike) -> None:
        """Write atomically: build in a temp folder beside `path`, then rename over it.

        An interrupted save leaves the previous dataset (or nothing) at `path`, never half of one.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            self.items.save_to_disk(str(tmp / "items"))
            self.interactions.save_to_disk(str(tmp / "interactions"))
            meta = {"format_version": _FORMAT_VERSION, "name": self.name, "info": self.info, "stats": self.stats()}
            (tmp / _META_FILE).write_text(json.dumps(meta, indent=2, default=str))
            if path.exists():
                old = path.with_name(f".{path.name}.old")
                if old.exists():
                    shutil.rmtree(old)
                path.rename(old)
                tmp.rename(path)
                shutil.rmtree(old)
            else:
                tmp.rename(path)
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
