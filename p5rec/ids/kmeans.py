"""A small seeded k-means (k-means++ init, Lloyd iterations) in numpy.

Written here rather than taken from scikit-learn to keep the dependency list short; the ID
schemes only need tens of clusters over at most ~10^5 low-dimensional points.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

_CHUNK = 65536  # rows per distance block: bounds the n x k distance matrix held at once


def _sq_distances(x: np.ndarray, centers: np.ndarray, x_sq: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances, (n, k), clipped at 0 against rounding."""
    d = x_sq[:, None] - 2.0 * (x @ centers.T) + (centers * centers).sum(1)[None, :]
    return np.maximum(d, 0.0)


def _assign(x: np.ndarray, centers: np.ndarray, x_sq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.empty(len(x), dtype=np.int64)
    best = np.empty(len(x), dtype=x.dtype)
    for start in range(0, len(x), _CHUNK):
        d = _sq_distances(x[start : start + _CHUNK], centers, x_sq[start : start + _CHUNK])
        labels[start : start + _CHUNK] = d.argmin(1)
        best[start : start + _CHUNK] = d.min(1)
    return labels, best


def _kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator, x_sq: np.ndarray) -> np.ndarray:
    """k-means++ seeding: each new center drawn with probability proportional to squared distance."""
    centers = np.empty((k, x.shape[1]), dtype=x.dtype)
    centers[0] = x[rng.integers(len(x))]
    closest = _sq_distances(x, centers[:1], x_sq)[:, 0]
    for c in range(1, k):
        total = closest.sum()
        if total <= 0:  # fewer distinct points than clusters: the rest stay duplicates (empty later)
            centers[c:] = centers[0]
            break
        idx = rng.choice(len(x), p=closest / total)
        centers[c] = x[idx]
        closest = np.minimum(closest, _sq_distances(x, centers[c : c + 1], x_sq)[:, 0])
    return centers


def kmeans(x: np.ndarray, k: int, seed: int | Sequence[int] = 0, max_iter: int = 50, tol: float = 1e-6) -> np.ndarray:
    """Cluster the rows of `x` into at most `k` groups; returns labels `0..m-1` (m <= k).

    Labels are renumbered by the first row of each cluster, so they do not depend on the
    arbitrary order of the centers, and empty clusters are dropped.

    Args:
        x (`np.ndarray`): (n, d) points.
        k (`int`): number of clusters wanted (>= 1).
        seed (`int` or sequence of ints, defaults to 0): seeds the k-means++ draws.
        max_iter (`int`, defaults to 50): Lloyd iterations at most.
        tol (`float`, defaults to 1e-6): stop when the inertia improves by less than this fraction.

    >>> kmeans(np.array([[0.0], [0.1], [5.0], [5.1]]), 2).tolist()
    [0, 0, 1, 1]
    """
    if x.ndim != 2:
        raise ValueError(f"`x` must be 2-D (points x dims), got shape {x.shape}")
    if k < 1:
        raise ValueError(f"`k` ({k}) must be >= 1")
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    x = np.asarray(x, dtype=np.float64)
    k = min(k, n)
    rng = np.random.default_rng(seed)
    x_sq = (x * x).sum(1)
    centers = _kmeans_pp(x, k, rng, x_sq)
    labels, best = _assign(x, centers, x_sq)
    inertia = best.sum()
    for _ in range(max_iter):
        counts = np.bincount(labels, minlength=k)
        onehot = sp.csr_matrix((np.ones(n), (labels, np.arange(n))), shape=(k, n))
        sums = onehot @ x  # (k, d) per-cluster sums without a Python loop
        nonempty = counts > 0
        centers[nonempty] = sums[nonempty] / counts[nonempty, None]
        labels, best = _assign(x, centers, x_sq)
        new_inertia = best.sum()
        if inertia - new_inertia <= tol * max(inertia, 1e-12):
            break
        inertia = new_inertia
    return _renumber(labels)


def _renumber(labels: np.ndarray) -> np.ndarray:
    """Map labels to 0..m-1 in order of each label's first occurrence."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # cluster ranks by first row
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inverse.ravel()].astype(np.int64)
