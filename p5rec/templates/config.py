"""How examples are drawn from the data: :class:`ExampleConfig`, importable without torch or datasets."""

from __future__ import annotations

from dataclasses import dataclass, field

from p5rec.templates.tasks import FAMILIES, TASKS


@dataclass
class ExampleConfig:
    """How examples are drawn from the data.

    Args:
        max_history: keep only the most recent items of a history (P5 uses 20).
        task_weights: per task or family multiplier of examples (P5's sampling multipliers); a
            fractional part is drawn at random; 0 drops the task. Unlisted tasks get 1.0.
        train_candidates: candidate list size for direct_choice in training.
        eval_candidates: 1 positive + (eval_candidates - 1) negatives in evaluation (P5: 100).
        sequential_positions: "all" uses every prefix of a training sequence as an example (data
            augmentation, as SASRec trains); "last" uses only the final training item; "windows"
            the final item and, for a sequence longer than `max_history`, one more example every
            `max_history` items back, so that a model trained at every history position (the
            history loss) sees each training transition once per epoch ("last" would drop those
            older than the last `max_history` items: 11% of Beauty's); "auto" lets the recipe
            choose ("last" when the history loss trains every position, see `p5rec.recipe`).
        max_review_words: prompts show at most the first this many words of a review (summaries,
            review-based ratings, in training, evaluation and the API alike); None shows it whole.
            Reviews are most of an epoch's tokens (two thirds on Musical Instruments), and a
            prompt past `model.max_input_length` loses its start, instruction included.
    """

    max_history: int = 20
    task_weights: dict[str, float] = field(default_factory=dict)
    train_candidates: int = 20
    eval_candidates: int = 100
    sequential_positions: str = "auto"
    max_review_words: int | None = None

    def __post_init__(self) -> None:
        for name, w in self.task_weights.items():
            if name not in TASKS and name not in FAMILIES:
                raise ValueError(
                    f"`task_weights` has unknown task or family {name!r}; known: {sorted(TASKS) + sorted(FAMILIES)}"
                )
            if w < 0:
                raise ValueError(f"`task_weights[{name!r}]` must be >= 0, got {w}")
        if self.max_history < 1:
            raise ValueError(f"`max_history` must be >= 1, got {self.max_history}")
        if self.sequential_positions not in ("all", "last", "windows", "auto"):
            raise ValueError(
                f"`sequential_positions` must be 'all', 'last', 'windows' or 'auto', got {self.sequential_positions!r}"
            )
        if self.max_review_words is not None and self.max_review_words < 1:
            raise ValueError(f"`max_review_words` must be >= 1 (or null: whole reviews), got {self.max_review_words}")
        if self.train_candidates < 2 or self.eval_candidates < 2:
            raise ValueError("`train_candidates` and `eval_candidates` must be >= 2")

    def weight(self, task: str) -> float:
        if task in self.task_weights:
            return self.task_weights[task]
        return self.task_weights.get(TASKS[task].family, 1.0)
