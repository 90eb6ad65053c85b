"""Word overlap between two texts: the tokenizer, longest common subsequence and F1 of ROUGE.

One owner for two users: the ROUGE and BLEU metrics (`p5rec.evaluation.metrics`) and the choice of
an explanation among retrieved candidates by their agreement (`p5rec.decoding.consensus`), which
must measure agreement the way the metric will.
"""

from __future__ import annotations

import re

__all__ = ["f1", "lcs_length", "rouge_l", "tokenize"]

_TOKEN = re.compile(r"\w+(?:'\w+)*")


def tokenize(text: str) -> list[str]:
    """Lowercase and split into word tokens; punctuation and whitespace separate tokens and are dropped.

    Apostrophes inside a word are kept (``"don't"`` is one token), so ``"Great, isn't it!"``
    becomes ``["great", "isn't", "it"]``. BLEU and ROUGE here both use this tokenizer.
    """
    if not isinstance(text, str):
        raise TypeError(f"`text` must be a str, got {type(text).__name__}")
    return _TOKEN.findall(text.lower())


def f1(overlap: float, hyp_total: int, ref_total: int) -> float:
    """The F1 of `overlap` matched units out of `hyp_total` and `ref_total`; 0 when any is 0."""
    if overlap == 0 or hyp_total == 0 or ref_total == 0:
        return 0.0
    precision, recall = overlap / hyp_total, overlap / ref_total
    return 2 * precision * recall / (precision + recall)


def lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence of two token lists."""
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, start=1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l(hyp: list[str], ref: list[str]) -> float:
    """Sentence-level ROUGE-L F1 of two token lists, 0 to 1.

    >>> round(rouge_l(tokenize("a great case"), tokenize("great case, great price")), 3)
    0.571
    """
    return f1(lcs_length(hyp, ref), len(hyp), len(ref))
