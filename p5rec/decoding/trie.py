"""A prefix trie over item-ID token sequences, stored as tensors so a whole batch of beams is
constrained at once.

States are numbered breadth first (root = 0) with the children of a state sorted by token, so
the edges laid out in child order are also sorted by ``(parent, token)``: edge ``e`` leads to
state ``e + 1``, ``child_ptr`` is a CSR offset table over them and ``edge_key = parent * K + token``
is a sorted key table for ``searchsorted`` lookups. Nothing is ``states x vocab``: a catalog of
100k items that each add one token has a root with 100k children and costs O(edges) memory.

Every live beam at decoding step ``t`` sits at a state of depth ``t``, so the widest fan-out of
each depth (``width_at``) is known on the host and a step gathers a fixed ``(rows, width)``
block of children without a host-device sync.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["ItemTrie", "RowItemCounts"]


class ItemTrie:
    """The valid item-ID token sequences, each ending with ``eos_token_id``, as a tensor trie.

    Args:
        sequences (`Sequence[Sequence[int]]`): one token sequence per item, WITHOUT the final eos,
            e.g. ``tokenizer(id_string, add_special_tokens=False).input_ids``. Item ``i`` of the
            decoding results is ``sequences[i]``.
        eos_token_id (`int`): appended to every sequence; may not occur inside one.

    >>> trie = ItemTrie([[5, 7, 3], [5, 7, 4], [5, 7, 3, 3]], eos_token_id=1)
    >>> trie.forced_prefix, trie.num_items, trie.max_length
    ((5, 7), 3, 5)
    """

    def __init__(self, sequences: Sequence[Sequence[int]], eos_token_id: int):
        if isinstance(eos_token_id, bool) or not isinstance(eos_token_id, (int, np.integer)) or eos_token_id < 0:
            raise ValueError(f"`eos_token_id` ({eos_token_id!r}) must be a non-negative int.")
        self.eos_token_id = int(eos_token_id)
        padded, lengths = _pad_sequences(sequences, self.eos_token_id)
        n_items, max_len = padded.shape
        key_base = int(padded.max()) + 1

        # Number states depth by depth: the unique (parent, token) pairs of depth d are its states.
        paths = np.full((n_items, max_len + 1), -1, dtype=np.int64)  # state of item i after d tokens
        paths[:, 0] = 0
        parents, tokens, depth_of_state = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [0]
        next_id = 1
        for d in range(max_len):
            live = np.flatnonzero(lengths > d)
            keys = paths[live, d] * key_base + padded[live, d]
            uniq, inverse = np.unique(keys, return_inverse=True)
            paths[live, d + 1] = next_id + inverse
            parents.append(uniq // key_base)
            tokens.append(uniq % key_base)
            depth_of_state += [d + 1] * len(uniq)
            next_id += len(uniq)
        edge_parent = np.concatenate(parents)
        edge_token = np.concatenate(tokens)
        num_states = next_id

        leaves = paths[np.arange(n_items), lengths]
        order = np.argsort(leaves, kind="stable")
        same = np.flatnonzero(leaves[order][1:] == leaves[order][:-1])
        if len(same):
            i, j = sorted((int(order[same[0]]), int(order[same[0] + 1])))
            raise ValueError(f"`sequences` must be distinct, but items {i} and {j} are both {list(sequences[i])}.")

        degree = np.bincount(edge_parent, minlength=num_states)
        depth = np.asarray(depth_of_state, dtype=np.int64)
        items_under = np.zeros(num_states, dtype=np.int64)
        items_under[leaves] = 1
        for d in range(max_len, 0, -1):  # children before parents: push counts up one depth at a time
            at_d = np.flatnonzero(depth == d)
            np.add.at(items_under, edge_parent[at_d - 1], items_under[at_d])
        leaf_item = np.full(num_states, -1, dtype=np.int64)
        leaf_item[leaves] = np.arange(n_items)

        self.num_items = n_items
        self.num_states = num_states
        self.max_length = max_len  # longest sequence, eos included
        self.forced_prefix = _forced_prefix(padded[0], degree, paths[0], self.eos_token_id)
        self._width = tuple(int(degree[depth == d].max()) for d in range(max_len))
        self._key_base = key_base
        t = torch.as_tensor
        self.child_ptr = t(np.concatenate([[0], np.cumsum(degree)]))  # (S+1,) edges of s: ptr[s]:ptr[s+1]
        self.degree = t(degree)  # (S,)
        self.edge_token = t(edge_token)  # (E,), E = S - 1; edge e leads to state e + 1
        self.edge_key = t(edge_parent * key_base + edge_token)  # (E,) sorted
        self.items_under = t(items_under)  # (S,) items whose sequence passes through the state
        self.leaf_item = t(leaf_item)  # (S,) item index at a leaf (after eos), else -1
        self.item_paths = t(paths)  # (n_items, max_len + 1) states along each item, -1 past its end
        self.item_tokens = t(padded)  # (n_items, max_len) eos-terminated, eos-padded
        self.item_lengths = t(lengths)  # (n_items,) eos included

    @property
    def device(self) -> torch.device:
        return self.child_ptr.device

    def to(self, device: torch.device | str) -> ItemTrie:
        """This trie with its tensors on `device` (itself when already there)."""
        device = torch.device(device)
        if self.device == device or (device.index is None and self.device.type == device.type):
            return self
        moved = object.__new__(ItemTrie)
        for name, value in vars(self).items():
            setattr(moved, name, value.to(device) if isinstance(value, torch.Tensor) else value)
        return moved

    def width_at(self, depth: int) -> int:
        """Most children any state at `depth` has (0 past the deepest state)."""
        return self._width[depth] if 0 <= depth < len(self._width) else 0

    def state_of(self, prefix: Sequence[int]) -> int:
        """The state reached by `prefix` from the root, or -1 if no item starts with it."""
        state = torch.zeros(1, dtype=torch.long, device=self.device)
        for token in prefix:
            state = self.next_states(state, torch.tensor([int(token)], device=self.device))
        return int(state.item())

    def next_states(self, states: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """State after appending `tokens` to beams at `states` (both `(N,)`); -1 where invalid."""
        keys = states * self._key_base + tokens
        pos = torch.searchsorted(self.edge_key, keys).clamp(max=len(self.edge_key) - 1)
        hit = (self.edge_key[pos] == keys) & (states >= 0) & (tokens >= 0) & (tokens < self._key_base)
        return torch.where(hit, pos + 1, -1)

    def walk(self, sequences: torch.Tensor) -> torch.Tensor:
        """State reached by each row of `sequences` `(N, T)` from the root; -1 once it leaves the trie."""
        states = torch.zeros(sequences.shape[0], dtype=torch.long, device=sequences.device)
        for t in range(sequences.shape[1]):
            states = self.next_states(states, sequences[:, t])
        return states

    def children(self, states: torch.Tensor, depth: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Children of beams at `states` `(N,)`, all at trie depth `depth`, as fixed-width blocks.

        Returns:
            `(tokens, next_states, valid)`, each `(N, width_at(depth))`. Padding slots (and every
            slot of a dead beam, state -1) have ``valid`` False, token 0 and next state -1.
        """
        width = max(self.width_at(depth), 1)
        slot = torch.arange(width, device=states.device)
        safe = states.clamp(min=0)
        valid = (slot < self.degree[safe][:, None]) & (states >= 0)[:, None]
        edge = (self.child_ptr[safe][:, None] + slot).clamp(max=max(len(self.edge_token) - 1, 0))
        tokens = torch.where(valid, self.edge_token[edge], 0)
        return tokens, torch.where(valid, edge + 1, -1), valid

    def count_under(self, item_lists: Sequence[Sequence[int]], name: str = "items") -> RowItemCounts:
        """Per row, how many of its listed items lie under each state (sparse; duplicates count once).

        Args:
            item_lists (`Sequence[Sequence[int]]`): item indices per row.
            name (`str`): the argument name used in error messages.
        """
        rows, items = [], []
        for r, lst in enumerate(item_lists):
            arr = np.asarray(list(lst), dtype=np.int64).reshape(-1)
            bad = arr[(arr < 0) | (arr >= self.num_items)]
            if len(bad):
                raise ValueError(
                    f"`{name}[{r}]` holds item index {int(bad[0])}, outside [0, {self.num_items}); "
                    "pass indices into the list the trie was built from."
                )
            arr = np.unique(arr)
            rows.append(np.full(len(arr), r, dtype=np.int64))
            items.append(arr)
        rows_t = torch.as_tensor(np.concatenate(rows) if rows else np.zeros(0, np.int64))
        items_t = torch.as_tensor(np.concatenate(items) if items else np.zeros(0, np.int64))
        paths = self.item_paths.cpu()[items_t]  # (M, max_len + 1)
        keys = rows_t[:, None] * self.num_states + paths
        keys = keys[paths >= 0]
        uniq, counts = torch.unique(keys, return_counts=True)  # sorted
        return RowItemCounts(uniq.to(self.device), counts.to(self.device), self.num_states, len(item_lists))


class RowItemCounts:
    """Sparse ``(row, state) -> count`` table built by :meth:`ItemTrie.count_under`."""

    def __init__(self, keys: torch.Tensor, counts: torch.Tensor, num_states: int, num_rows: int):
        self.keys, self.counts = keys, counts
        self.num_states, self.num_rows = num_states, num_rows

    def to(self, device: torch.device | str) -> RowItemCounts:
        return RowItemCounts(self.keys.to(device), self.counts.to(device), self.num_states, self.num_rows)

    def lookup(self, rows: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """Counts for `rows` and `states` of the same shape (0 where absent or state -1)."""
        if len(self.keys) == 0:
            return torch.zeros_like(states)
        q = rows * self.num_states + states
        pos = torch.searchsorted(self.keys, q.reshape(-1)).reshape(q.shape).clamp(max=len(self.keys) - 1)
        return torch.where((self.keys[pos] == q) & (states >= 0), self.counts[pos], 0)


def _pad_sequences(sequences: Sequence[Sequence[int]], eos: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate `sequences` and return them eos-terminated in an eos-padded array, plus lengths."""
    if isinstance(sequences, (str, bytes)) or not isinstance(sequences, Sequence):
        raise TypeError(f"`sequences` must be a list of token-id lists, got {type(sequences).__name__}.")
    if len(sequences) == 0:
        raise ValueError("`sequences` is empty: the catalog needs at least one item.")
    lengths = np.empty(len(sequences), dtype=np.int64)
    for i, seq in enumerate(sequences):
        if isinstance(seq, (str, bytes)) or not hasattr(seq, "__len__"):
            raise TypeError(f"`sequences[{i}]` must be a list of token ids, got {type(seq).__name__}.")
        if len(seq) == 0:
            raise ValueError(f"`sequences[{i}]` is empty; every item needs at least one token.")
        lengths[i] = len(seq) + 1
    padded = np.full((len(sequences), int(lengths.max())), eos, dtype=np.int64)
    for i, seq in enumerate(sequences):
        row = np.asarray(seq)
        if row.dtype.kind not in "iu" or row.ndim != 1:
            raise TypeError(f"`sequences[{i}]` ({list(seq)[:8]}) must hold integer token ids.")
        if (row < 0).any():
            raise ValueError(f"`sequences[{i}]` ({list(seq)}) holds a negative token id.")
        if (row == eos).any():
            raise ValueError(
                f"`sequences[{i}]` ({list(seq)}) contains `eos_token_id` ({eos}); pass sequences without "
                "eos, it is appended to each one."
            )
        padded[i, : len(row)] = row
    return padded, lengths


def _forced_prefix(first_item: np.ndarray, degree: np.ndarray, first_path: np.ndarray, eos: int) -> tuple[int, ...]:
    """Tokens every item starts with: follow single-child states from the root, stopping at eos."""
    prefix = []
    for d, token in enumerate(first_item):
        if degree[first_path[d]] != 1 or token == eos:
            break
        prefix.append(int(token))
    return tuple(prefix)
