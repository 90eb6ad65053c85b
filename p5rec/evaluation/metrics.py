"""Evaluation metrics as pure functions over plain lists and numpy arrays.

Three families, each matching how P5 (Geng et al., 2022) reports its tasks:

* ranking (sequential / direct recommendation, leave-one-out, one held-out item per user):
  HR@k, NDCG@k, MRR;
* rating prediction: RMSE, MAE, with invalid model outputs counted, never dropped silently;
* text (explanation generation, review summarization): corpus BLEU-n and ROUGE-1/2/L F1,
  both on a 0-100 scale, and the unique sentence ratio (PETER's USR), which shows a model that
  writes one sentence for every input however well that sentence scores.

Every function validates its inputs and names the offending argument, so a harness bug (say,
one list shorter than the other) fails loudly instead of averaging over the wrong users.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from p5rec._text_overlap import f1, rouge_l, tokenize

__all__ = [
    "TextScores",
    "binary_auc",
    "bleu",
    "hit_rate_at_k",
    "mae",
    "mrr",
    "ndcg_at_k",
    "ranking_metrics",
    "rating_metrics",
    "rmse",
    "rouge",
    "text_metrics",
    "tokenize",
    "unique_sentence_ratio",
]

# ----------------------------------------------------------------------------------------- ranking


def _check_k(k: Any, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"`{name}` ({k!r}) must be a positive integer")
    return int(k)


def _target_ranks(ranked: Sequence[Sequence[Hashable]], targets: Sequence[Hashable]) -> np.ndarray:
    """1-based rank of each user's target in their ranked list, 0 where it is absent.

    A duplicated item counts at its first position, so duplicates can only push the target down.
    """
    if len(ranked) != len(targets):
        raise ValueError(
            f"`ranked` has {len(ranked)} lists but `targets` has {len(targets)} items: "
            "pass one ranked list and one held-out item per user"
        )
    if len(targets) == 0:
        raise ValueError("`ranked` and `targets` are empty: there is no user to evaluate")
    ranks = np.zeros(len(targets), dtype=np.int64)
    for u, (items, target) in enumerate(zip(ranked, targets, strict=True)):
        if isinstance(items, (str, bytes)):
            raise TypeError(f"`ranked`[{u}] is a string ({items!r}); each entry must be a list of item IDs")
        for position, item in enumerate(items, start=1):
            if item == target:
                ranks[u] = position
                break
    return ranks


def hit_rate_at_k(ranked: Sequence[Sequence[Hashable]], targets: Sequence[Hashable], k: int) -> float:
    """Fraction of users whose held-out item is among their top `k` recommendations.

    .. math:: \\mathrm{HR@k} = \\frac{1}{|U|} \\sum_{u \\in U} \\mathbb{1}[\\mathrm{rank}_u \\le k]

    Args:
        ranked: one ranked list of item IDs per user, best first (may be shorter than `k`).
        targets: the single held-out item of each user, aligned with `ranked`.
        k: cut-off, a positive integer.
    """
    k = _check_k(k)
    ranks = _target_ranks(ranked, targets)
    return float(np.mean((ranks > 0) & (ranks <= k)))


def ndcg_at_k(ranked: Sequence[Sequence[Hashable]], targets: Sequence[Hashable], k: int) -> float:
    """Normalized discounted cumulative gain at `k` with one relevant item per user.

    With a single relevant item the ideal DCG is 1, so for a user whose target sits at 1-based
    rank ``r``:

    .. math:: \\mathrm{NDCG@k} = \\frac{1}{|U|} \\sum_{u} \\frac{\\mathbb{1}[r_u \\le k]}{\\log_2(r_u + 1)}

    Args:
        ranked: one ranked list of item IDs per user, best first.
        targets: the single held-out item of each user.
        k: cut-off, a positive integer.
    """
    k = _check_k(k)
    ranks = _target_ranks(ranked, targets)
    hit = (ranks > 0) & (ranks <= k)
    gains = np.zeros(len(ranks))
    gains[hit] = 1.0 / np.log2(ranks[hit] + 1.0)
    return float(gains.mean())


def mrr(ranked: Sequence[Sequence[Hashable]], targets: Sequence[Hashable], k: int | None = None) -> float:
    """Mean reciprocal rank of the held-out item (0 for a user whose target is missing).

    .. math:: \\mathrm{MRR@k} = \\frac{1}{|U|} \\sum_{u} \\frac{\\mathbb{1}[r_u \\le k]}{r_u}

    Args:
        ranked: one ranked list of item IDs per user, best first.
        targets: the single held-out item of each user.
        k: optional cut-off; ``None`` (default) uses each whole ranked list.
    """
    limit = None if k is None else _check_k(k)
    ranks = _target_ranks(ranked, targets)
    hit = ranks > 0 if limit is None else (ranks > 0) & (ranks <= limit)
    rr = np.zeros(len(ranks))
    rr[hit] = 1.0 / ranks[hit]
    return float(rr.mean())


def ranking_metrics(
    ranked: Sequence[Sequence[Hashable]], targets: Sequence[Hashable], ks: Sequence[int] = (1, 5, 10, 20)
) -> dict[str, float]:
    """HR@k and NDCG@k for every k in `ks`, and MRR over the whole lists, in one pass.

    Keys are lowercase: ``"hr@10"``, ``"ndcg@10"``, ``"mrr"``. With one relevant item,
    ``ndcg@1 == hr@1``; it is still reported so tables have a column per k.

    Args:
        ranked: one ranked list of item IDs per user, best first.
        targets: the single held-out item of each user.
        ks: cut-offs, positive integers (default ``(1, 5, 10, 20)``).

    >>> ranking_metrics([["a", "b"], ["c", "d"]], ["b", "x"], ks=(1, 2))
    {'hr@1': 0.0, 'hr@2': 0.5, 'ndcg@1': 0.0, 'ndcg@2': 0.31546487678572877, 'mrr': 0.25}
    """
    if isinstance(ks, (int, np.integer)) or len(ks) == 0:
        raise ValueError(f"`ks` ({ks!r}) must be a non-empty sequence of positive integers, e.g. (5, 10)")
    cutoffs = [_check_k(k, "ks") for k in ks]
    ranks = _target_ranks(ranked, targets)
    found = ranks > 0
    discount = np.zeros(len(ranks))
    discount[found] = 1.0 / np.log2(ranks[found] + 1.0)
    reciprocal = np.zeros(len(ranks))
    reciprocal[found] = 1.0 / ranks[found]
    out: dict[str, float] = {}
    for k in cutoffs:
        out[f"hr@{k}"] = float(np.mean(found & (ranks <= k)))
    for k in cutoffs:
        out[f"ndcg@{k}"] = float(np.where(found & (ranks <= k), discount, 0.0).mean())
    out["mrr"] = float(reciprocal.mean())
    return out


# ------------------------------------------------------------------------------------------ rating


def _as_float_array(values: Sequence[float], name: str, allow_invalid: bool) -> np.ndarray:
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        if v is None and allow_invalid:
            out[i] = np.nan
            continue
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise TypeError(
                f"`{name}`[{i}] is {v!r} ({type(v).__name__}); expected a number"
                + (" or None" if allow_invalid else "")
                + " (parse model outputs to floats before scoring)"
            )
        out[i] = float(v)
    return out


def _check_pair(predictions: Sequence[float], truths: Sequence[float]) -> None:
    if len(predictions) != len(truths):
        raise ValueError(
            f"`predictions` has {len(predictions)} values but `truths` has {len(truths)}: they must be aligned"
        )
    if len(truths) == 0:
        raise ValueError("`predictions` and `truths` are empty: there is nothing to score")


def _finite(values: Sequence[float], name: str) -> np.ndarray:
    arr = _as_float_array(values, name, allow_invalid=False)
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(
            f"`{name}`[{bad[0]}] is {arr[bad[0]]}; {name} must be finite "
            "(use rating_metrics() to count invalid model outputs)"
        )
    return arr


def rmse(predictions: Sequence[float], truths: Sequence[float]) -> float:
    """Root mean squared error.

    .. math:: \\mathrm{RMSE} = \\sqrt{\\frac{1}{N} \\sum_{i} (\\hat r_i - r_i)^2}

    Args:
        predictions: predicted ratings, finite numbers.
        truths: true ratings, aligned with `predictions`.
    """
    _check_pair(predictions, truths)
    p, t = _finite(predictions, "predictions"), _finite(truths, "truths")
    return float(np.sqrt(np.mean((p - t) ** 2)))


def mae(predictions: Sequence[float], truths: Sequence[float]) -> float:
    """Mean absolute error.

    .. math:: \\mathrm{MAE} = \\frac{1}{N} \\sum_{i} |\\hat r_i - r_i|

    Args:
        predictions: predicted ratings, finite numbers.
        truths: true ratings, aligned with `predictions`.
    """
    _check_pair(predictions, truths)
    p, t = _finite(predictions, "predictions"), _finite(truths, "truths")
    return float(np.mean(np.abs(p - t)))


def rating_metrics(
    predictions: Sequence[float | None], truths: Sequence[float], fallback: float | None = None
) -> dict[str, float]:
    """RMSE and MAE for model outputs that may be invalid, with the invalid ones counted.

    Policy: a prediction that is ``None`` (the output did not parse as a number), NaN or
    infinite is *invalid*. ``rmse``/``mae`` are computed over the valid predictions only (NaN
    when none is valid), and ``invalid``/``invalid_rate`` say how many were left out, so a model
    cannot look better by refusing to answer. If `fallback` is given (e.g. the train mean rating),
    ``rmse_fallback``/``mae_fallback`` also score every example, invalid ones replaced by it:
    that is the number to compare with a baseline that always answers.

    Args:
        predictions: parsed model outputs; numbers, or ``None`` for an unparseable output.
        truths: true ratings, finite numbers aligned with `predictions`.
        fallback: optional finite value substituted for invalid predictions.

    Returns:
        ``{"rmse", "mae", "count", "valid", "invalid", "invalid_rate"}`` plus
        ``{"rmse_fallback", "mae_fallback"}`` when `fallback` is given.
    """
    _check_pair(predictions, truths)
    p = _as_float_array(predictions, "predictions", allow_invalid=True)
    t = _finite(truths, "truths")
    if fallback is not None and (isinstance(fallback, bool) or not math.isfinite(fallback)):
        raise ValueError(f"`fallback` ({fallback!r}) must be a finite number, e.g. the train mean rating")
    valid = np.isfinite(p)
    n_valid = int(valid.sum())
    err = p[valid] - t[valid]
    out = {
        "rmse": float(np.sqrt(np.mean(err**2))) if n_valid else math.nan,
        "mae": float(np.mean(np.abs(err))) if n_valid else math.nan,
        "count": len(t),
        "valid": n_valid,
        "invalid": len(t) - n_valid,
        "invalid_rate": float(1.0 - n_valid / len(t)),
    }
    if fallback is not None:
        filled = np.where(valid, p, float(fallback))
        out["rmse_fallback"] = float(np.sqrt(np.mean((filled - t) ** 2)))
        out["mae_fallback"] = float(np.mean(np.abs(filled - t)))
    return out


def binary_auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve: the chance that a random positive scores above a random negative.

    Ties count one half (average ranks, the Mann-Whitney U statistic). NaN when only one class is
    present. For yes/no recommendation it says whether the model *orders* pairs well even when
    its threshold is off (a model answering "yes" to everything has accuracy 0.5 and any AUC).
    """
    s = _finite(scores, "scores")
    y = np.asarray([bool(v) for v in labels])
    _check_pair(s, y)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    from scipy.stats import rankdata

    ranks = rankdata(s)  # tied scores share their average rank
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


# -------------------------------------------------------------------------------------------- text


def _tokens(texts: Sequence[str | Sequence[str]], name: str) -> list[list[str]]:
    if isinstance(texts, str):
        raise TypeError(f"`{name}` is a single string; pass a list with one text per example")
    out = []
    for i, t in enumerate(texts):
        if isinstance(t, str):
            out.append(tokenize(t))
        elif isinstance(t, Sequence) and all(isinstance(w, str) for w in t):
            out.append(list(t))  # already tokenized: used as given
        else:
            raise TypeError(f"`{name}`[{i}] is {type(t).__name__}; expected a str or a list of str tokens")
    return out


def _text_pairs(
    references: Sequence[str | Sequence[str]], hypotheses: Sequence[str | Sequence[str]]
) -> tuple[list[list[str]], list[list[str]]]:
    refs, hyps = _tokens(references, "references"), _tokens(hypotheses, "hypotheses")
    if len(refs) != len(hyps):
        raise ValueError(
            f"`references` has {len(refs)} texts but `hypotheses` has {len(hyps)}: pass one reference per hypothesis"
        )
    if not refs:
        raise ValueError("`references` and `hypotheses` are empty: there is nothing to score")
    return refs, hyps


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


class TextScores:
    """The per-example parts of the text metrics, from which any subset of the examples scores as a corpus.

    BLEU is a corpus score (matches and lengths are summed before dividing), so it cannot be averaged
    over examples; keeping each example's clipped n-gram matches, n-gram counts and lengths (and its
    ROUGE F1s) lets a choice on a small valid split resample the examples (a bootstrap) without
    tokenizing again. :func:`bleu`, :func:`rouge` and :func:`text_metrics` are this on every example.

    Args:
        references: one reference per example, a string (tokenized by :func:`tokenize`) or a list of tokens.
        hypotheses: the answers, same forms, aligned with `references`.
        max_n: highest BLEU n-gram order (default 4).
    """

    def __init__(
        self, references: Sequence[str | Sequence[str]], hypotheses: Sequence[str | Sequence[str]], max_n: int = 4
    ) -> None:
        self.max_n = _check_k(max_n, "max_n")
        refs, hyps = _text_pairs(references, hypotheses)
        n = len(refs)
        self.matches, self.possible = np.zeros((n, self.max_n)), np.zeros((n, self.max_n))
        self.hyp_len = np.array([len(h) for h in hyps], dtype=float)
        self.ref_len = np.array([len(r) for r in refs], dtype=float)
        self.rouge_f1 = {"rouge_1": np.zeros(n), "rouge_2": np.zeros(n), "rouge_l": np.zeros(n)}
        self._answers = [tuple(h) for h in hyps]
        for i, (ref, hyp) in enumerate(zip(refs, hyps, strict=True)):
            for order in range(1, max(self.max_n, 2) + 1):
                h, r = _ngrams(hyp, order), _ngrams(ref, order)
                overlap, count = sum(min(c, r[g]) for g, c in h.items()), sum(h.values())
                if order <= self.max_n:
                    self.matches[i, order - 1], self.possible[i, order - 1] = overlap, count
                if order <= 2:
                    self.rouge_f1[f"rouge_{order}"][i] = f1(overlap, count, sum(r.values()))
            self.rouge_f1["rouge_l"][i] = rouge_l(hyp, ref)

    def __len__(self) -> int:
        return len(self.hyp_len)

    def bleu(self, rows: np.ndarray | None = None) -> float:
        """Corpus BLEU-`max_n` (0-100) of the examples `rows` (indices, repeats allowed; None: all)."""
        pick = slice(None) if rows is None else rows
        matches, possible = self.matches[pick].sum(0), self.possible[pick].sum(0)
        if np.any(possible == 0) or np.any(matches == 0):
            return 0.0
        hyp_len, ref_len = float(self.hyp_len[pick].sum()), float(self.ref_len[pick].sum())
        brevity = 1.0 if hyp_len > ref_len else math.exp(1.0 - ref_len / hyp_len)
        return 100.0 * brevity * math.exp(float(np.mean(np.log(matches / possible))))

    def rouge(self, rows: np.ndarray | None = None) -> dict[str, float]:
        """Mean ROUGE-1/2/L F1 (0-100) of the examples `rows` (None: all)."""
        pick = slice(None) if rows is None else rows
        return {name: 100.0 * float(v[pick].mean()) for name, v in self.rouge_f1.items()}

    def metrics(self) -> dict[str, float]:
        """What a text task reports on every example: BLEU-`max_n`, ROUGE-1/2/L and the unique sentence ratio."""
        return {f"bleu_{self.max_n}": self.bleu(), **self.rouge(), "usr": unique_sentence_ratio(self._answers)}

    def total(self, rows: np.ndarray | None = None) -> float:
        """BLEU + ROUGE-1 + ROUGE-L of the examples `rows`: the one number the choices after training compare."""
        r = self.rouge(rows)
        return self.bleu(rows) + r["rouge_1"] + r["rouge_l"]


def bleu(references: Sequence[str | Sequence[str]], hypotheses: Sequence[str | Sequence[str]], max_n: int = 4) -> float:
    """Corpus BLEU-`max_n` (Papineni et al., 2002) with brevity penalty, on a 0-100 scale.

    Clipped n-gram matches and candidate n-gram counts are summed over the whole corpus before
    dividing (corpus level, not an average of sentence scores), uniform weights, no smoothing,
    one reference per hypothesis; this is the computation P5 and PETER report (BLEU-4 for
    explanations, BLEU-2 for review summaries), times 100:

    .. math::
        p_n = \\frac{\\sum_s \\sum_{g \\in n\\text{-grams}(h_s)} \\min(c_{h_s}(g), c_{r_s}(g))}
                   {\\sum_s |n\\text{-grams}(h_s)|}, \\quad
        \\mathrm{BP} = \\begin{cases} 1 & c > r \\\\ e^{1 - r/c} & c \\le r \\end{cases}

    .. math::
        \\mathrm{BLEU} = 100 \\, \\mathrm{BP} \\, \\exp\\Big(\\tfrac{1}{N} \\sum_{n=1}^{N} \\log p_n\\Big)

    where ``c`` and ``r`` are the total hypothesis and reference lengths. If any ``p_n`` is 0
    (or the hypotheses are all empty) the score is 0.

    Args:
        references: one reference per example, a string (tokenized by :func:`tokenize`) or a
            list of tokens.
        hypotheses: the generated texts, same forms, aligned with `references`.
        max_n: highest n-gram order N (default 4).
    """
    return TextScores(references, hypotheses, max_n).bleu()


def rouge(references: Sequence[str | Sequence[str]], hypotheses: Sequence[str | Sequence[str]]) -> dict[str, float]:
    """ROUGE-1, ROUGE-2 and ROUGE-L F1 (Lin, 2004), averaged over examples, on a 0-100 scale.

    For each pair, with tokens from :func:`tokenize` (lowercase, punctuation dropped, no
    stemming, no stopword removal):

    .. math::
        P = \\frac{m}{|h|}, \\; R = \\frac{m}{|r|}, \\; F_1 = \\frac{2PR}{P + R}

    where for ROUGE-N ``m`` is the clipped count of shared n-grams and ``|h|``, ``|r|`` the
    n-gram counts; for ROUGE-L ``m`` is the length of the longest common subsequence and
    ``|h|``, ``|r|`` the token counts (sentence-level LCS). A pair with an empty side scores 0.
    The corpus score is the mean F1 over pairs, times 100.

    Args:
        references: one reference per example, a string or a list of tokens.
        hypotheses: the generated texts, aligned with `references`.

    Returns:
        ``{"rouge_1", "rouge_2", "rouge_l"}``.
    """
    return TextScores(references, hypotheses, max_n=1).rouge()


def unique_sentence_ratio(hypotheses: Sequence[str | Sequence[str]]) -> float:
    """Share of distinct answers among the generated texts, in [0, 1] (USR; Li et al., 2020, PETER).

    BLEU and ROUGE reward a constant answer that fits the corpus ("Great product" for every review
    can beat a weak model); a ratio near 0 shows such an answer at once. Texts are compared after
    :func:`tokenize`, so case and punctuation do not make two answers distinct.
    """
    hyps = _tokens(hypotheses, "hypotheses")
    if not hyps:
        raise ValueError("`hypotheses` is empty: there is nothing to score")
    return len({tuple(h) for h in hyps}) / len(hyps)


def text_metrics(
    references: Sequence[str | Sequence[str]], hypotheses: Sequence[str | Sequence[str]], max_n: int
) -> dict[str, float]:
    """What a text task reports: corpus BLEU-`max_n` (P5: 4 for explanations, 2 for review
    summaries), ROUGE-1/2/L and the unique sentence ratio ``usr``, the same for a model and a baseline."""
    return TextScores(references, hypotheses, max_n).metrics()
