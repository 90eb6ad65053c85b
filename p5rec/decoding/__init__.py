"""Constrained decoding: item IDs from a tensor trie, exact scorers, rating and answer read-outs."""

from p5rec.decoding.generate import recommend_items, score_items, score_targets
from p5rec.decoding.processors import (
    CandidateItemsLogitsProcessor,
    ExcludeItemsLogitsProcessor,
    TrieConstraintLogitsProcessor,
)
from p5rec.decoding.rating import (
    answer_distribution,
    answer_trie,
    expected_rating,
    predict_rating,
    rating_distribution,
    rating_trie,
)
from p5rec.decoding.reference import build_dict_trie, reference_recommend_items
from p5rec.decoding.trie import ItemTrie, RowItemCounts

__all__ = [
    "CandidateItemsLogitsProcessor",
    "ExcludeItemsLogitsProcessor",
    "ItemTrie",
    "RowItemCounts",
    "TrieConstraintLogitsProcessor",
    "answer_distribution",
    "answer_trie",
    "build_dict_trie",
    "expected_rating",
    "predict_rating",
    "rating_distribution",
    "rating_trie",
    "recommend_items",
    "reference_recommend_items",
    "score_items",
    "score_targets",
]
