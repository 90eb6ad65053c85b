"""Yelp Open Dataset: ``yelp_academic_dataset_review.json`` and ``..._business.json``.

Reviews are JSON lines with ``review_id, user_id, business_id, stars, useful, funny, cool, text,
date`` (``"YYYY-MM-DD HH:MM:SS"``, read as UTC); businesses carry ``business_id, name, city,
state, categories`` (one string, ``"Doctors, Health & Medical"``, or null). Yelp reviews have no
title, so the ``summary`` column stays empty.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from p5rec.data.build import build_recdata
from p5rec.data.loaders._io import ParseLog, as_rating, iter_records, parse_datetime, parse_rows, require, text
from p5rec.data.tables import RecData


def _review(record: dict) -> dict[str, Any]:
    return {
        "user_id": str(require(record, "user_id")),
        "item_id": str(require(record, "business_id")),
        "rating": as_rating(require(record, "stars"), "stars"),
        "timestamp": parse_datetime(str(require(record, "date")), "%Y-%m-%d %H:%M:%S", "date"),
        "review": text(record.get("text")),
    }


def _business(record: dict) -> dict[str, Any]:
    place = ", ".join(text(record.get(k)) for k in ("city", "state") if record.get(k))
    return {
        "item_id": str(require(record, "business_id")),
        "title": text(record.get("name")),
        "category": text(record.get("categories")),
        "description": place,
    }


def iter_reviews(path: str | os.PathLike, log: ParseLog) -> Iterator[dict[str, Any]]:
    """Stream interaction rows from a Yelp review file."""
    return parse_rows(path, log, iter_records(path, log), _review)


def iter_businesses(path: str | os.PathLike, log: ParseLog, keep: set[str] | None = None) -> Iterator[dict[str, Any]]:
    """Stream catalog rows from a Yelp business file (name as title, categories, "city, state")."""
    return parse_rows(path, log, iter_records(path, log, id_field="business_id", keep=keep), _business)


def load_yelp(
    reviews: str | os.PathLike,
    business: str | os.PathLike | None = None,
    *,
    name: str = "yelp",
    strict: bool = False,
    k_core: int = 5,
    **options: Any,
) -> RecData:
    """Load Yelp reviews (and optionally businesses) into canonical tables.

    Args:
        reviews: ``yelp_academic_dataset_review.json``.
        business: ``yelp_academic_dataset_business.json`` for names and categories.
        name: the dataset name.
        strict: fail on the first malformed line (with file:line) instead of counting it.
        k_core: the k-core threshold (default 5: the raw dump is not filtered).
        **options: passed to :func:`p5rec.data.build.build_recdata`.
    """
    log = ParseLog(strict)
    items = None if business is None else (lambda kept: iter_businesses(business, log, kept))
    files = {"reviews": str(reviews), **({"business": str(business)} if business is not None else {})}
    return build_recdata(
        name,
        iter_reviews(reviews, log),
        items,
        k_core=k_core,
        log=log,
        info={"source": "yelp", "files": files},
        **options,
    )
