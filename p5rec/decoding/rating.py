"""Rating prediction read off the LM: a distribution over the rating strings, not free text.

Teacher-forcing each value string ("1.0" ... "5.0") gives its exact log-probability; the
softmax over the values is the model's rating distribution and its mean the expected rating,
which is smoother (lower RMSE) than taking the single most likely string. The greedy rating is
the same trie-constrained decoding used for items, with the values as the catalog. The same
read-out serves any fixed answer set (`answer_distribution`: "yes" against "no" for direct
recommendation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from p5rec.decoding.generate import recommend_items, score_items
from p5rec.decoding.trie import ItemTrie

__all__ = [
    "answer_distribution",
    "answer_trie",
    "expected_rating",
    "predict_rating",
    "rating_distribution",
    "rating_trie",
]

DEFAULT_VALUES = ("1.0", "2.0", "3.0", "4.0", "5.0")


def answer_trie(tokenizer, answers: Sequence[str], name: str = "answers") -> ItemTrie:
    """An :class:`ItemTrie` whose items are fixed answer strings ("1.0" ... "5.0", "yes"/"no"),
    tokenized as training targets.

    Args:
        tokenizer: a HF tokenizer with an `eos_token_id`.
        answers (`Sequence[str]`): the distinct answer strings.
        name: the caller's argument name, for error messages.
    """
    if isinstance(answers, str) or len(answers) == 0:
        raise ValueError(f"`{name}` must be a non-empty list of answer strings, got {answers!r}.")
    if len(set(answers)) != len(answers):
        raise ValueError(f"`{name}` ({list(answers)}) holds duplicates; give each answer once.")
    if tokenizer.eos_token_id is None:
        raise ValueError("`tokenizer.eos_token_id` is None; the answer strings must end with eos.")
    sequences = [tokenizer(v, add_special_tokens=False).input_ids for v in answers]
    for v, seq in zip(answers, sequences, strict=True):
        if not seq:
            raise ValueError(f"`{name}` entry {v!r} tokenizes to nothing; use non-empty answer strings.")
    return ItemTrie(sequences, tokenizer.eos_token_id)


def rating_trie(tokenizer, values: Sequence[str] = DEFAULT_VALUES) -> ItemTrie:
    """:func:`answer_trie` over the rating strings ("1.0" ... "5.0" by default)."""
    return answer_trie(tokenizer, values, "values")


def answer_distribution(
    model: torch.nn.Module,
    batch: Mapping[str, torch.Tensor],
    tokenizer,
    answers: Sequence[str],
) -> torch.Tensor:
    """Probability of each fixed answer string per row, renormalised over `answers`.

    Args:
        model: a HF encoder-decoder or decoder-only LM.
        batch (`dict`): `input_ids` and `attention_mask` `(B, T)` of prompts.
        tokenizer: the model's tokenizer.
        answers (`Sequence[str]`): the answer strings, e.g. ("yes", "no").

    Returns:
        `(B, len(answers))` float32 probabilities (rows sum to 1), on the CPU.
    """
    return _distribution(model, batch, answer_trie(tokenizer, answers))


def rating_distribution(
    model: torch.nn.Module,
    batch: Mapping[str, torch.Tensor],
    tokenizer,
    values: Sequence[str] = DEFAULT_VALUES,
) -> torch.Tensor:
    """:func:`answer_distribution` over the rating strings: `(B, len(values))` on the CPU."""
    return _distribution(model, batch, rating_trie(tokenizer, values))


def _distribution(model: torch.nn.Module, batch: Mapping[str, torch.Tensor], trie: ItemTrie) -> torch.Tensor:
    return score_items(model, batch, trie).softmax(-1)


def expected_rating(
    model: torch.nn.Module,
    batch: Mapping[str, torch.Tensor],
    tokenizer,
    values: Sequence[str] = DEFAULT_VALUES,
) -> torch.Tensor:
    """Expected rating per row under :func:`rating_distribution`, `(B,)` on the CPU.

    Args:
        model, batch, tokenizer: as for :func:`rating_distribution`.
        values (`Sequence[str]`, defaults to "1.0" ... "5.0"): rating strings that parse as floats.
    """
    try:
        numbers = torch.tensor([float(v) for v in values])
    except (TypeError, ValueError) as e:
        raise ValueError(f"`values` ({list(values)}) must all parse as numbers for an expected rating.") from e
    return rating_distribution(model, batch, tokenizer, values) @ numbers


def predict_rating(
    model: torch.nn.Module,
    batch: Mapping[str, torch.Tensor],
    tokenizer,
    values: Sequence[str] = DEFAULT_VALUES,
) -> list[str]:
    """The greedily decoded rating string per row, constrained to `values`.

    Args:
        model, batch, tokenizer: as for :func:`rating_distribution`.
        values (`Sequence[str]`, defaults to "1.0" ... "5.0"): the allowed outputs.
    """
    found = recommend_items(model, batch, rating_trie(tokenizer, values), k=1, num_beams=1)
    return [values[row[0][0]] if row else "" for row in found]
