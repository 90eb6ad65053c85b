"""A `LogitsProcessor` for the text tasks' answers (explanations, summaries).

A small model trained mostly to answer with item IDs often ends a summary at once, or after a lone
word-boundary piece ("▁"), or writes ID tokens that decode to nothing: an empty answer, which no
reference is. This processor forbids ID and special tokens, and the end of the answer until it
holds a visible character.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor, PreTrainedTokenizerBase

__all__ = ["VisibleTextLogitsProcessor", "blank_tokens"]


def blank_tokens(tokenizer: PreTrainedTokenizerBase, vocab_size: int) -> torch.Tensor:
    """`blank[v]`: token `v` alone decodes to no visible character (a space piece, a special token).

    A model's output layer may be wider than its tokenizer (padded): the processor bans those rows.
    """
    texts = tokenizer.batch_decode([[v] for v in range(vocab_size)], skip_special_tokens=True)
    return torch.tensor([not t.strip() for t in texts], dtype=torch.bool)


class VisibleTextLogitsProcessor(LogitsProcessor):
    """Bans `banned` token IDs everywhere, and `eos_token_id` while a row's answer is still blank.

    Args:
        blank: bool per tokenizer entry, from :func:`blank_tokens`; output rows past it are banned.
        banned: token IDs never allowed in the answer (item ID tokens, special tokens but the end).
        eos_token_id: the end-of-answer token.
    """

    def __init__(self, blank: torch.Tensor, banned: list[int], eos_token_id: int) -> None:
        if blank.dtype != torch.bool or blank.dim() != 1:
            raise ValueError(
                f"`blank` must be a 1-D bool tensor, one entry per token, got {blank.dtype} {list(blank.shape)}"
            )
        self.blank, self.eos = blank, int(eos_token_id)
        self.banned = torch.tensor(sorted(set(banned) - {self.eos}), dtype=torch.long)
        self._start: int | None = None  # the prompt's width (or the decoder start), seen on the first call

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._start is None:  # the first step: the prompt's width, and the tables on the model's device once
            self._start = input_ids.shape[1]
            self.blank, self.banned = self.blank.to(input_ids.device), self.banned.to(input_ids.device)
        scores = scores.clone()
        scores[:, self.banned] = -float("inf")
        scores[:, len(self.blank) :] = -float("inf")
        # From the whole answer so far, not a running flag: beam search reorders rows between steps.
        visible = (~self.blank[input_ids[:, self._start :]]).any(dim=1)
        scores[~visible, self.eos] = -float("inf")
        return scores
