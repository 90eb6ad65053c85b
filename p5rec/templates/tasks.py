"""The tasks a template can belong to: their families, variables, and answers.

A template is written for one *task*. The task fixes which variables the renderer provides,
which of them is the answer (the target must render to exactly that value, so predictions can be
parsed back), and how an answer string is parsed. Families group tasks as in P5.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TaskSpec:
    """What the renderer provides for a task and what its target must be.

    Args:
        name: task name, e.g. "sequential".
        family: P5 family: rating, sequential, direct, explanation or review.
        variables: names the input may use, with a one-line description each.
        answer: the variable the target must render to exactly (never allowed in the input).
        kind: how the answer is parsed back: "rating", "item", "yes_no" or "text".
        hidden: further variables the input must not use because they give the answer away
            (the next item's title in sequential recommendation).
    """

    name: str
    family: str
    variables: dict[str, str]
    answer: str
    kind: str
    hidden: tuple[str, ...] = ()


_USER = {"user_id": "the user's ID string, e.g. user_23"}
_ITEM = {"item_id": "the item's ID string, e.g. item_7391", "item_title": "the item's title ('' if unknown)"}
# A user's bias (one gives 5 stars to everything, another rarely) is what a biased MF learns and a
# text user ID cannot carry: rating templates may show the user's other known ratings and the user's
# and the item's average rating instead (no shipped template does: docs/benchmarks.md, "Ratings").
_RATINGS = {
    "user_ratings": "list of the user's other known ratings, oldest first, each 'ITEM_ID STARS' "
    "(e.g. 'item_7 5.0'; in evaluation the training reviews only, never the rated item itself)",
    "user_avg_rating": "the user's average star rating over their known ratings, damped toward the global mean "
    "(e.g. 4.3; never counting the asked rating)",
    "item_avg_rating": "the item's average star rating over its known ratings, damped toward the global mean "
    "(e.g. 3.9; never counting the asked rating)",
}
# The two averages: computed only for templates that show them.
AVERAGE_VARIABLES = frozenset({"user_avg_rating", "item_avg_rating"})
_HISTORY = {
    "history": "list of item ID strings the user interacted with, oldest first (truncated to the most recent)",
    "history_titles": "list of titles aligned with `history`",
}

TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in [
        TaskSpec(
            "rating",
            "rating",
            {**_USER, **_ITEM, **_RATINGS, "rating": "the star rating as text, e.g. 4.0"},
            "rating",
            "rating",
        ),
        TaskSpec(
            "sequential",
            "sequential",
            {
                **_USER,
                **_HISTORY,
                "item_id": "the next item's ID string (the answer)",
                "item_title": "the next item's title (never in the input: it names the answer)",
            },
            "item_id",
            "item",
            hidden=("item_title",),
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
                "similar_explanation": "the most frequent training explanation of the same item and feature, "
                "else of the feature (what the retrieval baseline answers; never the asked row's own; '' if none)",
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
            {
                **_USER,
                **_ITEM,
                **_RATINGS,
                "review_text": "the review body",
                "rating": "the star rating as text (the answer)",
            },
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

# Variables filled from item metadata. Many datasets have no titles (Amazon 2014 5-core reviews
# alone): templates using these are skipped for them rather than trained on empty quotes.
TITLE_VARIABLES = frozenset({"item_title", "history_titles"})

# Values for `sample_variables`: item IDs of equal length, so none is a substring of another.
_SAMPLES = (
    {
        "user_id": "user_23",
        "item_id": "item_104",
        "item_title": "Acme Studio Headphones",
        "history": ["item_101", "item_102", "item_103"],
        "history_titles": ["Nylon Guitar Strings", "Clip-on Tuner", "Padded Gig Bag"],
        "candidates": ["item_201", "item_104", "item_202", "item_203"],
        "rating": "4.0",
        "user_ratings": ["item_101 5.0", "item_103 4.0"],
        "user_avg_rating": "4.4",
        "item_avg_rating": "4.1",
        "answer": "yes",
        "feature": "sound",
        "explanation": "The sound is clear and warm.",
        "similar_explanation": "The sound is great.",
        "review_text": "Arrived fast. The sound is clear and warm, and the cable is long enough.",
        "summary": "Warm, clear sound",
    },
    {
        "user_id": "user_7",
        "item_id": "item_305",
        "item_title": "Basic Drum Sticks",
        "history": ["item_301", "item_302"],
        "history_titles": ["Practice Pad", "Stick Bag"],
        "candidates": ["item_305", "item_401", "item_402"],
        "rating": "2.0",
        "user_ratings": ["item_302 1.0"],
        "user_avg_rating": "2.9",
        "item_avg_rating": "3.6",
        "answer": "no",
        "feature": "grip",
        "explanation": "The grip wears off after a week.",
        "similar_explanation": "A solid grip.",
        "review_text": "The grip wears off after a week. Not worth it.",
        "summary": "Grip wears off",
    },
)


def sample_variables(task: str, variant: int = 0) -> dict[str, Any]:
    """Plausible values for every variable of `task`, to check that a template renders and parses back.

    Two variants (0 and 1) differ in every value, answer included, so a target that ignores its
    answer variable is caught. Used by template validation; never used for training.

    Args:
        task: a key of `TASKS`.
        variant: 0 or 1.
    """
    if task not in TASKS:
        raise KeyError(f"unknown task {task!r}; choose one of {sorted(TASKS)}")
    if variant not in (0, 1):
        raise ValueError(f"`variant` must be 0 or 1, got {variant!r}")
    sample = _SAMPLES[variant]
    return {
        name: (list(v) if isinstance(v, list) else v) for name, v in sample.items() if name in TASKS[task].variables
    }


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
    """True when the first word is "yes", False for "no", None otherwise (an invalid output).

    The whole first word counts, so "not sure" or "nothing" are invalid rather than a "no".
    """
    words = text.strip().lower().split()
    first = words[0].strip(".,;:!?") if words else ""
    return {"yes": True, "no": False}.get(first)
