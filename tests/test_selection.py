"""Choosing a setting on valid: the simplest within one standard error of the best (p5rec.evaluation.selection)."""

from __future__ import annotations

import pytest

from p5rec.evaluation.metrics import TextScores, text_metrics
from p5rec.evaluation.selection import simplest_within_one_se

REFS = [f"the strings sound bright and warm {i}" for i in range(30)]


def scores(hits: int, start: int = 0) -> TextScores:
    """`hits` answers from row `start` on repeat their reference, the others share nothing with it."""
    rows = range(start, start + hits)
    return TextScores(REFS, [r if i in rows else "cheap" for i, r in enumerate(REFS)], max_n=2)


def test_text_scores_of_every_example_are_the_reported_metrics_and_rows_resample():
    hyps = ["the strings sound warm", "bright and warm", "cheap", "the strings sound bright and warm 3"]
    s = TextScores(REFS[:4], hyps, max_n=4)
    assert s.metrics() == text_metrics(REFS[:4], hyps, max_n=4)
    assert len(s) == 4
    # Rows are examples, repeats allowed: twice every example is the same corpus (BLEU sums, ROUGE means).
    twice = [0, 1, 2, 3, 0, 1, 2, 3]
    assert s.bleu(twice) == pytest.approx(s.bleu()) and s.rouge(twice) == pytest.approx(s.rouge())
    assert s.total([3]) == pytest.approx(300.0)  # an exact answer: BLEU, ROUGE-1 and ROUGE-L all 100
    assert s.total([2]) == 0.0


def test_a_clear_winner_is_kept_and_a_lucky_one_gives_way_to_the_simpler():
    simplicity = {"simple": 0, "complex": 1}.get
    assert simplest_within_one_se({"simple": scores(5), "complex": scores(25)}, simplicity) == "complex"
    # Ahead by one answer: right on three where the simpler is wrong, wrong on two where it is right.
    assert simplest_within_one_se({"simple": scores(15), "complex": scores(16, start=2)}, simplicity) == "simple"
    # The best alone, or a tie: the simplest of the best.
    assert simplest_within_one_se({"complex": scores(15)}, simplicity) == "complex"
    assert simplest_within_one_se({"complex": scores(15), "simple": scores(15)}, simplicity) == "simple"


def test_the_choice_is_reproducible():
    options = {k: scores(10 + i, start=i) for i, k in enumerate("abcdef")}
    order = "abcdef".index  # "f", the best, is the least simple
    first = simplest_within_one_se(options, order)
    assert all(simplest_within_one_se(options, order) == first for _ in range(3))
    assert first != "f"


def test_bad_candidates_name_the_problem():
    with pytest.raises(ValueError, match="empty"):
        simplest_within_one_se({}, len)
    with pytest.raises(ValueError, match="same examples"):
        simplest_within_one_se({"a": scores(3), "b": TextScores(REFS[:5], REFS[:5], max_n=2)}, len)
    with pytest.raises(ValueError, match="draws"):
        simplest_within_one_se({"a": scores(3)}, len, draws=0)
