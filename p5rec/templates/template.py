"""One prompt template: a Jinja input and target for a task, checked when it is built."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import jinja2

from p5rec.templates.checks import TemplateError, check_template
from p5rec.templates.tasks import TASKS, TITLE_VARIABLES


@dataclass(frozen=True)
class PromptTemplate:
    """One prompt: a Jinja input and target for a task.

    Args:
        id: unique name, e.g. "sequential-3".
        task: one of `p5rec.templates.tasks.TASKS`.
        input: Jinja2 source of the prompt.
        target: Jinja2 source of the answer; must render to the task's answer variable exactly.
        split: "seen" (used in training) or "unseen" (held out for zero-shot evaluation).
        description: one line for humans.
        source: "file:line" it was read from, or "python" when added in code.
        requires: variables the data must have (non-empty) for this template to be used; title
            variables the input uses are added automatically.

    >>> t = PromptTemplate("my-rating", "rating", "Stars {{ user_id }} gives {{ item_id }} :", "{{ rating }}")
    >>> t.render({"user_id": "user_1", "item_id": "item_2", "rating": "5.0"})
    ('Stars user_1 gives item_2 :', '5.0')
    """

    id: str
    task: str
    input: str
    target: str
    split: str = "seen"
    description: str = ""
    source: str = "python"
    requires: tuple[str, ...] = ()
    _compiled: tuple = field(default=(), compare=False, repr=False)
    _input_variables: frozenset = field(default=frozenset(), compare=False, repr=False)
    _warnings: tuple = field(default=(), compare=False, repr=False)

    @property
    def family(self) -> str:
        return TASKS[self.task].family

    @property
    def warnings(self) -> tuple:
        """Problems that do not stop loading (e.g. an item ID glued to punctuation), as `checks.Issue`s."""
        return self._warnings

    @property
    def input_variables(self) -> frozenset[str]:
        """Variables the input uses: the API picks a template whose needs it can meet."""
        return self._input_variables

    def __post_init__(self) -> None:
        where = f"{self.source}: template {self.id!r}"
        if not isinstance(self.id, str) or not self.id.strip():
            raise TemplateError(f"{self.source}: a template has no `id`")
        if isinstance(self.requires, str) or not all(isinstance(r, str) for r in self.requires):
            raise TemplateError(f"{where}: `requires` must be a list of variable names, got {self.requires!r}")
        checked = check_template(self.task, self.input, self.target, self.split, self.requires)
        errors = [i for i in checked.issues if i.severity == "error"]
        if errors:
            raise TemplateError(f"{where}: {errors[0].message}")
        object.__setattr__(self, "_warnings", tuple(checked.issues))
        used = checked.input_variables
        object.__setattr__(self, "_compiled", checked.compiled)
        object.__setattr__(self, "_input_variables", used)
        object.__setattr__(self, "requires", tuple(sorted(set(self.requires) | (used & TITLE_VARIABLES))))

    def render(self, variables: dict[str, Any]) -> tuple[str, str]:
        """Fill input and target. A missing variable raises a TemplateError naming it and the template."""
        try:
            return self._compiled[0].render(variables).strip(), self._compiled[1].render(variables).strip()
        except jinja2.UndefinedError as e:
            raise TemplateError(f"{self.source}: template {self.id!r}: {e.message}") from None

    def usable_with(self, available: Iterable[str]) -> bool:
        """Whether data providing the variables in `available` can fill everything this template requires."""
        return set(self.requires) <= set(available)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "family": self.family,
            **{k: getattr(self, k) for k in ("task", "split", "description", "input", "target")},
        }
        if self.requires:
            out["requires"] = list(self.requires)
        return out
