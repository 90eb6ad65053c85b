"""Run every task's prompts through a Predictor and score the answers, per template.

Protocols follow P5: sequential over all items (history excluded, as the baselines do), direct
choice over 1 positive + 99 negatives, ratings by RMSE/MAE (invalid outputs counted), text by
BLEU and ROUGE. Results are reported per template and aggregated per seen/unseen split.

Every template of a task is scored on the same contexts (users, negatives, reviews): the
generator is re-seeded per template, so differences between templates come from the prompts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from p5rec.decoding.predictor import Predictor
from p5rec.evaluation.config import EvalConfig
from p5rec.evaluation.metrics import binary_auc, ranking_metrics, rating_metrics, text_metrics
from p5rec.ids.index import ItemIndex
from p5rec.templates.render import Example, ExampleBuilder
from p5rec.templates.tasks import RATING_VALUES, TASKS, parse_rating


@dataclass
class EvalResult:
    """Metrics per (task, template), plus seen/unseen aggregates and timings."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def by_task(self, task: str, template_split: str | None = "seen") -> dict[str, float]:
        """Mean of each metric over the task's templates of one split (None: all templates)."""
        rows = [
            r
            for r in self.rows
            if r["task"] == task and (template_split is None or r["template_split"] == template_split)
        ]
        keys = [k for k in (rows[0]["metrics"] if rows else {}) if isinstance(rows[0]["metrics"][k], (int, float))]
        return {k: float(np.mean([r["metrics"][k] for r in rows])) for k in keys}

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """task -> {"seen": means, "unseen": means, "all": means}, splits without templates left out."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        for task in dict.fromkeys(r["task"] for r in self.rows):
            out[task] = {}
            for split in ("seen", "unseen", None):
                means = self.by_task(task, split)
                if means:
                    out[task][split or "all"] = means
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "summary": self.summary()}


def evaluate(
    predictor: Predictor, builder: ExampleBuilder, config: EvalConfig | None = None, progress: bool = True
) -> EvalResult:
    """Evaluate every task in `config.tasks` with every template (seen and unseen)."""
    cfg = config or EvalConfig()
    result = EvalResult()
    items = check_same_items(predictor, builder)
    for task in cfg.tasks:
        for tpl in cfg.select_templates(builder, task):
            rng = np.random.default_rng(cfg.seed)  # the same users/negatives for every template
            examples = builder.eval_examples(task, cfg.split, rng, template_ids=[tpl.id], max_contexts=cfg.max_users)
            if not examples:
                continue
            start = time.perf_counter()
            metrics, answers = _score(task, examples, predictor, items, cfg, builder)
            seconds = time.perf_counter() - start
            metrics["examples_per_s"] = len(examples) / max(seconds, 1e-9)
            row = {
                "task": task,
                "family": TASKS[task].family,
                "template": tpl.id,
                "template_split": tpl.split,
                "n": len(examples),
                "metrics": metrics,
            }
            if cfg.samples:
                row["samples"] = [
                    {"input": e.input, "target": e.target, "answer": a} for e, a in zip(examples, answers)
                ]
            result.rows.append(row)
            if progress:
                shown = {k: round(v, 4) for k, v in list(metrics.items())[:4]}
                print(f"  evaluated {task}/{tpl.id} ({tpl.split}, n={len(examples)}): {shown}", flush=True)
    return result


def check_same_items(predictor: Predictor, builder: ExampleBuilder) -> ItemIndex:
    """The item index both sides use; the examples must have been rendered with the model's own.

    Ranked results are positions in the predictor's index and targets are raw IDs of the
    builder's data: with one index between them the mapping is exact (`ItemIndex.positions`).
    """
    if builder.items is not predictor.items and builder.items != predictor.items:
        raise ValueError(
            f"the examples were rendered with another item index ({builder.items!r}) than the model's "
            f"({predictor.items!r}): build them with the model's index, "
            "`p5rec.pipeline.prepare(config, data, items=recommender.items, users=recommender.users)`"
        )
    return predictor.items


def _score(
    task: str,
    examples: list[Example],
    predictor: Predictor,
    items: ItemIndex,
    cfg: EvalConfig,
    builder: ExampleBuilder | None = None,
) -> tuple[dict[str, float], list[str]]:
    """The task's metrics over `examples` (rendered by `builder`, whose training ratings give the
    rating answers' baselines), and the answers of the first `cfg.samples` of them as text
    (the top five IDs, the expected rating, the yes/no score, the written or chosen text); none by default,
    so validation builds no strings."""
    keep = cfg.samples
    prompts = [e.input for e in examples]
    kind = TASKS[task].kind
    if kind == "item":
        # On a small catalog the catalog or the candidate lists can be shorter than the largest cut-off:
        # then every item is ranked (the decoding rule refuses a `k` above the catalog's or a list's
        # length), and the metrics past it see the whole ranking.
        k = min(max(cfg.ks), len(items))
        if task == "direct_choice":
            cands = [items.positions(e.meta["candidates"], "candidates") for e in examples]
            k = min(k, min(map(len, cands)))
            ranked = predictor.rank(prompts, k=k, num_beams=cfg.num_beams, candidates=cands)
        else:
            exclude = [items.positions(e.meta["history"], "history") for e in examples]
            ranked = predictor.rank(prompts, k=k, num_beams=cfg.num_beams, exclude=exclude)
        ranked_ids = [[predictor_item for predictor_item, _ in r] for r in ranked]
        targets = items.positions([e.item for e in examples], "targets")
        metrics = ranking_metrics(ranked_ids, targets, ks=tuple(cfg.ks))
        if task == "sequential":  # the true item's likelihood: smooth where ranks on a few users are not
            metrics["nll"] = -float(np.mean(predictor.target_logprob(prompts, targets)))
        return metrics, [" , ".join(items.id_at(i) for i in r[:5]) for r in ranked_ids[:keep]]
    if kind == "rating":
        truths = [e.meta["rating"] for e in examples]
        values = [float(v) for v in RATING_VALUES]
        # The answers are centred on the training ratings' baseline when the model has a rating prior.
        means = builder.rating_means() if builder is not None and task in predictor.rating_prior else None
        baselines = [means.baseline(e.user, e.item) for e in examples] if means is not None else None
        dist = predictor.rating_distribution(prompts, task, baselines)
        expected = [sum(p * v for p, v in zip(row, values)) for row in dist]
        metrics = rating_metrics(expected, truths)
        if cfg.greedy_rating:  # the most likely rating string: what constrained greedy decoding answers
            modes = [values[max(range(len(row)), key=row.__getitem__)] for row in dist]
            greedy = rating_metrics(modes, truths)
            metrics.update({f"greedy_{k}": greedy[k] for k in ("rmse", "mae")})
        return metrics, [f"{v:.2f}" for v in expected[:keep]]
    if kind == "yes_no":
        truth = [bool(e.meta["label"]) for e in examples]
        # The template's own renderings of the two answers ("yes"/"no" unless a custom template differs).
        yes = next((e.target for e in examples if e.meta["label"]), "yes")
        no = next((e.target for e in examples if not e.meta["label"]), "no")
        p_yes = predictor.yes_probability(prompts, items.positions([e.item for e in examples], "items"), (yes, no))
        metrics = {
            "accuracy": sum((p > 0.5) == t for p, t in zip(p_yes, truth)) / len(examples),
            "auc": binary_auc(p_yes, truth),
        }
        return metrics, [f"{yes if p > 0.5 else no} ({p:.3f})" for p in p_yes[:keep]]
    # Chosen among the training texts the builder retrieves for each example, when the model's answers are.
    chosen = task in predictor.choice and builder is not None
    candidates = [builder.answer_candidates(e) for e in examples] if chosen else []
    if candidates and all(candidates):
        hyps = predictor.choose(prompts, candidates, task=task, sources=[builder.answer_source(e) for e in examples])
    else:
        hyps = predictor.write(prompts, num_beams=cfg.text_beams, task=task)
    refs = [e.target for e in examples]
    max_n = 4 if task == "explanation" else 2
    return text_metrics(refs, hyps, max_n), hyps[:keep]


def parse_ratings(texts: Sequence[str], values: Sequence[str] = RATING_VALUES) -> list[float | None]:
    """Parse generated ratings; text with no number, or a number off the rating scale, is None (invalid).

    >>> parse_ratings(["4.0", "great", "9.0"])
    [4.0, None, None]
    """
    low, high = min(map(float, values)), max(map(float, values))
    out: list[float | None] = []
    for text in texts:
        value = parse_rating(text)
        out.append(value if value is not None and low <= value <= high else None)
    return out


def ranking_examples(builder: ExampleBuilder, config: EvalConfig, task: str = "sequential") -> list[Example]:
    """The contexts `evaluate` scores for a ranking task: same seed, same users, same candidates.

    Rendered with the task's first usable template; only the contexts (user, history, target,
    candidates) matter to a baseline.
    """
    if task not in ("sequential", "direct_choice"):
        raise ValueError(f"`task` ({task!r}) must be 'sequential' or 'direct_choice'")
    first = builder.usable_templates(task)[:1]
    if not first:
        raise ValueError(f"no usable {task} template: cannot choose the evaluation users")
    rng = np.random.default_rng(config.seed)
    return builder.eval_examples(task, config.split, rng, template_ids=[first[0].id], max_contexts=config.max_users)


def evaluate_ranker(
    ranker, builder: ExampleBuilder, config: EvalConfig | None = None, task: str = "sequential"
) -> dict[str, float]:
    """Score a fitted baseline ranker (MostPop, ItemKNN, SASRec) on exactly the users the model is scored on.

    The users come from the same seeded subsample as `evaluate`'s examples, histories are the
    same leave-one-out prefixes, and seen items are excluded as for the model. For
    ``task="direct_choice"`` the ranker orders the same 1 positive + 99 negatives the model sees
    (its full ranking, restricted to the candidates).

    Args:
        ranker: a fitted :class:`~p5rec.evaluation.baselines.Ranker`.
        builder: the example builder the model is evaluated with.
        config: the evaluation settings (split, max_users, ks, seed).
        task: "sequential" (full ranking) or "direct_choice" (candidate ranking).
    """
    cfg = config or EvalConfig()
    examples = ranking_examples(builder, cfg, task)
    histories = [e.meta["history"] for e in examples]
    targets = [e.item for e in examples]
    users = [e.user for e in examples]  # read only by user-factor models (BPR-MF)
    if task == "sequential":
        ranked = ranker.recommend(histories, k=max(cfg.ks), exclude_seen=True, users=users)
    else:
        # Rank the whole catalog, then keep the candidates in that order (none is in the history).
        full = ranker.recommend(histories, k=len(builder.catalog), exclude_seen=False, users=users)
        ranked = []
        for order, e in zip(full, examples, strict=True):
            allowed = set(e.meta["candidates"])
            ranked.append([i for i in order if i in allowed][: max(cfg.ks)])
    return ranking_metrics(ranked, targets, ks=tuple(cfg.ks))
