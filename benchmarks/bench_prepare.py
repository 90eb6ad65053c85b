"""Benchmark `p5rec data prepare` on a synthetic Amazon-2014-format review dump.

Writes an N-review ``reviews_Synthetic.json.gz`` (realistic field names, ~450-character review
texts, ~1% duplicate (user, item) pairs, a few malformed lines), then prepares it with k=5 in a
child process and reports throughput and the child's peak resident memory (ru_maxrss).

    .venv/bin/python benchmarks/bench_prepare.py                      # 200k reviews
    .venv/bin/python benchmarks/bench_prepare.py --reviews 5000000    # the issue's 5M (target: < 4 GiB)
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FEATURES = "sound tone strings tuner pedal cable strap case stand mic amp capo picks price quality neck".split()
OPINIONS = "great good excellent solid nice warm clear cheap flimsy noisy thin accurate sturdy bright".split()
ADVERBS = ["", "very ", "really ", "pretty ", "not "]
FILLER = [
    "I bought this for my son last month and he has used it every weekend since then.",
    "Shipping was quick and the package arrived a day early, which was a nice surprise.",
    "I have been playing for about twenty years and have tried many of these over time.",
    "My old one finally gave out after years of gigs, so I needed a replacement fast.",
    "It does what it says on the box and I would probably buy another one if needed.",
]
SUMMARIES = [
    "Five Stars",
    "Great",
    "Works great",
    "Great strings for the price",
    "Solid tuner",
    "Not bad at all",
]


def _review_text(rng: np.random.Generator) -> str:
    parts = []
    for _ in range(int(rng.integers(3, 7))):
        if rng.random() < 0.5:
            f, o, a = (
                FEATURES[rng.integers(len(FEATURES))],
                OPINIONS[rng.integers(len(OPINIONS))],
                ADVERBS[rng.integers(5)],
            )
            parts.append(f"The {f} is {a}{o}." if rng.random() < 0.6 else f"{o.capitalize()} {f} for the money.")
        else:
            parts.append(FILLER[rng.integers(len(FILLER))])
    return " ".join(parts)


def generate(path: Path, n_reviews: int, seed: int = 0) -> None:
    """Write `n_reviews` lines in the Amazon 2014 review layout, grouped by user (like a 5-core dump)."""
    rng = np.random.default_rng(seed)
    n_items = max(50, n_reviews // 40)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    popularity /= popularity.sum()
    written = user = 0
    with gzip.open(path, "wt", compresslevel=1) as f:
        while written < n_reviews:
            count = min(n_reviews - written, 5 + int(rng.geometric(0.3)))
            items = rng.choice(n_items, size=count, p=popularity)
            if rng.random() < 0.05:
                items[-1] = items[0]  # a repeated review of the same item: deduplicated
            times = np.sort(rng.integers(1_200_000_000, 1_400_000_000, size=count))
            for item, ts in zip(items, times, strict=True):
                record = {
                    "reviewerID": f"A{user:013d}",
                    "asin": f"B{item:09d}",
                    "reviewerName": "Jake",
                    "helpful": [int(rng.integers(3)), 3],
                    "reviewText": _review_text(rng),
                    "overall": float(rng.integers(1, 6)),
                    "summary": SUMMARIES[rng.integers(len(SUMMARIES))],
                    "unixReviewTime": int(ts),
                    "reviewTime": "01 1, 2013",
                }
                f.write(json.dumps(record) + "\n")
                written += 1
                if written % 100_000 == 0:
                    f.write("{truncated line\n")  # malformed: counted, not fatal
            user += 1


def _prepare(reviews: str, out: str) -> None:
    from p5rec.data.prepare import format_stats, prepare_dataset
    from p5rec.data.tables import _META_FILE

    start = time.perf_counter()
    data = prepare_dataset("amazon2014", out, reviews=reviews, k_core=5)
    seconds = time.perf_counter() - start
    saved = json.loads((Path(out) / _META_FILE).read_text())  # the stats computed while saving
    print(format_stats(saved["stats"], data.info))
    print(json.dumps({"seconds": seconds, "rows_read": data.info["rows_read"]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reviews", type=int, default=200_000, help="number of reviews to generate (default 200k)")
    parser.add_argument("--workdir", help="where to write the file and dataset (default: a temp folder)")
    parser.add_argument("--_prepare", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._prepare:
        _prepare(*args._prepare)
        return
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        path = Path(tmp) / "reviews_Synthetic.json.gz"
        start = time.perf_counter()
        generate(path, args.reviews)
        print(
            f"generated {args.reviews:,} reviews ({path.stat().st_size / 2**20:.0f} MiB gz) "
            f"in {time.perf_counter() - start:.0f}s"
        )
        child = subprocess.run(
            [sys.executable, __file__, "--_prepare", str(path), str(Path(tmp) / "dataset")],
            capture_output=True,
            text=True,
        )
        if child.returncode:
            sys.exit(child.stderr)
        print(child.stdout.rsplit("\n", 2)[0])
        result = json.loads(child.stdout.strip().rsplit("\n", 1)[-1])
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB -> GiB on Linux
        print(
            f"prepare: {result['rows_read']:,} reviews in {result['seconds']:.1f}s = "
            f"{result['rows_read'] / result['seconds']:,.0f} reviews/s; peak RSS {peak:.2f} GiB"
        )


if __name__ == "__main__":
    main()
