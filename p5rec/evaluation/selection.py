"""Choose a setting on the valid split: the simplest whose score is within one standard error of the best.

The choices made after training (how text answers are read out, among about a hundred rules) are
decided on a few hundred valid examples, or fewer than a hundred on small data. The highest valid
score then often belongs to a rule that won by chance: on three saved models the rule with the best
valid BLEU + ROUGE-1 + ROUGE-L for review summaries scored 1-6 points lower on test than the simpler
rule one standard error below it (docs/benchmarks.md, "One standard error"). The one-standard-error
rule (Breiman et al., 1984; Hastie et al., "Elements of Statistical Learning", 7.10) takes the
simplest candidate not clearly worse than the best. Text scores include corpus BLEU, which does not
average over examples, so the standard error of each candidate's difference to the best is a
bootstrap over the valid examples, paired (every candidate is scored on the same resamples).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

import numpy as np

from p5rec.evaluation.metrics import TextScores

__all__ = ["BOOTSTRAP_DRAWS", "simplest_within_one_se"]

K = TypeVar("K", bound=Hashable)

BOOTSTRAP_DRAWS = 200  # resamples of the valid examples; the standard error moves by ~5% between seeds


def simplest_within_one_se(
    scores: Mapping[K, TextScores],
    simplicity: Callable[[K], Any],
    draws: int = BOOTSTRAP_DRAWS,
    seed: int = 0,
) -> K:
    """The simplest key of `scores` whose `TextScores.total` is within one standard error of the best's.

    Args:
        scores: candidate -> its answers' scores on the same valid examples, in the same order.
        simplicity: candidate -> a sort key, smaller for simpler candidates (also breaks ties for the best).
        draws: bootstrap resamples of the examples.
        seed: seeds the resamples, so the same scores always give the same choice.

    The best is the highest total on every example; a candidate is within one standard error when its
    total is below the best's by no more than the standard deviation of that difference over the
    resamples. With one example (no spread) only candidates that tie the best qualify.
    """
    if not scores:
        raise ValueError("`scores` is empty: there is nothing to choose from")
    sizes = {len(s) for s in scores.values()}
    if len(sizes) != 1:
        raise ValueError(f"every candidate must be scored on the same examples; got {sorted(sizes)} examples")
    if draws < 1:
        raise ValueError(f"`draws` ({draws!r}) must be >= 1")
    n = sizes.pop()
    point = {k: s.total() for k, s in scores.items()}
    best = min(scores, key=lambda k: (-point[k], simplicity(k)))
    rows = np.random.default_rng(seed).integers(0, n, size=(draws, n))
    resampled = {k: np.array([s.total(r) for r in rows]) for k, s in scores.items()}
    close = [k for k in scores if point[best] - point[k] <= float(np.std(resampled[k] - resampled[best]))]
    return min(close, key=simplicity)
