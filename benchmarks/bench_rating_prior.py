"""What the rating prior does to a trained model's ratings (`model.rating_prior`), every test pair.

Reloads a saved model and its data (the config saved with it), fits the rating prior on the valid
split as training does (`p5rec.pipeline.rating_prior`) and scores the rating and review-rating
templates on the test split three ways: the model's distribution as trained, centred on the
baseline rating with weight 0 (the damped user and item averages alone), and with the weight chosen
on valid; next to BiasedMF and the global mean fitted on the same training split.

    OMP_NUM_THREADS=1 python benchmarks/bench_rating_prior.py MODEL_DIR
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
from _saved_model import model_parser, parse_and_load

from p5rec.api import predictor_for
from p5rec.evaluation import metrics
from p5rec.evaluation.config import EvalConfig
from p5rec.evaluation.evaluate import evaluate
from p5rec.evaluation.protocol import evaluate_baselines
from p5rec.pipeline import rating_prior

TASKS = ["rating", "review_rating"]


def main() -> None:
    parser = model_parser(__doc__)
    args, files, prepared = parse_and_load(parser)
    config = files.config
    start = time.perf_counter()
    chosen = rating_prior(config, files.model, files.tokenizer, prepared)
    seconds = time.perf_counter() - start
    print(f"chosen on valid in {seconds:.1f} s:", {t: how.weight for t, how in chosen.items()})
    cfg = EvalConfig(**{**config.eval.__dict__, "split": "test", "tasks": TASKS, "max_users": None})
    variants = {
        "as trained": {},
        "baseline alone (weight 0)": {t: dataclasses.replace(how, weight=0.0) for t, how in chosen.items()},
        "chosen weight": chosen,
    }
    rows: dict[tuple[str, str, str], dict[str, str]] = {}
    for name, tilts in variants.items():
        predictor = predictor_for(files.model, files.tokenizer, files.items, config, rating_prior=tilts)
        for row in evaluate(predictor, prepared.builder, cfg, progress=False).rows:
            m = row["metrics"]
            rows.setdefault((row["task"], row["template"], row["template_split"]), {})[name] = (
                f"{m['rmse']:.4f} / {m['mae']:.4f}"
            )
    base = evaluate_baselines(prepared.builder, cfg, ["mf"], progress=False)
    mf = {k: round(v, 4) for k, v in base["mf"]["tasks"].get("rating", {}).items() if k in ("rmse", "mae")}
    train = prepared.builder.rating_means()
    examples = prepared.builder.eval_examples("rating", "test", np.random.default_rng(cfg.seed), max_contexts=None)
    truths = [e.meta["rating"] for e in examples if e.template_id == examples[0].template_id]
    mean = [train.global_mean] * len(truths)
    print(f"global mean RMSE / MAE {metrics.rmse(mean, truths):.4f} / {metrics.mae(mean, truths):.4f}; BiasedMF {mf}")
    head = ["task", "template", "split", *variants]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join(["---"] * len(head)) + "|")
    for (task, template, split), cells in rows.items():
        print("| " + " | ".join([task, template, split, *(cells.get(v, "-") for v in variants)]) + " |")


if __name__ == "__main__":
    main()
