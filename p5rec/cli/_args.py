"""Flags that several subcommands share; the subcommand modules import them from here, never from `main`."""

from __future__ import annotations

import argparse


def add_override_argument(parser: argparse.ArgumentParser) -> None:
    """The `--set key.sub=value` flag every config-driven command takes (applied by `apply_overrides`)."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting, e.g. --set train.epochs=2 (repeatable)",
    )
