"""A template collection: the shipped defaults layered with the user's prompt folders.

Precedence: later sources override earlier ones by id (defaults < user folders < templates added
from Python); within one source a repeated id is an error. The file format and its line-numbered
reader are in `p5rec.templates.files`, the checks in `.checks`, one template in `.template`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import yaml

from p5rec._atomic import write_text
from p5rec.templates.checks import SPLIT_VALUES, TemplateError
from p5rec.templates.files import default_prompt_dir, read_template_file, yaml_files
from p5rec.templates.tasks import TASKS
from p5rec.templates.template import PromptTemplate

__all__ = ["PromptTemplate", "TemplateError", "TemplateSet", "default_prompt_dir", "read_template_file"]


class TemplateSet:
    """An ordered collection of templates keyed by id.

    >>> ts = TemplateSet.load()                     # the shipped defaults
    >>> [t.id for t in ts.for_task("rating", split="seen")][:1]
    ['rating-1']
    """

    def __init__(self, templates: Iterable[PromptTemplate] = ()) -> None:
        self._by_id: dict[str, PromptTemplate] = {}
        for t in templates:
            self.add(t, replace=False)

    @classmethod
    def load(cls, *dirs: str | os.PathLike, include_defaults: bool = True) -> TemplateSet:
        """Defaults, then each folder (or file) in order; a later template replaces an earlier one with the same id.

        Within one source a repeated id is an error, since it is almost always a copy-paste slip.

        Args:
            dirs: prompt folders (every *.yaml / *.yml inside) or single YAML files.
            include_defaults: start from the templates shipped with p5rec.
        """
        sources: list[Path] = ([default_prompt_dir()] if include_defaults else []) + [Path(d) for d in dirs]
        result = cls()
        for src in sources:
            layer = cls()
            for file in yaml_files(src):
                for t in read_template_file(file):
                    if t.id in layer._by_id:
                        raise TemplateError(
                            f"{t.source}: duplicate template id {t.id!r} (first at {layer[t.id].source})"
                        )
                    layer._by_id[t.id] = t
            for t in layer:
                result.add(t, replace=True)
        return result

    def add(self, template: PromptTemplate, replace: bool = True) -> None:
        """Add `template`; with `replace` (the default) it overrides a template with the same id."""
        if not isinstance(template, PromptTemplate):
            raise TypeError(f"`template` must be a PromptTemplate, got {type(template).__name__}")
        if not replace and template.id in self._by_id:
            raise TemplateError(f"{template.source}: duplicate template id {template.id!r}")
        self._by_id[template.id] = template

    def for_task(
        self, task: str, split: str | None = None, available: Iterable[str] | None = None
    ) -> list[PromptTemplate]:
        """Templates of `task`, in order.

        Args:
            task: a key of `TASKS`.
            split: "seen" or "unseen"; None for both.
            available: variables the data can fill; templates requiring others (e.g. item titles
                for a dataset without metadata) are left out. None keeps every template.
        """
        if task not in TASKS:
            raise KeyError(f"unknown task {task!r}; choose one of {sorted(TASKS)}")
        if split is not None and split not in SPLIT_VALUES:
            raise ValueError(f"`split` must be 'seen', 'unseen' or None, got {split!r}")
        have = None if available is None else set(available)
        return [
            t
            for t in self
            if t.task == task and (split is None or t.split == split) and (have is None or t.usable_with(have))
        ]

    def select(self, ids: Iterable[str]) -> TemplateSet:
        return TemplateSet(self[i] for i in ids)

    def __getitem__(self, template_id: str) -> PromptTemplate:
        try:
            return self._by_id[template_id]
        except KeyError:
            raise KeyError(f"unknown template id {template_id!r}; known: {sorted(self._by_id)[:20]}") from None

    def __contains__(self, template_id: object) -> bool:
        return template_id in self._by_id

    def __iter__(self) -> Iterator[PromptTemplate]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def save(self, path: str | os.PathLike) -> None:
        """Write every template to one YAML file (atomically), e.g. next to a trained model."""
        path = Path(path)
        text = yaml.safe_dump(
            {"templates": [t.to_dict() for t in self]}, sort_keys=False, allow_unicode=True, width=100
        )
        write_text(path, text)
