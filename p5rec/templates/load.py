"""Read, validate and hold prompt templates (YAML files with Jinja2 fields).

A template file looks like::

    family: sequential            # optional default for the templates below
    templates:
      - id: sequential-1
        task: sequential          # optional when the family has a single task
        split: seen               # seen (trained on) or unseen (held out for zero-shot tests)
        description: Next item from the purchase history.
        input: "{{ user_id }} bought {{ history | join(', ') }}. What will they buy next?"
        target: "{{ item_id }}"

Every problem is reported with the file, the line and the template id, because users edit these
files by hand. Precedence: later sources override earlier ones by id (defaults < user folders <
templates added from Python).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import yaml

from p5rec.templates.tasks import FAMILIES, TASKS

SPLIT_VALUES = ("seen", "unseen")
TEMPLATE_KEYS = {"id", "family", "task", "split", "description", "input", "target"}
FILE_KEYS = {"family", "templates"}


class TemplateError(ValueError):
    """A template file or template is invalid; the message names the file, line and template id."""


def _environment() -> jinja2.Environment:
    # StrictUndefined: a misspelled variable is an error, never an empty string in a training prompt.
    return jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)


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
    """

    id: str
    task: str
    input: str
    target: str
    split: str = "seen"
    description: str = ""
    source: str = "python"
    _compiled: tuple = field(default=(), compare=False, repr=False)
    _input_variables: frozenset = field(default=frozenset(), compare=False, repr=False)

    @property
    def family(self) -> str:
        return TASKS[self.task].family

    @property
    def input_variables(self) -> frozenset[str]:
        """Variables the input uses: the API picks a template whose needs it can meet."""
        return self._input_variables

    def __post_init__(self) -> None:
        where = f"{self.source}: template {self.id!r}"
        if not isinstance(self.id, str) or not self.id.strip():
            raise TemplateError(f"{self.source}: a template has no `id`")
        if self.task not in TASKS:
            raise TemplateError(f"{where}: unknown task {self.task!r}; choose one of {sorted(TASKS)}")
        if self.split not in SPLIT_VALUES:
            raise TemplateError(f"{where}: `split` must be 'seen' or 'unseen', got {self.split!r}")
        for name in ("input", "target"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise TemplateError(f"{where}: `{name}` must be a non-empty string")
        env = _environment()
        spec = TASKS[self.task]
        compiled = []
        for name in ("input", "target"):
            src = getattr(self, name)
            try:
                ast = env.parse(src)
            except jinja2.TemplateSyntaxError as e:
                raise TemplateError(
                    f"{where}: syntax error in `{name}` (line {e.lineno} of the field): {e.message}"
                ) from None
            used = jinja2.meta.find_undeclared_variables(ast)
            unknown = sorted(used - set(spec.variables))
            if unknown:
                raise TemplateError(
                    f"{where}: unknown variable(s) {unknown} in `{name}`; task {self.task!r} provides "
                    f"{sorted(spec.variables)}"
                )
            if name == "input" and spec.answer in used:
                raise TemplateError(
                    f"{where}: `input` uses the answer variable `{spec.answer}`, which leaks the target"
                )
            if name == "input":
                object.__setattr__(self, "_input_variables", frozenset(used))
            compiled.append(env.from_string(src))
        object.__setattr__(self, "_compiled", tuple(compiled))

    def render(self, variables: dict[str, Any]) -> tuple[str, str]:
        """Fill input and target. A missing variable raises a TemplateError naming it and the template."""
        try:
            return self._compiled[0].render(variables).strip(), self._compiled[1].render(variables).strip()
        except jinja2.UndefinedError as e:
            raise TemplateError(f"{self.source}: template {self.id!r}: {e.message}") from None

    def to_dict(self) -> dict[str, str]:
        return {
            "id": self.id,
            "family": self.family,
            **{k: getattr(self, k) for k in ("task", "split", "description", "input", "target")},
        }


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that remembers the line of each mapping, for error messages."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict:
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_template_file(path: str | os.PathLike) -> list[PromptTemplate]:
    """Parse one YAML file into templates; every error names the file and line."""
    path = Path(path)
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise TemplateError(f"{path}{line}: not valid YAML: {getattr(e, 'problem', e)}") from None
    except UnicodeDecodeError as e:
        raise TemplateError(f"{path}: not UTF-8 text ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("templates"), list):
        raise TemplateError(f"{path}: expected a mapping with a `templates:` list")
    unknown = set(doc) - FILE_KEYS - {"__line__"}
    if unknown:
        raise TemplateError(f"{path}: unknown top-level key(s) {sorted(unknown)}; allowed: {sorted(FILE_KEYS)}")
    default_family = doc.get("family")
    if default_family is not None and default_family not in FAMILIES:
        raise TemplateError(f"{path}: unknown family {default_family!r}; choose one of {sorted(FAMILIES)}")
    out = []
    for entry in doc["templates"]:
        if not isinstance(entry, dict):
            raise TemplateError(f"{path}: each entry under `templates:` must be a mapping, got {entry!r}")
        line = entry.pop("__line__", "?")
        source = f"{path}:{line}"
        unknown = set(entry) - TEMPLATE_KEYS
        if unknown:
            raise TemplateError(f"{source}: unknown key(s) {sorted(unknown)}; allowed: {sorted(TEMPLATE_KEYS)}")
        family = entry.get("family", default_family)
        task = entry.get("task")
        if task is None:
            tasks = FAMILIES.get(family, [])
            if len(tasks) != 1:
                raise TemplateError(
                    f"{source}: template {entry.get('id')!r} needs `task:` (family {family!r} has tasks {tasks})"
                )
            task = tasks[0]
        elif family is not None and task in TASKS and TASKS[task].family != family:
            raise TemplateError(f"{source}: task {task!r} belongs to family {TASKS[task].family!r}, not {family!r}")
        out.append(
            PromptTemplate(
                id=str(entry.get("id", "")),
                task=task,
                input=entry.get("input", ""),
                target=entry.get("target", ""),
                split=entry.get("split", "seen"),
                description=str(entry.get("description", "")),
                source=source,
            )
        )
    return out


def default_prompt_dir() -> Path:
    """The templates shipped with p5rec (the repository's `prompts/`)."""
    return Path(str(resources.files("p5rec") / "prompts"))


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
        """
        sources: list[Path] = ([default_prompt_dir()] if include_defaults else []) + [Path(d) for d in dirs]
        result = cls()
        for src in sources:
            layer = cls()
            for file in _yaml_files(src):
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
        if not replace and template.id in self._by_id:
            raise TemplateError(f"{template.source}: duplicate template id {template.id!r}")
        self._by_id[template.id] = template

    def for_task(self, task: str, split: str | None = None) -> list[PromptTemplate]:
        if task not in TASKS:
            raise KeyError(f"unknown task {task!r}; choose one of {sorted(TASKS)}")
        return [t for t in self if t.task == task and (split is None or t.split == split)]

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
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)


def _yaml_files(src: Path) -> list[Path]:
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise FileNotFoundError(f"prompt folder {src} does not exist")
    return sorted(p for p in src.iterdir() if p.suffix in (".yaml", ".yml"))
