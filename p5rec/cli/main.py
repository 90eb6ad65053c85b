"""`p5rec` command line: a dispatcher over one module per subcommand.

Each module in ``COMMANDS`` exposes ``register(subparsers)``, which adds its parser and sets
``func`` (called with the parsed namespace, returns an exit code). Heavy imports happen inside
the commands, so ``p5rec --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from p5rec.cli._threads import add_threads_argument, set_torch_threads

COMMANDS: list[str] = ["demo", "data", "prompts", "recommend", "serve", "evaluate", "train"]
# Subcommands that run a model get `--threads` and have torch's CPU threads set before they start.
THREADED: tuple[str, ...] = ("demo", "train", "evaluate", "serve", "recommend", "rate", "explain", "summarize")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="p5rec", description="P5-style recommendation with one language model.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"p5rec.cli.{name}").register(sub)
    for name in THREADED:
        command = sub.choices[name]
        if not any("--threads" in action.option_strings for action in command._actions):
            add_threads_argument(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        if args.command in THREADED:
            set_torch_threads(args.threads)
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, KeyError) as e:
        # User errors: one clear line, no traceback. Programming errors still raise.
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"p5rec {args.command}: error: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
