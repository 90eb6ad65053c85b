"""Amazon review datasets (McAuley lab): the 2014, 2018 and 2023 releases.

* 2014 (He & McAuley, WWW 2016): ``reviews_<Category>[_5].json.gz``, JSON lines with
  ``reviewerID, asin, reviewerName, helpful, reviewText, overall, summary, unixReviewTime,
  reviewTime``; ``meta_<Category>.json.gz`` whose lines are *Python literals*
  (``{'asin': ..., 'title': ..., 'categories': [[...]], 'related': {...}}``).
* 2018 (Ni et al., EMNLP 2019): the same review fields plus ``verified, style, vote``; metadata as
  JSON lines with ``asin, title, brand, category (list), description (list), price, ...``.
* 2023 (Hou et al., 2024): ``user_id, parent_asin, rating, title, text, timestamp`` (milliseconds);
  metadata with ``parent_asin, title, main_category, categories, description``. Items are
  identified by ``parent_asin`` (variants of one product share it), as in the 2023 benchmarks.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from p5rec.data.build import build_recdata
from p5rec.data.loaders._io import (
    MalformedLine,
    ParseLog,
    as_int,
    as_rating,
    iter_records,
    parse_datetime,
    parse_rows,
    require,
    text,
)
from p5rec.data.tables import RecData

Path_ = str | os.PathLike


def _clean(value: Any) -> str:
    """Free text with HTML entities decoded (2014/2018 titles carry ``&amp;`` and friends)."""
    out = text(value)
    return html.unescape(out) if "&" in out else out


def _category(value: Any) -> str:
    """A category path as "A > B > C": the first path of a list of paths, repeats removed."""
    if isinstance(value, list) and value and isinstance(value[0], list):
        value = value[0]
    if isinstance(value, list):
        return " > ".join(dict.fromkeys(_clean(v) for v in value if v))
    return _clean(value)


def _review_2014(record: dict) -> dict[str, Any]:
    """One 2014/2018 review (the two releases share these field names)."""
    seconds = record.get("unixReviewTime")
    if seconds is None:
        if not record.get("reviewTime"):
            raise MalformedLine("missing field `unixReviewTime`")
        seconds = parse_datetime(record["reviewTime"], "%m %d, %Y", "reviewTime")
    return {
        "user_id": str(require(record, "reviewerID")),
        "item_id": str(require(record, "asin")),
        "rating": as_rating(require(record, "overall"), "overall"),
        "timestamp": as_int(seconds, "unixReviewTime"),
        "review": _clean(record.get("reviewText")),
        "summary": _clean(record.get("summary")),
    }


def _review_2023(record: dict) -> dict[str, Any]:
    return {
        "user_id": str(require(record, "user_id")),
        "item_id": str(require(record, "parent_asin")),
        "rating": as_rating(require(record, "rating"), "rating"),
        "timestamp": as_int(require(record, "timestamp"), "timestamp") // 1000,  # milliseconds
        "review": _clean(record.get("text")),
        "summary": _clean(record.get("title")),
    }


def _meta_2014(record: dict) -> dict[str, Any]:
    return {
        "item_id": str(require(record, "asin")),
        "title": _clean(record.get("title")),
        "category": _category(record.get("categories")),
        "description": _clean(record.get("description")),
        "title_fallback": _clean(record.get("brand")),
    }


def _meta_2018(record: dict) -> dict[str, Any]:
    return {
        "item_id": str(require(record, "asin")),
        "title": _clean(record.get("title")),  # some categories hold page markup here: cleaned at preparation
        "category": _category(record.get("category")),
        "description": _clean(record.get("description")),
        "title_fallback": _clean(record.get("brand")),
    }


def _meta_2023(record: dict) -> dict[str, Any]:
    return {
        "item_id": str(require(record, "parent_asin")),
        "title": _clean(record.get("title")),
        "category": _category(record.get("categories")) or _clean(record.get("main_category")),
        "description": _clean(record.get("description")),
        "title_fallback": _clean(record.get("store")),
    }


def iter_reviews(path: Path_, log: ParseLog, release: int = 2014) -> Iterator[dict[str, Any]]:
    """Stream interaction rows from an Amazon review file of the given release (2014, 2018 or 2023)."""
    parse = _review_2023 if release == 2023 else _review_2014
    return parse_rows(path, log, iter_records(path, log), parse)


def iter_meta(
    path: Path_, log: ParseLog, release: int = 2014, keep: set[str] | None = None
) -> Iterator[dict[str, Any]]:
    """Stream catalog rows from an Amazon metadata file; with `keep`, other items are skipped cheaply."""
    parse = {2014: _meta_2014, 2018: _meta_2018, 2023: _meta_2023}[release]
    id_field = "parent_asin" if release == 2023 else "asin"
    records = iter_records(path, log, python_literals=release == 2014, id_field=id_field, keep=keep)
    return parse_rows(path, log, records, parse)


def _load(release: int, reviews: Path_, meta: Path_ | None, name: str | None, strict: bool, **options: Any) -> RecData:
    if release not in (2014, 2018, 2023):
        raise ValueError(f"`release` ({release}) must be 2014, 2018 or 2023")
    log = ParseLog(strict)
    items: Callable[[set[str]], Iterable[dict]] | None = None
    if meta is not None:
        items = lambda kept: iter_meta(meta, log, release, kept)  # noqa: E731
    files = {"reviews": str(reviews), **({"meta": str(meta)} if meta is not None else {})}
    return build_recdata(
        name or f"amazon{release}",
        iter_reviews(reviews, log, release),
        items,
        log=log,
        info={"source": f"amazon{release}", "files": files},
        **options,
    )


def load_amazon2014(
    reviews: Path_,
    meta: Path_ | None = None,
    *,
    name: str | None = None,
    strict: bool = False,
    k_core: int = 5,
    **options: Any,
) -> RecData:
    """Load an Amazon 2014 review file (and optionally its Python-literal metadata file).

    Args:
        reviews: ``reviews_<Category>[_5].json[.gz]``.
        meta: ``meta_<Category>.json.gz`` for item titles, categories and descriptions.
        name: the dataset name (default ``"amazon2014"``).
        strict: fail on the first malformed line (with file:line) instead of counting it.
        k_core: the k-core threshold (default 5; the ``_5`` files are already 5-core, so it is a no-op there).
        **options: passed to :func:`p5rec.data.build.build_recdata` (``max_rows``, ``explanations``,
            ``work_dir``, ...).

    >>> data = load_amazon2014("reviews_Musical_Instruments_5.json.gz")  # doctest: +SKIP
    """
    return _load(2014, reviews, meta, name, strict, k_core=k_core, **options)


def load_amazon2018(
    reviews: Path_,
    meta: Path_ | None = None,
    *,
    name: str | None = None,
    strict: bool = False,
    k_core: int = 5,
    **options: Any,
) -> RecData:
    """Load an Amazon 2018 review file (and optionally its JSON-lines metadata).

    Arguments as :func:`load_amazon2014`.
    """
    return _load(2018, reviews, meta, name, strict, k_core=k_core, **options)


def load_amazon2023(
    reviews: Path_,
    meta: Path_ | None = None,
    *,
    name: str | None = None,
    strict: bool = False,
    k_core: int = 5,
    **options: Any,
) -> RecData:
    """Load an Amazon 2023 ``<Category>.jsonl[.gz]`` (timestamps in ms) and ``meta_<Category>.jsonl``.

    Arguments as :func:`load_amazon2014`; items are keyed by ``parent_asin``.
    """
    return _load(2023, reviews, meta, name, strict, k_core=k_core, **options)
