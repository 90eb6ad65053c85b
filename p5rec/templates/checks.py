"""What makes a template valid: the checks run on every template, with the problem types they report.

`check_template` parses a template's Jinja fields, checks their variables against the task
(`p5rec.templates.tasks`), and renders them with sample values: the target must give back the
answer exactly, and an item ID must stand between whitespace so it tokenizes as it does alone.
Loading (`p5rec.templates.template`, `.files`) stops at the first error; `p5rec prompts validate`
reports them all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import jinja2
import jinja2.meta

from p5rec.templates.tasks import TASKS, sample_variables

SPLIT_VALUES = ("seen", "unseen")
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


class Issue(NamedTuple):
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


class Checked(NamedTuple):
    """The outcome of checking a template: its issues, and when there are none, what rendering needs."""

    issues: list[Issue]
    compiled: tuple = ()
    input_variables: frozenset = frozenset()


def check_template(task: str, input: str, target: str, split: str, requires: Iterable[str]) -> Checked:
    """Everything wrong with one template's fields, in a stable order (the first is what loading reports)."""
    if task not in TASKS:
        return Checked([Issue("format", f"unknown task {task!r}; choose one of {sorted(TASKS)}", "task")])
    issues: list[Issue] = []
    if split not in SPLIT_VALUES:
        issues.append(Issue("format", f"`split` must be 'seen' or 'unseen', got {split!r}", "split"))
    spec = TASKS[task]
    bad_requires = sorted(set(requires) - set(spec.variables))
    if bad_requires:
        issues.append(
            Issue(
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
            issues.append(Issue("format", f"`{name}` must be a non-empty string", name))
            continue
        try:
            ast = env.parse(src)
        except jinja2.TemplateSyntaxError as e:
            issues.append(Issue("syntax", f"Jinja syntax error in `{name}`: {e.message}", name, e.lineno or 1))
            continue
        asts[name] = ast
        used[name] = set(jinja2.meta.find_undeclared_variables(ast))
        for var in sorted(used[name] - set(spec.variables)):
            issues.append(
                Issue(
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
                Issue("answer", f"`input` uses {what} `{var}`, which leaks the target", "input", _line_of(input, var))
            )
    if "target" in used and spec.answer not in used["target"]:
        issues.append(
            Issue(
                "answer",
                f'`target` does not use the answer variable `{spec.answer}` (write "{{{{ {spec.answer} }}}}")',
                "target",
            )
        )
    if issues or len(used) < 2:
        return Checked(issues)
    # Compiling from the parsed AST: parsing is most of the cost of loading a collection.
    compiled = (env.from_string(asts["input"]), env.from_string(asts["target"]))
    return Checked(render_issues(spec.answer, *compiled, task), compiled, frozenset(used["input"]))


def render_issues(answer: str, input: jinja2.Template, target: jinja2.Template, task: str) -> list[Issue]:
    """Render with sample values: the target must give back the answer exactly, IDs must stand alone."""
    issues: list[Issue] = []
    for variant in (0, 1):
        values = sample_variables(task, variant)
        try:
            text = input.render(values)
        except Exception as e:  # any error a user expression can raise
            return [Issue("syntax", f"`input` fails to render with sample values: {e}", "input")]
        try:
            out = target.render(values).strip()
        except Exception as e:  # any error a user expression can raise
            return [Issue("syntax", f"`target` fails to render with sample values: {e}", "target")]
        if out != values[answer] and not issues:
            issues.append(
                Issue(
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
                        Issue(
                            "spacing",
                            f"an item ID touches other text in the rendered input ({snippet!r}); "
                            "put whitespace on both sides (join ID lists with ' ') so IDs tokenize as they do alone",
                            "input",
                            severity="warning",  # a quality rule: models saved with such prompts still load
                        )
                    )
                    return issues
    return issues
