"""`p5rec train`: train on a prepared dataset with the default recipe, or from a YAML run config,
on one process or many (`accelerate launch`).

    p5rec train --data data/musical_instruments            # the default recipe, nothing to tune
    p5rec train --config configs/musical_instruments_cpu.yaml --set train.epochs=3
    accelerate launch --num_processes 4 scripts/finetune.py --config configs/beauty_t5_small.yaml
    accelerate launch --config_file fsdp.yaml scripts/finetune.py --config ...   # FSDP / DeepSpeed

Layers: defaults < the YAML file < flags (`--output`, `--resume`) < `--set key=value`. Every key,
type and path is checked before data is loaded or a model is built. Training artifacts (log,
checkpoints, best weights, curves.png) go to `train.output_dir` (default: `<output_dir>-train`,
beside the model, because saving the model replaces `output_dir` whole). The main process saves
the final model with `Recommender.save_pretrained`: to `output_dir`, or `output_dir/<a|b|...>`
per dataset of a multi-domain run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from p5rec.cli._args import add_override_argument


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML run config (see configs/); default: the recipe's defaults")
    p.add_argument("--data", help="a dataset prepared by `p5rec data prepare` (sets `data.source`)")
    add_override_argument(p)
    p.add_argument("--output", help="where the trained model is saved (default: the config's output_dir)")
    p.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        metavar="CHECKPOINT",
        help="continue an interrupted run: its newest checkpoint, or the given checkpoint folder",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model on a prepared dataset (default recipe) or from a YAML run config",
        description="Train one model on every task: `--data DIR` alone uses the default recipe (settings chosen "
        "from the data, early stopping on the validation split); a YAML run config sets checkpoints, resume, "
        "validation, learned task weights and multi-domain data.",
    )
    add_arguments(p)
    p.set_defaults(func=run)


def train_config(args: argparse.Namespace):
    """The RunConfig of these arguments, with paths checked (no data is read yet)."""
    from p5rec.config import RunConfig, apply_overrides, from_dict, read_yaml_mapping
    from p5rec.pipeline import check_paths

    if not args.config and not args.data:
        raise ValueError("give `--data DIR` (a dataset prepared by `p5rec data prepare`) or `--config FILE`")
    path = Path(args.config) if args.config else None
    values = read_yaml_mapping(path) if path else {}
    if args.data:
        values.setdefault("data", {})["source"] = args.data
    if args.output:
        values["output_dir"] = args.output
    if args.resume:
        values.setdefault("train", {})["resume_from"] = args.resume
    apply_overrides(values, args.overrides)
    train = values.setdefault("train", {})
    if isinstance(train, dict) and train.get("output_dir") is None:
        train["output_dir"] = f"{values.get('output_dir', RunConfig.output_dir)}-train"
    try:
        config = from_dict(RunConfig, values, str(path) if path else "command line")
    except TypeError as e:  # a wrong type is a user error: one line, like the others (main() shows ValueError)
        raise ValueError(str(e)) from None
    check_paths(config)
    return config


def run(args: argparse.Namespace) -> int:
    from accelerate import PartialState

    from p5rec.pipeline import fit
    from p5rec.training.phases import describe_first

    config = train_config(args)
    result = fit(config, progress=not args.no_progress)
    state = PartialState()
    if state.is_main_process:
        out = Path(config.output_dir)
        saved = {str(out / tag): rec for tag, rec in result.domains.items()} or {str(out): result.recommender}
        for where, rec in saved.items():
            rec.save_pretrained(where)
        if result.first is not None:
            print(describe_first(result.first))
        print(result.train.describe(config.train.early_stopping_metric))
        for line in (result.describe_copy(), result.describe_rating(), result.describe_choice()):
            if line:
                print(line)
        print(f"model saved to {', '.join(saved)}; training log in {config.train.output_dir}")
    state.wait_for_everyone()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`scripts/finetune.py` entry point: the same command without the `p5rec` dispatcher."""
    from p5rec.cli._threads import add_threads_argument, set_torch_threads

    parser = argparse.ArgumentParser(prog="finetune.py", description=__doc__.split("\n")[0])
    add_arguments(parser)
    add_threads_argument(parser)
    args = parser.parse_args(argv)
    try:
        set_torch_threads(args.threads)
        return run(args)
    except (ValueError, FileNotFoundError, KeyError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"finetune: error: {msg}", file=sys.stderr)
        return 1
