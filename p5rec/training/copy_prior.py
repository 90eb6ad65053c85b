"""Which prompt tokens a text answer repeats: a per-token copy prior counted from the training data.

A fixed copy bonus (`model.copy_bonus`) favours every token of the prompt alike, so a summary copies
"I", "it" and "the" as readily as "strings" or "tuner". Review titles repeat some words of their
review far more often than others; counted over the training pairs, the log-odds that a token seen
in a text prompt reappears in its answer (relative to all prompt tokens) tells them apart, as the
no-model bag of words in `benchmarks/bench_copy_ceiling.py` does. `Predictor.write` adds
`weight * log_odds` of each prompt token to the copy bonus of that task's answers; the weight is
chosen on the valid split after training (`p5rec.pipeline`), as a pointer-generator's gate would
be learned, without tuning on the test split.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

from p5rec.modeling.inputs import tokenize
from p5rec.templates.tasks import TASKS
from p5rec.training.phases import only_tasks

__all__ = ["PRIOR_COUNTS", "WEIGHT_GRID", "copy_log_odds", "fit_copy_priors"]

PRIOR_COUNTS = 5.0  # pseudo-counts at the base rate: a token seen in a few prompts stays near 0
CLIP = 3.0  # |log-odds| cap: e^3 = 20x the base rate either way
WEIGHT_GRID = (0.0, 1.0, 2.0, 4.0, 8.0)  # weights tried on the valid split (0: the copy bonus alone)


def copy_log_odds(
    pairs: Iterable[tuple[Sequence[int], Sequence[int]]], vocab_size: int, exclude: Iterable[int] = ()
) -> torch.Tensor:
    """`(vocab_size,)`: per token, log(P(in the answer | in the prompt) / P(any prompt token is in its answer)).

    Each (prompt ids, answer ids) pair counts a token once. The rate is shrunk toward the base rate
    with `PRIOR_COUNTS` pseudo-counts and the log-odds clipped to +-`CLIP`; tokens never in a prompt,
    and `exclude` (special tokens), get 0.

    >>> copy_log_odds([([5, 6], [5]), ([5, 7], [5]), ([6, 7], [])], 8)[5:].gt(0).tolist()
    [True, False, False]
    """
    in_prompt, both = np.zeros(vocab_size), np.zeros(vocab_size)
    excluded = set(exclude)
    for prompt, answer in pairs:
        shown = np.fromiter((t for t in set(prompt) if 0 <= t < vocab_size and t not in excluded), dtype=np.int64)
        in_prompt[shown] += 1
        both[np.intersect1d(shown, np.asarray(list(set(answer)), dtype=np.int64))] += 1
    if not in_prompt.any() or not both.any():
        return torch.zeros(vocab_size)
    base = both.sum() / in_prompt.sum()
    rate = (both + PRIOR_COUNTS * base) / (in_prompt + PRIOR_COUNTS)
    odds = np.clip(np.log(rate / base), -CLIP, CLIP)
    odds[in_prompt == 0] = 0.0
    return torch.tensor(odds, dtype=torch.float32)


def fit_copy_priors(builder, tokenizer, seed: int = 0) -> dict[str, torch.Tensor]:
    """Per text task that `builder` trains (explanation, review summary), the log-odds of its
    training examples' prompt tokens reappearing in their answers, over one rendered epoch."""
    text = {t for t, spec in TASKS.items() if spec.kind == "text"}
    examples = only_tasks(builder, text).train_examples(np.random.default_rng(seed))
    priors: dict[str, torch.Tensor] = {}
    for task in sorted({e.task for e in examples}):
        mine = [e for e in examples if e.task == task]
        prompts = tokenize(tokenizer, [e.input for e in mine])
        answers = tokenize(tokenizer, [e.target for e in mine])
        priors[task] = copy_log_odds(zip(prompts, answers), len(tokenizer), tokenizer.all_special_ids)
    return priors
