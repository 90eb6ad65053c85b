"""Export canonical tables as RecBole atomic files, so RecBole's 90+ models can run on the same data.

RecBole reads tab-separated files whose header names each column with its type
(``user_id:token``); ``token_seq`` values are split on single spaces. See
https://recbole.io/docs/user_guide/data/atomic_files.html. RecBole looks for
``<data_path>/<name>/<name>.inter``, so pass ``out_dir=<data_path>/<name>``.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from p5rec._atomic import atomic_path
from p5rec.data.tables import RecData

INTER_HEADER = ("user_id:token", "item_id:token", "rating:float", "timestamp:float")
ITEM_HEADER = ("item_id:token", "title:token_seq", "categories:token_seq")
_CONTROL = ("\t", "\n", "\r")


def export_recbole(data: RecData, out_dir: str | os.PathLike, name: str) -> dict[str, Path]:
    """Write ``name.inter`` and ``name.item`` into `out_dir`.

    Escaping, chosen so RecBole (pandas ``read_csv`` with ``sep="\\t"``) reads back exactly what
    was meant:

    * text fields (``title``, ``categories``) are ``token_seq``: any run of whitespace,
      tabs and newlines included, becomes one space, which is also RecBole's token separator;
    * a field containing a double quote is CSV-quoted with inner quotes doubled, as pandas expects;
    * an ID containing a tab, newline or carriage return cannot be written losslessly and is an
      error naming it.

    Each file is written to a temporary file in `out_dir`, then renamed over the target, so a
    reader never sees half a file.

    Args:
        data: the dataset; interactions are written in table order (by user, then time).
        out_dir: folder to write into (created if missing).
        name: the dataset name RecBole will be given; the file stem.

    Returns:
        ``{"inter": path, "item": path}``.
    """
    if not isinstance(data, RecData):
        raise TypeError(f"`data` must be a RecData, got {type(data).__name__}")
    if not isinstance(name, str) or not name or name in (".", "..") or any(c in name for c in "/\\\t\n\r"):
        raise ValueError(f"`name` ({name!r}) must be a non-empty file stem without path separators, e.g. 'amazon'")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    inter = data.interactions
    # Rows are built (and IDs checked) before anything is written: a bad ID leaves no new file.
    inter_rows = [
        (
            _token(u, "user_id", "interactions", row),
            _token(i, "item_id", "interactions", row),
            _float(r),
            str(int(t)),
        )
        for row, (u, i, r, t) in enumerate(
            zip(inter["user_id"], inter["item_id"], inter["rating"], inter["timestamp"], strict=True)
        )
    ]
    items = data.items
    item_rows = [
        (_token(i, "item_id", "items", row), _token_seq(title), _token_seq(category))
        for row, (i, title, category) in enumerate(
            zip(items["item_id"], items["title"], items["category"], strict=True)
        )
    ]
    paths = {"inter": out / f"{name}.inter", "item": out / f"{name}.item"}
    _write_atomic(paths["inter"], INTER_HEADER, inter_rows)
    _write_atomic(paths["item"], ITEM_HEADER, item_rows)
    return paths


def _token(value: str, column: str, table: str, row: int) -> str:
    if any(c in value for c in _CONTROL):
        raise ValueError(
            f"{table} row {row}: {column} {value!r} contains a tab or line break, which RecBole's atomic "
            "files cannot hold; clean the IDs in the loader"
        )
    return value


def _token_seq(text: str) -> str:
    return " ".join(text.split())


def _float(value: float) -> str:
    # float32 ratings: 7 significant digits round-trip them without float64 noise (4.5, not 4.5000001).
    return format(float(value), ".7g")


def _write_atomic(path: Path, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", quotechar='"', quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
