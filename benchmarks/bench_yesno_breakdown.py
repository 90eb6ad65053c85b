"""Where a yes/no AUC comes from: the model's scores of the true next items by how often they were trained on.

Reloads a saved model and scores the yes/no pairs `p5rec evaluate` scores (one positive, the true
next item, and one random catalog item per test user; the first yes/no template). Pooled over
users, the AUC of a read-out that is a share of the catalog (the next-item read-out) is about the
mean share of the catalog ranked below the positives, so it is bounded by how the model places
items it has seen rarely. Prints the positives by their number of training interactions with the
model's mean score per group, and the AUC of rank-averaged blends of the model with ItemKNN and
MostPop on the same pairs (weights picked on the test pairs themselves: an upper bound for such a
blend, not a method), and of a content score: the cosine between the asked item's TF-IDF profile
over its training reviews and titles (`p5rec.data.review_vectors.review_tfidf`: only reviews of each
user's training items, so that no valid or test interaction leaks) and the mean of its history's
reviewed items', alone and blended with the model.

    OMP_NUM_THREADS=1 python benchmarks/bench_yesno_breakdown.py MODEL_DIR
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from _saved_model import model_parser, parse_and_load

from p5rec.api import predictor_for
from p5rec.data.review_vectors import review_tfidf
from p5rec.evaluation.baselines import ItemKNN, MostPop
from p5rec.evaluation.config import EvalConfig
from p5rec.evaluation.metrics import binary_auc

GROUPS = ((0, 0), (1, 2), (3, 5), (6, 10), (11, 20), (21, None))  # training interactions of a positive


def ranks(x: np.ndarray) -> np.ndarray:
    """Each score's rank among the pooled pairs, over the number of pairs (ties broken by order)."""
    return np.argsort(np.argsort(x, kind="stable"), kind="stable") / len(x)


def content_scores(builder, histories: list[list[str]], items: list[str]) -> np.ndarray:
    """Cosine of each asked item's review profile (`review_tfidf`) with the mean of its history's; 0
    for an item without a training review or an empty history."""
    profiles, reviewed = review_tfidf(builder.data, builder.splits)
    row = {item: r for r, item in enumerate(reviewed)}
    out = np.zeros(len(items))
    for k, (history, item) in enumerate(zip(histories, items)):
        seen = [row[i] for i in history if i in row]
        if seen and item in row:
            out[k] = float((profiles[seen].mean(0) @ profiles[row[item]].T).item())
    return out


def main() -> None:
    parser = model_parser(__doc__)
    args, files, prepared = parse_and_load(parser)
    builder = prepared.builder
    predictor = predictor_for(files.model, files.tokenizer, files.items, files.config)
    first = builder.usable_templates("direct_yesno")[0].id
    examples = builder.eval_examples("direct_yesno", "test", np.random.default_rng(EvalConfig().seed), [first])
    truth = np.array([bool(e.meta["label"]) for e in examples])
    asked = files.items.positions([e.item for e in examples], "items")
    model = np.array(predictor.yes_probability([e.input for e in examples], asked, ("yes", "no")))
    train = builder.splits.train_sequences()
    counts = Counter(i for seq in train.values() for i in seq)
    histories = [builder.splits.history(e.user, "test") for e in examples]
    items = [e.item for e in examples]
    knn = ItemKNN().fit(train, builder.catalog).score_pairs(histories, items)
    pop = MostPop().fit(train, builder.catalog).score_pairs(histories, items)
    content = content_scores(builder, histories, items)
    scorers = (("p5rec", model), ("ItemKNN", knn), ("MostPop", pop), ("content", content))
    auc = {name: binary_auc(s.tolist(), truth.tolist()) for name, s in scorers}
    print(f"{len(examples)} pairs ({first}); AUC " + ", ".join(f"{k} {v:.4f}" for k, v in auc.items()))
    print(f"negatives' mean model score {model[~truth].mean():.3f}\n")
    print("| positive's training interactions | positives | share | mean model score |")
    print("|---|---:|---:|---:|")
    n = np.array([counts[e.item] for e in examples])
    for low, high in GROUPS:
        group = truth & (n >= low) & (n <= (high if high is not None else n.max()))
        label = f"{low}" if low == high else f"{low}-{high}" if high is not None else f"{low}+"
        print(f"| {label} | {group.sum()} | {group.sum() / truth.sum():.0%} | {model[group].mean():.3f} |")
    print("\n| blend weights (p5rec / ItemKNN / MostPop) | AUC |\n|---|---:|")
    for w_knn in (0.0, 0.25, 0.5, 0.75):
        for w_pop in (0.0, 0.25, 0.5):
            if w_knn + w_pop > 1:
                continue
            s = (1 - w_knn - w_pop) * ranks(model) + w_knn * ranks(knn) + w_pop * ranks(np.log1p(pop))
            blend = binary_auc(s.tolist(), truth.tolist())
            print(f"| {1 - w_knn - w_pop:.2f} / {w_knn:.2f} / {w_pop:.2f} | {blend:.4f} |")
    print("\n| blend weights (p5rec / content) | AUC |\n|---|---:|")
    for w in (0.25, 0.5, 0.75):
        blend = binary_auc(((1 - w) * ranks(model) + w * ranks(content)).tolist(), truth.tolist())
        print(f"| {1 - w:.2f} / {w:.2f} | {blend:.4f} |")


if __name__ == "__main__":
    main()
