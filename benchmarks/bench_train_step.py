"""Where a step of the real training loop goes: median step time of `p5rec.training.train`.

Unlike `bench_train.py` (a bare loop), this runs the library's trainer (accelerate, batches,
gradient clipping, scheduler, loss logging) for one epoch and times each optimizer step,
synchronizing the GPU. `--profile` adds a torch.profiler table of the ops that take the most CPU
time: the table that showed cuDNN attention re-planning every new batch shape on an H100, and
`bernoulli_` (dropout masks) taking 18% of a nano step on the CPU.

    python benchmarks/bench_train_step.py                                   # mini, synthetic data, CPU
    python benchmarks/bench_train_step.py --mixed-precision bf16 --profile  # on a GPU
    OMP_NUM_THREADS=1 python benchmarks/bench_train_step.py --data data/beauty --threads 1 --compare-dropout

`--data DIR` trains the default recipe's model (its resolved backbone, dropout and batch size) on
the next-item task of a prepared dataset. `--compare-dropout` times the epoch twice more from the
same initial weights, once with PyTorch's own dropout (`bernoulli_` masks) and once with the
trainer's CPU dropout (`p5rec.modeling.fast_dropout`), alternating, and prints the ratio.
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch

NON_SEQUENTIAL = ("direct_yesno", "direct_choice", "rating", "explanation", "review")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="a prepared dataset: the default recipe's model on its next-item task")
    parser.add_argument("--backbone", default="mini", help="model preset for synthetic data (default mini)")
    parser.add_argument("--users", type=int, default=300, help="synthetic users (default 300)")
    parser.add_argument("--batch-size", type=int, help="default: 64 on synthetic data, the recipe's with --data")
    parser.add_argument("--mixed-precision", default="no", choices=["no", "bf16", "fp16"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--profile", action="store_true", help="print the torch.profiler table")
    parser.add_argument(
        "--item-negatives", type=int, default=0, help="sampled softmax over this many items (0: the full softmax)"
    )
    parser.add_argument("--compare-dropout", action="store_true", help="time PyTorch's dropout against p5rec's")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from p5rec.config import RunConfig, from_dict
    from p5rec.pipeline import build_model, item_token_ids, resolve_and_prepare
    from p5rec.training import trainer

    train_cfg: dict = {"epochs": 1, "mixed_precision": args.mixed_precision, "item_negatives": args.item_negatives}
    if args.batch_size:
        train_cfg["batch_size"] = args.batch_size
    if args.data:
        spec = {
            "data": {"source": args.data},
            "examples": {"task_weights": {t: 0 for t in NON_SEQUENTIAL}},
            "train": {**train_cfg, "sequential_first": False},
            "validation": None,
        }
    else:
        spec = {
            "data": {"synthetic": {"num_users": args.users, "num_items": max(50, args.users // 3), "seed": 0}},
            "model": {"backbone": args.backbone, "vocab_size": 1000, "max_input_length": 128},
            "train": {"batch_size": 64, **train_cfg},
        }
    config, prepared = resolve_and_prepare(from_dict(RunConfig, spec, "bench_train_step"))
    model, tokenizer = build_model(config, prepared[0])
    item_tokens = item_token_ids(tokenizer, prepared)
    initial = copy.deepcopy(model.state_dict())
    cuda = torch.cuda.is_available() and not config.train.cpu
    device = "cuda" if cuda else "cpu"

    def epoch(fast: bool = True) -> tuple[np.ndarray, int]:
        stamps: list[float] = []

        def on_step(step: int, state: dict) -> None:
            if cuda:
                torch.cuda.synchronize()
            stamps.append(time.perf_counter())

        m = copy.deepcopy(model)  # plain nn.Dropout each time: the trainer swaps them in place
        m.load_state_dict(initial)
        swap = trainer.use_fast_dropout
        if not fast:
            trainer.use_fast_dropout = lambda model: 0
        try:
            result = trainer.train(
                m,
                tokenizer,
                prepared[0].builder,
                config.train,
                config.model,
                progress=False,
                on_step=on_step,
                item_tokens=item_tokens,
            )
        finally:
            trainer.use_fast_dropout = swap
        return np.diff(stamps)[1:], result.steps  # the first steps warm up allocators and kernels

    label = (
        f"{config.model.backbone} batch {config.train.batch_size} precision {args.mixed_precision}, "
        f"item negatives {args.item_negatives or 'all'} on {device}"
    )
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with profile(activities=activities) as prof:
            steps, n = epoch()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
    else:
        steps, n = epoch()
    print(
        f"{label}: {n} steps, median {np.median(steps) * 1e3:.1f} ms/step, p90 "
        f"{np.percentile(steps, 90) * 1e3:.1f} ms = {1 / np.median(steps):.1f} steps/s"
    )
    if args.compare_dropout:
        times: dict[bool, list[float]] = {False: [], True: []}
        for fast in (False, True, False, True):
            times[fast].append(float(np.median(epoch(fast)[0])))
        plain, fast = min(times[False]), min(times[True])
        print(
            f"{label}, median ms/step (best of 2 epochs each): torch dropout {plain * 1e3:.1f}, "
            f"p5rec's CPU dropout {fast * 1e3:.1f}: {plain / fast:.2f}x"
        )


if __name__ == "__main__":
    main()
