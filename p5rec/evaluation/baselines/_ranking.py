"""What every ranking baseline shares: the fit/recommend interface, catalog indexing, top-k.

A baseline maps raw item IDs to column indices once in ``fit``, scores a batch of histories as
a dense ``(batch, n_items)`` array, and :meth:`CatalogRanker.recommend` turns scores into
ranked ID lists with the same exclusion and tie-breaking rules for every model, so that
differences between baselines come from the scores alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

_SCORE_BATCH = 256  # histories scored at once: bounds memory at 256 x n_items floats


@runtime_checkable
class Ranker(Protocol):
    """The interface the evaluation harness calls on any sequential/direct baseline."""

    def fit(self, train_sequences: dict[str, list[str]], items: list[str]) -> Ranker: ...

    def recommend(self, histories: list[list[str]], k: int, exclude_seen: bool = True) -> list[list[str]]: ...


def check_catalog(items: Sequence[str]) -> dict[str, int]:
    """Index the catalog, rejecting an empty one or duplicate IDs (which would make ranks ambiguous)."""
    if isinstance(items, str) or len(items) == 0:
        raise ValueError(f"`items` ({items!r}) must be a non-empty list of item IDs (the full catalog)")
    index: dict[str, int] = {}
    for i, item in enumerate(items):
        if item in index:
            raise ValueError(f"`items` lists {item!r} twice (positions {index[item]} and {i}); IDs must be unique")
        index[item] = i
    return index


def encode_sequences(train_sequences: dict[str, list[str]], index: dict[str, int]) -> dict[str, np.ndarray]:
    """Map each user's items to catalog indices; an item outside the catalog is an error."""
    if not isinstance(train_sequences, dict):
        raise TypeError(
            f"`train_sequences` must be a dict user_id -> [item_id, ...], got {type(train_sequences).__name__}"
        )
    out = {}
    for user, seq in train_sequences.items():
        try:
            out[user] = np.fromiter((index[i] for i in seq), dtype=np.int64, count=len(seq))
        except KeyError as e:
            raise ValueError(
                f"`train_sequences`[{user!r}] contains item {e.args[0]!r}, which is not in `items`: "
                "pass the full catalog as `items`"
            ) from None
    return out


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"`k` ({k!r}) must be a positive integer")
    return int(k)


def top_k(scores: np.ndarray, k: int, tie_rank: np.ndarray) -> list[np.ndarray]:
    """Column indices of the `k` best scores per row, best first.

    Ties are broken by `tie_rank` (lower first), so results never depend on sort stability.
    Entries at ``-inf`` (excluded items) are never returned: a row with fewer than `k` finite
    scores yields a shorter list.
    """
    n = scores.shape[1]
    out = []
    for row in scores:
        kk = min(k, int(np.isfinite(row).sum()))
        if kk == 0:
            out.append(np.empty(0, dtype=np.int64))
            continue
        if kk < n:
            # Every item scoring at least the kk-th best value is a candidate (ties included).
            threshold = np.partition(row, n - kk)[n - kk]
            candidates = np.flatnonzero(row >= threshold)
        else:
            candidates = np.flatnonzero(np.isfinite(row))
        order = np.lexsort((tie_rank[candidates], -row[candidates]))[:kk]
        out.append(candidates[order])
    return out


class CatalogRanker(ABC):
    """Base for baselines that score every catalog item for a history.

    Subclasses call :meth:`_fit_catalog` in ``fit`` and implement :meth:`_score`.
    """

    _items: list[str] | None = None
    _index: dict[str, int]
    _popularity: np.ndarray  # training interaction count per catalog item
    _tie_rank: np.ndarray  # position of each item in the tie-break order

    def _fit_catalog(self, train_sequences: dict[str, list[str]], items: Sequence[str]) -> dict[str, np.ndarray]:
        index = check_catalog(items)
        encoded = encode_sequences(train_sequences, index)
        popularity = np.zeros(len(index), dtype=np.int64)
        for seq in encoded.values():
            np.add.at(popularity, seq, 1)
        self._items, self._index, self._popularity = list(items), index, popularity
        # Default tie-break: more popular first, then catalog order.
        order = np.lexsort((np.arange(len(index)), -popularity))
        self._tie_rank = np.empty(len(index), dtype=np.int64)
        self._tie_rank[order] = np.arange(len(index))
        return encoded

    @property
    def items(self) -> list[str]:
        """The catalog passed to ``fit``, in column order."""
        return list(self._require_fitted())

    def _require_fitted(self) -> list[str]:
        if self._items is None:
            raise ValueError(f"{type(self).__name__} is not fitted: call fit(train_sequences, items) first")
        return self._items

    def _encode_histories(self, histories: Sequence[Sequence[str]]) -> list[np.ndarray]:
        if isinstance(histories, str) or not isinstance(histories, Sequence):
            raise TypeError(f"`histories` must be a list of item-ID lists, got {type(histories).__name__}")
        out = []
        for u, history in enumerate(histories):
            if isinstance(history, str):
                raise TypeError(f"`histories`[{u}] is a string ({history!r}); pass a list of item IDs")
            try:
                out.append(np.fromiter((self._index[i] for i in history), dtype=np.int64, count=len(history)))
            except KeyError as e:
                raise ValueError(
                    f"`histories`[{u}] contains item {e.args[0]!r}, which is not in the catalog passed to fit()"
                ) from None
        return out

    @abstractmethod
    def _score(self, histories: list[np.ndarray]) -> np.ndarray:
        """Scores ``(len(histories), n_items)``, higher is better; must be a fresh array."""

    def _score_users(self, histories: list[np.ndarray], users: Sequence[str] | None) -> np.ndarray:
        """Scores when the users are known too; only user-factor models (BPR-MF) read them."""
        return self._score(histories)

    def recommend(
        self, histories: list[list[str]], k: int, exclude_seen: bool = True, users: Sequence[str] | None = None
    ) -> list[list[str]]:
        """Top-`k` item IDs for each history, best first.

        Args:
            histories: one time-ordered list of item IDs per user (items must be in the catalog).
            k: how many items to return per user.
            exclude_seen: drop items in the history from the ranking (default True), as in the
                full-ranking protocol; a user may then get fewer than `k` items only if the
                catalog runs out.
            users: the user ID of each history, for models with user factors (others ignore it).
        """
        items = self._require_fitted()
        k = check_k(k)
        encoded = self._encode_histories(histories)
        ranked: list[list[str]] = []
        for _, batch, scores in self._scored_batches(encoded, users):
            if exclude_seen:
                for row, seen in enumerate(batch):
                    scores[row, seen] = -np.inf
            ranked.extend([items[j] for j in top] for top in top_k(scores, k, self._tie_rank))
        return ranked

    def score_pairs(
        self, histories: list[list[str]], items: Sequence[str], users: Sequence[str] | None = None
    ) -> np.ndarray:
        """The score of one given item per history (higher: more likely next), e.g. for yes/no AUC.

        Args:
            histories: one time-ordered list of item IDs per user.
            items: one catalog item per history, aligned with `histories`.
            users: the user ID of each history, for models with user factors (others ignore it).
        """
        self._require_fitted()
        if isinstance(items, str) or len(items) != len(histories):
            raise ValueError(f"`items` must hold one item per history ({len(histories)}), got {items!r:.80}")
        unknown = [i for i in items if i not in self._index]
        if unknown:
            raise ValueError(f"`items` contains {unknown[0]!r}, which is not in the catalog passed to fit()")
        encoded = self._encode_histories(histories)
        columns = np.array([self._index[i] for i in items], dtype=np.int64)
        out = np.empty(len(items), dtype=np.float64)
        for start, _, scores in self._scored_batches(encoded, users):
            out[start : start + len(scores)] = scores[np.arange(len(scores)), columns[start : start + len(scores)]]
        return out

    def _scored_batches(
        self, encoded: list[np.ndarray], users: Sequence[str] | None
    ) -> Iterator[tuple[int, list[np.ndarray], np.ndarray]]:
        """(offset, histories, float64 catalog scores) per batch of `_SCORE_BATCH` histories."""
        _check_users(users, len(encoded))
        for start in range(0, len(encoded), _SCORE_BATCH):
            batch = encoded[start : start + _SCORE_BATCH]
            who = None if users is None else list(users[start : start + _SCORE_BATCH])
            yield start, batch, np.asarray(self._score_users(batch, who), dtype=np.float64)


def _check_users(users: Sequence[str] | None, n: int) -> None:
    if users is not None and (isinstance(users, str) or len(users) != n):
        raise ValueError(f"`users` must hold one user ID per history ({n}), got {users!r:.80}")
