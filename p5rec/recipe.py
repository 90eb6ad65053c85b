"""The default recipe: what "auto" settings of a RunConfig become for a given dataset.

p5rec's defaults train SASRec's objective inside P5's prompts (see docs/benchmarks.md): a small
decoder-only model with one token per item, each history item in a prompt trained to predict the
next one, early stopping on the validation split. A few settings depend on the data and are left
"auto" in the config (`model.backbone: auto`, `model.dropout: null`); `resolve` fills them from the
data's statistics with rules taken from the papers' own settings, never from tuning on a
benchmark:

* backbone: "nano" (SASRec's network: width 64, 2 blocks) below 5M interactions, where SASRec,
  HSTU and TIGER report small models as best on Amazon-scale data; "tiny" (width 64, 4 blocks,
  2 heads) above.
* dropout: 0.5 when items have fewer than 50 interactions on average (SASRec's value for the
  sparse Amazon and Steam data), else 0.2 (its value for the denser MovieLens-1M).
* sequential positions ("auto"): "last" (one example per user and epoch) when the history loss
  already trains every position, that is for a decoder-only model with one token per item; else
  "all" (every prefix of a history is an example, as P5 and SASRec's data augmentation). "windows"
  (the older transitions of long histories too) was no better on Beauty (docs/benchmarks.md).
* batches (`train.group_by_length` None): one task per batch, random for prompts with a history
  (as SASRec draws them), when the history loss trains; grouped by length across tasks otherwise.
* task mixture: a task the config does not weigh gets at most as many examples per epoch as there
  are users (T5's examples-proportional mixing with a limit), so review tasks, which have one
  example per review, do not make each epoch several times longer than the next-item task that
  early stopping watches: weight min(1, users / the task's training examples). With
  `train.sequential_first` (the default, when the run validates) the text-generation tasks (explanation, review summary)
  are not capped: the next-item task has converged alone before they train, and they need their
  examples (docs/benchmarks.md, "Next item first, then every task").

The resolved values are written into the config saved with the model, so a reload knows them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from p5rec.config import RunConfig
    from p5rec.data.tables import RecData

AUTO = "auto"
LARGE_DATA = 5_000_000  # interactions: above this, the deeper preset
DENSE_ITEMS = 50.0  # mean interactions per item: at or above this, the data counts as dense


def statistics(datasets: Sequence[RecData]) -> dict[str, Any]:
    """Users, items, interactions and interactions per item, summed over `datasets`."""
    users = sum(len(d.user_ids) for d in datasets)
    items = sum(len(d.item_ids) for d in datasets)
    interactions = sum(len(d.interactions) for d in datasets)
    return {
        "users": users,
        "items": items,
        "interactions": interactions,
        "interactions_per_item": interactions / max(items, 1),
    }


def resolve(config: RunConfig, datasets: Sequence[RecData]) -> RunConfig:
    """A copy of `config` with its "auto" settings chosen from `datasets` (the others unchanged)."""
    stats = statistics(datasets)
    model = config.model
    changes: dict[str, Any] = {}
    if model.is_auto:
        changes["backbone"] = "nano" if stats["interactions"] < LARGE_DATA else "tiny"
    if model.dropout is None:
        changes["dropout"] = 0.5 if stats["interactions_per_item"] < DENSE_ITEMS else 0.2
    resolved = dataclasses.replace(config, model=dataclasses.replace(model, **changes)) if changes else config
    # Next item first needs validation (its first phase ends at early stopping); without it one phase trains.
    first = config.train.sequential_first and config.validation is not None
    weights = mixture_weights(config.examples.task_weights, datasets, cap_text=not first)
    if weights != dict(config.examples.task_weights):
        resolved = dataclasses.replace(resolved, examples=dataclasses.replace(resolved.examples, task_weights=weights))
    if config.train.group_by_length is None:
        resolved = dataclasses.replace(
            resolved, train=dataclasses.replace(resolved.train, group_by_length=not trains_history(resolved))
        )
    if config.examples.sequential_positions == AUTO:
        positions = "last" if trains_history(resolved) else "all"
        resolved = dataclasses.replace(
            resolved, examples=dataclasses.replace(resolved.examples, sequential_positions=positions)
        )
    return resolved


def mixture_weights(given: dict[str, float], datasets: Sequence[RecData], cap_text: bool = True) -> dict[str, float]:
    """`given` task weights plus, for each task neither it nor its family names, min(1, users / examples);
    with `cap_text` False the tasks that write free text (explanation, review summary) are left at 1.

    Examples per epoch: one per user for the next-item tasks, one per training review (80% of the
    interactions, times the share that has the task's field) for the review tasks.
    """
    from p5rec.templates.tasks import TASKS

    users = sum(len(d.user_ids) for d in datasets)
    reviews: dict[str, float] = {}
    for d in datasets:
        stats = d.stats()
        cover, n = stats["coverage"], 0.8 * stats["interactions"]
        for task, share in (
            ("rating", cover["rating"]),
            ("review_rating", min(cover["rating"], cover["review"])),
            ("explanation", cover["explanation"]),
            ("review_summary", min(cover["summary"], cover["review"])),
        ):
            reviews[task] = reviews.get(task, 0.0) + n * share
    weights = dict(given)
    for task, spec in TASKS.items():
        if task in given or spec.family in given or task not in reviews or reviews[task] <= users:
            continue
        if spec.kind == "text" and not cap_text:
            continue
        weights[task] = round(users / reviews[task], 4)
    return weights


def trains_history(config: RunConfig) -> bool:
    """Whether training will put the history loss on prompts: a decoder-only preset (or a causal
    checkpoint, which `p5rec` cannot tell before loading it) with one token per flat item ID."""
    arch = config.model.architecture if config.model.is_preset or config.model.is_auto else None
    decoder_only = arch != "t5" if arch is not None else "t5" not in config.model.backbone.lower()
    return (
        config.train.history_loss
        and decoder_only
        and config.ids.representation == "tokens"
        and not config.ids.hierarchical
    )


def describe(config: RunConfig) -> str:
    """One line saying what the recipe chose, for logs and the demo."""
    m = config.model
    return (
        f"backbone {m.backbone} ({m.architecture}), dropout {m.hidden_dropout}, "
        f"attention dropout {m.attention_probs_dropout}, sequential examples: {config.examples.sequential_positions}"
        + (f", item softmax over {config.train.item_negatives} sampled items" if config.train.item_negatives else "")
        + (", next-item task alone first" if config.train.sequential_first else "")
    )
