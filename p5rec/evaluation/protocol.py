"""Baselines through the same harness as the model: same splits, same users, same reviews.

`evaluate_baselines` fits each requested baseline on the training part of the model's splits and
scores it on exactly the contexts `evaluate` scores (same seed, same subsample, same candidate
lists), so a table can put them side by side:

* ``mostpop``, ``itemknn``, ``bpr`` (BPR-MF), ``sasrec``: sequential (full ranking, history excluded),
  direct_choice (the same 1 positive + 99 negatives) and direct_yesno (AUC and accuracy of their
  scores on the same positive and negative pairs);
* ``mf`` (biased matrix factorization): rating and review_rating on the same review rows, and
  direct_yesno (its predicted rating as the score);
* ``lead`` (first sentence of the review): review_summary;
* ``retrieval`` (the most frequent training explanation of the item for the feature, else of the
  feature): explanation.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from p5rec.evaluation.baselines import (
    BPRMF,
    BiasedMF,
    BiasedMFConfig,
    BPRConfig,
    ItemKNN,
    MostPop,
    RetrievalExplainer,
    SASRec,
    SASRecConfig,
    lead_sentence,
)
from p5rec.evaluation.evaluate import EvalConfig, evaluate_ranker
from p5rec.evaluation.metrics import binary_auc, rating_metrics, text_metrics
from p5rec.templates.render import Example, ExampleBuilder

BASELINES = ("mostpop", "itemknn", "bpr", "sasrec", "mf", "lead", "retrieval")
RANKERS = ("mostpop", "itemknn", "bpr", "sasrec")
# Which tasks each baseline answers; a baseline whose tasks are all off is skipped.
BASELINE_TASKS = {
    "mostpop": ("sequential", "direct_choice", "direct_yesno"),
    "itemknn": ("sequential", "direct_choice", "direct_yesno"),
    "bpr": ("sequential", "direct_choice", "direct_yesno"),
    "sasrec": ("sequential", "direct_choice", "direct_yesno"),
    "mf": ("rating", "review_rating", "direct_yesno"),
    "lead": ("review_summary",),
    "retrieval": ("explanation",),
}


@dataclass
class BaselineConfig:
    """Training budgets of the learned baselines.

    Args:
        sasrec: SASRec settings (default: the class defaults: 100 epochs, early stopping).
        bpr: BPR-MF settings (default: the class defaults: 200 epochs, early stopping).
        mf: BiasedMF settings (default: the class defaults).
        early_stop_users: validation users for SASRec and BPR-MF early stopping (a seeded subsample keeps
            the per-epoch check cheap; None: all users).
    """

    sasrec: SASRecConfig | None = None
    bpr: BPRConfig | None = None
    mf: BiasedMFConfig | None = None
    early_stop_users: int | None = 500


def parse_baselines(spec: str | Sequence[str] | None) -> list[str]:
    """``"mostpop,sasrec"`` or a list -> validated names; ``"all"`` -> every baseline; None/"" -> none."""
    if spec is None:
        return []
    names = [n.strip().lower() for n in (spec.split(",") if isinstance(spec, str) else spec) if n.strip()]
    if names == ["all"]:
        return list(BASELINES)
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise ValueError(f"`baselines` has unknown name(s) {unknown}; choose from {list(BASELINES)} or 'all'")
    return list(dict.fromkeys(names))


def evaluate_baselines(
    builder: ExampleBuilder,
    config: EvalConfig,
    names: Sequence[str],
    baseline_config: BaselineConfig | None = None,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Fit and score each baseline in `names` on the builder's splits.

    Args:
        builder: the example builder the model is evaluated with (its splits and catalog).
        config: the model's evaluation settings (tasks, split, max_users, ks, seed).
        names: baseline names from :data:`BASELINES`.
        baseline_config: training budgets (defaults when omitted).
        progress: print one line per baseline.

    Returns:
        ``{name: {"tasks": {task: metrics}, "fit_s": seconds}}``; baselines with none of their
        tasks in ``config.tasks`` are left out.
    """
    names = parse_baselines(list(names))
    bcfg = baseline_config or BaselineConfig()
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        tasks = [t for t in BASELINE_TASKS[name] if t in config.tasks]
        if not tasks:
            continue
        start = time.perf_counter()
        if name in RANKERS:
            ranker = _fit_ranker(name, builder, config, bcfg)
            fit_s = time.perf_counter() - start
            scores = {}
            for t in tasks:
                if t == "direct_yesno":
                    examples = _first_template_examples(builder, config, t, config.split)
                    histories, items = [e.meta["history"] for e in examples], [e.item for e in examples]
                    pairs = ranker.score_pairs(histories, items, users=[e.user for e in examples])
                    found = _yes_no_scores(examples, pairs)
                else:
                    found = evaluate_ranker(ranker, builder, config, task=t)
                if found:
                    scores[t] = found
        elif name == "mf":
            scores, fit_s = _mf_scores(builder, config, bcfg, tasks)
        elif name == "retrieval":
            scores, fit_s = _retrieval_scores(builder, config), 0.0
        else:
            scores, fit_s = {"review_summary": _lead_scores(builder, config)}, 0.0
        out[name] = {"tasks": scores, "fit_s": fit_s, "total_s": time.perf_counter() - start}
        if progress:
            shown = {t: {k: round(v, 4) for k, v in list(m.items())[:3]} for t, m in scores.items()}
            print(f"  baseline {name}: {shown}", flush=True)
    return out


def _fit_ranker(name: str, builder: ExampleBuilder, config: EvalConfig, bcfg: BaselineConfig):
    train = builder.splits.train_sequences()
    if name == "mostpop":
        return MostPop().fit(train, builder.catalog)
    if name == "itemknn":
        return ItemKNN().fit(train, builder.catalog)
    valid, users = None, []
    if config.split == "test":  # early stopping on the valid items; never on the items scored
        users = list(builder.splits.sequences)
        if bcfg.early_stop_users is not None and len(users) > bcfg.early_stop_users:
            rng = np.random.default_rng(config.seed)
            users = [users[i] for i in np.sort(rng.choice(len(users), bcfg.early_stop_users, replace=False))]
        valid = (
            [builder.splits.history(u, "valid") for u in users],
            [builder.splits.target(u, "valid") for u in users],
        )
    if name == "bpr":
        return BPRMF(bcfg.bpr).fit(train, builder.catalog, valid=(users, *valid) if valid else None)
    return SASRec(bcfg.sasrec).fit(train, builder.catalog, valid=valid)


def _first_template_examples(builder: ExampleBuilder, config: EvalConfig, task: str, split: str) -> list[Example]:
    """The seeded contexts `evaluate` scores for `task` (rendered with its first usable template)."""
    first = builder.usable_templates(task)[:1]
    if not first:
        return []
    rng = np.random.default_rng(config.seed)
    return builder.eval_examples(task, split, rng, template_ids=[first[0].id], max_contexts=config.max_users)


def _mf_scores(
    builder: ExampleBuilder, config: EvalConfig, bcfg: BaselineConfig, tasks: list[str]
) -> tuple[dict[str, dict[str, float]], float]:
    users = builder.data.column("interactions", "user_id")
    items = builder.data.column("interactions", "item_id")
    ratings = builder.data.column("interactions", "rating")

    def triples(split: str) -> tuple[list[str], list[str], list[float]]:
        rows = [r for r in builder.splits.review_rows(split) if ratings[r] > 0]
        return [users[r] for r in rows], [items[r] for r in rows], [float(ratings[r]) for r in rows]

    train = triples("train")
    if not train[0]:
        raise ValueError("the training reviews have no rating > 0: the `mf` baseline has nothing to learn from")
    start = time.perf_counter()
    valid = triples("valid") if config.split == "test" else None
    mf = BiasedMF(bcfg.mf).fit(*train, valid=valid if valid and valid[0] else None)
    fit_s = time.perf_counter() - start
    scores = {}
    for task in tasks:
        examples = _first_template_examples(builder, config, task, config.split)
        if not examples:
            continue
        preds = mf.predict([e.user for e in examples], [e.item for e in examples])
        if task == "direct_yesno":  # the predicted rating as a score of the pair
            found = _yes_no_scores(examples, np.asarray(preds, dtype=np.float64))
            if found:
                scores[task] = found
        else:
            scores[task] = rating_metrics([float(p) for p in preds], [e.meta["rating"] for e in examples])
    return scores, fit_s


def _yes_no_scores(examples: list[Example], scores: np.ndarray) -> dict[str, float]:
    """AUC of a baseline's pair scores on the yes/no pairs, and accuracy at the median score
    (the pairs are balanced: one positive and one negative per context)."""
    if not examples:
        return {}
    truth = [bool(e.meta["label"]) for e in examples]
    threshold = float(np.median(scores))
    accuracy = sum((s > threshold) == t for s, t in zip(scores, truth)) / len(truth)
    return {"accuracy": float(accuracy), "auc": binary_auc([float(s) for s in scores], truth)}


def _retrieval_scores(builder: ExampleBuilder, config: EvalConfig) -> dict[str, dict[str, float]]:
    examples = _first_template_examples(builder, config, "explanation", config.split)
    if not examples:
        return {}
    column = builder.data.column
    items, features, texts = (
        column("interactions", "item_id"),
        column("interactions", "feature"),
        column("interactions", "explanation"),
    )
    train = builder.splits.review_rows("train")
    explainer = RetrievalExplainer().fit(
        [items[r] for r in train], [features[r] for r in train], [texts[r] for r in train]
    )
    hyps = [explainer.explain(e.item, features[e.meta["row"]]) for e in examples]
    refs = [e.target for e in examples]
    return {"explanation": text_metrics(refs, hyps, max_n=4)}


def _lead_scores(builder: ExampleBuilder, config: EvalConfig) -> dict[str, float]:
    examples = _first_template_examples(builder, config, "review_summary", config.split)
    if not examples:
        return {}
    reviews = builder.data.column("interactions", "review")
    hyps = [lead_sentence(reviews[e.meta["row"]]) for e in examples]
    refs = [e.target for e in examples]
    return text_metrics(refs, hyps, max_n=2)
