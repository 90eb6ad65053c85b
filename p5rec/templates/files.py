"""Template files: YAML with Jinja2 fields, read with the line of every entry for error messages.

A template file looks like::

    family: sequential            # optional default for the templates below
    templates:
      - id: sequential-1
        task: sequential          # optional when the family has a single task
        split: seen               # seen (trained on) or unseen (held out for zero-shot tests)
        description: Next item from the purchase history.
        input: "{{ user_id }} bought {{ history | join(' ') }} . What will they buy next?"
        target: "{{ item_id }}"

Every problem is reported with the file, the line and the template id, because users edit these
files by hand: `read_template_file` stops at the first error (`TemplateError`),
`read_template_file_problems` collects them all (for `p5rec prompts validate`).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from p5rec.templates.checks import Problem, TemplateError, check_template
from p5rec.templates.tasks import FAMILIES, TASKS
from p5rec.templates.template import PromptTemplate

TEMPLATE_KEYS = {"id", "family", "task", "split", "description", "input", "target", "requires"}
FILE_KEYS = {"family", "templates"}


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
        issues = check_template(task, fields["input"], fields["target"], split, requires).issues
        return None, [problem(*i) for i in issues] or [problem("format", str(e))]
    return template, [problem(*i) for i in template.warnings]


def default_prompt_dir() -> Path:
    """The templates shipped with p5rec (the repository's `prompts/`)."""
    return Path(str(resources.files("p5rec") / "prompts"))


def yaml_files(src: Path) -> list[Path]:
    """The YAML files of a prompt source: the file itself, or a folder's *.yaml / *.yml in name order."""
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise FileNotFoundError(f"prompt folder {src} does not exist")
    return sorted(p for p in src.iterdir() if p.suffix in (".yaml", ".yml"))
