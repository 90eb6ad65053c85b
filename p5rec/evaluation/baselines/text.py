"""Text baselines: what a model that only copies (from its input, or from the training data) would score."""

from __future__ import annotations

import re

from p5rec.data.retrieved_explanations import RetrievalExplainer

__all__ = ["RetrievalExplainer", "lead_sentence"]

# A sentence ends at ., ! or ? (possibly repeated, possibly followed by a closing quote or
# bracket) when whitespace or the end of the text follows.
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*(?=\s|$)")


def lead_sentence(review: str, max_words: int = 10) -> str:
    """The first sentence of `review`, cut to `max_words` whitespace-separated words.

    The LEAD baseline for review summarization: review titles are short, and the opening
    sentence often states the verdict. Whitespace is collapsed; case and punctuation are kept.

    Args:
        review: the review text.
        max_words: the longest summary to return (default 10).

    >>> lead_sentence("Great strings! They stay in tune for weeks.")
    'Great strings!'
    >>> lead_sentence("works fine but the cable is way too short for my pedalboard", max_words=4)
    'works fine but the'
    """
    if not isinstance(review, str):
        raise TypeError(f"`review` must be a str, got {type(review).__name__}")
    if isinstance(max_words, bool) or not isinstance(max_words, int) or max_words < 1:
        raise ValueError(f"`max_words` ({max_words!r}) must be a positive integer")
    text = " ".join(review.split())
    end = _SENTENCE_END.search(text)
    first = text[: end.end()] if end else text
    return " ".join(first.split()[:max_words])
