"""Quality benchmark: the whole pipeline on Amazon 2014 Musical Instruments, baselines side by side.

Prepares the 5-core reviews, trains a preset ("mini" by default) from scratch on every task, then
runs ``p5rec evaluate`` in-process with MostPop, ItemKNN, SASRec, BiasedMF and the lead sentence on
the same splits, prints the table and writes it to ``docs/benchmarks.md`` (one section per preset
and device kind). The default budget, about 13 minutes on one CPU core, is a *very* short training
run: the numbers say what such a budget buys, not what P5 reaches after hours on a GPU.

    python benchmarks/bench_quality.py                                        # the CPU table (~13 min)
    python benchmarks/bench_quality.py --epochs 12 --batch-size 64 --max-users 500 --threads 8   # GPU table
    python benchmarks/bench_quality.py --reuse-model                          # evaluate a trained model again
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

REVIEWS = "/work/shared/data/amazon2014_musical_instruments/reviews_Musical_Instruments_5.json.gz"
# Share of each task's training contexts per epoch, times --task-scale. Sequential dominates (the
# headline metric); tasks with long review inputs get little, because they cost most per example.
TASK_WEIGHTS = {
    "sequential": 0.5,
    "direct_choice": 0.4,
    "direct_yesno": 0.15,
    "rating": 0.1,
    "review_rating": 0.03,
    "explanation": 0.1,
    "review_summary": 0.05,
}


def run_config(args: argparse.Namespace, data_dir: Path, run_dir: Path):
    from p5rec.config import RunConfig, from_dict

    values = {
        "data": {"source": str(data_dir)},
        "model": {
            "backbone": args.backbone,
            "architecture": args.architecture,
            "vocab_size": args.vocab_size,
            "max_input_length": args.max_input_length,
            "max_target_length": 32,
        },
        "train": {
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "learning_rate": args.lr,
            "log_every": 10,
            "output_dir": str(run_dir),
            "seed": args.seed,
            "mixed_precision": args.mixed_precision,
            "loss_on_prompt": args.loss_on_prompt,
        },
        "examples": {
            "max_history": 20,
            "task_weights": {task: w * args.task_scale for task, w in TASK_WEIGHTS.items()},
        },
        "output_dir": str(run_dir / "model"),
    }
    return from_dict(RunConfig, values, "bench_quality")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reviews", default=REVIEWS, help="reviews_Musical_Instruments_5.json.gz")
    parser.add_argument("--work", default="/tmp/p5rec-bench-quality", help="data, model and reports go here")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--task-scale", type=float, default=1.0, help="multiplier on the task mix")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--vocab-size", type=int, default=3000)
    parser.add_argument("--max-input-length", type=int, default=128)
    parser.add_argument("--max-users", type=int, default=200, help="users/reviews per template (0: all)")
    parser.add_argument("--max-templates", type=int, default=1, help="templates per task and split (0: all)")
    parser.add_argument("--num-beams", type=int, default=20)
    parser.add_argument("--sasrec-epochs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--backbone", default="mini", help="model preset (default mini)")
    parser.add_argument("--architecture", default="t5", choices=["t5", "gpt2", "llama"], help="preset family")
    parser.add_argument("--loss-on-prompt", action="store_true", help="decoder-only: train on the prompt too")
    parser.add_argument("--mixed-precision", default="no", choices=["no", "bf16", "fp16"], help="GPU only")
    parser.add_argument("--reuse-model", action="store_true", help="skip training when WORK/run/model exists")
    parser.add_argument("--doc", default="docs/benchmarks.md", help="Markdown file the results are written to")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from p5rec.cli.main import main as p5rec_main
    from p5rec.data.prepare import prepare_dataset

    work = Path(args.work)
    data_dir, run_dir = work / "data", work / "run"
    model_dir = run_dir / "model"
    timings: dict[str, float] = {}

    start = time.perf_counter()
    if not data_dir.exists():
        prepare_dataset("amazon2014", data_dir, reviews=args.reviews)
    timings["prepare_s"] = time.perf_counter() - start

    config = run_config(args, data_dir, run_dir)
    train_info: dict[str, float] = {}
    if not (args.reuse_model and model_dir.exists()):
        from p5rec.pipeline import fit

        start = time.perf_counter()
        result = fit(config, progress=True)
        result.recommender.save_pretrained(model_dir)
        timings["train_s"] = time.perf_counter() - start
        train_info = {"steps": result.train.steps, "examples": result.train.examples}
        (run_dir / "train_summary.json").write_text(json.dumps({**train_info, **timings}, indent=2))
    elif (run_dir / "train_summary.json").exists():
        saved = json.loads((run_dir / "train_summary.json").read_text())
        train_info = {k: saved[k] for k in ("steps", "examples") if k in saved}
        timings["train_s"] = saved.get("train_s", float("nan"))

    eval_dir = work / "eval"
    argv = [
        "evaluate",
        "--model", str(model_dir),
        "--out", str(eval_dir),
        "--num-beams", str(args.num_beams),
        "--baselines", "mostpop,itemknn,sasrec,mf,lead",
        "--sasrec-epochs", str(args.sasrec_epochs),
        "--export-recbole", str(work / "recbole" / "musical_instruments"),
        "--seed", str(args.seed),
    ]  # fmt: skip
    if args.max_users:
        argv += ["--max-users", str(args.max_users)]
    if args.max_templates:
        argv += ["--max-templates", str(args.max_templates)]
    start = time.perf_counter()
    code = p5rec_main(argv)
    timings["evaluate_s"] = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"p5rec evaluate failed with exit code {code}")

    table = (eval_dir / "report.md").read_text()
    shown = ("backbone", "epochs", "task_scale", "max_users", "max_templates", "num_beams", "batch_size", "lr")
    command = f"OMP_NUM_THREADS={args.threads} python benchmarks/bench_quality.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k in shown
    )
    command += f" --threads {args.threads}"
    if args.mixed_precision != "no":
        command += f" --mixed-precision {args.mixed_precision}"
    if args.architecture != "t5":
        command += f" --architecture {args.architecture}"
    if args.loss_on_prompt:
        command += " --loss-on-prompt"
    variant = args.backbone if args.architecture == "t5" else f"{args.backbone} {args.architecture}"
    variant += " + loss on prompt" if args.loss_on_prompt else ""
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    header = [
        f"## Quality: Amazon 2014 Musical Instruments (5-core), {variant} preset, {device}",
        "",
        f"Command: `{command}`  ",
        f"Machine: {platform.processor() or platform.machine()}, {device}, torch threads {args.threads}, "
        f"torch {torch.__version__}  ",
        f"Training: {train_info.get('steps', '?')} steps, {train_info.get('examples', '?')} examples, "
        f"{timings.get('train_s', float('nan')):.0f} s; evaluation + baselines {timings['evaluate_s']:.0f} s  ",
        f"Evaluation: test split, {args.max_users or 'all'} users/reviews per template, "
        f"{args.max_templates or 'all'} template(s) per task and split, beam {args.num_beams}.",
        "",
    ]
    text = "\n".join(header) + table
    print(text)
    doc = Path(args.doc)
    doc.parent.mkdir(parents=True, exist_ok=True)
    # One section per (model variant, device kind): a GPU run does not replace the CPU table.
    kind = "cuda" if torch.cuda.is_available() else "cpu"
    slug = args.backbone + ("" if args.architecture == "t5" else f"-{args.architecture}")
    slug += "-loss-on-prompt" if args.loss_on_prompt else ""
    marker = f"<!-- bench_quality {slug} {kind} -->"
    previous = doc.read_text() if doc.exists() else "# Benchmarks\n\n"
    before = previous.split(marker)[0] if marker in previous else previous.rstrip() + "\n\n"
    after = previous.split(marker)[2] if previous.count(marker) >= 2 else ""
    doc.write_text(before + marker + "\n" + text + "\n" + marker + after)
    print(f"wrote {doc} and {eval_dir}/")


if __name__ == "__main__":
    main()
