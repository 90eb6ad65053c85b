"""Preprocessing shared by every loader: raw rows -> deduplicated, k-core filtered canonical tables.

The pipeline is built to keep memory flat on multi-million-review dumps:

1. **Stream** the loader's rows once; keep only integer codes (user, item) and timestamps in numpy
   arrays and spill the full rows (with review text) to an Arrow file on disk.
2. **Deduplicate** (user, item) pairs: the earliest event is kept (ties: the first in the file),
   later repeats are dropped. Users re-reviewing an item would otherwise leak the target of
   leave-one-out into training.
3. **k-core**: drop users and items with fewer than ``k`` events, repeatedly, until every
   remaining user and item has at least ``k`` (removing an item can push a user below ``k``).
4. **Order** by (user_id, timestamp, position in the input) and write the rows out in that order
   through a bucket sort on disk, counting explanation features on the way; then fill the
   ``summary`` (boilerplate blanked) and ``feature``/``explanation`` columns.

Only the catalog rows of items that survive are kept; items with no metadata row get empty text.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import datasets
import numpy as np
import pyarrow as pa

from p5rec.data.explanations import (
    Candidate,
    ExplanationExtractor,
    FeatureCounter,
    clean_summary,
    scan_review,
    split_sentences,
)
from p5rec.data.tables import (
    INTERACTION_COLUMNS,
    ITEM_COLUMNS,
    RecData,
    make_table,
)
from p5rec.data.titles import choose_title

if TYPE_CHECKING:  # annotations only: the loaders import this module
    from p5rec.data.loaders._io import ParseLog

_RAW_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("item_id", pa.string()),
        ("rating", pa.float32()),
        ("timestamp", pa.int64()),
        ("review", pa.string()),
        ("summary", pa.string()),
    ]
)
_ARROW_TYPES = {"string": pa.string(), "float32": pa.float32(), "int64": pa.int64()}
_FINAL_SCHEMA = pa.schema([(name, _ARROW_TYPES[dtype]) for name, dtype in INTERACTION_COLUMNS.items()])
_BATCH_ROWS = 20_000  # rows per Arrow batch in the raw spill file
_MIN_BLOCK_ROWS = 100_000  # rows per output block of the on-disk bucket sort


def dedupe_mask(users: np.ndarray, items: np.ndarray, times: np.ndarray) -> np.ndarray:
    """True for the first event of each (user, item) pair: earliest timestamp, then earliest row."""
    n = len(users)
    order = np.lexsort((np.arange(n), times, items, users))
    u, i = users[order], items[order]
    first = np.ones(n, dtype=bool)
    first[1:] = (u[1:] != u[:-1]) | (i[1:] != i[:-1])
    keep = np.zeros(n, dtype=bool)
    keep[order[first]] = True
    return keep


def k_core_mask(users: np.ndarray, items: np.ndarray, k: int, keep: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Iterative k-core: the rows left when every user and item has >= `k` of them, and the rounds taken."""
    keep = np.ones(len(users), dtype=bool) if keep is None else keep.copy()
    rounds = 0
    if k <= 1:
        return keep, rounds
    n_users, n_items = int(users.max()) + 1, int(items.max()) + 1
    while keep.any():
        user_count = np.bincount(users[keep], minlength=n_users)
        item_count = np.bincount(items[keep], minlength=n_items)
        drop = keep & ((user_count[users] < k) | (item_count[items] < k))
        if not drop.any():
            break
        keep &= ~drop
        rounds += 1
    return keep, rounds


class _Codes:
    """String -> dense int code, remembering the strings in code order."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.names: list[str] = []

    def __call__(self, name: str) -> int:
        code = self.index.get(name)
        if code is None:
            code = self.index[name] = len(self.names)
            self.names.append(name)
        return code


def _rank(names: list[str]) -> np.ndarray:
    """rank[code] = position of names[code] in sorted order (the table is sorted by user_id string)."""
    rank = np.empty(len(names), dtype=np.int64)
    rank[np.argsort(np.array(names, dtype=object), kind="stable")] = np.arange(len(names))
    return rank


@contextmanager
def _work_dir(work_dir: str | os.PathLike | None) -> Iterator[Path]:
    """A scratch folder for spill files; a temporary one is removed afterwards."""
    if work_dir is not None:
        path = Path(work_dir)
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix="p5rec-prepare-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _read_raw(
    rows: Iterable[dict[str, Any]], path: Path, max_rows: int | None
) -> tuple[_Codes, _Codes, np.ndarray, np.ndarray, np.ndarray]:
    """Pass 1: spill rows to `path` (Arrow stream) and return codes and (user, item, time) arrays."""
    users, items = _Codes(), _Codes()
    u_codes, i_codes, times = array("i"), array("i"), array("q")
    columns: dict[str, list] = {name: [] for name in _RAW_SCHEMA.names}
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, _RAW_SCHEMA) as writer:

        def flush() -> None:
            writer.write_batch(pa.record_batch([columns[n] for n in _RAW_SCHEMA.names], schema=_RAW_SCHEMA))
            for values in columns.values():
                values.clear()

        for row in rows:
            if max_rows is not None and len(times) >= max_rows:
                break
            if row.get("user_id") in (None, "") or row.get("item_id") in (None, ""):
                missing = "user_id" if row.get("user_id") in (None, "") else "item_id"
                raise ValueError(f"interaction row {len(times)} has no `{missing}`: {row!r}")
            user, item, ts = str(row["user_id"]), str(row["item_id"]), int(row.get("timestamp") or 0)
            u_codes.append(users(user))
            i_codes.append(items(item))
            times.append(ts)
            columns["user_id"].append(user)
            columns["item_id"].append(item)
            columns["rating"].append(float(row.get("rating") or 0.0))
            columns["timestamp"].append(ts)
            columns["review"].append(row.get("review") or "")
            columns["summary"].append(row.get("summary") or "")
            if len(columns["user_id"]) >= _BATCH_ROWS:
                flush()
        if columns["user_id"]:
            flush()
    to_np = lambda a, dtype: np.frombuffer(a, dtype=dtype).copy() if len(a) else np.zeros(0, dtype)  # noqa: E731
    return users, items, to_np(u_codes, np.int32), to_np(i_codes, np.int32), to_np(times, np.int64)


def _distribute(raw_path: Path, pos: np.ndarray, block_rows: int, work: Path, counter: FeatureCounter | None) -> int:
    """Pass 2: stream the raw rows once, sending each kept row to the spill file of its output block.

    Reading with plain file I/O (not a memory map) keeps the resident size at one batch.
    Returns the number of blocks written.
    """
    n_blocks = int(-(-int((pos >= 0).sum()) // block_rows))
    schema = _RAW_SCHEMA.append(pa.field("pos", pa.int64())).append(pa.field("candidates", pa.string()))
    sinks = [pa.OSFile(str(work / f"block-{b}.arrow"), "wb") for b in range(n_blocks)]
    writers = [pa.ipc.new_stream(s, schema) for s in sinks]
    start = 0
    try:
        with pa.OSFile(str(raw_path), "rb") as source:
            for batch in pa.ipc.open_stream(source):
                local = pos[start : start + batch.num_rows]
                start += batch.num_rows
                kept = local >= 0
                if not kept.any():
                    continue
                sub = batch.filter(pa.array(kept))
                sub_pos = local[kept]
                encoded = [""] * sub.num_rows
                if counter is not None:
                    for row, review in enumerate(sub.column("review").to_pylist()):
                        candidates = scan_review(review)
                        counter.add_candidates(candidates)
                        encoded[row] = _encode(candidates)
                columns = [*sub.columns, pa.array(sub_pos), pa.array(encoded, pa.string())]
                sub = pa.RecordBatch.from_arrays(columns, schema=schema)
                blocks = sub_pos // block_rows
                for b in np.unique(blocks):
                    writers[b].write_batch(sub.filter(pa.array(blocks == b)))
    finally:
        for writer, sink in zip(writers, sinks, strict=True):
            writer.close()
            sink.close()
    return n_blocks


def _encode(candidates: list[Candidate]) -> str:
    """The explanation-eligible matches of a review as one string, carried in the spill file."""
    return "\x1e".join(f"{i}\x1f{u}\x1f{b}" for i, u, b, short in candidates if short)


def _decode(encoded: str) -> list[Candidate]:
    out: list[Candidate] = []
    for match in encoded.split("\x1e") if encoded else ():
        index, unigram, bigram = match.split("\x1f")
        out.append((int(index), unigram, bigram, True))
    return out


def _finish_block(block: pa.Table, extractor: ExplanationExtractor | None) -> tuple[pa.RecordBatch, int]:
    """Order one block by output position and add summary/feature/explanation columns."""
    block = block.take(np.argsort(block.column("pos").to_numpy(), kind="stable"))
    summaries = [clean_summary(s) for s in block.column("summary").to_pylist()]
    features, explanations = [], []
    reviews, encoded = block.column("review").to_pylist(), block.column("candidates").to_pylist()
    for review, candidates in zip(reviews, encoded, strict=True):
        chosen = extractor.choose(_decode(candidates)) if extractor is not None and candidates else None
        features.append(chosen[0] if chosen else "")
        explanations.append(split_sentences(review)[chosen[1]] if chosen else "")
    columns = {name: block.column(name) for name in ("user_id", "item_id", "rating", "timestamp", "review")}
    columns.update(summary=pa.array(summaries, pa.string()), feature=pa.array(features, pa.string()))
    columns["explanation"] = pa.array(explanations, pa.string())
    table = pa.table([columns[name] for name in _FINAL_SCHEMA.names], schema=_FINAL_SCHEMA)
    return table.combine_chunks().to_batches()[0], sum(1 for f in features if f)


ItemSource = Iterable[dict[str, Any]] | Callable[[set[str]], Iterable[dict[str, Any]]]


def _build_items(items: ItemSource | None, kept: set[str], name: str) -> tuple[datasets.Dataset, dict[str, Any]]:
    """The catalog rows of kept items (first row wins); kept items without metadata get empty text.

    Titles are cleaned (:func:`p5rec.data.titles.choose_title`): markup and entities removed, and a
    title left empty by that replaced by the row's ``title_fallback`` field or the item ID.
    """
    found: dict[str, dict[str, Any]] = {}
    duplicates = 0
    titles = {"cleaned": 0, "fallback": 0, "item_id": 0}
    for row in (items(kept) if callable(items) else items) or ():
        item = str(row["item_id"])
        if item in found:
            duplicates += 1
        elif item in kept:
            found[item] = {c: row.get(c) or "" for c in ITEM_COLUMNS} | {"item_id": item}
            title, what = choose_title(str(found[item]["title"]), str(row.get("title_fallback") or ""), item)
            found[item]["title"] = title
            if what != "kept":
                titles[what] += 1
    missing = sorted(kept - found.keys())
    rows = sorted([*found.values(), *({"item_id": i} for i in missing)], key=lambda r: r["item_id"])
    counts = {
        "items_without_metadata": len(missing) if items is not None else 0,
        "metadata_duplicates": duplicates,
        "item_titles": titles,
    }
    return make_table(rows, ITEM_COLUMNS, f"{name} items"), counts


def build_recdata(
    name: str,
    interactions: Iterable[dict[str, Any]],
    items: ItemSource | None = None,
    *,
    k_core: int = 0,
    explanations: bool = True,
    feature_min_count: int = 5,
    max_features: int = 5000,
    max_rows: int | None = None,
    log: ParseLog | None = None,
    info: dict[str, Any] | None = None,
    work_dir: str | os.PathLike | None = None,
) -> RecData:
    """Turn a loader's raw rows into a checked :class:`RecData` (see the module docstring for the steps).

    Args:
        name: the dataset name.
        interactions: rows with ``user_id``, ``item_id`` and optionally ``rating``, ``timestamp``
            (seconds), ``review``, ``summary``; consumed once, in a streaming fashion.
        items: catalog rows (``item_id``, ``title``, ``category``, ``description``, and optionally
            ``title_fallback``: shown when the title is only markup), or a function of the kept
            item IDs returning them (so a reader can skip the rest unparsed); consumed after
            filtering, so only kept items are held in memory. None: a catalog of IDs only.
        k_core: keep users and items with at least this many events (0 or 1: no filtering).
        explanations: extract ``feature``/``explanation`` targets from reviews.
        feature_min_count: the fewest occurrences for an explanation feature (default 5).
        max_features: the feature vocabulary size cap (default 5000).
        max_rows: read at most this many interaction rows (for quick trials).
        log: the loader's malformed-line log, reported in ``info["malformed"]``.
        info: provenance to record (source, files).
        work_dir: where the tables are written. None: a temporary folder, and the returned tables
            are loaded into memory. Give a folder for data larger than memory; it must outlive
            the returned object.
    """
    if k_core < 0:
        raise ValueError(f"`k_core` ({k_core}) must be >= 0")
    if max_rows is not None and max_rows < 1:
        raise ValueError(f"`max_rows` ({max_rows}) must be >= 1")
    info = dict(info or {})
    with _work_dir(work_dir) as work:
        raw_path = work / "raw.arrow"
        users, item_codes, u, i, t = _read_raw(interactions, raw_path, max_rows)
        if len(u) == 0:
            raise ValueError(
                f"{name}: no interactions were read (files: {info.get('files', '?')}); check the paths and the format"
            )
        first = dedupe_mask(u, i, t)
        keep, rounds = k_core_mask(u, i, k_core, first)
        if not keep.any():
            raise ValueError(
                f"{name}: k-core filtering with `k_core`={k_core} removed every interaction "
                f"({len(users.names)} users, {len(item_codes.names)} items, {int(first.sum())} events before "
                f"filtering); lower `k_core` / `--k-core`"
            )
        n_first, n_kept = int(first.sum()), int(keep.sum())
        n_duplicates = len(u) - n_first
        rows = np.flatnonzero(keep)
        order = rows[np.lexsort((rows, t[rows], _rank(users.names)[u[rows]]))]
        pos = np.full(len(u), -1, dtype=np.int64)
        pos[order] = np.arange(len(order))
        kept_items = {item_codes.names[c] for c in np.unique(i[rows])}
        del users, first, rows, order, u, i, t

        counter = FeatureCounter() if explanations else None
        block_rows = max(_MIN_BLOCK_ROWS, -(-len(pos) // 256))  # at most 256 spill files open
        n_blocks = _distribute(raw_path, pos, block_rows, work, counter)
        raw_path.unlink()
        vocab = counter.vocabulary(feature_min_count, max_features) if counter is not None else {}
        extractor = ExplanationExtractor(vocab) if explanations else None
        final_path = work / "interactions.arrow"
        n_explained = titles = titles_kept = 0
        with pa.OSFile(str(final_path), "wb") as sink, pa.ipc.new_stream(sink, _FINAL_SCHEMA) as writer:
            for b in range(n_blocks):
                spill = work / f"block-{b}.arrow"
                with pa.OSFile(str(spill), "rb") as source:
                    block = pa.ipc.open_stream(source).read_all()
                titles += sum(1 for s in block.column("summary").to_pylist() if s)
                batch, explained = _finish_block(block, extractor)
                titles_kept += sum(1 for s in batch.column("summary").to_pylist() if s)
                n_explained += explained
                writer.write_batch(batch)
                del block, batch
                spill.unlink()
        item_table, item_counts = _build_items(items, kept_items, name)
        inter = datasets.Dataset.from_file(str(final_path), in_memory=work_dir is None)
    info.update(
        malformed=log.as_info() if log is not None else {"count": 0, "samples": []},
        rows_read=len(pos),
        duplicates_dropped=n_duplicates,
        k_core=k_core,
        k_core_rounds=rounds,
        removed_by_k_core=n_first - n_kept,
        kept_interactions=n_kept,
        **item_counts,
        summaries={"titles": titles, "kept": titles_kept, "boilerplate_removed": titles - titles_kept},
        explanations={
            "enabled": explanations,
            "vocabulary_size": len(vocab),
            "extracted": n_explained,
            "top_features": list(vocab)[:20],
        },
    )
    return RecData(name, item_table, inter, info).check()
