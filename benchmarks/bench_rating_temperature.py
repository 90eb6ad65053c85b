"""Is a trained model's rating distribution calibrated? One temperature fitted on the valid split.

The rating answer is the expected value of the model's distribution over "1.0" ... "5.0". Dropout
0.5 in training and none in evaluation sharpens a softmax, so the distribution can lean toward the
most frequent rating. This script fits one temperature `T` (p ** (1 / T), renormalised) per template
on the valid split, by negative log-likelihood and by RMSE, and prints the test RMSE and MAE before
and after, next to the global mean's. The model is not changed.

    python benchmarks/bench_rating_temperature.py --model runs/bench/mi/model --data data/musical_instruments
"""

from __future__ import annotations

import argparse

import numpy as np

from p5rec.api import Recommender
from p5rec.cli.evaluate import rebuild_builder
from p5rec.evaluation import metrics

STARS = np.arange(1, 6, dtype=float)
TEMPERATURES = np.exp(np.linspace(np.log(0.25), np.log(16.0), 61))


def tempered(p: np.ndarray, t: float) -> np.ndarray:
    logp = np.log(np.clip(p, 1e-12, 1.0)) / t
    q = np.exp(logp - logp.max(axis=1, keepdims=True))
    return q / q.sum(axis=1, keepdims=True)


def rmse(p: np.ndarray, y: np.ndarray) -> float:
    """RMSE of the expected rating under the distributions `p`, as `p5rec evaluate` scores it."""
    return metrics.rmse(p @ STARS, y)


def mae(p: np.ndarray, y: np.ndarray) -> float:
    return metrics.mae(p @ STARS, y)


def nll(p: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), np.round(y).astype(int) - 1], 1e-12, 1.0))))


def distributions(rec: Recommender, builder, task: str, split: str, n: int | None) -> dict[tuple[str, str], tuple]:
    examples = builder.eval_examples(task, split, np.random.default_rng(2022), max_contexts=n)
    groups: dict[tuple[str, str], list] = {}
    for e in examples:
        groups.setdefault((e.template_id, builder.templates[e.template_id].split), []).append(e)
    return {
        key: (
            np.array(rec.predictor.rating_distribution([e.input for e in es])),
            np.array([e.meta["rating"] for e in es]),
        )
        for key, es in groups.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a model directory written by training")
    parser.add_argument("--data", help="its prepared dataset (default: the model's own)")
    parser.add_argument("--valid-examples", type=int, default=2000, help="valid ratings per template to fit on")
    args = parser.parse_args()
    rec = Recommender.from_pretrained(args.model, device="cpu")
    builder, _ = rebuild_builder(rec, args.data)
    ratings = builder.data.column("interactions", "rating")
    global_mean = float(np.mean([ratings[r] for r in builder.splits.review_rows("train")]))
    head = ["task", "template", "split", "valid mean (model / truth)", "T (NLL)", "T (RMSE)"]
    head += ["test RMSE before / after", "test MAE before / after", "global mean RMSE / MAE"]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join(["---"] * len(head)) + "|")
    for task in ("rating", "review_rating"):
        valid = distributions(rec, builder, task, "valid", args.valid_examples)
        test = distributions(rec, builder, task, "test", None)
        for key, (pt, yt) in test.items():
            pv, yv = valid[key]
            t_nll = min(TEMPERATURES, key=lambda t: nll(tempered(pv, t), yv))
            t_rmse = min(TEMPERATURES, key=lambda t: rmse(tempered(pv, t), yv))
            after, mean = tempered(pt, t_nll), np.full(len(yt), global_mean)
            cells = [task, *key, f"{float((pv @ STARS).mean()):.2f} / {yv.mean():.2f}", f"{t_nll:.2f}", f"{t_rmse:.2f}"]
            cells += [f"{rmse(pt, yt):.4f} / {rmse(after, yt):.4f}", f"{mae(pt, yt):.4f} / {mae(after, yt):.4f}"]
            cells += [f"{metrics.rmse(mean, yt):.4f} / {metrics.mae(mean, yt):.4f}"]
            print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
