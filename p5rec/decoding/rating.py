"""Rating prediction read off the LM: a distribution over the rating strings, not free text.

Teacher-forcing each value string ("1.0" ... "5.0") gives its exact log-probability; the
softmax over the values is the model's rating distribution and its mean the expected rating,
which is smoother (lower RMSE) than taking the single most likely string. The greedy rating is
the same trie-constrained decoding used for items, with the values as the catalog. The same
read-out serves any fixed answer set (`answer_distribution`: "yes" against "no" for direct
recommendation).

A model that has not learnt its users answers every rating prompt with one distribution (the
global mean's level); :func:`tilt` centres each answer on a baseline predictor's rating (the damped
user and item averages, `p5rec.data.rating_means`) and keeps the model's per-prompt lean with a
weight (:class:`RatingTilt`, chosen on the valid split after training).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from p5rec.decoding.generate import recommend_items, score_items
from p5rec.decoding.trie import ItemTrie

__all__ = [
    "RatingTilt",
    "answer_distribution",
    "answer_trie",
    "expected_rating",
    "predict_rating",
    "rating_distribution",
    "rating_trie",
    "tilt",
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


@dataclass(frozen=True)
class RatingTilt:
    """How a task's rating distributions are centred on a baseline rating (:func:`tilt`).

    Args:
        weight: how much of the model's own lean per prompt is kept: 0 answers the baseline's
            rating for every prompt, 1 the model's distribution shifted by the baseline's offset.
        base: the model's average distribution over the rating values (on valid prompts): where a
            prompt's distribution equals it, the expected rating is exactly the baseline's.
    """

    weight: float
    base: tuple[float, ...]

    def __post_init__(self) -> None:
        w = self.weight
        if isinstance(w, bool) or not (isinstance(w, (int, float)) and 0 <= w < float("inf")):
            raise ValueError(f"`weight` ({self.weight!r}) must be a finite number >= 0")
        base = torch.tensor(self.base, dtype=torch.float64)
        if base.dim() != 1 or len(base) < 2 or not bool(((base > 0) & torch.isfinite(base)).all()):
            raise ValueError(f"`base` ({self.base!r}) must hold two or more positive probabilities, one per value")
        object.__setattr__(self, "base", tuple(float(b) for b in base / base.sum()))


def tilt(dist: torch.Tensor, values: Sequence[float], how: RatingTilt, baselines: Sequence[float]) -> torch.Tensor:
    """The rating distributions `dist` `(N, V)` centred on one baseline rating per row.

    Each row becomes `base * (p / base) ** weight * exp(lam * values)`, renormalised, with `lam`
    the exponential tilt that moves `base` to the row's baseline mean: a prompt the model answers
    with its average distribution gets the baseline's expected rating, and a prompt it answers
    higher or lower keeps `weight` of that lean. Baselines are clipped just inside the values' range.

    Returns:
        `(N, V)` float32 probabilities on the CPU.
    """
    v = torch.tensor([float(x) for x in values], dtype=torch.float64)
    if dist.dim() != 2 or dist.shape[1] != len(v) or len(how.base) != len(v):
        raise ValueError(
            f"`dist` {tuple(dist.shape)} and the tilt's base ({len(how.base)}) need one column per value ({len(v)})"
        )
    if len(baselines) != dist.shape[0]:
        raise ValueError(f"`baselines` has {len(baselines)} entries for {dist.shape[0]} distributions")
    margin = 1e-3 * float(v.max() - v.min())
    target = torch.tensor([float(b) for b in baselines], dtype=torch.float64).clamp(
        float(v.min()) + margin, float(v.max()) - margin
    )
    log_base = torch.tensor(how.base, dtype=torch.float64).log()
    # The tilted base's mean rises with lam: bisect for the one that hits each row's target.
    lo, hi = torch.full_like(target, -50.0), torch.full_like(target, 50.0)
    for _ in range(60):
        mid = (lo + hi) / 2
        mean = torch.softmax(log_base + mid[:, None] * v, dim=-1) @ v
        low = mean < target
        lo, hi = torch.where(low, mid, lo), torch.where(low, hi, mid)
    log_p = dist.double().clamp_min(1e-12).log()
    logits = log_base + how.weight * (log_p - log_base) + ((lo + hi) / 2)[:, None] * v
    return torch.softmax(logits, dim=-1).float().cpu()
