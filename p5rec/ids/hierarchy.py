"""Recursive clustering into ID paths: the shared core of the collaborative and semantic schemes.

A cluster larger than `max_leaf_size` is split by a scheme-specific rule; each item's ID is the
path of cluster indices down to its leaf plus its index inside the leaf. A cluster is either
split or a leaf, never both, so no full ID is a level-wise prefix of another (the decoder's trie
relies on this), and the leaf index makes every ID unique even when items look identical.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# split(members, path) -> labels 0..m-1 for `members` (global item indices, ascending), or None
# when the rule cannot separate them (all points identical, no edges).
SplitRule = Callable[[np.ndarray, tuple[int, ...]], "np.ndarray | None"]


def chunk_labels(n: int, k: int) -> np.ndarray:
    """Split `n` items in order into `min(k, n)` contiguous, nearly equal chunks."""
    return (np.arange(n) * min(k, n)) // max(n, 1)


def build_paths(
    n: int, split: SplitRule, num_clusters: int, max_leaf_size: int, max_depth: int
) -> list[tuple[int, ...]]:
    """Return one path per item: cluster indices from the root, then the index inside the leaf.

    Items that `split` cannot separate are cut into contiguous chunks in catalog order, so the
    recursion always shrinks clusters and leaf indices stay below `max_leaf_size` (until
    `max_depth`, where a too-large cluster becomes one leaf).

    Args:
        n (`int`): number of items.
        split (`SplitRule`): the scheme's rule for splitting a cluster.
        num_clusters (`int`): children per split at most (used by the chunk fallback).
        max_leaf_size (`int`): clusters of at most this many items are leaves.
        max_depth (`int`): cluster levels at most before the leaf index.

    >>> build_paths(5, lambda members, path: None, num_clusters=2, max_leaf_size=2, max_depth=4)
    [(0, 0, 0), (0, 0, 1), (0, 1, 0), (1, 0), (1, 1)]
    """
    paths: list[tuple[int, ...]] = [()] * n
    stack: list[tuple[np.ndarray, tuple[int, ...]]] = [(np.arange(n), ())]
    while stack:
        members, path = stack.pop()
        if len(members) <= max_leaf_size or len(path) >= max_depth:
            for j, item in enumerate(members.tolist()):
                paths[item] = (*path, j)
            continue
        labels = split(members, path)
        if labels is None or len(labels) == 0 or labels.max() < 1:
            labels = chunk_labels(len(members), num_clusters)
        for c in range(int(labels.max()) + 1):
            stack.append((members[labels == c], (*path, c)))
    return paths
