"""Collaborative IDs (OpenP5): recursive spectral clustering of the item co-occurrence graph.

Items bought close together in training sequences end up sharing an ID prefix. Everything is
sparse: the graph has O(interactions * window) entries, never N x N.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.sparse.linalg import ArpackNoConvergence, eigsh

from p5rec.ids.hierarchy import build_paths
from p5rec.ids.kmeans import kmeans

_DENSE_MAX = 300  # below this many nodes a dense eigendecomposition is faster than ARPACK


def cooccurrence_graph(
    item_ids: Sequence[str], train_sequences: Mapping[str, Sequence[str]], window: int
) -> sp.csr_matrix:
    """Symmetric (n, n) graph: weight = times two items appear within `window` positions.

    Args:
        item_ids (`Sequence[str]`): the catalog; row/column `i` is `item_ids[i]`.
        train_sequences (`Mapping[str, Sequence[str]]`): user -> training items in time order.
        window (`int`): largest position gap that counts as co-occurrence.
    """
    pos = {raw: i for i, raw in enumerate(item_ids)}
    flat: list[int] = []
    owner: list[int] = []
    for u, (user, seq) in enumerate(train_sequences.items()):
        for raw in seq:
            i = pos.get(raw)
            if i is None:
                raise KeyError(f"`train_sequences[{user!r}]` holds item {raw!r}, which is not in `item_ids`")
            flat.append(i)
            owner.append(u)
    items = np.asarray(flat, dtype=np.int64)
    users = np.asarray(owner, dtype=np.int64)
    rows, cols = [], []
    for gap in range(1, window + 1):
        same = users[:-gap] == users[gap:]  # pairs `gap` apart inside one user's sequence
        a, b = items[:-gap][same], items[gap:][same]
        keep = a != b  # an item repeated next to itself is no evidence of similarity
        rows.append(a[keep])
        cols.append(b[keep])
    r = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
    n = len(item_ids)
    data = np.ones(2 * len(r), dtype=np.float64)
    graph = sp.coo_matrix((data, (np.concatenate([r, c]), np.concatenate([c, r]))), shape=(n, n))
    return graph.tocsr()  # duplicates are summed


def spectral_embedding(graph: sp.csr_matrix, dims: int, seed: Sequence[int]) -> np.ndarray | None:
    """Top eigenvectors of D^-1/2 A D^-1/2, rows scaled to unit length (Ng, Jordan & Weiss).

    Nodes without edges get zero rows, so k-means groups them together. Returns None when
    fewer than two nodes have edges (nothing to cluster).
    """
    n = graph.shape[0]
    deg = np.asarray(graph.sum(axis=1)).ravel()
    connected = deg > 0
    if connected.sum() < 2:
        return None
    inv_sqrt = np.zeros(n)
    inv_sqrt[connected] = 1.0 / np.sqrt(deg[connected])
    scale = sp.diags(inv_sqrt)
    norm = (scale @ graph @ scale).tocsr()
    dims = min(dims, n - 1)
    if n <= _DENSE_MAX:
        _, vecs = scipy.linalg.eigh(norm.toarray(), subset_by_index=[n - dims, n - 1])
    else:
        rng = np.random.default_rng(list(seed))
        try:
            # A loose tolerance: k-means needs the dominant subspace, not exact eigenvectors, and
            # near-equal eigenvalues (many similar communities) make tight tolerances very slow.
            _, vecs = eigsh(norm, k=dims, which="LA", v0=rng.standard_normal(n), tol=1e-2, maxiter=20 * n)
        except ArpackNoConvergence as e:  # keep what converged; clustering tolerates a rough basis
            vecs = e.eigenvectors
            if vecs.shape[1] == 0:
                return None
    vecs = np.array(vecs, dtype=np.float64)
    vecs[~connected] = 0.0
    lengths = np.linalg.norm(vecs, axis=1, keepdims=True)
    return np.divide(vecs, lengths, out=np.zeros_like(vecs), where=lengths > 0)


def collaborative_paths(
    item_ids: Sequence[str],
    train_sequences: Mapping[str, Sequence[str]],
    *,
    num_clusters: int,
    max_leaf_size: int,
    max_depth: int,
    window: int,
    seed: int,
) -> list[tuple[int, ...]]:
    """One path per item from recursive spectral clustering of the training co-occurrence graph."""
    graph = cooccurrence_graph(item_ids, train_sequences, window)

    def split(members: np.ndarray, path: tuple[int, ...]) -> np.ndarray | None:
        sub = graph[members][:, members]
        emb = spectral_embedding(sub, num_clusters, (seed, len(path), *path))
        if emb is None:
            return None
        return kmeans(emb, num_clusters, seed=(seed, len(path), *path))

    return build_paths(len(item_ids), split, num_clusters, max_leaf_size, max_depth)
