"""A saved model and its prepared data, reloaded as training had them: shared by the benchmarks
that re-run a post-training choice on a model directory (copy prior, rating prior)."""

from __future__ import annotations

import argparse

from p5rec.model_dir import ModelFiles, read_model_dir
from p5rec.pipeline import Prepared, load_data, prepare


def model_parser(doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's command line: `doc` as its help and the MODEL directory argument."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a model directory saved by `p5rec train` (its data must be where it was)")
    return parser


def parse_and_load(parser: argparse.ArgumentParser) -> tuple[argparse.Namespace, ModelFiles, Prepared]:
    """The parsed command line, and its MODEL's files and prepared data (:func:`load_saved`)."""
    args = parser.parse_args()
    return args, *load_saved(args.model)


def load_saved(path: str) -> tuple[ModelFiles, Prepared]:
    """The model's files (on the CPU) and its data prepared with its own indexes and templates."""
    files = read_model_dir(path, "cpu")
    config = files.config
    prepared = prepare(config, load_data(config), items=files.items, users=files.users, templates=files.templates)
    return files, prepared
