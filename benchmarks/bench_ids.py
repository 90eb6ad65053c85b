"""Time and peak memory of building each item ID scheme on a synthetic catalog.

Each scheme runs in its own subprocess so its peak RSS (ru_maxrss) is its own. The synthetic
data has latent item groups: users mostly buy within one group, and an item's text carries its
group's words, so the collaborative and semantic schemes have real structure to find.

    python benchmarks/bench_ids.py                      # 100,000 items, ~5 interactions per item
    python benchmarks/bench_ids.py --items 10000 --schemes collaborative semantic --tracemalloc
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np

SCHEMES = ("random", "sequential", "collaborative", "semantic")


def synthetic(
    num_items: int, per_item: float, group_size: int, seed: int
) -> tuple[list[str], dict[str, list[str]], dict[str, str]]:
    """Catalog, training sequences (~`per_item` interactions per item) and item texts."""
    rng = np.random.default_rng(seed)
    items = [f"I{i:07d}" for i in range(num_items)]
    group_of = rng.permutation(num_items) // group_size  # latent group per item
    num_groups = int(group_of.max()) + 1
    members = np.argsort(group_of, kind="stable")
    starts = np.searchsorted(group_of[members], np.arange(num_groups + 1))
    lengths = rng.integers(5, 12, size=int(num_items * per_item / 8) + 1)
    user_groups = rng.integers(num_groups, size=len(lengths))
    sequences: dict[str, list[str]] = {}
    for u, (length, g) in enumerate(zip(lengths.tolist(), user_groups.tolist(), strict=True)):
        lo, hi = starts[g], starts[g + 1]
        own = members[rng.integers(lo, hi, size=length)]
        stray = rng.integers(num_items, size=length)
        picks = np.where(rng.random(length) < 0.8, own, stray)
        sequences[f"U{u:07d}"] = [items[i] for i in picks.tolist()]
    vocab = [f"w{j}" for j in range(num_groups * 4 + 200)]
    texts = {}
    for i, raw in enumerate(items):
        g = int(group_of[i])
        words = [vocab[4 * g + j] for j in rng.integers(4, size=3)] + [vocab[-j] for j in rng.integers(1, 200, 4)]
        texts[raw] = f"title {raw} " + " ".join(words)
    return items, sequences, texts


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(args: argparse.Namespace) -> None:
    """Build one scheme; print one JSON line of measurements."""
    from p5rec.ids import IdConfig, ItemIndex

    items, sequences, texts = synthetic(args.items, args.per_item, args.group_size, args.seed)
    config = IdConfig(scheme=args.child, seed=args.seed, num_clusters=args.num_clusters)
    rss_before = _rss_mib()
    start = time.perf_counter()
    index = ItemIndex.build(config, items, sequences, item_texts=texts)
    seconds = time.perf_counter() - start
    rss_peak = _rss_mib()
    traced = None
    if args.tracemalloc:
        tracemalloc.start()
        ItemIndex.build(config, items, sequences, item_texts=texts)
        traced = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    ids = index.id_strings()
    depth = max(len(index.code_of(raw)) for raw in items)
    token_config = IdConfig.from_dict({**config.to_dict(), "representation": "tokens"})
    row = {
        "scheme": args.child,
        "items": len(items),
        "interactions": sum(len(s) for s in sequences.values()),
        "seconds": seconds,
        "rss_before_mib": rss_before,
        "rss_peak_mib": rss_peak,
        "traced_peak_mib": traced,
        "unique": len(set(ids)) == len(ids),
        "max_levels": depth,
        "tokens": len(ItemIndex(token_config, items, [index.code_of(r) for r in items]).new_tokens()),
    }
    print(json.dumps(row))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000, help="catalog size")
    parser.add_argument("--per-item", type=float, default=5.0, help="training interactions per item")
    parser.add_argument("--group-size", type=int, default=200, help="items per latent group")
    parser.add_argument("--num-clusters", type=int, default=20, help="IdConfig.num_clusters")
    parser.add_argument("--schemes", nargs="+", choices=SCHEMES, default=list(SCHEMES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tracemalloc", action="store_true", help="also build once under tracemalloc (slower)")
    parser.add_argument(
        "--blas-threads", type=int, default=1, help="BLAS threads per build (0: leave the environment as is)"
    )
    parser.add_argument("--child", choices=SCHEMES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0
    header = (
        f"{'scheme':<14}{'items':>9}{'inter.':>10}{'build s':>9}{'RSS before':>12}{'RSS peak':>10}"
        f"{'traced':>9}{'levels':>8}{'tokens':>8}  unique"
    )
    print(header)
    common = [
        f"--items={args.items}",
        f"--per-item={args.per_item}",
        f"--group-size={args.group_size}",
        f"--num-clusters={args.num_clusters}",
        f"--seed={args.seed}",
        *(["--tracemalloc"] if args.tracemalloc else []),
    ]
    env = dict(os.environ)
    if args.blas_threads > 0:  # oversubscribed BLAS threads slow ARPACK's small dense steps badly
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(args.blas_threads)
    for scheme in args.schemes:
        cmd = [sys.executable, __file__, *common, "--child", scheme]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        if out.returncode != 0:
            print(f"{scheme:<14} failed:\n{out.stderr}", file=sys.stderr)
            return 1
        r = json.loads(out.stdout.strip().splitlines()[-1])
        traced = f"{r['traced_peak_mib']:.0f}" if r["traced_peak_mib"] is not None else "-"
        print(
            f"{r['scheme']:<14}{r['items']:>9}{r['interactions']:>10}{r['seconds']:>9.2f}"
            f"{r['rss_before_mib']:>10.0f}Mi{r['rss_peak_mib']:>8.0f}Mi{traced:>7}Mi{r['max_levels']:>8}"
            f"{r['tokens']:>8}  {r['unique']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
