"""`LogitsProcessor`s that keep `model.generate` on valid item IDs: one rule per class.

Each processor finds every row's trie state by walking its generated tokens through the tensor
trie (a few vectorised lookups, no per-beam Python callback) and masks the whole batch at once.
They compose in a `LogitsProcessorList`; the fast path in :mod:`p5rec.decoding.generate` uses
the same trie and count tables without building vocabulary-wide masks.

``prompt_length`` is the number of leading `input_ids` columns that are not part of the item ID:
1 for encoder-decoder models (the decoder start token), the padded prompt width for decoder-only
models (prompts are left-padded, so every row's ID starts at the same column).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
from transformers import LogitsProcessor

from p5rec.decoding.trie import ItemTrie, RowItemCounts

__all__ = ["CandidateItemsLogitsProcessor", "ExcludeItemsLogitsProcessor", "TrieConstraintLogitsProcessor"]


def _check_trie_and_prompt(trie: ItemTrie, prompt_length: int) -> None:
    if not isinstance(trie, ItemTrie):
        raise TypeError(f"`trie` must be an ItemTrie, got {type(trie).__name__}.")
    if isinstance(prompt_length, bool) or not isinstance(prompt_length, int) or prompt_length < 0:
        raise ValueError(
            f"`prompt_length` ({prompt_length!r}) must be an int >= 0: 1 for encoder-decoder models, the "
            "padded prompt width for decoder-only models."
        )


def _states(trie: ItemTrie, input_ids: torch.LongTensor, prompt_length: int) -> tuple[torch.Tensor, int]:
    """Trie state of every row and the common depth (number of ID tokens generated so far)."""
    if input_ids.shape[1] < prompt_length:
        raise ValueError(f"`input_ids` has {input_ids.shape[1]} columns, fewer than `prompt_length` ({prompt_length}).")
    generated = input_ids[:, prompt_length:]
    return trie.to(input_ids.device).walk(generated), generated.shape[1]


class TrieConstraintLogitsProcessor(LogitsProcessor):
    """Allow only tokens that extend the row's prefix towards some item of the trie.

    Rows that already left the trie (only possible for padding beams) get every token masked.

    Args:
        trie (`ItemTrie`): the valid item-ID sequences.
        prompt_length (`int`): leading `input_ids` columns outside the ID (see module docstring).

    >>> import torch
    >>> trie = ItemTrie([[5, 7], [5, 8]], eos_token_id=1)
    >>> proc = TrieConstraintLogitsProcessor(trie, prompt_length=1)
    >>> out = proc(torch.tensor([[0, 5]]), torch.zeros(1, 10))
    >>> torch.isfinite(out[0]).nonzero().flatten().tolist()
    [7, 8]
    """

    def __init__(self, trie: ItemTrie, prompt_length: int):
        _check_trie_and_prompt(trie, prompt_length)
        self.trie, self.prompt_length = trie, prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        states, depth = _states(self.trie, input_ids, self.prompt_length)
        tokens, _, valid = self.trie.to(scores.device).children(states, depth)
        allowed = torch.zeros_like(scores).scatter_add_(1, tokens, valid.to(scores.dtype)) > 0
        return scores.masked_fill(~allowed, -float("inf"))


class _ItemListLogitsProcessor(LogitsProcessor, ABC):
    """Shared walk for processors that block trie children holding no allowed item of the row."""

    _arg = "items"

    def __init__(self, trie: ItemTrie, item_lists: Sequence[Sequence[int]], prompt_length: int):
        _check_trie_and_prompt(trie, prompt_length)
        if isinstance(item_lists, (str, bytes)) or not isinstance(item_lists, Sequence) or len(item_lists) == 0:
            raise ValueError(
                f"`{self._arg}` must be a non-empty list with one list of item indices per input row, "
                f"got {item_lists!r}."
            )
        self.trie, self.prompt_length, self.num_rows = trie, prompt_length, len(item_lists)
        self.counts: RowItemCounts = trie.count_under(item_lists, name=self._arg)

    @abstractmethod
    def _allowed_count(self, rows: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """How many allowed items of each row lie under each state."""

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        n = scores.shape[0]
        if n % self.num_rows:
            raise ValueError(
                f"`scores` has {n} rows, not a multiple of the {self.num_rows} rows of `{self._arg}`; "
                "pass one list per input row (beams are expanded automatically)."
            )
        states, depth = _states(self.trie, input_ids, self.prompt_length)
        trie = self.trie.to(scores.device)
        tokens, nxt, valid = trie.children(states, depth)
        rows = torch.arange(n, device=scores.device)[:, None] // (n // self.num_rows)  # beam row -> input row
        blocked = valid & (self._allowed_count(rows.expand_as(nxt), nxt) <= 0)
        hit = torch.zeros_like(scores).scatter_add_(1, tokens, blocked.to(scores.dtype)) > 0
        return scores.masked_fill(hit, -float("inf"))


class ExcludeItemsLogitsProcessor(_ItemListLogitsProcessor):
    """Never finish an excluded item of the row (e.g. the user's history), without dead ends.

    A token is blocked when every item under the state it leads to is excluded, so beams never
    enter a branch whose items are all excluded. Tokens outside the trie are left to
    :class:`TrieConstraintLogitsProcessor`. To combine with :class:`CandidateItemsLogitsProcessor`,
    remove the excluded items from the candidate lists instead (two independent checks can
    both pass on a branch whose only candidate is excluded).

    Args:
        trie (`ItemTrie`): the valid item-ID sequences.
        exclude (`Sequence[Sequence[int]]`): per input row, item indices it must not return.
        prompt_length (`int`): leading `input_ids` columns outside the ID.

    >>> import torch
    >>> trie = ItemTrie([[5, 7], [5, 8], [6, 7]], eos_token_id=1)
    >>> proc = ExcludeItemsLogitsProcessor(trie, exclude=[[2]], prompt_length=1)
    >>> out = proc(torch.tensor([[0]]), torch.zeros(1, 10))  # item 2 is the only one under 6
    >>> torch.isinf(out[0]).nonzero().flatten().tolist()
    [6]
    """

    _arg = "exclude"

    def __init__(self, trie: ItemTrie, exclude: Sequence[Sequence[int]], prompt_length: int):
        super().__init__(trie, exclude, prompt_length)

    def _allowed_count(self, rows: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        under = self.trie.to(states.device).items_under[states.clamp(min=0)]
        return under - self.counts.to(states.device).lookup(rows, states)


class CandidateItemsLogitsProcessor(_ItemListLogitsProcessor):
    """Only finish items from the row's candidate list, without dead ends.

    A token is blocked when no candidate of the row lies under the state it leads to. A row
    with fewer candidates than beams simply finishes fewer items.

    Args:
        trie (`ItemTrie`): the valid item-ID sequences.
        candidates (`Sequence[Sequence[int]]`): per input row, the item indices it may return.
        prompt_length (`int`): leading `input_ids` columns outside the ID.

    >>> import torch
    >>> trie = ItemTrie([[5, 7], [5, 8], [6, 7]], eos_token_id=1)
    >>> proc = CandidateItemsLogitsProcessor(trie, candidates=[[1]], prompt_length=1)
    >>> out = proc(torch.tensor([[0, 5]]), torch.zeros(1, 10))
    >>> torch.isinf(out[0]).nonzero().flatten().tolist()
    [7]
    """

    _arg = "candidates"

    def __init__(self, trie: ItemTrie, candidates: Sequence[Sequence[int]], prompt_length: int):
        super().__init__(trie, candidates, prompt_length)

    def _allowed_count(self, rows: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        return self.counts.to(states.device).lookup(rows, states)
