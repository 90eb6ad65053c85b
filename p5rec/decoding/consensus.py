"""Choose an answer among candidate texts: the one the candidates, weighted by the model, agree with most.

A small model trained from scratch writes explanations as strings of the right words in no order
("tone and a good volume."): its ROUGE-1 passes the retrieval baseline while ROUGE-L and BLEU-4 do
not (docs/benchmarks.md). A real sentence chosen among the training explanations of the item and
feature is fluent by construction, as a recommended item is a real catalog item. Which one: minimum
Bayes risk (Kumar and Byrne, 2004), the candidate with the highest expected ROUGE-L against the
others, each weighted by the model's probability of it (per token, sharpened by `temperature`).
Temperature 0 weighs every candidate alike: the candidate most typical of the set (its medoid),
the rule that does not read the model.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from p5rec.text_overlap import rouge_l, tokenize

__all__ = ["agreement", "consensus"]


@functools.lru_cache(maxsize=4096)
def agreement(texts: tuple[str, ...]) -> np.ndarray:
    """`(n, n)` ROUGE-L F1 between every two texts (1 on the diagonal of a non-empty text); cached,
    since the same item and feature give the same candidates for every user."""
    tokens = [tokenize(t) for t in texts]
    n = len(texts)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i, n):
            out[i, j] = out[j, i] = rouge_l(tokens[i], tokens[j])
    return out


def consensus(texts: Sequence[str], scores: Sequence[float] | None = None, temperature: float = 0.0) -> int:
    """The index of the text with the highest expected ROUGE-L F1 against all of `texts`.

    Args:
        texts: the candidates (at least one).
        scores: the model's mean log-probability per token of each text (needed when `temperature` > 0).
        temperature: weight of each text ``exp(temperature * score)``; 0: all alike. Ties go to the
            earlier text.

    >>> consensus(["great tone", "great tone and volume", "cheap"])
    0
    >>> consensus(["great tone", "great tone and volume", "cheap"], [-9.0, -9.0, -0.1], temperature=5.0)
    2
    """
    if not texts:
        raise ValueError("`texts` is empty: there is no candidate to choose")
    if not temperature >= 0 or temperature == float("inf"):
        raise ValueError(f"`temperature` ({temperature!r}) must be a finite number >= 0")
    if temperature > 0:
        if scores is None or len(scores) != len(texts):
            raise ValueError(f"`scores` must give one number per text ({len(texts)}) when `temperature` > 0")
        s = temperature * np.asarray(scores, dtype=float)
        weights = np.exp(s - s.max())
    else:
        weights = np.ones(len(texts))
    return int(np.argmax(agreement(tuple(texts)) @ weights))
