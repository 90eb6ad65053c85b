"""Choose an answer among candidate texts: the one the candidates, weighted by the model, agree with most.

A small model trained from scratch writes explanations and titles as strings of the right words in
no order ("tone and a good volume."): their ROUGE-1 passes the simple baselines while ROUGE-L and
BLEU do not (docs/benchmarks.md). A real sentence chosen among training answers is fluent by
construction, as a recommended item is a real catalog item. Which one: minimum Bayes risk (Kumar
and Byrne, 2004), the candidate with the highest expected ROUGE-L against the candidates, each
weighted by the model's probability of it (per token, sharpened by the rule's `temperature`), plus
`relevance` times the share of its words that the answer's source holds (the review a title is
for, the feature an explanation is about). Temperature 0 weighs every candidate alike and does not
read the model.

The candidates are a sample of the answers the training data gives such a prompt, so a text written
by many reviewers is more likely than one written once: `frequency` weighs each candidate by its
training count to that power (Gift Cards' test explanations, where "Great gift" repeats: BLEU-4
15.2 count-weighted against 11.7). And the most agreed-on text is a short one (half the words of
a reference on Gift Cards), which corpus BLEU's brevity penalty punishes: `brevity` adds BLEU's
own factor, ``min(1, exp(1 - expected length / length))``, against the candidates' weighted mean
length (docs/benchmarks.md, "Counts and length in the choice").
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from p5rec._text_overlap import rouge_l, tokenize

__all__ = ["Candidates", "ChoiceRule", "agreement", "consensus", "coverage", "texts_and_counts"]

# A prompt's candidates: texts, or (text, training count) pairs (a bare text counts once).
Candidates = Sequence[str] | Sequence[tuple[str, int]]


FIELDS = ("temperature", "relevance", "frequency", "brevity")  # ChoiceRule's numbers, in order


@dataclass(frozen=True)
class ChoiceRule:
    """How a text task's answer is chosen among its candidates (chosen on the valid split).

    Args:
        temperature: each candidate weighs ``exp(temperature * mean log-probability per token)``; 0: alike.
        relevance: weight of the share of a candidate's words found in the answer's source.
        frequency: each candidate also weighs its training count to this power; 0: alike.
        brevity: weight of BLEU's brevity factor of a candidate against the expected length.
    """

    temperature: float = 0.0
    relevance: float = 0.0
    frequency: float = 0.0
    brevity: float = 0.0

    def __post_init__(self) -> None:
        for name in FIELDS:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < float("inf"):
                raise ValueError(f"`{name}` ({v!r}) must be a finite number >= 0")


@functools.lru_cache(maxsize=1024)
def agreement(texts: tuple[str, ...]) -> np.ndarray:
    """`(n, n)` ROUGE-L F1 between every two texts (1 on the diagonal of a non-empty text); cached,
    since the same item and feature (or the same item's titles) give the same candidates every time.
    A summary's list (an item's titles and the 100 frequent ones) is up to 120 texts, 115 KB: 1,024
    lists bound the cache near 120 MB (Musical Instruments' 887 test reviews have 502 lists, 44 MB)."""
    tokens = [tokenize(t) for t in texts]
    n = len(texts)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i, n):
            out[i, j] = out[j, i] = rouge_l(tokens[i], tokens[j])
    return out


@functools.lru_cache(maxsize=65536)
def _words(text: str) -> tuple[str, ...]:
    return tuple(tokenize(text))


def coverage(texts: Sequence[str], source: str) -> np.ndarray:
    """Per text, the share of its words that `source` holds (0 for a text without words).

    >>> coverage(["great strings", "works fine"], "These strings sound great.").tolist()
    [1.0, 0.0]
    """
    held = set(_words(source))  # cached: the choice after training scores every rule on the same reviews
    return np.array([sum(w in held for w in ws) / len(ws) if (ws := _words(t)) else 0.0 for t in texts])


def texts_and_counts(candidates: Candidates) -> tuple[list[str], list[int]]:
    """A candidate list as its texts and their training counts (1 for a bare text).

    >>> texts_and_counts([("great", 3), ("ok", 1)]), texts_and_counts(["great"])
    ((['great', 'ok'], [3, 1]), (['great'], [1]))
    """
    texts, counts = [], []
    for c in candidates:
        if isinstance(c, str):
            text, count = c, 1
        elif isinstance(c, (tuple, list)) and len(c) == 2 and isinstance(c[0], str) and type(c[1]) is int:
            text, count = c
        else:
            raise ValueError(f"a candidate must be a text or a (text, count) pair, got {c!r:.80}")
        texts.append(text)
        counts.append(count)
    return texts, counts


def consensus(
    texts: Sequence[str],
    scores: Sequence[float] | None = None,
    rule: ChoiceRule = ChoiceRule(),
    source: str = "",
    counts: Sequence[int] | None = None,
) -> int:
    """The index of the text with the highest expected ROUGE-L F1 against all of `texts` (each
    weighted by the model under `rule.temperature` and by its count under `rule.frequency`), plus
    `rule.relevance` times its coverage by `source` (the review a summary is for, the feature an
    explanation is about) and `rule.brevity` times BLEU's brevity factor of its length against the
    texts' weighted mean length. Ties go to the earlier text.

    Args:
        texts: the candidates (at least one).
        scores: the model's mean log-probability per token of each text (needed when the temperature is > 0).
        rule: the temperature, the relevance, frequency and brevity weights.
        source: the text the answer should draw on (used when `rule.relevance` > 0).
        counts: how often each text is a training answer (used when `rule.frequency` > 0; None: once each).

    >>> consensus(["great tone", "great tone and volume", "cheap"])
    0
    >>> consensus(["great tone", "great tone and volume", "cheap"], [-9.0, -9.0, -0.1], ChoiceRule(5.0))
    2
    >>> consensus(["great tone", "great tone and volume", "cheap"], rule=ChoiceRule(frequency=1), counts=[1, 1, 9])
    2
    """
    if not texts:
        raise ValueError("`texts` is empty: there is no candidate to choose")
    if rule.temperature > 0:
        if scores is None or len(scores) != len(texts):
            raise ValueError(f"`scores` must give one number per text ({len(texts)}) when the temperature is > 0")
        s = rule.temperature * np.asarray(scores, dtype=float)
        weights = np.exp(s - s.max())
    else:
        weights = np.ones(len(texts))
    if rule.frequency and counts is not None:
        if len(counts) != len(texts) or min(counts) < 1:
            raise ValueError(f"`counts` must give one count >= 1 per text ({len(texts)}), got {list(counts)!r:.80}")
        weights = weights * np.asarray(counts, dtype=float) ** rule.frequency
    weights = weights / weights.sum()
    value = agreement(tuple(texts)) @ weights
    if rule.relevance:
        value = value + rule.relevance * coverage(texts, source)
    if rule.brevity:
        lengths = np.array([len(_words(t)) for t in texts], dtype=float)
        expected = lengths @ weights
        factor = np.where(lengths > 0, np.minimum(1.0, np.exp(1.0 - expected / np.maximum(lengths, 1.0))), 0.0)
        value = value + rule.brevity * factor
    return int(np.argmax(value))
