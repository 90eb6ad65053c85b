"""Preprocessed files from P5 (Geng et al., RecSys 2022) and OpenP5 (Xu et al., SIGIR 2024).

* P5 ``sequential_data.txt``: one user a line, ``user_id item_id item_id ...`` in time order,
  space separated, with P5's integer IDs; ``datamaps.json`` maps them back to the raw IDs
  (``id2user``, ``id2item``; ``user2id``/``item2id`` are inverted when the ``id2`` maps are absent).
* OpenP5 ``user_sequence.txt``: the same line format, IDs as given.

These files have no timestamps: a user's n-th item gets timestamp n, which keeps the order and
nothing more (do not read them as dates). No ratings or reviews either, so only sequential and
direct recommendation can be trained from them; ``meta`` (an Amazon metadata file, 2014 Python
literals or 2018 JSON) adds item titles when the IDs are ASINs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from p5rec.data.build import build_recdata
from p5rec.data.loaders._io import ParseLog, iter_lines, iter_records, parse_rows
from p5rec.data.loaders.amazon import _meta_2014
from p5rec.data.tables import RecData


def read_datamaps(path: str | os.PathLike) -> tuple[dict[str, str], dict[str, str]]:
    """(id2user, id2item) from P5's ``datamaps.json`` (a small file: the ID maps only)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"`datamaps` file {str(path)!r} does not exist")
    try:
        maps = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path.name}:{e.lineno}: not valid JSON ({e.msg})") from None
    out = []
    for kind in ("user", "item"):
        if f"id2{kind}" in maps:
            out.append({str(k): str(v) for k, v in maps[f"id2{kind}"].items()})
        elif f"{kind}2id" in maps:
            out.append({str(v): str(k) for k, v in maps[f"{kind}2id"].items()})
        else:
            raise ValueError(f"{path.name}: neither `id2{kind}` nor `{kind}2id` is present (keys: {sorted(maps)})")
    return out[0], out[1]


def iter_sequences(
    path: str | os.PathLike,
    log: ParseLog,
    id2user: dict[str, str] | None = None,
    id2item: dict[str, str] | None = None,
) -> Iterator[dict[str, Any]]:
    """Stream one row per (user, item) of a sequence file, with synthetic increasing timestamps."""
    for lineno, line in iter_lines(path, log):
        tokens = line.split()
        if len(tokens) < 2:
            log.bad(path, lineno, "expected `user_id item_id [item_id ...]`, got no items")
            continue
        user = tokens[0]
        if id2user is not None:
            if user not in id2user:
                log.bad(path, lineno, f"user {user!r} is not in datamaps `id2user`")
                continue
            user = id2user[user]
        unknown = [t for t in tokens[1:] if id2item is not None and t not in id2item]
        if unknown:
            log.bad(path, lineno, f"item {unknown[0]!r} is not in datamaps `id2item`")
            continue
        for position, item in enumerate(tokens[1:], start=1):
            yield {
                "user_id": user,
                "item_id": id2item[item] if id2item is not None else item,
                "timestamp": position,
            }


def _meta_rows(path: str | os.PathLike, log: ParseLog, keep: set[str]) -> Iterator[dict[str, Any]]:
    return parse_rows(path, log, iter_records(path, log, python_literals=True, id_field="asin", keep=keep), _meta_2014)


def _load(
    source: str, sequences, datamaps, meta, name: str | None, strict: bool, k_core: int, **options: Any
) -> RecData:
    log = ParseLog(strict)
    id2user, id2item = read_datamaps(datamaps) if datamaps is not None else (None, None)
    items = None if meta is None else (lambda kept: _meta_rows(meta, log, kept))
    files = {"sequences": str(sequences)}
    files.update({k: str(v) for k, v in (("datamaps", datamaps), ("meta", meta)) if v is not None})
    options.setdefault("explanations", False)  # no review text
    info = {"source": source, "files": files, "timestamps": "synthetic (position in sequence)"}
    return build_recdata(
        name or source,
        iter_sequences(sequences, log, id2user, id2item),
        items,
        k_core=k_core,
        log=log,
        info=info,
        **options,
    )


def load_p5(
    sequences: str | os.PathLike,
    datamaps: str | os.PathLike | None = None,
    meta: str | os.PathLike | None = None,
    *,
    name: str | None = None,
    strict: bool = False,
    k_core: int = 0,
    **options: Any,
) -> RecData:
    """Load P5's ``sequential_data.txt`` (with ``datamaps.json`` to restore raw IDs).

    Args:
        sequences: ``sequential_data.txt``.
        datamaps: ``datamaps.json``; without it P5's integer IDs are kept as they are.
        meta: an Amazon metadata file, for titles (needs `datamaps`, so IDs are ASINs).
        name: the dataset name (default ``"p5"``).
        strict: fail on the first malformed line (with file:line) instead of counting it.
        k_core: the k-core threshold (default 0: P5's files are already 5-core).
        **options: passed to :func:`p5rec.data.build.build_recdata`.
    """
    return _load("p5", sequences, datamaps, meta, name, strict, k_core, **options)


def load_openp5(
    sequences: str | os.PathLike,
    meta: str | os.PathLike | None = None,
    *,
    name: str | None = None,
    strict: bool = False,
    k_core: int = 0,
    **options: Any,
) -> RecData:
    """Load OpenP5's ``user_sequence.txt``. Arguments as :func:`load_p5` (there are no datamaps)."""
    return _load("openp5", sequences, None, meta, name, strict, k_core, **options)
