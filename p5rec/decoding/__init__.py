"""Stage 6: constrained decoding: item IDs from a tensor trie, exact scorers, rating, answer and next-item read-outs."""

from p5rec._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "p5rec.decoding.affinity": ("next_item_percentile", "next_item_scores"),
        "p5rec.decoding.beams": ("DEFAULT_NUM_BEAMS", "beam_width"),
        "p5rec.decoding.consensus": (
            "Candidates",
            "ChoiceRule",
            "agreement",
            "consensus",
            "coverage",
            "texts_and_counts",
        ),
        "p5rec.decoding.generate": ("recommend_items", "score_continuations", "score_items", "score_targets"),
        "p5rec.decoding.predictor": ("Predictor",),
        "p5rec.decoding.processors": (
            "CandidateItemsLogitsProcessor",
            "ExcludeItemsLogitsProcessor",
            "TrieConstraintLogitsProcessor",
        ),
        "p5rec.decoding.rating": (
            "RatingTilt",
            "answer_distribution",
            "answer_trie",
            "expected_rating",
            "predict_rating",
            "rating_distribution",
            "rating_trie",
            "tilt",
        ),
        "p5rec.decoding.reference": ("build_dict_trie", "reference_recommend_items"),
        "p5rec.decoding.trie": ("ItemTrie", "RowItemCounts"),
    },
)
