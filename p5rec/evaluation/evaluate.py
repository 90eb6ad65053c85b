"""Run every task's prompts through a Predictor and score the answers, per template.

Protocols follow P5: sequential over all items (history excluded, as the baselines do), direct
choice over 1 positive + 99 negatives, ratings by RMSE/MAE (invalid outputs counted), text by
BLEU and ROUGE. Results are reported per template and aggregated per seen/unseen split.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from p5rec.evaluation.metrics import bleu, ranking_metrics, rating_metrics, rouge
from p5rec.inference import Predictor
from p5rec.templates.render import Example, ExampleBuilder
from p5rec.templates.tasks import TASKS, parse_yes_no

DEFAULT_TASKS = tuple(TASKS)


@dataclass
class EvalConfig:
    """What to evaluate and how hard.

    Args:
        tasks: task names (default: all).
        split: "valid" or "test".
        max_users: cap on users (sequence tasks) or reviews (review tasks) per template, for speed.
        num_beams: beam width for ranking (P5 evaluates with 20).
        ks: cut-offs for ranking metrics.
        text_beams: beams for explanation/summary generation (1 = greedy).
        seed: seeds negatives and subsampling.
    """

    tasks: Sequence[str] = DEFAULT_TASKS
    split: str = "test"
    max_users: int | None = None
    num_beams: int = 20
    ks: Sequence[int] = (1, 5, 10, 20)
    text_beams: int = 1
    seed: int = 2022

    def __post_init__(self) -> None:
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown:
            raise ValueError(f"`tasks` has unknown task(s) {unknown}; choose from {sorted(TASKS)}")
        if self.split not in ("valid", "test"):
            raise ValueError(f"`split` must be 'valid' or 'test', got {self.split!r}")
        if self.num_beams < max(self.ks):
            raise ValueError(f"`num_beams` ({self.num_beams}) must be >= the largest k ({max(self.ks)})")


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

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows}


def evaluate(
    predictor: Predictor, builder: ExampleBuilder, config: EvalConfig | None = None, progress: bool = True
) -> EvalResult:
    """Evaluate every task in `config.tasks` with every template (seen and unseen)."""
    cfg = config or EvalConfig()
    result = EvalResult()
    index = {raw: k for k, raw in enumerate(builder.catalog)}
    for task in cfg.tasks:
        templates = builder.templates.for_task(task)
        for tpl in templates:
            rng = np.random.default_rng(cfg.seed)  # the same users/negatives for every template
            examples = builder.eval_examples(task, cfg.split, rng, template_ids=[tpl.id], max_contexts=cfg.max_users)
            if not examples:
                continue
            start = time.perf_counter()
            metrics = _score(task, examples, predictor, index, cfg)
            seconds = time.perf_counter() - start
            metrics["examples_per_s"] = len(examples) / max(seconds, 1e-9)
            result.rows.append(
                {
                    "task": task,
                    "family": TASKS[task].family,
                    "template": tpl.id,
                    "template_split": tpl.split,
                    "n": len(examples),
                    "metrics": metrics,
                }
            )
            if progress:
                shown = {k: round(v, 4) for k, v in list(metrics.items())[:4]}
                print(f"  evaluated {task}/{tpl.id} ({tpl.split}, n={len(examples)}): {shown}", flush=True)
    return result


def _score(
    task: str, examples: list[Example], predictor: Predictor, index: dict[str, int], cfg: EvalConfig
) -> dict[str, float]:
    prompts = [e.input for e in examples]
    kind = TASKS[task].kind
    if kind == "item":
        k = max(cfg.ks)
        if task == "direct_choice":
            cands = [[index[c] for c in e.meta["candidates"]] for e in examples]
            ranked = predictor.rank(prompts, k=min(k, min(map(len, cands))), num_beams=cfg.num_beams, candidates=cands)
        else:
            exclude = [[index[i] for i in e.meta["history"]] for e in examples]
            ranked = predictor.rank(prompts, k=k, num_beams=cfg.num_beams, exclude=exclude)
        ranked_ids = [[predictor_item for predictor_item, _ in r] for r in ranked]
        targets = [index[e.item] for e in examples]
        return ranking_metrics(ranked_ids, targets, ks=tuple(cfg.ks))
    if kind == "rating":
        preds = predictor.rate(prompts)
        return rating_metrics(preds, [e.meta["rating"] for e in examples])
    if kind == "yes_no":
        answers = [parse_yes_no(t) for t in predictor.generate_text(prompts, max_new_tokens=4)]
        truth = [e.meta["label"] for e in examples]
        valid = [a is not None for a in answers]
        correct = sum(1 for a, t in zip(answers, truth) if a is not None and a == t)
        return {"accuracy": correct / len(examples), "invalid": float(len(examples) - sum(valid))}
    hyps = predictor.generate_text(prompts, num_beams=cfg.text_beams)
    refs = [e.target for e in examples]
    max_n = 4 if task == "explanation" else 2
    return {f"bleu_{max_n}": bleu(refs, hyps, max_n=max_n), **rouge(refs, hyps)}


def evaluate_ranker(ranker, builder: ExampleBuilder, config: EvalConfig | None = None) -> dict[str, float]:
    """Score a fitted baseline ranker (MostPop, ItemKNN, SASRec) on exactly the users the model is scored on.

    The users come from the same seeded subsample as `evaluate`'s sequential examples, histories
    are the same leave-one-out prefixes, and seen items are excluded as for the model.
    """
    cfg = config or EvalConfig()
    rng = np.random.default_rng(cfg.seed)
    first = builder.templates.for_task("sequential")[:1]
    if not first:
        raise ValueError("no sequential template: cannot choose the evaluation users")
    examples = builder.eval_examples(
        "sequential", cfg.split, rng, template_ids=[first[0].id], max_contexts=cfg.max_users
    )
    ranked = ranker.recommend([e.meta["history"] for e in examples], k=max(cfg.ks), exclude_seen=True)
    return ranking_metrics(ranked, [e.item for e in examples], ks=tuple(cfg.ks))
