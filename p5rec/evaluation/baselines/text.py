"""Text baselines: what a model that only copies (from its input, or from the training data) would score."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence

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


class RetrievalExplainer:
    """The explanation baseline: copy a training explanation instead of writing one.

    For a (user, item, feature) request it returns the most frequent training explanation of the
    same item for that feature; failing that, the most frequent training explanation of the feature
    (any item); failing that, the most frequent explanation overall. A generated explanation has
    to beat this to be worth generating.

    >>> r = RetrievalExplainer().fit(["a", "a", "b"], ["tone", "tone", "tone"], ["warm tone", "warm tone", "bright"])
    >>> r.explain("a", "tone"), r.explain("c", "tone"), r.explain("c", "price")
    ('warm tone', 'warm tone', 'warm tone')
    """

    def __init__(self) -> None:
        self._by_item_feature: dict[tuple[str, str], str] = {}
        self._by_feature: dict[str, str] = {}
        self._overall: str | None = None

    def fit(self, items: Sequence[str], features: Sequence[str], explanations: Sequence[str]) -> RetrievalExplainer:
        """Learn from aligned training rows (rows without an explanation are skipped)."""
        if not (len(items) == len(features) == len(explanations)):
            raise ValueError(
                f"`items` ({len(items)}), `features` ({len(features)}) and `explanations` ({len(explanations)}) "
                "must be aligned"
            )
        pair: dict[tuple[str, str], Counter] = defaultdict(Counter)
        feature: dict[str, Counter] = defaultdict(Counter)
        overall: Counter = Counter()
        for item, feat, text in zip(items, features, explanations):
            if not text:
                continue
            pair[(item, feat)][text] += 1
            feature[feat][text] += 1
            overall[text] += 1
        if not overall:
            raise ValueError("no training row has an explanation: the retrieval baseline has nothing to copy")
        self._by_item_feature = {k: c.most_common(1)[0][0] for k, c in pair.items()}
        self._by_feature = {k: c.most_common(1)[0][0] for k, c in feature.items()}
        self._overall = overall.most_common(1)[0][0]
        return self

    def explain(self, item: str, feature: str) -> str:
        if self._overall is None:
            raise ValueError("RetrievalExplainer is not fitted: call fit(items, features, explanations) first")
        return self._by_item_feature.get((item, feature)) or self._by_feature.get(feature) or self._overall
