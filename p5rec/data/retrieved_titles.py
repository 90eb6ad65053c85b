"""The most frequent training review titles: the candidates a review summary may be chosen from.

Titles repeat ("Great strings", "Works great"): on Musical Instruments the 100 most frequent cover
a fair share of the test titles' words, and a choice among them by agreement and by the words they
share with the review beats the review's lead sentence where the written titles do not
(docs/benchmarks.md, "Text answers chosen among retrieved ones").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

__all__ = ["TITLES", "frequent_titles"]

TITLES = 100  # candidates per summary: 50 lost 1-2 ROUGE points on Musical Instruments


def frequent_titles(titles: Iterable[str], k: int = TITLES) -> list[tuple[str, int]]:
    """The `k` most frequent non-blank texts with their counts, most frequent first (ties: the first seen).

    >>> frequent_titles(["Great", "ok", "Great", " ", "fine", "ok", "Great"], k=2)
    [('Great', 3), ('ok', 2)]
    """
    counts = Counter(t for t in titles if t and t.strip())
    return counts.most_common(k)
