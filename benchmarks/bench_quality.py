"""Quality benchmark: the default recipe on a prepared dataset, next to the baselines, every test user.

Runs the two commands a user would run, in-process, and prints what they wrote:

    p5rec train --data DATA --output OUT/model [--set key=value ...]
    p5rec evaluate --model OUT/model --out OUT/eval --baselines mostpop,itemknn,sasrec,mf,lead ...

then a summary (p5rec seen/unseen against each ranking baseline, as ratios) and `OUT/summary.json`
with the commands, the device, the training and evaluation times. Nothing is tuned per dataset: the
recipe chooses its settings from the data (`p5rec.recipe`).

    p5rec data prepare --source amazon2014 --out data/musical_instruments \
        --reviews ../shared/data/amazon2014_musical_instruments/reviews_Musical_Instruments_5.json.gz
    python benchmarks/bench_quality.py --data data/musical_instruments --out runs/bench-quality/mi
    python benchmarks/bench_quality.py --data data/musical_instruments --out runs/bench-quality/mi-seq --sequential-only
    python benchmarks/bench_quality.py --data data/beauty --out runs/bench-quality/beauty --tasks sequential
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import time
from pathlib import Path

from p5rec.training.phases import FIRST_DIR

ALL_BASELINES = "mostpop,itemknn,bpr,sasrec,mf,lead,retrieval"
NON_SEQUENTIAL = ("direct_yesno", "direct_choice", "rating", "explanation", "review")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a dataset folder written by `p5rec data prepare`")
    parser.add_argument("--out", default="runs/bench-quality/run", help="model, reports and summary go here")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="recipe override (repeatable)")
    parser.add_argument("--sequential-only", action="store_true", help="train the sequential task alone (ablation)")
    parser.add_argument("--tasks", help="tasks to evaluate (default: all the model was trained on)")
    parser.add_argument("--baselines", default=ALL_BASELINES, help=f"baselines to fit (default {ALL_BASELINES})")
    parser.add_argument("--max-users", type=int, default=0, help="users/reviews per template (default 0: every one)")
    parser.add_argument("--max-templates", type=int, default=0, help="templates per task and split (0: all)")
    parser.add_argument("--threads", type=int, help="torch threads (default: p5rec's choice)")
    parser.add_argument("--reuse-model", action="store_true", help="skip training when OUT/model exists")
    args = parser.parse_args()

    from p5rec.cli.main import main as p5rec

    out = Path(args.out)
    model = out / "model"
    threads = ["--threads", str(args.threads)] if args.threads else []
    sets = list(args.overrides)
    if args.sequential_only:
        sets += [f"examples.task_weights.{t}=0" for t in NON_SEQUENTIAL]
    train_cmd = ["train", "--data", args.data, "--output", str(model), "--no-progress", *threads]
    train_cmd += [x for s in sets for x in ("--set", s)]
    tasks = args.tasks or ("sequential" if args.sequential_only else None)
    eval_cmd = ["evaluate", "--model", str(model), "--out", str(out / "eval"), "--baselines", args.baselines, *threads]
    eval_cmd += ["--no-plots", "--no-greedy-rating"]
    if tasks:
        eval_cmd += ["--tasks", tasks]
    if args.max_users:
        eval_cmd += ["--max-users", str(args.max_users)]
    if args.max_templates:
        eval_cmd += ["--max-templates", str(args.max_templates)]

    timings: dict[str, float] = {}
    if not (args.reuse_model and (model / "p5rec_config.json").is_file()):
        print("$ p5rec " + shlex.join(train_cmd), flush=True)
        start = time.perf_counter()
        if p5rec(train_cmd) != 0:
            raise SystemExit("training failed")
        timings["train_and_save_s"] = round(time.perf_counter() - start, 1)
    print("$ p5rec " + shlex.join(eval_cmd), flush=True)
    start = time.perf_counter()
    if p5rec(eval_cmd) != 0:
        raise SystemExit("evaluation failed")
    timings["evaluate_with_baselines_s"] = round(time.perf_counter() - start, 1)

    report = json.loads((out / "eval" / "report.json").read_text())
    summary = {
        "commands": ["p5rec " + shlex.join(train_cmd), "p5rec " + shlex.join(eval_cmd)],
        "device": _device(),
        "timings": {**timings, **report["meta"].get("timings", {})},
        "train": _train_summary(model),
        "ratios": _ratios(report),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


def _ratios(report: dict) -> dict[str, dict[str, float]]:
    """p5rec (seen, unseen) over each ranking baseline, per ranking metric: >= 1 means p5rec is level or ahead."""
    out: dict[str, dict[str, float]] = {}
    for task in ("sequential", "direct_choice"):
        splits = report["summary"].get(task)
        if not splits:
            continue
        for name, base in report["baselines"].items():
            metrics = base["tasks"].get(task)
            if not metrics:
                continue
            for metric in ("hr@5", "ndcg@5", "hr@10", "ndcg@10"):
                for split in ("seen", "unseen"):
                    mine, theirs = splits.get(split, {}).get(metric), metrics.get(metric)
                    if mine is not None and theirs:
                        out.setdefault(f"{task}/{split}/{metric}", {})[name] = round(mine / theirs, 3)
    return out


def _train_summary(model: Path) -> dict:
    config = json.loads((model / "p5rec_config.json").read_text()).get("run_config", {})
    log_dir = Path((config.get("train") or {}).get("output_dir") or f"{model}-train")
    summary = {"model": config.get("model"), **_log_summary(log_dir)}
    first = log_dir / FIRST_DIR  # the next-item-only phase (`train.sequential_first`), when it ran
    if (first / "train_log.jsonl").is_file():
        summary["sequential_first"] = _log_summary(first)
    return summary


def _log_summary(log_dir: Path) -> dict:
    lines = (log_dir / "train_log.jsonl").read_text().splitlines() if (log_dir / "train_log.jsonl").is_file() else []
    log = [json.loads(x) for x in lines]
    steps = [e for e in log if "loss" in e]
    valid = [e for e in log if any(k.startswith("valid/") for k in e)]
    return {
        "steps": steps[-1]["step"] if steps else None,
        "train_seconds": steps[-1].get("seconds") if steps else None,
        "validations": len(valid),
        "best_valid": max((e.get("valid/sequential/ndcg@10", 0.0) for e in valid), default=None),
    }


def _device() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    n = torch.get_num_threads()
    return f"CPU ({platform.processor() or platform.machine()}), {n} torch thread{'s' if n != 1 else ''}"


if __name__ == "__main__":
    main()
