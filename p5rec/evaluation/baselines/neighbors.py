"""Non-learned ranking baselines: training popularity and item-item cosine neighbours."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from p5rec.evaluation.baselines._ranking import CatalogRanker


class MostPop(CatalogRanker):
    """Rank items by how often they occur in the training sequences.

    Ties go to catalog order. Every user gets the same list, minus their own history when
    ``exclude_seen`` is set in :meth:`recommend`.

    >>> MostPop().fit({"u1": ["a", "b"], "u2": ["b"]}, ["a", "b", "c"]).recommend([["b"], []], k=2)
    [['a', 'c'], ['b', 'a']]
    """

    def fit(self, train_sequences: dict[str, list[str]], items: Sequence[str]) -> MostPop:
        """Count item occurrences.

        Args:
            train_sequences: user ID -> time-ordered train items (the leave-one-out train part).
            items: the full catalog; items never seen in training rank last.
        """
        self._fit_catalog(train_sequences, items)
        return self

    @property
    def popularity(self) -> dict[str, int]:
        """Training count per item."""
        return dict(zip(self._require_fitted(), self._popularity.tolist(), strict=True))

    def _score(self, histories: list[np.ndarray]) -> np.ndarray:
        return np.tile(self._popularity.astype(np.float64), (len(histories), 1))


class ItemKNN(CatalogRanker):
    """Item-based collaborative filtering with cosine similarity (Sarwar et al., 2001).

    With ``x_i`` the binary column of item ``i`` in the train user-item matrix:

    .. math::
        s(i, j) = \\frac{x_i^\\top x_j}{\\lVert x_i \\rVert \\lVert x_j \\rVert + \\text{shrink}},
        \\qquad \\mathrm{score}(h, i) = \\sum_{j \\in h} s(i, j) \\, \\mathbb{1}[j \\in N_k(i)]

    where ``N_k(i)`` are the `neighbors` items most similar to candidate ``i`` (as in RecBole's
    ItemKNN). A history item counts once however often it repeats. Items with equal scores
    (for instance every item, for a history with no co-occurrences) are ordered by popularity.

    Args:
        neighbors: how many most-similar items each candidate keeps (default 100).
        shrink: added to the cosine denominator to damp similarities from few co-occurrences
            (default 0.0).
    """

    def __init__(self, neighbors: int = 100, shrink: float = 0.0) -> None:
        if isinstance(neighbors, bool) or not isinstance(neighbors, int) or neighbors < 1:
            raise ValueError(f"`neighbors` ({neighbors!r}) must be a positive integer, e.g. 100")
        if not shrink >= 0:
            raise ValueError(f"`shrink` ({shrink!r}) must be >= 0")
        self.neighbors = neighbors
        self.shrink = float(shrink)

    def fit(self, train_sequences: dict[str, list[str]], items: Sequence[str]) -> ItemKNN:
        """Build the pruned item-item similarity matrix.

        Args:
            train_sequences: user ID -> time-ordered train items.
            items: the full catalog.
        """
        encoded = self._fit_catalog(train_sequences, items)
        n_items = len(self._index)
        x = _binary_matrix(list(encoded.values()), n_items)  # (users, items)
        norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())
        sim = (x.T @ x).tocoo()  # co-occurrence counts (items, items)
        off_diagonal = sim.row != sim.col
        rows, cols = sim.row[off_diagonal], sim.col[off_diagonal]
        values = sim.data[off_diagonal] / (norms[rows] * norms[cols] + self.shrink)
        # Row i of the pruned matrix holds candidate i's top neighbours; score = H @ pruned.T.
        pruned = _keep_top_per_row(sp.csr_matrix((values, (rows, cols)), shape=(n_items, n_items)), self.neighbors)
        self._weights = pruned.T.tocsr()
        return self

    def _score(self, histories: list[np.ndarray]) -> np.ndarray:
        h = _binary_matrix(histories, len(self._index))
        return (h @ self._weights).toarray()


def _binary_matrix(rows: list[np.ndarray], n_cols: int) -> sp.csr_matrix:
    """A 0/1 CSR matrix with row ``r`` set at the (deduplicated) columns ``rows[r]``."""
    indptr = [0]
    indices = []
    for cols in rows:
        unique = np.unique(cols)
        indices.append(unique)
        indptr.append(indptr[-1] + len(unique))
    flat = np.concatenate(indices) if indices else np.empty(0, dtype=np.int64)
    return sp.csr_matrix((np.ones(len(flat)), flat, np.asarray(indptr)), shape=(len(rows), n_cols))


def _keep_top_per_row(matrix: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """Zero all but the `n` largest entries of each row (ties broken by column index)."""
    matrix.sort_indices()
    data, indices, indptr = matrix.data, matrix.indices, matrix.indptr
    keep = np.zeros(len(data), dtype=bool)
    for r in range(matrix.shape[0]):
        start, end = indptr[r], indptr[r + 1]
        if end - start <= n:
            keep[start:end] = True
            continue
        order = np.lexsort((indices[start:end], -data[start:end]))[:n]
        keep[start + order] = True
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(indptr))
    return sp.csr_matrix((data[keep], (rows[keep], indices[keep])), shape=matrix.shape)
