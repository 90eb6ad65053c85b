"""`p5rec data`: raw files -> canonical tables (`prepare`), statistics (`stats`), downloads (`download`)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_FILE_FLAGS = {
    "reviews": "review file (amazon2014/2018/2023, yelp)",
    "meta": "item metadata file (amazon*, p5, openp5)",
    "business": "Yelp business.json",
    "ratings": "MovieLens u.data, ratings.dat or ratings.csv",
    "movies": "MovieLens u.item, movies.dat or movies.csv",
    "sequences": "P5 sequential_data.txt or OpenP5 user_sequence.txt",
    "datamaps": "P5 datamaps.json",
    "interactions": "events file for --source table (csv, tsv, jsonl, parquet)",
    "items": "catalog file for --source table",
}


# The registered source names (p5rec.data.loaders.SOURCES), repeated here so `p5rec --help` does not
# import datasets/pyarrow; tests/test_prepare.py checks the two agree.
SOURCE_NAMES = ("amazon2014", "amazon2018", "amazon2023", "yelp", "movielens", "p5", "openp5", "table")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("data", help="prepare, inspect and download datasets", description=__doc__)
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    prep = sub.add_parser("prepare", help="raw files -> canonical tables, with statistics")
    prep.add_argument("--source", required=True, choices=SOURCE_NAMES, help="the data source")
    for flag, help_text in _FILE_FLAGS.items():
        prep.add_argument(f"--{flag}", help=help_text)
    prep.add_argument("--columns", help='--source table: JSON map canonical -> column, e.g. \'{"user_id": "uid"}\'')
    prep.add_argument("--item-columns", help="--source table: JSON map for the catalog file")
    prep.add_argument(
        "--out", required=True, help="output dataset folder: new, empty or an earlier dataset (written atomically)"
    )
    prep.add_argument(
        "--overwrite",
        action="store_true",
        help="write into --out even if it is a non-empty folder that is not a dataset (its other files are kept)",
    )
    prep.add_argument("--name", help="dataset name (default: the source name)")
    prep.add_argument(
        "--k-core", type=int, help="keep users/items with >= K events (default: 5 for review dumps, 0 else)"
    )
    prep.add_argument("--max-rows", type=int, help="read at most N interaction rows")
    prep.add_argument("--strict", action="store_true", help="fail on the first malformed line")
    prep.add_argument("--no-explanations", action="store_true", help="skip explanation target extraction")
    prep.set_defaults(func=prepare_command)

    stats = sub.add_parser("stats", help="print the statistics of a prepared dataset")
    stats.add_argument("path", help="a folder written by `p5rec data prepare`")
    stats.set_defaults(func=stats_command)

    download = sub.add_parser("download", help="download a known public dataset into a cache folder")
    download.add_argument("dataset", nargs="?", help="e.g. movielens-100k, amazon2014/Musical_Instruments")
    download.add_argument("--cache-dir", help="where files are kept (default: ~/.cache/p5rec)")
    download.add_argument("--list", action="store_true", help="list the known datasets")
    download.set_defaults(func=download_command)


def _json_map(value: str | None, flag: str) -> dict[str, str] | None:
    if value is None:
        return None
    try:
        mapping = json.loads(value)
    except json.JSONDecodeError as e:
        raise ValueError(f"`{flag}` is not valid JSON ({e.msg}): {value!r}") from None
    if not isinstance(mapping, dict):
        raise ValueError(f"`{flag}` must be a JSON object, got {value!r}")
    return mapping


@contextmanager
def _quiet_progress() -> Iterator[None]:
    """Hide datasets' "Saving the dataset" bars: the command prints its own summary."""
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def prepare_command(args: argparse.Namespace) -> int:
    from p5rec.data.prepare import format_stats, prepare_dataset

    files: dict[str, Any] = {flag: getattr(args, flag) for flag in _FILE_FLAGS}
    files["columns"] = _json_map(args.columns, "--columns")
    files["item_columns"] = _json_map(args.item_columns, "--item-columns")
    with _quiet_progress():
        data = prepare_dataset(
            args.source,
            args.out,
            k_core=args.k_core,
            strict=args.strict,
            max_rows=args.max_rows,
            explanations=False if args.no_explanations else None,
            name=args.name,
            overwrite=args.overwrite,
            **files,
        )
    print(f"wrote {args.out} ({data.name})")
    print(format_stats(data.stats(), data.info))
    return 0


def stats_command(args: argparse.Namespace) -> int:
    from p5rec.data.prepare import format_stats
    from p5rec.data.tables import RecData

    data = RecData.load_from_disk(args.path)
    print(f"{args.path} ({data.name})")
    print(format_stats(data.stats(), data.info))
    return 0


def download_command(args: argparse.Namespace) -> int:
    from p5rec.data.download import KNOWN_DATASETS, download_dataset

    if args.list or not args.dataset:
        for key in sorted(KNOWN_DATASETS):
            print(key)
        return 0
    for path in download_dataset(args.dataset, cache_dir=args.cache_dir):
        print(path)
    return 0
