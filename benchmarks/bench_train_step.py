"""Where a step of the real training loop goes: median step time of `p5rec.training.train`.

Unlike `bench_train.py` (a bare loop), this runs the library's trainer (accelerate, length-grouped
batches, gradient clipping, scheduler, loss logging) for one epoch and times each optimizer step,
synchronizing the GPU. `--profile` adds a torch.profiler table of the ops that take the most CPU
time: the table that showed cuDNN attention re-planning every new batch shape on an H100.

    python benchmarks/bench_train_step.py                                   # mini, synthetic data, CPU
    python benchmarks/bench_train_step.py --mixed-precision bf16 --profile  # on a GPU
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="mini", help="model preset (default mini)")
    parser.add_argument("--users", type=int, default=300, help="synthetic users (default 300)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--mixed-precision", default="no", choices=["no", "bf16", "fp16"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--profile", action="store_true", help="print the torch.profiler table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from p5rec.config import RunConfig, from_dict
    from p5rec.pipeline import build_model, prepare
    from p5rec.training.trainer import train

    config = from_dict(
        RunConfig,
        {
            "data": {"synthetic": {"num_users": args.users, "num_items": max(50, args.users // 3), "seed": 0}},
            "model": {"backbone": args.backbone, "vocab_size": 1000, "max_input_length": 128},
            "train": {"epochs": 1, "batch_size": args.batch_size, "mixed_precision": args.mixed_precision},
        },
        "bench_train_step",
    )
    prepared = prepare(config)
    model, tokenizer = build_model(config, prepared)
    cuda = torch.cuda.is_available() and not config.train.cpu
    stamps: list[float] = []

    def on_step(step: int, state: dict) -> None:
        if cuda:
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    def run():
        return train(model, tokenizer, prepared.builder, config.train, config.model, progress=False, on_step=on_step)

    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with profile(activities=activities) as prof:
            result = run()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
    else:
        result = run()
    steps = np.diff(stamps)[1:]  # the first steps warm up allocators and kernels
    print(
        f"{args.backbone} batch {args.batch_size} precision {args.mixed_precision} on {'cuda' if cuda else 'cpu'}: "
        f"{result.steps} steps, median {np.median(steps) * 1e3:.1f} ms/step, p90 "
        f"{np.percentile(steps, 90) * 1e3:.1f} ms = {1 / np.median(steps):.1f} steps/s"
    )


if __name__ == "__main__":
    main()
