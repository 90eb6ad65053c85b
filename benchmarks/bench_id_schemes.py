"""Sequential HR@10 / NDCG@10 of each item ID scheme, with the same model, data and training budget.

Only the ID scheme changes between rows: the backbone preset, tokenizer size, epochs, seed, users
evaluated and beam width are shared, and training renders the sequential task alone. Evaluation is
leave-one-out over the full catalog (history excluded), on the first seen sequential template,
with the users `evaluate_ranker` would pick. MostPop on the same users is printed as a floor.

    python benchmarks/bench_id_schemes.py                                    # built-in data, ~10 min on 1 CPU thread
    python benchmarks/bench_id_schemes.py --dataset musical_instruments      # prepares it first (--reviews FILE)
    python benchmarks/bench_id_schemes.py --dataset musical_instruments --epochs 20 --preset mini \\
        --eval-users 0                                                       # full size (GPU)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

SCHEMES = ("random", "sequential", "collaborative", "semantic")
# The shared data folder beside the checkout (../shared/data), or what `p5rec data download
# amazon2014/Musical_Instruments` fetched: pass that file with --reviews.
MI_REVIEWS = (
    Path(__file__).resolve().parents[1].parent
    / "shared/data/amazon2014_musical_instruments/reviews_Musical_Instruments_5.json.gz"
)


def load(dataset: str, cache: Path, num_users: int, reviews: Path = MI_REVIEWS):
    """The tables of `dataset`: the built-in synthetic data, or Musical Instruments prepared once into `cache`."""
    from p5rec.data.synthetic import generate
    from p5rec.data.tables import RecData

    if dataset == "synthetic":
        return generate(num_users=num_users, num_items=max(50, num_users // 3), seed=0)
    out = cache / "musical_instruments"
    if not out.exists():
        from p5rec.data.prepare import prepare_dataset

        if not reviews.is_file():
            raise SystemExit(
                f"--reviews {reviews} does not exist: download it with `p5rec data download "
                "amazon2014/Musical_Instruments` and pass the reviews_Musical_Instruments_5.json.gz it prints"
            )
        prepare_dataset("amazon2014", out, reviews=reviews, k_core=5, name="musical_instruments")
    return RecData.load_from_disk(str(out))


def run_scheme(scheme: str, data, args: argparse.Namespace) -> dict:
    """Train one model with `scheme` IDs and score it; returns one table row."""
    from p5rec.config import RunConfig, from_dict
    from p5rec.evaluation.metrics import ranking_metrics
    from p5rec.pipeline import build_model, prepare
    from p5rec.templates.tasks import TASKS
    from p5rec.training.trainer import train

    config = from_dict(
        RunConfig,
        {
            "ids": {"scheme": scheme, "num_clusters": args.num_clusters, "max_leaf_size": args.num_clusters},
            "examples": {"max_history": 20, "task_weights": {t: float(t == "sequential") for t in TASKS}},
            "model": {"backbone": args.preset, "vocab_size": args.vocab_size, "max_input_length": 160},
            "train": {"epochs": args.epochs, "batch_size": 64, "learning_rate": args.lr, "log_every": 10**9},
        },
        "bench_id_schemes",
    )
    start = time.perf_counter()
    prepared = prepare(config, data)
    model, tokenizer = build_model(config, prepared)
    result = train(model, tokenizer, prepared.builder, config.train, config.model, progress=False)
    train_s = time.perf_counter() - start

    from p5rec.decoding.predictor import Predictor

    predictor = Predictor(model, tokenizer, prepared.items, max_input_length=160, batch_size=32)
    first = prepared.templates.for_task("sequential")[0]
    examples = prepared.builder.eval_examples(
        "sequential", "test", np.random.default_rng(2022), template_ids=[first.id],
        max_contexts=args.eval_users or None,
    )  # fmt: skip
    items = prepared.items  # ranked results are positions in it
    start = time.perf_counter()
    ranked = predictor.rank(
        [e.input for e in examples],
        k=10,
        num_beams=args.beams,
        exclude=[items.positions(e.meta["history"], "history") for e in examples],
    )
    eval_s = time.perf_counter() - start
    targets = items.positions([e.item for e in examples], "targets")
    metrics = ranking_metrics([[i for i, _ in row] for row in ranked], targets, ks=(10,))
    depth = max(len(prepared.items.code_of(r)) for r in prepared.items.raw_ids())
    return {
        "scheme": scheme,
        "hr@10": metrics["hr@10"],
        "ndcg@10": metrics["ndcg@10"],
        "users": len(examples),
        "levels": depth,
        "final_loss": result.final_loss,
        "train_s": train_s,
        "eval_s": eval_s,
    }


def most_pop(data, args: argparse.Namespace) -> dict:
    """MostPop on the users the models are scored on: the floor a scheme must beat."""
    from p5rec.config import RunConfig
    from p5rec.evaluation.baselines import MostPop
    from p5rec.evaluation.evaluate import EvalConfig, evaluate_ranker
    from p5rec.pipeline import prepare

    prepared = prepare(RunConfig(), data)
    ranker = MostPop().fit(prepared.splits.train_sequences(), prepared.items.raw_ids())
    cfg = EvalConfig(tasks=("sequential",), max_users=args.eval_users or None, ks=(10,), num_beams=10)
    m = evaluate_ranker(ranker, prepared.builder, cfg)
    return {"scheme": "(MostPop)", "hr@10": m["hr@10"], "ndcg@10": m["ndcg@10"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("synthetic", "musical_instruments"), default="synthetic")
    parser.add_argument("--schemes", nargs="+", choices=SCHEMES, default=list(SCHEMES))
    parser.add_argument("--preset", choices=("tiny", "mini", "small"), default="tiny", help="backbone preset")
    parser.add_argument("--epochs", type=int, default=5, help="training epochs (the same for every scheme)")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    parser.add_argument("--vocab-size", type=int, default=1000, help="SentencePiece vocabulary size")
    parser.add_argument("--num-clusters", type=int, default=10, help="branching factor of hierarchical schemes")
    parser.add_argument("--eval-users", type=int, default=500, help="users scored (0: all)")
    parser.add_argument("--beams", type=int, default=20, help="beam width of constrained decoding")
    parser.add_argument("--synthetic-users", type=int, default=600, help="users of the built-in data")
    parser.add_argument("--cache", default="runs/bench_data", help="where prepared datasets are kept")
    parser.add_argument(
        "--reviews",
        type=Path,
        default=MI_REVIEWS,
        help="Musical Instruments reviews_Musical_Instruments_5.json.gz (default: ../shared/data beside the checkout)",
    )
    parser.add_argument("--out", help="write the rows as JSON here")
    args = parser.parse_args(argv)

    import torch

    torch.manual_seed(0)
    data = load(args.dataset, Path(args.cache), args.synthetic_users, args.reviews)
    size = f"{len(data.user_ids)} users, {len(data.item_ids)} items"
    print(f"{args.dataset}: {size}; preset {args.preset}, {args.epochs} epochs")
    rows = [most_pop(data, args)]
    for scheme in args.schemes:
        rows.append(run_scheme(scheme, data, args))
        r = rows[-1]
        print(
            f"  {scheme:<14} HR@10 {r['hr@10']:.4f}  NDCG@10 {r['ndcg@10']:.4f}  ({r['train_s']:.0f}s train)",
            flush=True,
        )
    print(f"\n| scheme | HR@10 | NDCG@10 | ID levels | final loss | train s | eval s |\n|{'---|' * 7}")
    for r in rows:
        extra = (
            f" {r['levels']} | {r['final_loss']:.3f} | {r['train_s']:.0f} | {r['eval_s']:.0f} |"
            if "levels" in r
            else " - | - | - | - |"
        )
        print(f"| {r['scheme']} | {r['hr@10']:.4f} | {r['ndcg@10']:.4f} |{extra}")
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
