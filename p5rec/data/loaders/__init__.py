"""One loader per data source, and the registry the CLI and :func:`p5rec.data.prepare.prepare_dataset` use.

Each ``load_<source>(paths..., *, strict=False, k_core=..., **options) -> RecData`` streams its
files through the shared builder :func:`p5rec.data.build.build_recdata`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from p5rec.data.loaders.amazon import load_amazon2014, load_amazon2018, load_amazon2023
from p5rec.data.loaders.generic import load_table
from p5rec.data.loaders.movielens import load_movielens
from p5rec.data.loaders.p5_files import load_openp5, load_p5
from p5rec.data.loaders.yelp import load_yelp
from p5rec.data.tables import RecData


@dataclass(frozen=True)
class Source:
    """A data source: its loader, the file arguments it takes (required first) and its default k-core."""

    name: str
    loader: Callable[..., RecData]
    required: tuple[str, ...]
    optional: tuple[str, ...]
    default_k_core: int
    description: str


SOURCES: tuple[Source, ...] = (
    Source(
        "amazon2014",
        load_amazon2014,
        ("reviews",),
        ("meta",),
        5,
        "Amazon 2014 reviews_*.json.gz + meta_*.json.gz",
    ),
    Source("amazon2018", load_amazon2018, ("reviews",), ("meta",), 5, "Amazon 2018 <Category>[_5].json.gz + meta"),
    Source("amazon2023", load_amazon2023, ("reviews",), ("meta",), 5, "Amazon 2023 <Category>.jsonl + meta"),
    Source("yelp", load_yelp, ("reviews",), ("business",), 5, "Yelp Open Dataset review.json + business.json"),
    Source(
        "movielens",
        load_movielens,
        ("ratings",),
        ("movies",),
        0,
        "MovieLens u.data / ratings.dat / ratings.csv",
    ),
    Source("p5", load_p5, ("sequences",), ("datamaps", "meta"), 0, "P5 sequential_data.txt + datamaps.json"),
    Source("openp5", load_openp5, ("sequences",), ("meta",), 0, "OpenP5 user_sequence.txt"),
    Source(
        "table",
        load_table,
        ("interactions", "columns"),
        ("items", "item_columns"),
        0,
        "CSV/JSONL/Parquet + column map",
    ),
)


def get_source(name: str) -> Source:
    """The registered source called `name`."""
    for source in SOURCES:
        if source.name == name:
            return source
    raise ValueError(f"`source` ({name!r}) is not known; choose one of {[s.name for s in SOURCES]}")


__all__ = [
    "SOURCES",
    "Source",
    "get_source",
    "load_amazon2014",
    "load_amazon2018",
    "load_amazon2023",
    "load_movielens",
    "load_openp5",
    "load_p5",
    "load_table",
    "load_yelp",
]
