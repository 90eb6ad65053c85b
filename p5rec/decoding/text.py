"""A `LogitsProcessor` for the text tasks' answers (explanations, summaries).

A small model trained mostly to answer with item IDs often ends a summary at once, or after a lone
word-boundary piece ("▁"), or writes ID tokens that decode to nothing: an empty answer, which no
reference is. This processor forbids ID and special tokens, and the end of the answer until it
holds a visible character. `CopyBonusLogitsProcessor` adds the copy bonus a model was trained
with (`model.copy_bonus`) to the tokens of each row's prompt.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import LogitsProcessor, PreTrainedTokenizerBase

__all__ = ["CopyBonusLogitsProcessor", "VisibleTextLogitsProcessor", "blank_tokens"]


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


class CopyBonusLogitsProcessor(LogitsProcessor):
    """Adds `bonus` to the score of every token that occurs in a row's prompt and not yet in its
    answer, except `exclude`, and `bonus` more to each token that follows the answer's last token
    somewhere in the prompt (the next piece of what is being copied).

    Decoder-only models: the prompt is what `input_ids` holds at the first call (its padding is a
    special token, excluded); what follows it at a later call is the answer so far, whose tokens
    lose the bonus (a source token is copied once, so the bonus cannot make a loop). This is the
    decoding half of `model.copy_bonus`; the training objective adds the same bonus at the
    answer's labels, so the model's own logits are learned around it. Beams of one prompt share
    the prompt, so beam search's reordering keeps each row's set. `prior` `(vocab,)` adds a
    per-token amount to the bonus of prompt tokens (`p5rec.training.copy_prior`: the log-odds that
    the data's answers repeat the token, times a weight chosen on the valid split); the sum is
    floored at 0, so a prompt token is never scored below the others.
    """

    def __init__(self, bonus: float, exclude: Sequence[int] = (), prior: torch.Tensor | None = None) -> None:
        if not bonus >= 0 or bonus == float("inf"):
            raise ValueError(f"`bonus` ({bonus!r}) must be a finite number >= 0")
        if prior is not None and prior.dim() != 1:  # finite values: checked once by the Predictor
            raise ValueError(f"`prior` must be one number per vocabulary token, got shape {tuple(prior.shape)}")
        if not bonus and prior is None:
            raise ValueError("`bonus` is 0 and there is no `prior`: the processor would change nothing")
        self.bonus = float(bonus)
        self.prior = prior
        self.exclude = torch.tensor(sorted(set(exclude)), dtype=torch.long)
        self._added: torch.Tensor | None = None  # (rows, vocab) bonus, from the prompt at the first call
        self._start = 0  # the prompt's width
        self._pairs: torch.Tensor | None = None  # (rows, width - 1): prompt positions j where j, j + 1 may be copied

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._added is None:
            width = scores.shape[1]
            present = torch.zeros(input_ids.shape[0], width, dtype=torch.bool, device=scores.device)
            rows, cols = (input_ids < width).nonzero(as_tuple=True)  # ids past the output layer mark nothing
            present[rows, input_ids[rows, cols]] = True
            exclude = self.exclude[self.exclude < width].to(scores.device)
            present[:, exclude] = False
            per_token = torch.full((width,), self.bonus, dtype=scores.dtype, device=scores.device)
            if self.prior is not None:  # the data's copy log-odds of each token; never below no bonus
                n = min(width, len(self.prior))
                per_token[:n] = (per_token[:n] + self.prior[:n].to(per_token)).clamp(min=0.0)
            self._added, self._start = present.to(scores.dtype) * per_token, input_ids.shape[1]
            copyable = ~torch.isin(input_ids, exclude) & (input_ids < width)  # per prompt position, once
            self._pairs = copyable[:, :-1] & copyable[:, 1:]  # a copyable token followed by one
        added = self._added
        answer = input_ids[:, self._start :]
        if answer.numel():
            added = added.scatter(1, answer, 0.0)
            prompt = input_ids[:, : self._start]
            match = (prompt[:, :-1] == answer[:, -1:]) & self._pairs
            follows = torch.zeros_like(added).scatter_add_(1, prompt[:, 1:], match.to(added.dtype)) > 0
            added = added + follows.to(added.dtype) * self.bonus
        return scores + added
