"""MovieLens ratings (GroupLens): the 100K, 1M and 20M/25M/32M layouts, detected from file names.

* 100K: ``u.data`` (tab-separated ``user item rating timestamp``) and ``u.item`` (Latin-1,
  ``|``-separated: id, title, release date, video date, URL, then 19 genre flags).
* 1M: ``ratings.dat`` (``UserID::MovieID::Rating::Timestamp``) and ``movies.dat`` (Latin-1,
  ``MovieID::Title::Genre|Genre``).
* 20M/25M/32M: ``ratings.csv`` (``userId,movieId,rating,timestamp`` with a header) and
  ``movies.csv`` (``movieId,title,genres``, titles quoted when they hold a comma).

MovieLens has no review text; genres become the item ``category`` ("Animation, Comedy").
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from p5rec.data.build import build_recdata
from p5rec.data.loaders._io import MalformedLine, ParseLog, as_int, as_rating, iter_lines, read_lines
from p5rec.data.tables import RecData

ML100K_GENRES = (
    "unknown Action Adventure Animation Children's Comedy Crime Documentary Drama Fantasy Film-Noir "
    "Horror Musical Mystery Romance Sci-Fi Thriller War Western"
).split()


def _layout(path: str | os.PathLike) -> str:
    """ "csv", "dat" (``::``) or "100k" (``u.data`` tabs / ``u.item`` pipes), from the file name."""
    name = Path(path).name.removesuffix(".gz")
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(".dat"):
        return "dat"
    return "100k"


def _csv_rows(path: str | os.PathLike, log: ParseLog, header: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
    """(line, fields) of a headed CSV file whose first columns must be `header`."""
    reader = csv.reader(line for _, line in read_lines(path, log))
    first = next(reader, None)
    if first is None or tuple(c.strip() for c in first[: len(header)]) != header:
        raise ValueError(f"{Path(path).name}:1: expected a header starting with {','.join(header)}, got {first!r}")
    for fields in reader:
        if fields:
            yield reader.line_num, fields


def _split_rows(path: str | os.PathLike, log: ParseLog, sep: str, encoding: str) -> Iterator[tuple[int, list[str]]]:
    for lineno, line in iter_lines(path, log, encoding):
        yield lineno, line.split(sep)


def iter_ratings(path: str | os.PathLike, log: ParseLog) -> Iterator[dict[str, Any]]:
    """Stream interaction rows from ``u.data``, ``ratings.dat`` or ``ratings.csv``."""
    layout = _layout(path)
    if layout == "csv":
        rows = _csv_rows(path, log, ("userId", "movieId", "rating", "timestamp"))
    else:
        rows = _split_rows(path, log, "::" if layout == "dat" else "\t", "latin-1")
    for lineno, fields in rows:
        try:
            if len(fields) < 4:
                raise MalformedLine(f"expected 4 fields (user, item, rating, timestamp), got {len(fields)}")
            user, item = fields[0].strip(), fields[1].strip()
            if not user or not item:
                raise MalformedLine(f"missing field `{'user' if not user else 'item'}`")
            yield {
                "user_id": user,
                "item_id": item,
                "rating": as_rating(fields[2], "rating"),
                "timestamp": as_int(fields[3], "timestamp"),
            }
        except MalformedLine as e:
            log.bad(path, lineno, str(e))


def iter_movies(path: str | os.PathLike, log: ParseLog) -> Iterator[dict[str, Any]]:
    """Stream catalog rows from ``u.item``, ``movies.dat`` or ``movies.csv``."""
    layout = _layout(path)
    if layout == "csv":
        rows = _csv_rows(path, log, ("movieId", "title", "genres"))
    else:
        rows = _split_rows(path, log, "::" if layout == "dat" else "|", "latin-1")
    for lineno, fields in rows:
        if layout == "100k":
            if len(fields) < 5 + len(ML100K_GENRES):
                log.bad(path, lineno, f"expected {5 + len(ML100K_GENRES)} `|`-separated fields, got {len(fields)}")
                continue
            flags = fields[5 : 5 + len(ML100K_GENRES)]
            genres = [g for g, flag in zip(ML100K_GENRES, flags, strict=True) if flag.strip() == "1"]
        else:
            if len(fields) < 3:
                log.bad(path, lineno, f"expected 3 fields (id, title, genres), got {len(fields)}")
                continue
            genres = [g for g in fields[2].split("|") if g and g != "(no genres listed)"]
        if not fields[0].strip():
            log.bad(path, lineno, "missing field `movieId`")
            continue
        yield {"item_id": fields[0].strip(), "title": fields[1].strip(), "category": ", ".join(genres)}


def load_movielens(
    ratings: str | os.PathLike,
    movies: str | os.PathLike | None = None,
    *,
    name: str | None = None,
    strict: bool = False,
    k_core: int = 0,
    **options: Any,
) -> RecData:
    """Load MovieLens ratings (and optionally movies); the layout follows the file names.

    Args:
        ratings: ``u.data`` (100K), ``ratings.dat`` (1M) or ``ratings.csv`` (20M/25M/32M).
        movies: ``u.item``, ``movies.dat`` or ``movies.csv`` for titles and genres.
        name: the dataset name (default ``"movielens"``).
        strict: fail on the first malformed line (with file:line) instead of counting it.
        k_core: the k-core threshold (default 0: every MovieLens user already has >= 20 ratings).
        **options: passed to :func:`p5rec.data.build.build_recdata`.
    """
    log = ParseLog(strict)
    items = None if movies is None else iter_movies(movies, log)
    files = {"ratings": str(ratings), **({"movies": str(movies)} if movies is not None else {})}
    options.setdefault("explanations", False)  # no review text to explain
    return build_recdata(
        name or "movielens",
        iter_ratings(ratings, log),
        items,
        k_core=k_core,
        log=log,
        info={"source": "movielens", "files": files},
        **options,
    )
