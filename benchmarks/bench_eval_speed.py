"""Evaluation speed: users/s of the sequential protocol (full ranking, beam 20) through `evaluate`.

Times exactly what ``p5rec evaluate`` runs for one sequential template: prompt rendering is
excluded, batched trie-constrained beam search over the whole catalog with the history excluded
is included. Speed does not depend on what the model learned, so without ``--model`` an untrained
"mini" model is built on the built-in synthetic data (1,000 users by default).

    OMP_NUM_THREADS=2 python benchmarks/bench_eval_speed.py                 # 1,000 users, beam 20, CPU
    python benchmarks/bench_eval_speed.py --model DIR --users 500          # a saved model, e.g. bench_quality.py's
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def synthetic_predictor(args: argparse.Namespace):
    from p5rec.config import RunConfig, from_dict
    from p5rec.pipeline import build_model, make_recommender, prepare

    config = from_dict(
        RunConfig,
        {
            "data": {"synthetic": {"num_users": args.users, "num_items": args.items, "seed": 0}},
            "model": {"backbone": args.backbone, "vocab_size": 1000, "max_input_length": 192},
        },
        "bench_eval_speed",
    )
    prepared = prepare(config)
    model, tokenizer = build_model(config, prepared)
    rec = make_recommender(config, prepared, model, tokenizer)
    return rec, prepared.builder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a saved model directory (default: untrained model on synthetic data)")
    parser.add_argument("--users", type=int, default=1000, help="users evaluated (default 1000)")
    parser.add_argument("--items", type=int, default=300, help="synthetic catalog size (default 300)")
    parser.add_argument("--backbone", default="mini", help="preset for the synthetic model (default mini)")
    parser.add_argument("--num-beams", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from p5rec.evaluation.evaluate import EvalConfig, evaluate

    if args.model:
        from p5rec.api import Recommender
        from p5rec.cli.evaluate import rebuild_builder

        rec = Recommender.from_pretrained(args.model, batch_size=args.batch_size)
        builder, _ = rebuild_builder(rec)
    else:
        rec, builder = synthetic_predictor(args)
        rec.predictor.batch_size = args.batch_size
    template = builder.usable_templates("sequential", "seen")[0].id
    cfg = EvalConfig(tasks=["sequential"], max_users=args.users, num_beams=args.num_beams, templates=[template])
    start = time.perf_counter()
    result = evaluate(rec.predictor, builder, cfg, progress=False)
    seconds = time.perf_counter() - start
    row = result.rows[0]
    print(
        json.dumps(
            {
                "users": row["n"],
                "items": len(builder.catalog),
                "num_beams": args.num_beams,
                "batch_size": args.batch_size,
                "threads": args.threads,
                "device": str(rec.predictor.device),
                "seconds": round(seconds, 1),
                "users_per_s": round(row["n"] / seconds, 2),
                "ranking_users_per_s": round(row["metrics"]["examples_per_s"], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
