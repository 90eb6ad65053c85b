"""Semantic IDs (TIGER-style): hierarchical k-means over item text embeddings.

No pretrained encoder can be downloaded here, so the default embedding is TF-IDF over
title + category + description followed by a truncated SVD (latent semantic analysis); callers
with a better encoder pass `embeddings` instead. Items that cluster together (including items
with identical text) are told apart by the leaf index, TIGER's extra disambiguation level.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from p5rec.ids.hierarchy import build_paths
from p5rec.ids.kmeans import kmeans

if TYPE_CHECKING:  # importing `datasets` is slow; only the type is needed here
    from p5rec.data.tables import RecData

_WORD = re.compile(r"[a-z0-9]+")
_DENSE_SVD_MAX = 2_000_000  # cells: below this a dense SVD is cheap and avoids ARPACK's k < min(shape)


def item_texts(data: RecData) -> dict[str, str]:
    """Title, category and description of each catalog item, joined: the semantic scheme's input."""
    items = data.items
    columns = zip(items["item_id"], items["title"], items["category"], items["description"], strict=True)
    return {raw: " ".join(part for part in (title, cat, desc) if part) for raw, title, cat, desc in columns}


def tfidf_matrix(texts: Sequence[str], max_features: int = 50_000) -> sp.csr_matrix:
    """Rows are L2-normalised TF-IDF vectors (sublinear tf, smoothed idf) of lowercase words.

    The vocabulary keeps the `max_features` words found in most documents, ties by word, so it
    is the same on every run.
    """
    docs = [Counter(_WORD.findall(t.lower())) for t in texts]
    df = Counter(word for doc in docs for word in doc)
    vocab_words = sorted(df, key=lambda w: (-df[w], w))[:max_features]
    vocab = {w: j for j, w in enumerate(vocab_words)}
    rows, cols, vals = [], [], []
    for i, doc in enumerate(docs):
        for word, count in doc.items():
            j = vocab.get(word)
            if j is not None:
                rows.append(i)
                cols.append(j)
                vals.append(1.0 + np.log(count))
    n = len(texts)
    x = sp.csr_matrix((vals, (rows, cols)), shape=(n, len(vocab)), dtype=np.float64)
    idf = np.log((1.0 + n) / (1.0 + np.array([df[w] for w in vocab_words], dtype=np.float64))) + 1.0
    x = x @ sp.diags(idf)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ x)


def text_embeddings(texts: Sequence[str], dim: int, seed: int) -> np.ndarray:
    """(n, <=dim) LSA embeddings: truncated SVD of the TF-IDF matrix, rows scaled by singular values."""
    x = tfidf_matrix(texts)
    n, v = x.shape
    if v == 0:
        return np.zeros((n, 1))
    if n * v <= _DENSE_SVD_MAX or min(n, v) <= dim + 1:
        u, s, _ = np.linalg.svd(x.toarray(), full_matrices=False)
        k = min(dim, len(s))
        return u[:, :k] * s[:k]
    rng = np.random.default_rng(seed)
    u, s, _ = svds(x, k=dim, v0=rng.standard_normal(min(n, v)), tol=1e-4)  # LSA needs no more
    order = np.argsort(-s)
    return u[:, order] * s[order]


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Unit-length rows (cosine geometry); zero rows (items without text) stay zero."""
    lengths = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, lengths, out=np.zeros_like(x), where=lengths > 0)


def semantic_paths(
    embeddings: np.ndarray, *, num_clusters: int, max_leaf_size: int, max_depth: int, seed: int
) -> list[tuple[int, ...]]:
    """One path per row of `embeddings` from recursive k-means (each cluster re-clustered)."""
    emb = normalize_rows(np.asarray(embeddings, dtype=np.float64))

    def split(members: np.ndarray, path: tuple[int, ...]) -> np.ndarray | None:
        labels = kmeans(emb[members], num_clusters, seed=(seed, len(path), *path))
        return labels if labels.max(initial=0) >= 1 else None

    return build_paths(len(emb), split, num_clusters, max_leaf_size, max_depth)
