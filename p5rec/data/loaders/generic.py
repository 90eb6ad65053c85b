"""Any CSV, JSON-lines or Parquet file, with a mapping from canonical columns to the file's columns.

>>> data = load_table("events.csv", {"user_id": "uid", "item_id": "sku", "timestamp": "ts"})  # doctest: +SKIP

Timestamps may be numbers (seconds, or milliseconds with ``timestamp_unit="ms"``) or ISO 8601
strings ("2021-03-04" or "2021-03-04T10:00:00", read as UTC when no zone is given).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from p5rec.data.build import build_recdata
from p5rec.data.loaders._io import MalformedLine, ParseLog, as_rating, iter_records, read_lines, text
from p5rec.data.tables import ITEM_COLUMNS, RecData

_EVENT_FIELDS = ("user_id", "item_id", "rating", "timestamp", "review", "summary")
_FORMATS = ("csv", "jsonl", "parquet")


def detect_format(path: str | os.PathLike) -> str:
    """ "csv", "jsonl" or "parquet" from the file extension (``.gz`` ignored)."""
    suffix = Path(path).name.removesuffix(".gz").rsplit(".", 1)[-1].lower()
    fmt = {
        "csv": "csv",
        "tsv": "csv",
        "jsonl": "jsonl",
        "json": "jsonl",
        "parquet": "parquet",
        "pq": "parquet",
    }.get(suffix)
    if fmt is None:
        raise ValueError(
            f"cannot tell the format of {str(path)!r} from its extension; pass `format` as one of {_FORMATS}"
        )
    return fmt


def _check_mapping(columns: dict[str, str], allowed: tuple[str, ...], what: str) -> None:
    unknown = sorted(set(columns) - set(allowed))
    if unknown:
        raise ValueError(f"`{what}` has unknown key(s) {unknown}; the canonical columns are {list(allowed)}")
    missing = [c for c in ("user_id", "item_id") if c in allowed and c not in columns]
    if missing:
        raise ValueError(f"`{what}` must map {missing} to a column of the file, e.g. {{'{missing[0]}': 'your_column'}}")


def iter_file(path: str | os.PathLike, log: ParseLog, fmt: str | None = None) -> Iterator[tuple[int, dict]]:
    """(line or row number, record) from a CSV (header row; ``.tsv`` tab-separated), JSONL or Parquet file."""
    fmt = fmt or detect_format(path)
    if fmt not in _FORMATS:
        raise ValueError(f"`format` ({fmt!r}) must be one of {_FORMATS}")
    if fmt == "jsonl":
        yield from iter_records(path, log)
    elif fmt == "csv":
        delimiter = "\t" if Path(path).name.removesuffix(".gz").endswith(".tsv") else ","
        reader = csv.DictReader((line for _, line in read_lines(path, log)), delimiter=delimiter)
        for record in reader:
            yield reader.line_num, record
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not Path(path).is_file():
            raise FileNotFoundError(f"input file {str(path)!r} does not exist")
        try:
            batches = pq.ParquetFile(path).iter_batches(batch_size=10_000)
        except pa.ArrowException as e:
            raise ValueError(f"input file {str(path)!r} is not a readable Parquet file ({e})") from None
        row = 0
        try:
            for batch in batches:
                for record in batch.to_pylist():
                    row += 1
                    yield row, record
        except pa.ArrowException as e:
            log.bad(path, row + 1, f"the Parquet data is damaged from here on ({e})", always_show=True)


def _timestamp(value: Any, unit: str) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            try:
                moment = datetime.fromisoformat(str(value).strip())
            except ValueError:
                raise MalformedLine(f"field `timestamp` is neither a number nor an ISO date ({value!r})") from None
        else:
            return int(number // 1000) if unit == "ms" else int(number)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp())


def iter_events(
    path: str | os.PathLike,
    columns: dict[str, str],
    log: ParseLog,
    fmt: str | None = None,
    timestamp_unit: str = "s",
) -> Iterator[dict[str, Any]]:
    """Stream interaction rows from a table file through the column mapping."""
    for lineno, record in iter_file(path, log, fmt):
        try:
            row: dict[str, Any] = {}
            for canonical, source in columns.items():
                value = record.get(source)
                if canonical in ("user_id", "item_id") and (value is None or str(value).strip() == ""):
                    raise MalformedLine(f"missing field `{source}`")
                if canonical == "rating":
                    row[canonical] = 0.0 if value in (None, "") else as_rating(value, source)
                elif canonical == "timestamp":
                    row[canonical] = _timestamp(value, timestamp_unit)
                else:
                    row[canonical] = str(value).strip() if canonical.endswith("_id") else text(value)
            yield row
        except MalformedLine as e:
            log.bad(path, lineno, str(e))


def iter_items(
    path: str | os.PathLike, columns: dict[str, str], log: ParseLog, fmt: str | None = None
) -> Iterator[dict[str, Any]]:
    """Stream catalog rows from a table file through the column mapping."""
    for lineno, record in iter_file(path, log, fmt):
        value = record.get(columns["item_id"])
        if value is None or str(value).strip() == "":
            log.bad(path, lineno, f"missing field `{columns['item_id']}`")
            continue
        yield {c: (str(value).strip() if c == "item_id" else text(record.get(s))) for c, s in columns.items()}


def load_table(
    interactions: str | os.PathLike,
    columns: dict[str, str],
    *,
    items: str | os.PathLike | None = None,
    item_columns: dict[str, str] | None = None,
    format: str | None = None,
    timestamp_unit: str = "s",
    name: str = "custom",
    strict: bool = False,
    k_core: int = 0,
    **options: Any,
) -> RecData:
    """Load events (and optionally a catalog) from CSV / JSONL / Parquet files via column mappings.

    Args:
        interactions: the events file (``.csv``, ``.tsv``, ``.jsonl``, ``.json``, ``.parquet``; ``.gz`` ok).
        columns: canonical name -> file column, e.g. ``{"user_id": "uid", "item_id": "iid"}``;
            keys from ``user_id, item_id, rating, timestamp, review, summary``.
        items: the catalog file (any of the same formats).
        item_columns: canonical -> file column for the catalog (``item_id, title, category,
            description``); default: the same names.
        format: force the format of both files instead of reading the extension.
        timestamp_unit: ``"s"`` or ``"ms"`` for numeric timestamps.
        name: the dataset name.
        strict: fail on the first malformed row (with file:line) instead of counting it.
        k_core: the k-core threshold (default 0).
        **options: passed to :func:`p5rec.data.build.build_recdata`.
    """
    _check_mapping(columns, _EVENT_FIELDS, "columns")
    item_columns = dict(item_columns or {c: c for c in ITEM_COLUMNS})
    _check_mapping(item_columns, tuple(ITEM_COLUMNS), "item_columns")
    if timestamp_unit not in ("s", "ms"):
        raise ValueError(f"`timestamp_unit` ({timestamp_unit!r}) must be 's' or 'ms'")
    log = ParseLog(strict)
    rows = iter_events(interactions, columns, log, format, timestamp_unit)
    catalog = None if items is None else iter_items(items, item_columns, log, format)
    files = {"interactions": str(interactions), **({"items": str(items)} if items is not None else {})}
    options.setdefault("explanations", "review" in columns)
    info = {"source": "table", "files": files, "columns": dict(columns)}
    return build_recdata(name, rows, catalog, k_core=k_core, log=log, info=info, **options)
