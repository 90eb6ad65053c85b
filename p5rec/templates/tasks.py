"""The tasks a template can belong to: their families, variables, and answers.

A template is written for one *task*. The task fixes which variables the renderer provides,
which of them is the answer (the target must render to exactly that value, so predictions can be
parsed back), and how an answer string is parsed. Families group tasks as in P5.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSpec:
    """What the renderer provides for a task and what its target must be.

    Args:
        name: task name, e.g. "sequential".
        family: P5 family: rating, sequential, direct, explanation or review.
        variables: names the input may use, with a one-line description each.
        answer: the variable the target must render to exactly (never allowed in the input).
        kind: how the answer is parsed back: "rating", "item", "yes_no" or "text".
    """

    name: str
    family: str
    variables: dict[str, str]
    answer: str
    kind: str


_USER = {"user_id": "the user's ID string, e.g. user_23"}
_ITEM = {"item_id": "the item's ID string, e.g. item_7391", "item_title": "the item's title ('' if unknown)"}
_HISTORY = {
    "history": "list of item ID strings the user interacted with, oldest first (truncated to the most recent)",
    "history_titles": "list of titles aligned with `history`",
}

TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in [
        TaskSpec(
            "rating", "rating", {**_USER, **_ITEM, "rating": "the star rating as text, e.g. 4.0"}, "rating", "rating"
        ),
        TaskSpec(
            "sequential",
            "sequential",
            {
                **_USER,
                **_HISTORY,
                "item_id": "the next item's ID string (the answer)",
                "item_title": "the next item's title",
            },
            "item_id",
            "item",
        ),
        TaskSpec(
            "direct_yesno",
            "direct",
            {**_USER, **_ITEM, **_HISTORY, "answer": "'yes' if the user interacted with the item, else 'no'"},
            "answer",
            "yes_no",
        ),
        TaskSpec(
            "direct_choice",
            "direct",
            {
                **_USER,
                **_HISTORY,
                "candidates": "list of candidate item ID strings (shuffled)",
                "item_id": "the chosen item's ID string (the answer)",
            },
            "item_id",
            "item",
        ),
        TaskSpec(
            "explanation",
            "explanation",
            {
                **_USER,
                **_ITEM,
                "feature": "the item feature the explanation is about, e.g. sound",
                "rating": "the user's star rating as text",
                "explanation": "the explanation sentence (the answer)",
            },
            "explanation",
            "text",
        ),
        TaskSpec(
            "review_summary",
            "review",
            {**_USER, **_ITEM, "review_text": "the review body", "summary": "the review's title (the answer)"},
            "summary",
            "text",
        ),
        TaskSpec(
            "review_rating",
            "review",
            {**_USER, **_ITEM, "review_text": "the review body", "rating": "the star rating as text (the answer)"},
            "rating",
            "rating",
        ),
    ]
}

FAMILIES: dict[str, list[str]] = {}
for _spec in TASKS.values():
    FAMILIES.setdefault(_spec.family, []).append(_spec.name)
del _spec

RATING_VALUES = ("1.0", "2.0", "3.0", "4.0", "5.0")


def format_rating(value: float) -> str:
    """Ratings are written with one decimal ("4.0"), as in P5."""
    return f"{float(value):.1f}"


def parse_rating(text: str) -> float | None:
    """The first number in `text`, or None when there is none (an invalid output, counted by evaluation)."""
    for tok in text.replace(",", " ").split():
        try:
            return float(tok)
        except ValueError:
            continue
    return None


def parse_yes_no(text: str) -> bool | None:
    t = text.strip().lower()
    if t.startswith("yes"):
        return True
    if t.startswith("no"):
        return False
    return None
