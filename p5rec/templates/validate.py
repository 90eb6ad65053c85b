"""Check prompt folders and report every problem at once, for `p5rec prompts validate`.

`TemplateSet.load` stops at the first problem, which is right for training but slow when editing
twenty templates: this module reads everything, keeps going past errors, and also checks the
collection as a whole (duplicate ids inside one folder, a family nobody can train on). Every
problem names the file, the line and the template id.

Per template (shared with loading): YAML and Jinja syntax, unknown variables, the answer (or a
variable revealing it) in the input, a target that does not render back to exactly the answer;
item IDs glued to other text (a warning: loading accepts it). Per collection: duplicate ids
within one source (both lines), a family without a seen template (error: it would never be
trained), a task without a seen template or a family without an unseen one (warnings).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from p5rec.templates.checks import Problem
from p5rec.templates.files import default_prompt_dir, read_template_file_problems, yaml_files
from p5rec.templates.tasks import FAMILIES
from p5rec.templates.template import PromptTemplate

__all__ = ["Problem", "validate_paths", "validate_templates"]


def validate_paths(paths: Sequence[str | os.PathLike], include_defaults: bool = True) -> list[Problem]:
    """Every problem in the given prompt folders (or files), layered over the defaults as `TemplateSet.load` does.

    Args:
        paths: prompt folders or YAML files, in precedence order (later overrides earlier by id).
        include_defaults: validate on top of (and including) the shipped templates, so a user folder
            that only adds or overrides a few templates is judged as the set training will use.

    Returns:
        Problems sorted by file and line; an empty list means the set loads and is complete.
    """
    sources = ([default_prompt_dir()] if include_defaults else []) + [Path(p) for p in paths]
    problems: list[Problem] = []
    merged: dict[str, PromptTemplate] = {}
    for src in sources:
        try:
            files = yaml_files(src)
        except FileNotFoundError:
            problems.append(Problem(str(src), None, None, "missing", "prompt folder or file does not exist"))
            continue
        if not files:
            problems.append(Problem(str(src), None, None, "missing", "no .yaml or .yml file in this folder", "warning"))
        layer: dict[str, PromptTemplate] = {}
        for file in files:
            templates, found = read_template_file_problems(file)
            problems += found
            for t in templates:
                if t.id in layer:
                    path, line = _split_source(t.source)
                    problems.append(
                        Problem(
                            path,
                            line,
                            t.id,
                            "duplicate",
                            f"duplicate template id (first at {layer[t.id].source}); rename one of them",
                        )
                    )
                else:
                    layer[t.id] = t
        merged.update(layer)
    problems += validate_templates(merged.values())
    return sorted(problems, key=_order)


def validate_templates(templates: Iterable[PromptTemplate]) -> list[Problem]:
    """Collection-level problems of templates that each loaded fine (e.g. a set built in Python).

    A family with templates but none seen is an error (training would skip it silently); a task
    with no seen template, or a family with no unseen one, is a warning.
    """
    templates = list(templates)
    problems: list[Problem] = []
    for family, tasks in FAMILIES.items():
        members = [t for t in templates if t.family == family]
        if not members:
            continue
        path, line = _split_source(members[0].source)
        if not any(t.split == "seen" for t in members):
            problems.append(
                Problem(
                    path,
                    line,
                    None,
                    "family",
                    f"family {family!r} has no seen template, so it is never trained; mark one `split: seen`",
                )
            )
            continue
        if not any(t.split == "unseen" for t in members):
            problems.append(
                Problem(
                    path,
                    line,
                    None,
                    "family",
                    f"family {family!r} has no unseen template: zero-shot evaluation has nothing held out",
                    "warning",
                )
            )
        for task in tasks:
            of_task = [t for t in members if t.task == task]
            if of_task and not any(t.split == "seen" for t in of_task):
                tpath, tline = _split_source(of_task[0].source)
                problems.append(
                    Problem(
                        tpath,
                        tline,
                        None,
                        "family",
                        f"task {task!r} has no seen template, so it is never trained",
                        "warning",
                    )
                )
    return problems


def _split_source(source: str) -> tuple[str, int | None]:
    """ "path/file.yaml:12" -> ("path/file.yaml", 12); "python" -> ("python", None)."""
    path, _, line = source.rpartition(":")
    return (path, int(line)) if path and line.isdigit() else (source, None)


def _order(p: Problem) -> tuple:
    return (p.path, p.line or 0, p.severity != "error", p.kind)
