"""What to evaluate and how hard: :class:`EvalConfig`, importable without torch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from p5rec.decoding.beams import beam_width
from p5rec.templates.tasks import TASKS

if TYPE_CHECKING:
    from p5rec.templates.render import ExampleBuilder
    from p5rec.templates.template import PromptTemplate

DEFAULT_TASKS = tuple(TASKS)


@dataclass
class EvalConfig:
    """What to evaluate and how hard.

    Args:
        tasks: task names (default: all).
        split: "valid" or "test".
        max_users: cap on users (sequence tasks) or reviews (review tasks) per template, for speed.
        num_beams: beam width for ranking; None: ``max(20, largest k)``, as P5 evaluates (the rule of
            `p5rec.decoding.beams`).
        ks: cut-offs for ranking metrics.
        text_beams: beams for explanation/summary generation (1 = greedy).
        seed: seeds negatives and subsampling.
        max_templates: score at most this many templates per task and template split (seen,
            unseen), in file order; None scores all. P5 reports every template; on a CPU budget
            one or two per split keep the seen/unseen comparison at a fraction of the cost.
        templates: only these template ids (None: all usable ones).
        template_splits: which template splits to score ("seen", "unseen"); validation needs only
            the seen ones.
        greedy_rating: also score the most likely rating string ("1.0" ... "5.0", read off the
            same distribution: what a decoder constrained to the answers writes) as ``greedy_rmse``
            and ``greedy_mae``; ``rmse``/``mae`` score the expected rating. Both come from the
            answer read-out, so no answer is ever invalid; yes/no ``accuracy`` is P("yes") > P("no").
        samples: keep the prompt, the reference and the model's answer of this many examples per
            template in each result row (``row["samples"]``; the report prints them), so that what
            a metric summarises can be read: a constant answer, a wrong ID. 0: none.
    """

    tasks: Sequence[str] = DEFAULT_TASKS
    split: str = "test"
    max_users: int | None = None
    num_beams: int | None = None
    ks: Sequence[int] = (1, 5, 10, 20)
    text_beams: int = 1
    seed: int = 2022
    max_templates: int | None = None
    templates: Sequence[str] | None = None
    template_splits: Sequence[str] = ("seen", "unseen")
    greedy_rating: bool = True
    samples: int = 0

    def __post_init__(self) -> None:
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown:
            raise ValueError(f"`tasks` has unknown task(s) {unknown}; choose from {sorted(TASKS)}")
        if self.split not in ("valid", "test"):
            raise ValueError(f"`split` must be 'valid' or 'test', got {self.split!r}")
        try:
            beam_width(max(self.ks), self.num_beams)
        except ValueError as e:
            raise ValueError(f"{e} (`k` is the largest of `ks`, {list(self.ks)})") from None
        for name in ("max_users", "max_templates"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"`{name}` ({value!r}) must be a positive integer or None (no cap)")
        if isinstance(self.samples, bool) or not isinstance(self.samples, int) or self.samples < 0:
            raise ValueError(f"`samples` ({self.samples!r}) must be a non-negative integer (0: none)")
        if self.text_beams < 1:
            raise ValueError(f"`text_beams` ({self.text_beams}) must be >= 1 (1 = greedy)")
        bad = [s for s in self.template_splits if s not in ("seen", "unseen")]
        if bad or not self.template_splits:
            raise ValueError(f"`template_splits` ({list(self.template_splits)}) must name 'seen' and/or 'unseen'")

    def select_templates(self, builder: ExampleBuilder, task: str) -> list[PromptTemplate]:
        """The templates of `task` to score: usable with the data, filtered by `templates`, capped per split."""
        chosen = [t for t in builder.usable_templates(task) if t.split in self.template_splits]
        if self.templates is not None:
            chosen = [t for t in chosen if t.id in set(self.templates)]
        if self.max_templates is None:
            return chosen
        per_split: dict[str, int] = {}
        kept = []
        for t in chosen:
            per_split[t.split] = per_split.get(t.split, 0) + 1
            if per_split[t.split] <= self.max_templates:
                kept.append(t)
        return kept
