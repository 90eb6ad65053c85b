"""Next-item first: train the sequential task alone to early stopping, then every task from there.

Trained together from the start, P5's tasks cost the next-item task 4-11% of its NDCG@10 in the
default recipe (docs/benchmarks.md, "Where the mix cost comes from"): a wider feed-forward layer,
a separate softmax for item and text labels, or taking the history loss off the direct prompts did
not remove it, and fine-tuning the every-task model on next-item alone afterwards left it where it
was. Starting the every-task training from the weights the next-item task reaches alone does remove
it, but next-item validation then peaks after a few every-task epochs, too few for the text tasks:
hence an option (`TrainConfig.sequential_first`), off by default. These helpers derive the two
phases' settings and the first phase's examples; the pipeline runs `train` once per phase.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from p5rec.templates.tasks import TASKS
from p5rec.training.config import TrainConfig

if TYPE_CHECKING:
    from p5rec.training.trainer import TrainResult

FIRST_TASK = "sequential"
FIRST_DIR = "sequential_first"  # the first phase's log and checkpoints, inside `output_dir`
FIRST_SHARE = 0.5  # of `max_minutes`, at most, so the every-task phase always has time left


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
    """The every-task phase's settings: the budget less what the first phase took."""
    if config.max_minutes is None:
        return config
    return dataclasses.replace(config, max_minutes=max(config.max_minutes - first_seconds / 60, 1e-3))


def describe_first(first: TrainResult) -> str:
    """One line on the first phase, for `p5rec train` and the demo."""
    best = "" if first.best_metric is None else f", best valid {first.best_metric:.4f}"
    head = f"next-item task alone first: {first.steps} steps in {first.seconds:.0f}s{best}"
    return f"{head}; then every task from its weights:"
