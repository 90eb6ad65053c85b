"""Retrieved explanations: the most frequent training explanation of an item's feature.

One owner for the retrieval rule, used twice: the explanation baseline that `p5rec evaluate`
scores (`RetrievalExplainer.explain`), and the `similar_explanation` prompt variable, which shows
the model that same retrieved sentence so it can copy or adapt it (leaving out the asked row's own
explanation in training, as the test rows' explanations are unknown to the retrieval).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence

__all__ = ["RetrievalExplainer"]

_Top = tuple[tuple[str, int], ...]  # the most frequent texts of a key, with their counts, most frequent first
KEEP = 20  # texts kept per key: the retrieved one, and the candidates an explanation may be chosen from


class RetrievalExplainer:
    """Copy a training explanation instead of writing one.

    For a (user, item, feature) request it returns the most frequent training explanation of the
    same item for that feature; failing that, the most frequent training explanation of the feature
    (any item); failing that, the most frequent explanation overall. Ties go to the text seen first.

    >>> r = RetrievalExplainer().fit(["a", "a", "b"], ["tone", "tone", "tone"], ["warm tone", "warm tone", "bright"])
    >>> r.explain("a", "tone"), r.explain("c", "tone"), r.explain("c", "price")
    ('warm tone', 'warm tone', 'warm tone')
    >>> r.explain("b", "tone", leave_out="bright")  # b's only explanation left out: the feature's
    'warm tone'
    """

    def __init__(self) -> None:
        self._levels: tuple[dict[Hashable, _Top], ...] = ()

    def fit(self, items: Sequence[str], features: Sequence[str], explanations: Sequence[str]) -> RetrievalExplainer:
        """Learn from aligned training rows (rows without an explanation, or a blank one, are skipped)."""
        if not (len(items) == len(features) == len(explanations)):
            raise ValueError(
                f"`items` ({len(items)}), `features` ({len(features)}) and `explanations` ({len(explanations)}) "
                "must be aligned"
            )
        pair: dict[Hashable, Counter] = defaultdict(Counter)
        feature: dict[Hashable, Counter] = defaultdict(Counter)
        overall: dict[Hashable, Counter] = defaultdict(Counter)
        for item, feat, text in zip(items, features, explanations):
            if not text or not text.strip():
                continue
            pair[(item, feat)][text] += 1
            feature[feat][text] += 1
            overall[None][text] += 1
        if not overall:
            raise ValueError("no training row has an explanation: the retrieval baseline has nothing to copy")
        # most_common keeps first-seen order among equal counts (two entries are enough to leave one row
        # out; the others are the candidates of `candidates`).
        levels = (pair, feature, overall)
        self._levels = tuple({k: tuple(c.most_common(KEEP)) for k, c in level.items()} for level in levels)
        return self

    def to_dict(self) -> dict[str, list]:
        """The fitted table as JSON-ready lists (the `KEEP` most frequent texts per key, with counts):
        what a saved model keeps to fill `similar_explanation` and choose explanations in the API."""
        if not self._levels:
            raise ValueError("RetrievalExplainer is not fitted: call fit(items, features, explanations) first")
        pair, feature, overall = self._levels
        return {
            "pair": [[item, feat, [list(t) for t in top]] for (item, feat), top in pair.items()],
            "feature": [[feat, [list(t) for t in top]] for feat, top in feature.items()],
            "overall": [list(t) for t in overall.get(None, ())],
        }

    @classmethod
    def from_dict(cls, table: dict[str, list]) -> RetrievalExplainer:
        """Rebuild a fitted explainer from :meth:`to_dict`; a malformed table raises ValueError."""

        def top(entries: object) -> _Top:
            if not isinstance(entries, list) or not 1 <= len(entries) <= KEEP:
                raise ValueError(f"expected 1 to {KEEP} [text, count] pairs, got {entries!r:.80}")
            out = []
            for e in entries:
                if not (isinstance(e, list) and len(e) == 2 and isinstance(e[0], str) and type(e[1]) is int):
                    raise ValueError(f"expected [text, count], got {e!r:.80}")
                out.append((e[0], e[1]))
            return tuple(out)

        if not isinstance(table, dict) or set(table) != {"pair", "feature", "overall"}:
            raise ValueError(f"expected an object with 'pair', 'feature' and 'overall', got {table!r:.80}")
        try:
            pair = {(r[0], r[1]): top(r[2]) for r in table["pair"]}
            feature = {r[0]: top(r[1]) for r in table["feature"]}
        except (TypeError, IndexError, KeyError) as e:
            raise ValueError(f"a 'pair' or 'feature' row is malformed ({e})") from None
        out = cls()
        out._levels = (pair, feature, {None: top(table["overall"])})
        return out

    def candidates(self, item: str, feature: str, k: int = KEEP) -> list[tuple[str, int]]:
        """Up to `k` distinct training explanations an answer for (item, feature) may be chosen from,
        each with its training count at the level it comes from: the pair's own, most frequent
        first, then the feature's; the most frequent overall only when neither has one (the overall
        favourites, "Great gift", would outvote the feature's own texts in a choice by agreement).
        The first is :meth:`explain`'s.

        >>> r = RetrievalExplainer().fit(["a", "a", "b"], ["tone", "tone", "tone"], ["warm", "warm", "bright"])
        >>> r.candidates("a", "tone"), r.candidates("c", "tone", k=1), r.candidates("c", "price")
        ([('warm', 2), ('bright', 1)], [('warm', 2)], [('warm', 2), ('bright', 1)])
        """
        if not self._levels:
            raise ValueError("RetrievalExplainer is not fitted: call fit(items, features, explanations) first")
        pair, by_feature, overall = self._levels
        out: dict[str, int] = {}
        for text, n in (*pair.get((item, feature), ()), *by_feature.get(feature, ())) or overall.get(None, ()):
            if len(out) == k:
                break
            out.setdefault(text, n)
        return list(out.items())

    def explain(self, item: str, feature: str, leave_out: str | None = None) -> str:
        """The retrieved explanation; `leave_out`: one training row's own text that must not count
        (a training prompt showing the retrieval of its own row would show its answer). '' when
        nothing else is left."""
        if not self._levels:
            raise ValueError("RetrievalExplainer is not fitted: call fit(items, features, explanations) first")
        for level, key in zip(self._levels, ((item, feature), feature, None)):
            top = level.get(key)
            if not top:
                continue
            (text, n), *rest = top
            if leave_out is None or text != leave_out:
                return text
            other = rest[0] if rest else ("", 0)
            if other[1] >= n - 1 and other[1] > 0:  # on a tie, another row's text
                return other[0]
            if n - 1 > 0:
                return text
        return ""
