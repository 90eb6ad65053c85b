"""Training review titles: the candidates a review summary may be chosen from.

Titles repeat ("Great strings", "Works great"): on Musical Instruments the 100 most frequent cover
a fair share of the test titles' words, and a choice among them by agreement and by the words they
share with the review beats the review's lead sentence where the written titles do not
(docs/benchmarks.md, "Text answers chosen among retrieved ones"). A review's own item's titles,
put first, make the answer about that item: 13-30% distinct answers instead of 4-17%, and higher
ROUGE on Musical Instruments ("The item's own titles as candidates").
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["OWN_TITLES", "TITLES", "RetrievedTitles", "frequent_titles"]

TITLES = 100  # the most frequent titles, every summary's candidates: 50 lost 1-2 ROUGE points on Musical Instruments
OWN_TITLES = 20  # an item's own most frequent titles, put before them

_Titles = list[tuple[str, int]]  # (title, training count), most frequent first


def frequent_titles(titles: Iterable[str], k: int = TITLES) -> _Titles:
    """The `k` most frequent non-blank texts with their counts, most frequent first (ties: the first seen).

    >>> frequent_titles(["Great", "ok", "Great", " ", "fine", "ok", "Great"], k=2)
    [('Great', 3), ('ok', 2)]
    """
    counts = Counter(t for t in titles if t and t.strip())
    return counts.most_common(k)


class RetrievedTitles:
    """The titles a summary of a review may be chosen from: the training titles of the review's
    item (up to `OWN_TITLES`, most frequent first), then the `TITLES` most frequent training
    titles not among them; without an item (or for an item with none), the most frequent alone.

    >>> t = RetrievedTitles.fit(["a", "b", "b", "c"], ["Great", "Nice tone", "Great", "Great"])
    >>> t.candidates("a"), t.candidates("z")
    ([('Great', 1), ('Nice tone', 1)], [('Great', 3), ('Nice tone', 1)])
    """

    def __init__(
        self, frequent: Sequence[tuple[str, int]], items: Mapping[str, Sequence[tuple[str, int]]] | None = None
    ) -> None:
        self.frequent = _titles(frequent, "frequent")
        self.items: dict[str, _Titles] = {}
        for item, titles in (items or {}).items():
            if not isinstance(item, str):
                raise ValueError(f"items: an item ID must be a string, got {item!r:.80}")
            self.items[item] = _titles(titles, f"items[{item!r}]")

    @classmethod
    def fit(cls, items: Sequence[str], titles: Sequence[str]) -> RetrievedTitles:
        """From aligned training rows (blank titles skipped)."""
        if len(items) != len(titles):
            raise ValueError(f"`items` ({len(items)}) and `titles` ({len(titles)}) must be aligned")
        own: dict[str, Counter] = defaultdict(Counter)
        for item, title in zip(items, titles):
            if title and title.strip():
                own[item][title] += 1
        return cls(frequent_titles(titles), {item: c.most_common(OWN_TITLES) for item, c in own.items()})

    def __bool__(self) -> bool:
        return bool(self.frequent)

    def candidates(self, item: str | None = None) -> _Titles:
        """The item's own titles with their counts for it, then the most frequent ones not among
        them with their overall counts (the most frequent alone without an item)."""
        own = self.items.get(item, []) if item is not None else []
        mine = {t for t, _ in own}
        return own + [c for c in self.frequent if c[0] not in mine]

    def to_dict(self) -> dict[str, list]:
        """JSON-ready: what a saved model keeps as `review_titles.json`."""
        return {
            "frequent": [list(t) for t in self.frequent],
            "items": [[item, [list(t) for t in titles]] for item, titles in self.items.items()],
        }

    @classmethod
    def from_dict(cls, table: object) -> RetrievedTitles:
        """Rebuild from :meth:`to_dict`, or from a list of titles, bare or as [title, count] pairs (the
        most frequent only, as models saved before the items' own titles hold; a bare title counts
        once); a malformed table raises ValueError."""
        if isinstance(table, list):
            return cls([(t, 1) if isinstance(t, str) else t for t in table])
        if not isinstance(table, dict) or set(table) != {"frequent", "items"}:
            raise ValueError(f"expected an object with 'frequent' and 'items', got {table!r:.80}")
        rows = table["items"]
        if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == 2 for r in rows):
            raise ValueError(f"'items' must be a list of [item, titles] rows, got {rows!r:.80}")
        return cls(table["frequent"], dict(rows))


def _titles(titles: object, where: str) -> _Titles:
    """`titles` as (title, count >= 1) tuples (JSON gives lists), or ValueError naming `where`."""
    if not isinstance(titles, (list, tuple)):
        raise ValueError(f"{where}: expected a list of (title, count) pairs, got {titles!r:.80}")
    out = []
    for t in titles:
        if not (
            isinstance(t, (list, tuple))
            and len(t) == 2
            and isinstance(t[0], str)
            and t[0].strip()
            and type(t[1]) is int
            and t[1] >= 1
        ):
            raise ValueError(f"{where}: expected (title, count >= 1), got {t!r:.80}")
        out.append((t[0], t[1]))
    return out
