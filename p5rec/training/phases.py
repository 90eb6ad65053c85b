"""Next-item first: train the sequential task alone to early stopping, then every task from there.

Trained together from the start, P5's tasks cost the next-item task 4-11% of its NDCG@10
(docs/benchmarks.md, "Where the mix cost comes from"): a wider feed-forward layer, a separate
softmax for item and text labels, or taking the history loss off the direct prompts did not remove
it, and fine-tuning the every-task model on next-item alone afterwards left it where it was.
Starting the every-task training from the weights the next-item task reaches alone does remove it.
The every-task phase then needs three things so that the text tasks are learned too: the latest
weights within `SECOND_KEEP_WITHIN` of the best next-item validation are kept (its best comes a few
epochs in, too early for text), the text-generation tasks get all their examples each epoch (the
recipe), and the next-item batches are pulled toward the first phase's model (`first_teacher`).
These helpers derive the two phases' settings and examples; the pipeline runs `train` per phase.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from p5rec.modeling.backbone import is_encoder_decoder
from p5rec.templates.tasks import TASKS
from p5rec.training.config import TrainConfig
from p5rec.training.objective import Teacher

if TYPE_CHECKING:
    from p5rec.training.trainer import TrainResult

FIRST_TASK = "sequential"
FIRST_DIR = "sequential_first"  # the first phase's log and checkpoints, inside `output_dir`
FIRST_SHARE = 0.5  # of `max_minutes`, at most, so the every-task phase always has time left
SECOND_KEEP_WITHIN = 0.08  # `keep_within` of the every-task phase, unless the config sets one


def only_tasks(builder: Any, tasks: set[str]) -> Any:
    """A copy of `builder` (an `ExampleBuilder`, or a `MixedExamples` of them) that renders `tasks` only.

    The other tasks get weight 0; the kept ones keep their weights. The builder itself is unchanged.
    """
    sources = getattr(builder, "sources", None)
    if sources is not None:  # a mixture of datasets: restrict each
        view = copy.copy(builder)
        view.sources = [only_tasks(s, tasks) for s in sources]
        return view
    weights = {t: (builder.config.weight(t) if t in tasks else 0.0) for t in TASKS}
    view = copy.copy(builder)
    view.config = dataclasses.replace(builder.config, task_weights=weights)
    return view


def trains_others(builder: Any, task: str = FIRST_TASK) -> bool:
    """Whether `builder` trains `task` and at least one other task (a first phase would change something)."""
    sources = getattr(builder, "sources", None) or [builder]

    def trained(t: str) -> bool:
        return any(s.config.weight(t) > 0 and s.usable_templates(t, "seen") for s in sources)

    return trained(task) and any(trained(t) for t in TASKS if t != task)


def first_phase(config: TrainConfig) -> TrainConfig:
    """The first phase's settings: its own log folder, at most `FIRST_SHARE` of the budget, no resume."""
    return dataclasses.replace(
        config,
        output_dir=None if config.output_dir is None else str(Path(config.output_dir) / FIRST_DIR),
        max_minutes=None if config.max_minutes is None else config.max_minutes * FIRST_SHARE,
        resume_from=None,
    )


def second_phase(config: TrainConfig, first_seconds: float) -> TrainConfig:
    """The every-task phase's settings: the budget less what the first phase took, and `keep_within`
    (None: `SECOND_KEEP_WITHIN`): its next-item validation stays near the first phase's level while
    the text tasks keep improving, so the latest weights near the best are kept, not the best."""
    within = SECOND_KEEP_WITHIN if config.keep_within is None else config.keep_within
    minutes = None if config.max_minutes is None else max(config.max_minutes - first_seconds / 60, 1e-3)
    return dataclasses.replace(config, max_minutes=minutes, keep_within=within)


def first_teacher(model: Any, config: TrainConfig) -> Teacher | None:
    """A frozen copy of `model` (the first phase's best) to distil next-item batches from in the
    every-task phase; None when `config.first_distil` is 0 or the model is an encoder-decoder (the
    objective that distils is the decoder-only one)."""
    if not config.first_distil or is_encoder_decoder(model):
        return None
    frozen = copy.deepcopy(model).eval().requires_grad_(False)
    return Teacher(frozen, config.first_distil, frozenset({FIRST_TASK}))


def describe_first(first: TrainResult) -> str:
    """One line on the first phase, for `p5rec train` and the demo."""
    best = "" if first.best_metric is None else f", best valid {first.best_metric:.4f}"
    head = f"next-item task alone first: {first.steps} steps in {first.seconds:.0f}s{best}"
    return f"{head}; then every task from its weights:"
