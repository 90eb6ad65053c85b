"""Item vectors from the words of their training reviews: what the reviews say an item is.

Sparse catalogs are mostly rarely bought items: 39% of Musical Instruments' test next items were
bought at most five times in training, and a model that learns an item only from its purchases
ranks those near the middle (docs/benchmarks.md, "Why .75 is out of reach"). The reviews describe
them: the cosine between an item's TF-IDF profile and its buyer's history scores the yes/no pairs
as well as the model does. These vectors (TF-IDF over each item's training reviews and titles,
reduced by a truncated SVD, latent semantic analysis) place items that are reviewed alike near each
other, so that item embeddings can start there instead of at random.

Only reviews of each user's *training* items count, so that nothing of a valid or test interaction
reaches the model.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from p5rec._text_overlap import tokenize
from p5rec.data.split import Splits
from p5rec.data.tables import RecData

__all__ = ["review_tfidf", "review_vectors"]


def review_tfidf(data: RecData, splits: Splits, normalize: bool = True) -> tuple[Any, list[str]]:
    """The items' TF-IDF matrix over the words of their training reviews and titles (a scipy CSR
    matrix, one row per item with any, L2-normalised with `normalize`), and their raw IDs in row order.

    Each item's words are counted over its training reviews and summaries and weighted by
    (1 + log count) x idf. No rows (a 0 x 0 matrix) when the data has no review text.
    """
    import scipy.sparse as sparse

    train = {(u, i) for u, seq in splits.train_sequences().items() for i in seq}
    col = data.column
    docs: dict[str, Counter] = {}
    for user, item, review, summary in zip(
        col("interactions", "user_id"),
        col("interactions", "item_id"),
        col("interactions", "review"),
        col("interactions", "summary"),
    ):
        if (user, item) in train and (review or summary):
            docs.setdefault(item, Counter()).update(tokenize(f"{review or ''} {summary or ''}"))
    items = [i for i, d in docs.items() if d]
    words: dict[str, int] = {}
    rows, cols, vals = [], [], []
    for r, item in enumerate(items):
        for w, n in docs[item].items():
            rows.append(r)
            cols.append(words.setdefault(w, len(words)))
            vals.append(1.0 + np.log(n))
    x = sparse.csr_matrix((vals, (rows, cols)), shape=(len(items), len(words)))
    x = x.multiply(np.log(len(items) / (1.0 + np.bincount(x.indices, minlength=len(words))))[None, :]).tocsr()
    if not normalize:
        return x, items
    norms = np.sqrt(np.asarray(x.multiply(x).sum(1)).ravel())
    return sparse.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ x, items


def review_vectors(data: RecData, splits: Splits, dim: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Raw item ID -> unit vector of `dim` numbers for every item with a training review or title:
    the `dim` leading singular directions of :func:`review_tfidf` (scaled by the singular values).

    Empty when the data has no review text (or one reviewed item or word); a catalog with fewer
    reviewed items or words than `dim` + 1 fills fewer directions and the rest are 0.
    """
    from scipy.sparse.linalg import svds

    if dim < 1:
        raise ValueError(f"`dim` ({dim!r}) must be >= 1")
    x, items = review_tfidf(data, splits, normalize=False)
    rank = min(dim, x.shape[0] - 1, x.shape[1] - 1)  # svds finds fewer directions than the matrix's sides
    if rank < 1:
        return {}
    v0 = np.random.default_rng(seed).standard_normal(min(x.shape))  # svds' start vector: reproducible
    u, s, _ = svds(x.astype(np.float64), k=rank, v0=v0)
    vecs = np.zeros((len(items), dim))
    vecs[:, :rank] = u * s  # a small catalog fills the first directions only
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    vecs = vecs / np.where(norms > 0, norms, 1.0)
    return {item: vecs[r] for r, item in enumerate(items) if norms[r, 0] > 0}
