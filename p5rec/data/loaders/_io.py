"""Shared reading helpers for the loaders: gzip-aware line streams and malformed-line bookkeeping.

Every loader reads its files one line (or one batch) at a time, so a multi-GB review dump never
sits in memory. A bad line is either counted (with a few ``file:line`` samples kept for the
report) or, in strict mode, raised at once with its location. A truncated or corrupt ``.gz`` file
is one such entry at the line where the damage starts: the lines before it are kept.
"""

from __future__ import annotations

import ast
import gzip
import io
import json
import os
import re
import zlib
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

MAX_SAMPLES = 5
# Star ratings: 1-5 (Amazon, Yelp, MovieLens 100K/1M), 0.5-5 in half stars (MovieLens 20M and later).
RATING_RANGE = (0.5, 5.0)
_GZIP_MAGIC = b"\x1f\x8b"


class ParseLog:
    """Counts malformed input lines and keeps the first few as ``file:line: reason`` samples.

    Args:
        strict: raise a ValueError on the first malformed line instead of counting it.
    """

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict
        self.count = 0
        self.samples: list[str] = []

    def bad(self, path: str | os.PathLike, lineno: int, reason: str, always_show: bool = False) -> None:
        """Record (or, in strict mode, raise) one malformed line; `always_show` keeps it past the sample cap."""
        message = f"{Path(path).name}:{lineno}: {reason}"
        if self.strict:
            raise ValueError(f"{message} (drop `strict` / `--strict` to skip malformed lines)")
        self.count += 1
        if len(self.samples) < MAX_SAMPLES or always_show:
            self.samples.append(message)

    def as_info(self) -> dict[str, Any]:
        return {"count": self.count, "samples": list(self.samples)}


class MalformedLine(Exception):
    """Raised inside a row parser; the reading loop turns it into a ParseLog entry with file:line."""


def open_text(path: str | os.PathLike, encoding: str = "utf-8") -> TextIO:
    """Open a text file for streaming, decompressing ``.gz`` files on the fly.

    A ``.gz`` name on a file that is not gzip data is a ValueError naming the file, before any line is read.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"input file {str(path)!r} does not exist")
    if path.suffix == ".gz":
        with open(path, "rb") as f:
            head = f.read(2)
        if head != _GZIP_MAGIC:
            found = "it is empty" if not head else f"it starts with {head!r}, not the gzip signature"
            raise ValueError(
                f"input file {str(path)!r} is named .gz but is not gzip-compressed ({found}): "
                "rename it without `.gz` if it is plain text, or download it again"
            )
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding=encoding, errors="replace", newline="")
    return open(path, encoding=encoding, errors="replace", newline="")


def read_lines(path: str | os.PathLike, log: ParseLog, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, line as read, newline included) of a plain or ``.gz`` text file.

    A truncated or corrupt gzip stream ends the file: it becomes one malformed entry in `log` at the
    line where it happens (an error naming the file in strict mode), and the lines before it are kept.
    """
    lineno = 0
    with open_text(path, encoding) as f:
        try:
            for lineno, line in enumerate(f, start=1):
                yield lineno, line
        except EOFError:
            log.bad(path, lineno + 1, "the gzip file is truncated here; download it again", always_show=True)
        except (zlib.error, gzip.BadGzipFile) as e:
            reason = f"the gzip data is corrupt from here on ({e}); download it again"
            log.bad(path, lineno + 1, reason, always_show=True)


def iter_lines(path: str | os.PathLike, log: ParseLog, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, line without its newline), skipping blank lines (see :func:`read_lines`)."""
    for lineno, line in read_lines(path, log, encoding):
        line = line.rstrip("\r\n")
        if line.strip():
            yield lineno, line


def iter_records(
    path: str | os.PathLike,
    log: ParseLog,
    *,
    python_literals: bool = False,
    id_field: str = "",
    keep: set[str] | None = None,
) -> Iterator[tuple[int, dict]]:
    """Yield (line number, dict) from a JSON-lines file; lines that are not an object go to `log`.

    Args:
        path: the file (plain or ``.gz``).
        log: where malformed lines are counted.
        python_literals: parse each line with ``ast.literal_eval`` (Amazon 2014 metadata is written as
            Python dict literals, not JSON), falling back to JSON. ``eval`` is never used: a literal
            cannot run code.
        id_field: the ID field used with `keep`.
        keep: when given, a line whose `id_field` value is visibly not in `keep` is skipped
            unparsed: a cheap pre-filter for metadata files far larger than the kept catalog.
    """
    id_pattern = re.compile(rf"""["']{re.escape(id_field)}["']\s*:\s*["']([^"']*)["']""") if keep is not None else None
    for lineno, line in iter_lines(path, log):
        if id_pattern is not None:
            match = id_pattern.search(line)
            if match is not None and match.group(1) not in keep:
                continue
        try:
            record = _parse_line(line, python_literals)
        except (ValueError, SyntaxError, MemoryError, RecursionError) as e:
            log.bad(
                path,
                lineno,
                f"not a {'Python literal' if python_literals else 'JSON object'} ({type(e).__name__})",
            )
            continue
        if not isinstance(record, dict):
            log.bad(path, lineno, f"expected an object, got {type(record).__name__}")
            continue
        yield lineno, record


def _parse_line(line: str, python_literals: bool) -> Any:
    if not python_literals:
        return json.loads(line)
    try:
        return ast.literal_eval(line)
    except (ValueError, SyntaxError):
        return json.loads(line)  # some 2014 metadata dumps were re-released as strict JSON


def parse_rows(path: str | os.PathLike, log: ParseLog, records: Iterator[tuple[int, Any]], parse) -> Iterator[dict]:
    """Apply `parse` to each record; a MalformedLine it raises becomes a `log` entry with file:line."""
    for lineno, record in records:
        try:
            yield parse(record)
        except MalformedLine as e:
            log.bad(path, lineno, str(e))


def require(record: dict, name: str) -> Any:
    """The value of a required field; a missing or empty one is a MalformedLine naming the field."""
    value = record.get(name)
    if value is None or value == "":
        raise MalformedLine(f"missing field `{name}`")
    return value


def as_float(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise MalformedLine(f"field `{name}` is not a number ({value!r})") from None


def as_rating(value: Any, name: str) -> float:
    """A star rating: a number within :data:`RATING_RANGE` (7, -3, NaN or 1e9 are malformed)."""
    rating = as_float(value, name)
    low, high = RATING_RANGE
    if not low <= rating <= high:  # NaN fails this too
        raise MalformedLine(f"field `{name}` is not a star rating from {low:g} to {high:g} ({value!r})")
    return rating


def as_int(value: Any, name: str) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        raise MalformedLine(f"field `{name}` is not an integer ({value!r})") from None


def text(value: Any) -> str:
    """A free-text field as a single-line string: lists are joined, None becomes ""."""
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(text(v) for v in value if v)
    return " ".join(str(value).split())


def parse_datetime(value: str, fmt: str, name: str) -> int:
    """Seconds since the epoch of a UTC date string in `fmt`."""
    try:
        return int(datetime.strptime(value.strip(), fmt).replace(tzinfo=timezone.utc).timestamp())
    except (ValueError, AttributeError):
        raise MalformedLine(f"field `{name}` is not a date in format {fmt!r} ({value!r})") from None
