"""Where a yes/no AUC comes from: the model's scores of the true next items by how often they were trained on.

Reloads a saved model and scores the yes/no pairs `p5rec evaluate` scores (one positive, the true
next item, and one random catalog item per test user; the first yes/no template). Pooled over
users, the AUC of a read-out that is a share of the catalog (the next-item read-out) is about the
mean share of the catalog ranked below the positives, so it is bounded by how the model places
items it has seen rarely. Prints the positives by their number of training interactions with the
model's mean score per group, and the AUC of rank-averaged blends of the model with ItemKNN and
MostPop on the same pairs (weights picked on the test pairs themselves: an upper bound for such a
blend, not a method), and of a content score: the cosine between the asked item's and the
history's TF-IDF profiles over the items' training reviews and titles (only reviews of each
user's training items, so that no valid or test interaction leaks), alone and blended with the model.

    OMP_NUM_THREADS=1 python benchmarks/bench_yesno_breakdown.py MODEL_DIR
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np
import scipy.sparse as sparse
from _saved_model import add_model_argument, load_saved

from p5rec.api import predictor_for
from p5rec.evaluation.baselines import ItemKNN, MostPop
from p5rec.evaluation.config import EvalConfig
from p5rec.evaluation.metrics import binary_auc, tokenize

GROUPS = ((0, 0), (1, 2), (3, 5), (6, 10), (11, 20), (21, None))  # training interactions of a positive


def ranks(x: np.ndarray) -> np.ndarray:
    """Each score's rank among the pooled pairs, over the number of pairs (ties broken by order)."""
    return np.argsort(np.argsort(x, kind="stable"), kind="stable") / len(x)


def review_profiles(builder) -> tuple[sparse.csr_matrix, dict[str, int]]:
    """Each item's L2-normalised TF-IDF vector over the words of its training reviews and titles, and the
    item -> row index (an item without a training review has a zero row)."""
    col = builder.data.column
    train = {(u, i) for u, seq in builder.splits.train_sequences().items() for i in seq}
    rows = {item: k for k, item in enumerate(builder.catalog)}
    words: dict[str, int] = {}
    docs: list[Counter] = [Counter() for _ in rows]
    for user, item, review, summary in zip(
        col("interactions", "user_id"),
        col("interactions", "item_id"),
        col("interactions", "review"),
        col("interactions", "summary"),
    ):
        if (user, item) in train:
            docs[rows[item]].update(tokenize(f"{review or ''} {summary or ''}"))
    r, c, v = [], [], []
    for k, doc in enumerate(docs):
        for w, n in doc.items():
            r.append(k), c.append(words.setdefault(w, len(words))), v.append(1.0 + np.log(n))
    x = sparse.csr_matrix((v, (r, c)), shape=(len(rows), len(words)))
    x = x.multiply(np.log(len(rows) / (1.0 + np.bincount(x.indices, minlength=len(words))))).tocsr()
    norms = np.sqrt(np.asarray(x.multiply(x).sum(1)).ravel())
    return sparse.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ x, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_argument(parser)
    args = parser.parse_args()
    files, prepared = load_saved(args.model)
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
    profiles, row = review_profiles(builder)
    content = np.array(
        [
            float((profiles[[row[i] for i in h]].mean(0) @ profiles[row[item]].T).item()) if h else 0.0
            for h, item in zip(histories, items)
        ]
    )
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
