"""Every command in the README runs as written on a fresh clone (#17 item 10).

The README's ```bash blocks are read in order, as a new user would type them:

* each `p5rec ...` (and `accelerate launch scripts/finetune.py ...`) parses with the real argument
  parsers, in-process;
* every path a command reads exists in the checkout or is written by an earlier command (downloads
  land where the download command puts them, `--out` folders, the demo's model, a config's
  `output_dir`, the checkpoints `--resume` needs);
* bare `p5rec` and `pip` come only after the block that activates the virtual environment;
* the cheap commands run for real on tiny stand-in data: dataset preparation and statistics on
  small files where the download would put them, and `p5rec evaluate` on a tiny model where the demo
  writes its model; the ```python blocks run against that model too.

Nothing here pins the README's numbers, so its text can change freely.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import shlex
import shutil
from pathlib import Path

from p5rec.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
VENV_BIN = ".venv/bin/"
ACTIVATE = ("source", ".venv/bin/activate")


def fenced(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.S | re.M)


def readme_commands() -> list[list[str]]:
    """Every command of the bash blocks as argv lists, in order; `a && b` is two commands."""
    out: list[list[str]] = []
    for block in fenced("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            argv: list[str] = []
            for token in [*shlex.split(line, comments=True), "&&"]:
                if token == "&&":
                    if argv:
                        out.append(argv)
                    argv = []
                else:
                    argv.append(token)
    return out


def _program(argv: list[str]) -> str:
    return argv[0].removeprefix(VENV_BIN)


# ---------------------------------------------------------------------------------- what reads what
def _config_paths(config: str, overrides: list[str]) -> tuple[str, list[str]]:
    """(data source, folders written) of a run config file with `--set` overrides."""
    from p5rec.config import apply_overrides, read_yaml_mapping

    values = apply_overrides(read_yaml_mapping(ROOT / config), overrides)
    data = values.get("data", {}).get("source", "synthetic")
    written = [values.get("output_dir", "runs/p5rec-model")]
    if values.get("train", {}).get("output_dir"):
        written.append(values["train"]["output_dir"])
    return data, written


def reads_and_writes(argv: list[str], args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The paths a parsed README command reads and the ones it writes."""
    from p5rec.cli.data import _FILE_FLAGS
    from p5rec.data.download import KNOWN_DATASETS

    command = getattr(args, "command", None)
    reads: list[str] = []
    writes: list[str] = []
    if command == "data" and args.data_command == "download" and args.dataset:
        assert args.dataset in KNOWN_DATASETS, f"`{shlex.join(argv)}`: unknown dataset {args.dataset}"
        assert args.cache_dir, f"`{shlex.join(argv)}`: give --cache-dir so later commands can name the files"
        writes += [f"{args.cache_dir}/{args.dataset}/{f.filename}" for f in KNOWN_DATASETS[args.dataset]]
    elif command == "data" and args.data_command == "prepare":
        reads += [getattr(args, flag) for flag in _FILE_FLAGS if getattr(args, flag)]
        writes.append(args.out)
    elif command == "data" and args.data_command == "stats":
        reads.append(args.path)
    elif command == "demo":
        reads += [p for p in (args.config, args.data) if p]
        writes.append(args.output)
    elif command == "train" or _program(argv) == "accelerate":
        data, written = _config_paths(args.config, args.overrides)
        reads += [args.config] + ([data] if data != "synthetic" else [])
        if args.resume == "latest":
            reads += written[1:]  # the checkpoints of an earlier run of the same config
        writes += written
    elif command in ("evaluate", "serve", "recommend", "rate", "explain", "summarize"):
        reads += [p for p in (args.model, getattr(args, "data", None)) if p]
        writes += [p for p in (getattr(args, "out", None),) if p]
    return reads, writes


def parse(argv: list[str]) -> argparse.Namespace:
    """`argv` through the parser it is meant for; a README command that does not parse fails here."""
    if _program(argv) == "accelerate":
        from p5rec.cli.train import add_arguments

        assert argv[1] == "launch", argv
        script = next(a for a in argv[2:] if a.endswith(".py"))
        assert (ROOT / script).is_file(), f"{script} is not in the checkout"
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        return parser.parse_args(argv[argv.index(script) + 1 :])
    try:
        return build_parser().parse_args(argv[1:])
    except SystemExit as e:
        assert e.code == 0 and "--help" in argv, f"`{shlex.join(argv)}` does not parse"
        return argparse.Namespace()


# ---------------------------------------------------------------------------------- static checks
def test_the_readme_has_commands_to_check():
    programs = {_program(a) for a in readme_commands()}
    assert {"p5rec", "pip", "accelerate", "source"} <= programs
    assert fenced("python")


def test_every_command_parses_and_reads_only_what_exists_or_was_written_before(capsys):
    written: set[str] = set()
    activated = False
    for argv in readme_commands():
        program = _program(argv)
        if tuple(argv[:2]) == ACTIVATE:
            activated = True
        if program in ("p5rec", "pip", "accelerate") and not argv[0].startswith(VENV_BIN):
            assert activated, f"`{shlex.join(argv)}` needs the virtual environment, activated in an earlier block"
        if program not in ("p5rec", "accelerate"):
            continue
        args = parse(argv)
        capsys.readouterr()  # --help output
        reads, writes = reads_and_writes(argv, args)
        for path in reads:
            norm = str(Path(path))
            available = (ROOT / norm).exists() or any(norm == w or norm.startswith(w + "/") for w in written)
            assert available, f"`{shlex.join(argv)}` reads {path}, which no earlier README command writes"
        written |= {str(Path(w)) for w in writes}


# ---------------------------------------------------------------------------------- run for real
def _review(user: str, item: str, ts: int) -> str:
    text = "The sound is warm and the strings stay in tune."
    row = {"reviewerID": user, "asin": item, "overall": 1 + ts % 5, "unixReviewTime": ts, "reviewText": text}
    return json.dumps(row | {"summary": "Good strings"})


def _fake_download(path: Path) -> None:
    """A tiny Amazon 2014 file of the kind `path` names (reviews survive 5-core; metadata as Python literals)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.startswith("reviews_"):
        lines = [_review(f"U{u}", f"I{i}", 100 * u + i) for u in range(7) for i in range(6)]
    else:
        lines = [repr({"asin": f"I{i}", "title": f"<span>Item {i}</span> &amp; case"}) for i in range(6)]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))


def test_cheap_commands_run_for_real_on_tiny_data(tiny_model_dir, tmp_path, monkeypatch, capsys):
    """Downloads are replaced by tiny files where they would land; the demo's model by a tiny model."""
    from p5rec.data.download import KNOWN_DATASETS

    monkeypatch.chdir(tmp_path)
    faked: set[str] = set()
    ran = []
    for argv in readme_commands():
        if _program(argv) != "p5rec" or "--help" in argv:
            continue
        args = build_parser().parse_args(argv[1:])
        reads, writes = reads_and_writes(argv, args)
        if args.command == "data" and args.data_command == "download":
            if args.dataset.startswith("amazon2014/"):
                for f in KNOWN_DATASETS[args.dataset]:
                    _fake_download(Path(args.cache_dir) / args.dataset / f.filename)
                faked |= {str(Path(w)) for w in writes}
            continue
        if args.command == "demo" and not Path(args.output).exists():
            shutil.copytree(tiny_model_dir, args.output)  # what the quickstart's demo leaves behind
            continue
        cheap = (args.command == "data" and args.data_command in ("prepare", "stats")) or args.command == "evaluate"
        if not cheap or not all(Path(p).exists() for p in reads) or any(str(Path(p)) in faked for p in writes):
            continue
        assert main(argv[1:]) == 0, f"`{shlex.join(argv)}` failed: {capsys.readouterr().err}"
        ran.append(" ".join(argv[:3]))
    assert "p5rec data prepare" in ran and "p5rec data stats" in ran and any("evaluate" in r for r in ran), ran
    out = capsys.readouterr().out
    assert "item titles cleaned" in out  # the markup in the stand-in titles was cleaned


def test_python_blocks_run_against_the_demo_model(tiny_model_dir, tmp_path, monkeypatch, capsys):
    import p5rec
    import p5rec.pipeline

    shutil.copytree(tiny_model_dir, tmp_path / "runs" / "demo-model")
    monkeypatch.chdir(tmp_path)
    from p5rec.api import Recommender

    class Fitted:  # `fit(RunConfig())` trains for minutes; its result is stood in by the tiny model
        recommender = Recommender.from_pretrained(tiny_model_dir)

    stand_in = lambda config, **kwargs: Fitted()  # noqa: E731
    monkeypatch.setattr(p5rec.pipeline, "fit", stand_in)
    # `from p5rec import fit` reads the package attribute, which an earlier lookup may have cached.
    monkeypatch.setattr(p5rec, "fit", stand_in, raising=False)
    for block in fenced("python"):
        exec(compile(block, "README.md", "exec"), {})  # noqa: S102 - the README's own examples
    assert "We recommend" in capsys.readouterr().out
    assert (tmp_path / "runs" / "my-model" / "p5rec_config.json").is_file()
