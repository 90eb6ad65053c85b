"""Metrics against hand-computed values; the arithmetic is written next to each expectation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from p5rec.evaluation.metrics import (
    binary_auc,
    bleu,
    hit_rate_at_k,
    mae,
    mrr,
    ndcg_at_k,
    ranking_metrics,
    rating_metrics,
    rmse,
    rouge,
    text_metrics,
    tokenize,
    unique_sentence_ratio,
)

# Three users; targets at rank 1, rank 3, and absent.
RANKED = [["a", "b", "c", "d"], ["x", "y", "t", "z"], ["p", "q", "r", "s"]]
TARGETS = ["a", "t", "missing"]


# ----------------------------------------------------------------------------------------- ranking


def test_hit_rate_counts_targets_within_k():
    assert hit_rate_at_k(RANKED, TARGETS, 1) == pytest.approx(1 / 3)  # only user 0
    assert hit_rate_at_k(RANKED, TARGETS, 2) == pytest.approx(1 / 3)  # user 1's target is 3rd
    assert hit_rate_at_k(RANKED, TARGETS, 3) == pytest.approx(2 / 3)
    assert hit_rate_at_k(RANKED, TARGETS, 100) == pytest.approx(2 / 3)  # lists shorter than k are fine


def test_ndcg_uses_one_over_log2_rank_plus_one():
    # user 0: 1/log2(2) = 1; user 1 at rank 3: 1/log2(4) = 0.5; user 2: 0.
    assert ndcg_at_k(RANKED, TARGETS, 3) == pytest.approx((1 + 0.5 + 0) / 3)
    assert ndcg_at_k(RANKED, TARGETS, 2) == pytest.approx(1 / 3)  # rank 3 falls outside k=2


def test_mrr_whole_list_and_cutoff():
    assert mrr(RANKED, TARGETS) == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert mrr(RANKED, TARGETS, k=2) == pytest.approx(1 / 3)


def test_duplicate_item_counts_at_first_position():
    # "b" appears twice; the target "c" is at rank 3 even though it is the 2nd distinct item.
    assert mrr([["b", "b", "c"]], ["c"]) == pytest.approx(1 / 3)
    assert mrr([["c", "c"]], ["c"]) == 1.0


def test_ranking_metrics_matches_single_functions_and_names_keys():
    out = ranking_metrics(RANKED, TARGETS, ks=(1, 3))
    assert list(out) == ["hr@1", "hr@3", "ndcg@1", "ndcg@3", "mrr"]
    assert out["hr@3"] == pytest.approx(hit_rate_at_k(RANKED, TARGETS, 3))
    assert out["ndcg@3"] == pytest.approx(0.5)  # (1 + 0.5 + 0) / 3
    assert out["ndcg@1"] == out["hr@1"]
    assert out["mrr"] == pytest.approx(mrr(RANKED, TARGETS))
    default = ranking_metrics(RANKED, TARGETS)
    assert {"hr@1", "hr@5", "hr@10", "hr@20", "ndcg@5", "ndcg@10", "ndcg@20", "mrr"} <= set(default)


def test_ranking_accepts_numpy_rows_and_integer_items():
    ranked = np.array([[3, 1, 2], [2, 3, 1]])
    assert hit_rate_at_k(ranked, [1, 1], 2) == pytest.approx(0.5)


@pytest.mark.parametrize("k", [0, -1, 2.5, True, "5"])
def test_bad_k_is_rejected(k):
    with pytest.raises(ValueError, match=r"`k` .* must be a positive integer"):
        hit_rate_at_k(RANKED, TARGETS, k)


def test_ranking_input_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"`ranked` has 3 lists but `targets` has 2"):
        ndcg_at_k(RANKED, TARGETS[:2], 5)
    with pytest.raises(ValueError, match="no user to evaluate"):
        mrr([], [])
    with pytest.raises(TypeError, match=r"`ranked`\[0\] is a string"):
        hit_rate_at_k(["abc"], ["a"], 1)
    with pytest.raises(ValueError, match=r"`ks` .* must be a non-empty sequence"):
        ranking_metrics(RANKED, TARGETS, ks=10)
    with pytest.raises(ValueError, match=r"`ks` \(0\) must be a positive integer"):
        ranking_metrics(RANKED, TARGETS, ks=(0, 5))


# ------------------------------------------------------------------------------------------ rating


def test_rmse_and_mae_hand_computed():
    pred, true = [3.0, 5.0, 2.0, 4.0], [4.0, 5.0, 4.0, 4.0]
    # errors -1, 0, -2, 0 -> squared 1, 0, 4, 0 -> mean 1.25
    assert rmse(pred, true) == pytest.approx(math.sqrt(1.25))
    assert mae(pred, true) == pytest.approx(0.75)  # (1 + 0 + 2 + 0) / 4


def test_rmse_rejects_invalid_values_and_points_to_rating_metrics():
    with pytest.raises(ValueError, match=r"`predictions`\[1\] is nan.*rating_metrics"):
        rmse([1.0, float("nan")], [1.0, 2.0])
    with pytest.raises(TypeError, match=r"`predictions`\[0\] is '4'.*parse model outputs"):
        mae(["4"], [4.0])
    with pytest.raises(ValueError, match=r"`predictions` has 1 values but `truths` has 2"):
        rmse([1.0], [1.0, 2.0])


def test_rating_metrics_counts_invalid_outputs_and_scores_valid_ones():
    pred = [5.0, None, 3.0, float("nan")]
    true = [4.0, 5.0, 3.0, 1.0]
    out = rating_metrics(pred, true)
    # valid pairs: (5, 4) and (3, 3) -> errors 1, 0 -> RMSE sqrt(0.5), MAE 0.5
    assert out["rmse"] == pytest.approx(math.sqrt(0.5))
    assert out["mae"] == pytest.approx(0.5)
    assert (out["count"], out["valid"], out["invalid"]) == (4, 2, 2)
    assert out["invalid_rate"] == pytest.approx(0.5)
    assert "rmse_fallback" not in out


def test_rating_metrics_fallback_scores_every_example():
    out = rating_metrics([5.0, None, 3.0, float("inf")], [4.0, 5.0, 3.0, 1.0], fallback=4.0)
    # filled: 5, 4, 3, 4 -> errors 1, -1, 0, 3 -> squares 1 + 1 + 0 + 9 = 11 over 4
    assert out["rmse_fallback"] == pytest.approx(math.sqrt(11 / 4))
    assert out["mae_fallback"] == pytest.approx(5 / 4)
    assert out["invalid"] == 2


def test_rating_metrics_all_invalid_reports_nan_not_zero():
    out = rating_metrics([None, None], [1.0, 2.0])
    assert math.isnan(out["rmse"]) and out["invalid_rate"] == 1.0
    with pytest.raises(ValueError, match=r"`fallback` \(nan\) must be a finite number"):
        rating_metrics([None], [1.0], fallback=float("nan"))


# -------------------------------------------------------------------------------------------- text


def test_tokenize_lowercases_and_drops_punctuation():
    assert tokenize("Great, isn't it!  Sound\tQUALITY.") == ["great", "isn't", "it", "sound", "quality"]


def test_bleu_perfect_match_is_100():
    assert bleu(["the sound is great and clear"], ["The sound is great, and clear!"]) == pytest.approx(100.0)


def test_bleu_2_hand_computed_with_brevity_penalty():
    refs = ["the cat sat on the mat"]
    hyps = ["the cat on the mat"]
    # unigrams: hyp {the:2, cat, on, mat} all in ref (the:2) -> 5/5
    # bigrams: (the cat) (cat on) (on the) (the mat): matches the cat, on the, the mat -> 3/4
    # c = 5 <= r = 6 -> BP = exp(1 - 6/5)
    expected = 100 * math.exp(1 - 6 / 5) * math.exp((math.log(1.0) + math.log(3 / 4)) / 2)
    assert bleu(refs, hyps, max_n=2) == pytest.approx(expected)


def test_bleu_is_corpus_level_not_mean_of_sentences():
    refs = ["a b c", "d e f g"]
    hyps = ["a b c", "d e x y"]
    # unigram: 3/3 + 2/4 = 5/7; bigram: 2/2 + 1/3 = 3/5; lengths 7 vs 7 -> BP 1
    expected = 100 * math.sqrt(5 / 7 * 3 / 5)
    assert bleu(refs, hyps, max_n=2) == pytest.approx(expected)


def test_bleu_clips_repeated_words_and_zero_precision_gives_zero():
    # hyp "the the the" vs ref "the cat": unigram matches clipped to 1 of 3
    assert bleu(["the cat"], ["the the the"], max_n=1) == pytest.approx(100 / 3)
    assert bleu(["the cat"], ["dog"], max_n=1) == 0.0
    assert bleu(["a b c d"], ["a b c"], max_n=4) == 0.0  # no 4-gram in the hypothesis


def test_bleu_accepts_pretokenized_lists():
    assert bleu([["The", "Cat"]], [["The", "Cat"]], max_n=2) == pytest.approx(100.0)


def test_rouge_hand_computed():
    out = rouge(["the cat sat on the mat"], ["the cat on the mat"])
    # ROUGE-1: overlap 5, P 5/5, R 5/6 -> F1 = 2*1*(5/6)/(1+5/6) = 10/11
    assert out["rouge_1"] == pytest.approx(100 * 10 / 11)
    # ROUGE-2: overlap 3 (the cat, on the, the mat), P 3/4, R 3/5 -> F1 = 2*.75*.6/1.35 = 2/3
    assert out["rouge_2"] == pytest.approx(100 * 2 / 3)
    # ROUGE-L: LCS "the cat on the mat" = 5 -> same as ROUGE-1
    assert out["rouge_l"] == pytest.approx(100 * 10 / 11)


def test_rouge_l_respects_order_and_averages_over_pairs():
    out = rouge(["a b c d", "x y"], ["d c b a", "x y"])
    # pair 0: LCS of (a b c d) and (d c b a) is 1 -> P = R = 1/4 -> F1 1/4; ROUGE-2 overlap 0
    # pair 1: exact -> 1 everywhere. Means: L (0.25 + 1)/2, 1: (1 + 1)/2, 2: (0 + 1)/2
    assert out == pytest.approx({"rouge_1": 100.0, "rouge_2": 50.0, "rouge_l": 62.5})


def test_rouge_empty_side_scores_zero():
    assert rouge(["..."], ["something"]) == {"rouge_1": 0.0, "rouge_2": 0.0, "rouge_l": 0.0}


def test_unique_sentence_ratio_sees_through_case_and_punctuation():
    # "Great gift!" and "great gift" are one answer; "Nice" another: 2 distinct of 4
    assert unique_sentence_ratio(["Great gift!", "great gift", "Nice", "Great gift"]) == 0.5
    assert unique_sentence_ratio(["a", "b", "c"]) == 1.0
    with pytest.raises(ValueError, match="`hypotheses` is empty"):
        unique_sentence_ratio([])


def test_text_metrics_is_bleu_rouge_and_usr():
    refs, hyps = ["a b c d", "x y"], ["a b c d", "a b c d"]
    out = text_metrics(refs, hyps, max_n=2)
    assert out == {"bleu_2": bleu(refs, hyps, max_n=2), **rouge(refs, hyps), "usr": 0.5}


def test_text_input_errors():
    with pytest.raises(ValueError, match=r"`references` has 2 texts but `hypotheses` has 1"):
        bleu(["a", "b"], ["a"])
    with pytest.raises(TypeError, match=r"`hypotheses` is a single string"):
        rouge(["a"], "a")
    with pytest.raises(TypeError, match=r"`references`\[0\] is int"):
        rouge([3], ["a"])
    with pytest.raises(ValueError, match=r"`max_n` \(0\) must be a positive integer"):
        bleu(["a"], ["a"], max_n=0)


def test_binary_auc_by_hand():
    # positives 0.8, 0.4; negatives 0.5, 0.1: pairs (0.8>0.5) (0.8>0.1) (0.4<0.5) (0.4>0.1) -> 3/4
    assert binary_auc([0.8, 0.5, 0.4, 0.1], [True, False, True, False]) == pytest.approx(0.75)
    # a tie between a positive and a negative counts one half: (0.5 + 0) / 2
    assert binary_auc([0.7, 0.7, 0.9], [True, False, False]) == pytest.approx(0.25)
    assert binary_auc([0.3, 0.3, 0.3], [True, False, True]) == pytest.approx(0.5)  # constant scores
    assert math.isnan(binary_auc([0.1, 0.2], [True, True]))  # one class only
    with pytest.raises(ValueError):
        binary_auc([0.1, float("nan")], [True, False])
