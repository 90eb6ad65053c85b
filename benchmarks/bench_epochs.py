"""Epoch turnover: the default recipe trained a few epochs with the next epoch prepared in the
background (`train.prefetch`, the default) and without, on a prepared dataset.

Each epoch re-renders and re-tokenizes every example (new templates and negatives), ~8 s of Python
on Beauty with every task. With `prefetch` a forked process prepares epoch k + 1 while epoch k
trains, so the accelerator does not wait for it; this needs a free core for the child (on the
2-core CPU machine, run it alone). Prints the seconds per run and their ratio, and checks that the
two runs took identical steps (same final loss).

    OMP_NUM_THREADS=1 python benchmarks/bench_epochs.py --data data/beauty --epochs 3
"""

from __future__ import annotations

import argparse
import tempfile
import time


def _run(data: str, epochs: int, prefetch: bool, out: str) -> tuple[float, float, int]:
    from p5rec.config import RunConfig
    from p5rec.pipeline import fit

    config = RunConfig.from_dict(
        {
            "data": {"source": data},
            "validation": None,  # training alone: what differs is the wait between epochs
            "train": {"epochs": epochs, "prefetch": prefetch, "output_dir": out, "plot": False},
        }
    )
    start = time.perf_counter()
    result = fit(config, progress=False)
    return time.perf_counter() - start, result.train.final_loss, result.train.steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a dataset folder written by `p5rec data prepare`")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (default 3)")
    args = parser.parse_args()
    runs = {}
    for prefetch in (False, True):
        with tempfile.TemporaryDirectory() as out:
            runs[prefetch] = _run(args.data, args.epochs, prefetch, out)
        seconds, loss, steps = runs[prefetch]
        print(f"prefetch={prefetch!s:<5}  {seconds:7.1f} s  ({steps} steps, final loss {loss:.4f})", flush=True)
    (off, loss_off, _), (on, loss_on, _) = runs[False], runs[True]
    print(f"prefetch speed-up: {off / on:.2f}x; same loss: {abs(loss_off - loss_on) < 1e-6}")


if __name__ == "__main__":
    main()
