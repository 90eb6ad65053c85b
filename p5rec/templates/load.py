"""Read, validate and hold prompt templates (YAML files with Jinja2 fields).

A template file looks like::

    family: sequential            # optional default for the templates below
    templates:
      - id: sequential-1
        task: sequential          # optional when the family has a single task
        split: seen               # seen (trained on) or unseen (held out for zero-shot tests)
        description: Next item from the purchase history.
        input: "{{ user_id }} bought {{ history | join(' , ') }} . What will they buy next?"
        target: "{{ item_id }}"

Every problem is reported with the file, the line and the template id, because users edit these
files by hand. Loading stops at the first problem (`TemplateError`); `p5rec.templates.validate`
collects all of them. Precedence: later sources override earlier ones by id (defaults < user
folders < templates added from Python).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import jinja2
import jinja2.meta
import yaml

from p5rec._atomic import write_text
from p5rec.templates.tasks import FAMILIES, TASKS, TITLE_VARIABLES, sample_variables

SPLIT_VALUES = ("seen", "unseen")
TEMPLATE_KEYS = {"id", "family", "task", "split", "description", "input", "target", "requires"}
FILE_KEYS = {"family", "templates"}
# Variables holding item ID strings: in a rendered input each must stand between whitespace, so it
# tokenizes as it does alone (the decoder's trie is built from IDs tokenized alone).
_ITEM_ID_VARIABLES = ("item_id", "history", "candidates")


class TemplateError(ValueError):
    """A template file or template is invalid; the message names the file, line and template id."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a template file, located for the person who edits it.

    Args:
        path: the file (or folder) at fault; "" for a template added from Python.
        line: 1-based line in `path`, when known.
        template_id: the template at fault, when there is one.
        kind: the error class: "yaml", "format", "syntax", "variable", "answer", "target",
            "spacing", "duplicate", "family" or "missing".
        message: what is wrong and how to fix it.
        severity: "error" (loading fails) or "warning" (it loads, but probably not as meant).
    """

    path: str
    line: int | None
    template_id: str | None
    kind: str
    message: str
    severity: str = "error"

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path

    def __str__(self) -> str:
        tid = f" template {self.template_id!r}:" if self.template_id else ""
        return f"{self.location}:{tid} {self.message}"


class _Issue(NamedTuple):
    """A problem inside one template; `field`/`line` locate it inside that field's text."""

    kind: str
    message: str
    field: str | None = None
    line: int = 1
    severity: str = "error"


def _environment() -> jinja2.Environment:
    # StrictUndefined: a misspelled variable is an error, never an empty string in a training prompt.
    return jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)


def _line_of(src: str, name: str) -> int:
    """First line of `src` mentioning `name` as a word (1 when not found)."""
    for k, text in enumerate(src.splitlines(), 1):
        if re.search(rf"\b{re.escape(name)}\b", text):
            return k
    return 1


class _Checked(NamedTuple):
    """The outcome of checking a template: its issues, and when there are none, what rendering needs."""

    issues: list[_Issue]
    compiled: tuple = ()
    input_variables: frozenset = frozenset()


def _check_template(task: str, input: str, target: str, split: str, requires: Iterable[str]) -> _Checked:
    """Everything wrong with one template's fields, in a stable order (the first is what loading reports)."""
    if task not in TASKS:
        return _Checked([_Issue("format", f"unknown task {task!r}; choose one of {sorted(TASKS)}", "task")])
    issues: list[_Issue] = []
    if split not in SPLIT_VALUES:
        issues.append(_Issue("format", f"`split` must be 'seen' or 'unseen', got {split!r}", "split"))
    spec = TASKS[task]
    bad_requires = sorted(set(requires) - set(spec.variables))
    if bad_requires:
        issues.append(
            _Issue(
                "variable",
                f"`requires` names {bad_requires}, which task {task!r} does not provide; "
                f"choose from {sorted(spec.variables)}",
                "requires",
            )
        )
    env = _environment()
    used: dict[str, set[str]] = {}
    asts = {}
    for name, src in (("input", input), ("target", target)):
        if not isinstance(src, str) or not src.strip():
            issues.append(_Issue("format", f"`{name}` must be a non-empty string", name))
            continue
        try:
            ast = env.parse(src)
        except jinja2.TemplateSyntaxError as e:
            issues.append(_Issue("syntax", f"Jinja syntax error in `{name}`: {e.message}", name, e.lineno or 1))
            continue
        asts[name] = ast
        used[name] = set(jinja2.meta.find_undeclared_variables(ast))
        for var in sorted(used[name] - set(spec.variables)):
            issues.append(
                _Issue(
                    "variable",
                    f"unknown variable `{var}` in `{name}`; task {task!r} provides {sorted(spec.variables)}",
                    name,
                    _line_of(src, var),
                )
            )
    if "input" in used:
        for var in sorted(used["input"] & {spec.answer, *spec.hidden}):
            what = "the answer variable" if var == spec.answer else "a variable that reveals the answer"
            issues.append(
                _Issue("answer", f"`input` uses {what} `{var}`, which leaks the target", "input", _line_of(input, var))
            )
    if "target" in used and spec.answer not in used["target"]:
        issues.append(
            _Issue(
                "answer",
                f'`target` does not use the answer variable `{spec.answer}` (write "{{{{ {spec.answer} }}}}")',
                "target",
            )
        )
    if issues or len(used) < 2:
        return _Checked(issues)
    # Compiling from the parsed AST: parsing is most of the cost of loading a collection.
    compiled = (env.from_string(asts["input"]), env.from_string(asts["target"]))
    return _Checked(_render_issues(spec.answer, *compiled, task), compiled, frozenset(used["input"]))


def _render_issues(answer: str, input: jinja2.Template, target: jinja2.Template, task: str) -> list[_Issue]:
    """Render with sample values: the target must give back the answer exactly, IDs must stand alone."""
    issues: list[_Issue] = []
    for variant in (0, 1):
        values = sample_variables(task, variant)
        try:
            text = input.render(values)
        except Exception as e:  # any error a user expression can raise
            return [_Issue("syntax", f"`input` fails to render with sample values: {e}", "input")]
        try:
            out = target.render(values).strip()
        except Exception as e:  # any error a user expression can raise
            return [_Issue("syntax", f"`target` fails to render with sample values: {e}", "target")]
        if out != values[answer] and not issues:
            issues.append(
                _Issue(
                    "target",
                    f"`target` renders to {out!r} for the answer {values[answer]!r}; it must be exactly "
                    f"`{{{{ {answer} }}}}` so predictions can be parsed and scored",
                    "target",
                )
            )
        ids = [values[v] for v in _ITEM_ID_VARIABLES if v in values and v != answer]
        for item in sorted({i for v in ids for i in ([v] if isinstance(v, str) else v)}):
            for m in re.finditer(re.escape(item), text):
                before = text[m.start() - 1] if m.start() else " "
                after = text[m.end()] if m.end() < len(text) else " "
                if not (before.isspace() and after.isspace()):
                    snippet = text[max(0, m.start() - 12) : m.end() + 12]
                    issues.append(
                        _Issue(
                            "spacing",
                            f"an item ID touches other text in the rendered input ({snippet!r}); "
                            "put whitespace on both sides (join lists with ' , ') so IDs tokenize as they do alone",
                            "input",
                            severity="warning",  # a quality rule: models saved with such prompts still load
                        )
                    )
                    return issues
    return issues


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
    def input_variables(self) -> frozenset[str]:
        """Variables the input uses: the API picks a template whose needs it can meet."""
        return self._input_variables

    def __post_init__(self) -> None:
        where = f"{self.source}: template {self.id!r}"
        if not isinstance(self.id, str) or not self.id.strip():
            raise TemplateError(f"{self.source}: a template has no `id`")
        if isinstance(self.requires, str) or not all(isinstance(r, str) for r in self.requires):
            raise TemplateError(f"{where}: `requires` must be a list of variable names, got {self.requires!r}")
        checked = _check_template(self.task, self.input, self.target, self.split, self.requires)
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


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that remembers the line of each mapping and of each value, for error messages."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict:
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    # A block scalar (| or >) starts on the line after its indicator.
    mapping["__lines__"] = {
        k.value: v.start_mark.line + 1 + (1 if getattr(v, "style", None) in ("|", ">") else 0)
        for k, v in node.value
        if isinstance(k, yaml.ScalarNode)
    }
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_template_file(path: str | os.PathLike) -> list[PromptTemplate]:
    """Parse one YAML file into templates; the first error raises a TemplateError naming file and line.

    Warnings (e.g. an item ID glued to punctuation) do not stop loading; `p5rec prompts validate` shows them.
    """
    templates, problems = read_template_file_problems(path)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise TemplateError(str(errors[0]))
    return templates


def read_template_file_problems(path: str | os.PathLike) -> tuple[list[PromptTemplate], list[Problem]]:
    """Parse one YAML file, collecting every problem instead of stopping: (valid templates, problems)."""
    path = Path(path)
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark else None
        return [], [Problem(str(path), line, None, "yaml", f"not valid YAML: {getattr(e, 'problem', None) or e}")]
    except UnicodeDecodeError as e:
        return [], [Problem(str(path), None, None, "yaml", f"not UTF-8 text ({e})")]
    if not isinstance(doc, dict) or not isinstance(doc.get("templates"), list):
        return [], [Problem(str(path), 1, None, "format", "expected a mapping with a `templates:` list")]
    problems: list[Problem] = []
    top_lines = doc.get("__lines__", {})
    unknown = set(doc) - FILE_KEYS - {"__line__", "__lines__"}
    if unknown:
        problems.append(
            Problem(
                str(path),
                top_lines.get(sorted(unknown)[0]),
                None,
                "format",
                f"unknown top-level key(s) {sorted(unknown)}; allowed: {sorted(FILE_KEYS)}",
            )
        )
    default_family = doc.get("family")
    if default_family is not None and default_family not in FAMILIES:
        problems.append(
            Problem(
                str(path),
                top_lines.get("family"),
                None,
                "format",
                f"unknown family {default_family!r}; choose one of {sorted(FAMILIES)}",
            )
        )
        return [], problems
    out = []
    first_line: dict[str, Any] = {}  # id -> line of its first entry, valid or not, to name both lines
    for k, entry in enumerate(doc["templates"]):
        duplicate = False
        if isinstance(entry, dict) and entry.get("id") is not None:
            tid, line = str(entry["id"]), entry.get("__line__")
            duplicate = tid in first_line
            if duplicate:
                problems.append(
                    Problem(
                        str(path),
                        line,
                        tid,
                        "duplicate",
                        f"duplicate template id (first at {path}:{first_line[tid]}); rename one of them",
                    )
                )
            else:
                first_line[tid] = line
        if not isinstance(entry, dict):
            problems.append(
                Problem(
                    str(path),
                    None,
                    None,
                    "format",
                    f"entry {k + 1} under `templates:` must be a mapping, got {entry!r}",
                )
            )
            continue
        template, found = _read_entry(path, entry, default_family)
        problems += found
        if template is not None and not duplicate:
            out.append(template)
    return out, problems


def _read_entry(path: Path, entry: dict, default_family: str | None) -> tuple[PromptTemplate | None, list[Problem]]:
    line = entry.pop("__line__", None)
    lines = entry.pop("__lines__", {})
    tid = entry.get("id")
    tid = str(tid) if tid is not None and str(tid).strip() else None

    def problem(kind: str, message: str, key: str | None = None, offset: int = 1, severity: str = "error") -> Problem:
        at = lines.get(key, line) + offset - 1 if key in lines else line
        return Problem(str(path), at, tid, kind, message, severity)

    if tid is None:
        return None, [problem("format", "a template has no `id`")]
    unknown = set(entry) - TEMPLATE_KEYS
    if unknown:
        return None, [
            problem("format", f"unknown key(s) {sorted(unknown)}; allowed: {sorted(TEMPLATE_KEYS)}", sorted(unknown)[0])
        ]
    family = entry.get("family", default_family)
    if family is not None and family not in FAMILIES:
        return None, [problem("format", f"unknown family {family!r}; choose one of {sorted(FAMILIES)}", "family")]
    task = entry.get("task")
    if task is None:
        tasks = FAMILIES.get(family, [])
        if len(tasks) != 1:
            return None, [problem("format", f"needs `task:` (family {family!r} has tasks {tasks})")]
        task = tasks[0]
    elif family is not None and task in TASKS and TASKS[task].family != family:
        return None, [
            problem("format", f"task {task!r} belongs to family {TASKS[task].family!r}, not {family!r}", "task")
        ]
    requires = entry.get("requires", [])
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        return None, [problem("format", f"`requires` must be a list of variable names, got {requires!r}", "requires")]
    fields = {k: entry.get(k, "") for k in ("input", "target")}
    for k, v in fields.items():
        if not isinstance(v, str):
            return None, [problem("format", f"`{k}` must be a string, got {v!r}", k)]
    split = entry.get("split", "seen")
    try:
        template = PromptTemplate(
            id=tid,
            task=task,
            input=fields["input"],
            target=fields["target"],
            split=split,
            description=str(entry.get("description", "")),
            source=f"{path}:{line}",
            requires=tuple(requires),
        )
    except TemplateError as e:
        # Checked again only on failure, for every issue with its line (construction keeps the first).
        issues = _check_template(task, fields["input"], fields["target"], split, requires).issues
        return None, [problem(*i) for i in issues] or [problem("format", str(e))]
    return template, [problem(*i) for i in template._warnings]


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


def yaml_files(src: Path) -> list[Path]:
    """The YAML files of a prompt source: the file itself, or a folder's *.yaml / *.yml in name order."""
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise FileNotFoundError(f"prompt folder {src} does not exist")
    return sorted(p for p in src.iterdir() if p.suffix in (".yaml", ".yml"))
