"""Next-item first: train the sequential task alone to early stopping, then every task from there.

Trained together from the start, P5's tasks cost the next-item task 4-11% of its NDCG@10
(docs/benchmarks.md, "Where the mix cost comes from"): a wider feed-forward layer, a separate
softmax for item and text labels, or taking the history loss off the direct prompts did not remove
it, and fine-tuning the every-task model on next-item alone afterwards left it where it was.
Starting the every-task training from the weights the next-item task reaches alone does remove it.
The every-task phase then needs three things so that the text tasks are learned too: the latest
weights within `SECOND_KEEP_WITHIN` of the best next-item validation are kept (its best comes a few
epochs in, too early for text; data with no text to learn keeps the best), the text-generation
tasks get all their examples each epoch (the recipe), and the batches of the tasks that answer with
an item (next item, direct choice) are pulled toward the first phase's model (`first_teacher`).
These helpers derive the two phases' settings and examples; the pipeline runs `train` per phase.
A run that resumes continues the phase its checkpoint belongs to (`resumed_phase`): the first
phase's checkpoints live under `output_dir/sequential_first`, and an every-task phase that resumes
gets its teacher back from the first phase's kept weights (`saved_teacher`).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from p5rec.modeling.backbone import is_encoder_decoder
from p5rec.templates.tasks import TASKS
from p5rec.training.checkpoint import BEST_FILE, list_checkpoints
from p5rec.training.config import TrainConfig
from p5rec.training.objective import CausalLMObjective, Teacher

if TYPE_CHECKING:
    from p5rec.training.trainer import TrainResult

FIRST_TASK = "sequential"
FIRST_DIR = "sequential_first"  # the first phase's log and checkpoints, inside `output_dir`
FIRST_SHARE = 0.5  # of `max_minutes`, at most, so the every-task phase always has time left
SECOND_KEEP_WITHIN = 0.08  # `keep_within` of the every-task phase, unless the config sets one
# The first phase's early stopping cannot end it before this many validations. Next-item NDCG@10
# first rises to the popularity ranking's level and can stay there 15-35 validations (epochs)
# before the model learns more than popularity; a patience of 20 alone can end a run there, with a
# popularity model (docs/benchmarks.md, "Early stopping on the popularity plateau").
FIRST_MIN_VALIDATIONS = 50
# The tasks that answer with an item: every label of their prompts is an item (the history's and the
# answer's), so the first phase's next-item distribution is the right target at each of them. The
# yes/no task's answer is a word, which the first phase never learned.
DISTIL_TASKS = frozenset(t for t, spec in TASKS.items() if spec.kind == "item")


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


def _trains(builder: Any, task: str) -> bool:
    """Whether `builder` (or any dataset of a mixture) renders training examples of `task`."""
    return any(s.trains(task) for s in getattr(builder, "sources", None) or [builder])


def trains_others(builder: Any, task: str = FIRST_TASK) -> bool:
    """Whether `builder` trains `task` and at least one other task (a first phase would change something)."""
    return _trains(builder, task) and any(_trains(builder, t) for t in TASKS if t != task)


def writes_text(builder: Any) -> bool:
    """Whether `builder` trains a task whose answer is free text (explanation, review summary)."""
    return any(_trains(builder, t) for t, spec in TASKS.items() if spec.kind == "text")


def resumed_phase(config: TrainConfig) -> str | None:
    """The phase a resumed run continues: "first" when its checkpoint is the first phase's, "second"
    when it is the every-task phase's; None when the run does not resume.

    "latest" means the every-task phase's newest checkpoint, or the first phase's when the
    every-task phase has written none yet (a run killed in the first phase, or just after it).
    """
    if not config.resume_from:
        return None
    if config.resume_from == "latest":
        out = config.output_dir
        first_only = out and not list_checkpoints(out) and list_checkpoints(Path(out) / FIRST_DIR)
        return "first" if first_only else "second"
    return "first" if Path(config.resume_from).resolve().parent.parent.name == FIRST_DIR else "second"


def first_phase(config: TrainConfig, resume: bool = False) -> TrainConfig:
    """The first phase's settings: its own log folder, at most `FIRST_SHARE` of the budget, at least
    `FIRST_MIN_VALIDATIONS` validations; it resumes `config.resume_from` only with `resume` (the
    checkpoint is the first phase's)."""
    return dataclasses.replace(
        config,
        output_dir=None if config.output_dir is None else str(Path(config.output_dir) / FIRST_DIR),
        max_minutes=None if config.max_minutes is None else config.max_minutes * FIRST_SHARE,
        resume_from=config.resume_from if resume else None,
        min_validations=max(config.min_validations, FIRST_MIN_VALIDATIONS),
    )


def second_phase(
    config: TrainConfig, first_seconds: float, resume: bool = False, text_tasks: bool = True
) -> TrainConfig:
    """The every-task phase's settings: the budget less what the first phase took, and `keep_within`
    (None: `SECOND_KEEP_WITHIN` when the phase trains `text_tasks`, else 0): its next-item validation
    stays near the first phase's level while the text tasks keep improving, so the latest weights
    near the best are kept, not the best; without a text task nothing learns late, and the best
    weights are kept. It resumes `config.resume_from` only with `resume` (the checkpoint is the
    every-task phase's)."""
    within = (SECOND_KEEP_WITHIN if text_tasks else 0.0) if config.keep_within is None else config.keep_within
    minutes = None if config.max_minutes is None else max(config.max_minutes - first_seconds / 60, 1e-3)
    return dataclasses.replace(
        config,
        max_minutes=minutes,
        keep_within=within,
        resume_from=config.resume_from if resume else None,
    )


def first_seconds_logged(config: TrainConfig) -> float:
    """The first phase's training time as its log last recorded it (0 without one): what a resumed
    every-task phase takes off the budget."""
    log = Path(config.output_dir or "") / FIRST_DIR / "train_log.jsonl"
    if not config.output_dir or not log.is_file():
        return 0.0
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return max((float(e["seconds"]) for e in entries if "seconds" in e), default=0.0)


def first_teacher(model: Any, config: TrainConfig) -> Teacher | None:
    """A frozen copy of `model` (the first phase's best) to distil, in the every-task phase, the
    batches of `DISTIL_TASKS`; None when `config.first_distil` is 0 or the model is an
    encoder-decoder (the objective that distils is the decoder-only one)."""
    if not config.first_distil or is_encoder_decoder(model):
        return None
    frozen = copy.deepcopy(model).eval().requires_grad_(False)
    return Teacher(frozen, config.first_distil, DISTIL_TASKS)


def saved_teacher(model: Any, config: TrainConfig) -> Teacher | None:
    """:func:`first_teacher` for an every-task phase that resumes: the first phase's kept weights, read
    from `output_dir/sequential_first`, in a frozen copy of `model` (whose own weights the checkpoint
    will replace)."""
    teacher = first_teacher(model, config)
    if teacher is None:
        return None
    path = Path(config.output_dir or "") / FIRST_DIR / BEST_FILE
    if not config.output_dir or not path.is_file():
        raise FileNotFoundError(
            f"resuming the every-task phase needs the first phase's kept weights ({path}) for its teacher; "
            "set `train.first_distil=0` to resume without one"
        )
    CausalLMObjective(teacher.model).load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return teacher


def describe_first(first: TrainResult) -> str:
    """One line on the first phase, for `p5rec train` and the demo."""
    best = "" if first.best_metric is None else f", best valid {first.best_metric:.4f}"
    head = f"next-item task alone first: {first.steps} steps in {first.seconds:.0f}s{best}"
    return f"{head}; then every task from its weights:"
