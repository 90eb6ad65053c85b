"""Explanation targets (feature + sentence) and summary boilerplate filtering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from p5rec.data.build import build_recdata
from p5rec.data.explanations import (
    ExplanationExtractor,
    FeatureCounter,
    clean_summary,
    find_candidates,
    split_sentences,
    summary_survival,
    tokenize,
)

REVIEWS = [
    "Great sound for the money. The strap is a bit thin.",
    "The sound is very warm and the tuner is accurate.",
    "I love it!!! Nice sound quality, cheap strap though.",
    "These strings sound great.The tuner was not accurate at all.",
    "Bought it for my son. He plays every day.",
    "The tuner works well. Great sound quality too.",
]


def test_split_sentences_handles_missing_spaces_and_newlines():
    assert split_sentences("Works.I did not expect it!\nSecond line? yes") == [
        "Works.",
        "I did not expect it!",
        "Second line?",
        "yes",
    ]


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("Great sound quality.", [("sound", "sound quality")]),  # OPINION FEATURE FEATURE
        ("the tuner is very accurate", [("tuner", "")]),  # FEATURE COPULA INTENSIFIER OPINION
        ("the sound quality was not bad", [("quality", "sound quality")]),
        ("it is great", []),  # "it" is not a feature
        ("great, strings last", []),  # punctuation breaks the pattern
        ("really great for the price", []),  # a stopword after the opinion word
    ],
)
def test_find_candidates_patterns(sentence, expected):
    assert find_candidates(tokenize(sentence)) == expected


def test_vocabulary_counts_and_ranks_deterministically():
    counter = FeatureCounter()
    for r in REVIEWS:
        counter.add(r)
    vocab = counter.vocabulary(min_count=2)
    assert vocab == {"sound": 4, "tuner": 3, "sound quality": 2}
    assert counter.counts["strings"] == 1  # "These strings sound great": `sound` links like a copula
    assert list(counter.vocabulary(min_count=1, max_features=2)) == ["sound", "tuner"]


def test_counter_memory_is_bounded_by_pruning():
    counter = FeatureCounter(max_keys=10)
    for i in range(200):
        counter.add(f"great widget{chr(97 + i % 26)}{chr(97 + i // 26)} here")
        counter.add("great sound")
    assert len(counter.counts) <= 10
    assert counter.vocabulary(min_count=100) == {"sound": 200}


def test_extractor_picks_the_most_frequent_feature_and_its_sentence():
    extractor = ExplanationExtractor({"sound": 4, "tuner": 3, "sound quality": 2, "strap": 2})
    assert extractor.extract("The strap is nice. The tuner is accurate.") == (
        "tuner",
        "The tuner is accurate.",
    )
    # The bigram is named when it is in the vocabulary; the ranking uses the head word's count.
    assert extractor.extract("The strap is nice. Nice sound quality!") == (
        "sound quality",
        "Nice sound quality!",
    )
    assert extractor.extract("Bought it for my son.") is None
    assert extractor.extract("") is None


def test_extractor_ties_go_to_the_earliest_match_and_long_sentences_are_skipped():
    extractor = ExplanationExtractor({"strap": 2, "case": 2}, max_words=6)
    assert extractor.extract("The case is solid. The strap is solid.") == ("case", "The case is solid.")
    long = "The case is solid and I will tell you all about it now."
    assert extractor.extract(f"{long} The strap is solid.") == ("strap", "The strap is solid.")


def test_extraction_in_a_dataset_is_deterministic():
    rows = [{"user_id": f"u{i % 3}", "item_id": f"i{i}", "timestamp": i, "review": r} for i, r in enumerate(REVIEWS)]
    first = build_recdata("t", rows, feature_min_count=2)
    second = build_recdata("t", list(reversed(rows)), feature_min_count=2)
    pairs = dict(
        zip(
            first.interactions["review"],
            zip(first.interactions["feature"], first.interactions["explanation"], strict=True),
            strict=True,
        )
    )
    again = dict(
        zip(
            second.interactions["review"],
            zip(second.interactions["feature"], second.interactions["explanation"], strict=True),
            strict=True,
        )
    )
    assert pairs == again
    assert pairs[REVIEWS[1]] == ("sound", "The sound is very warm and the tuner is accurate.")
    assert pairs[REVIEWS[4]] == ("", "")
    assert first.info["explanations"]["extracted"] == 5
    assert first.info["explanations"]["top_features"] == ["sound", "tuner", "sound quality"]


def test_explanations_can_be_switched_off():
    rows = [{"user_id": "u", "item_id": "i", "review": "Great sound. Great sound."}]
    data = build_recdata("t", rows, explanations=False, feature_min_count=1)
    assert data.interactions["explanation"][0] == "" and data.info["explanations"]["enabled"] is False


@pytest.mark.parametrize(
    "title",
    [
        "Five Stars",
        "four stars",
        "1 star",
        "Great",
        "Great!",
        "good",
        "A+++",
        "Works great!",
        "Love it",
        "  ",
        "5-stars",
    ],
)
def test_boilerplate_titles_are_blanked(title):
    assert clean_summary(title) == ""


@pytest.mark.parametrize(
    "title", ["Great strings", "It Does The Job Well", "Good cable for the price", "Five stars for the tuner"]
)
def test_informative_titles_survive(title):
    assert clean_summary(title) == title


def test_summary_survival_and_dataset_summary_column():
    assert summary_survival(["Five Stars", "Great strings", "", "Nice"]) == (3, 1)
    rows = [
        {"user_id": "u", "item_id": "a", "summary": "Five Stars"},
        {"user_id": "u", "item_id": "b", "summary": "Great  strings"},
    ]
    data = build_recdata("t", rows, explanations=False)
    assert list(data.interactions["summary"]) == ["", "Great strings"]
    assert data.info["summaries"] == {"titles": 2, "kept": 1, "boilerplate_removed": 1}


RETRIEVED = """
family: explanation
templates:
  - id: retrieved-1
    split: seen
    description: Shows the retrieval baseline's sentence.
    input: "aspect: {{ feature }} item: {{ item_id }} others wrote: {{ similar_explanation }} explanation:"
    target: "{{ explanation }}"
"""


def test_retrieval_table_round_trips_and_refuses_a_malformed_one():
    from p5rec.data.retrieved_explanations import RetrievalExplainer

    items, features = ["a", "a", "b", "c"], ["tone", "tone", "tone", "price"]
    r = RetrievalExplainer().fit(items, features, ["warm", "warm", "dull", "ok"])
    back = RetrievalExplainer.from_dict(json.loads(json.dumps(r.to_dict())))
    for item, feature, leave in [("a", "tone", None), ("b", "tone", "dull"), ("z", "price", None), ("z", "size", None)]:
        assert back.explain(item, feature, leave) == r.explain(item, feature, leave)
    bad_count = {"pair": [], "feature": [], "overall": [["x", "1"]]}
    for bad in ({}, bad_count, {"pair": [["a"]], "feature": [], "overall": []}):
        with pytest.raises(ValueError):
            RetrievalExplainer.from_dict(bad)


def test_the_api_fills_similar_explanation_from_the_saved_training_table(tmp_path, monkeypatch):
    from conftest import tiny_config

    from p5rec.api import Recommender
    from p5rec.pipeline import fit

    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "explanation.yaml").write_text(RETRIEVED)
    result = fit(tiny_config(prompts=[str(folder)]), progress=False)
    rec = result.recommender
    assert rec.explanations is not None
    rec.save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / "explanations.json").is_file()
    back = Recommender.from_pretrained(tmp_path / "m", device="cpu")
    train = result.prepared.builder.retrieval()
    user, (item, _) = next((u, rated[0]) for u, rated in back.ratings.items() if rated)
    prompts: list[str] = []
    write = back.predictor.write
    monkeypatch.setattr(back.predictor, "write", lambda p, *a, **k: prompts.extend(p) or write(p, *a, **k))
    back.explain(user, item, feature="sound", template="retrieved-1")
    assert prompts == [
        f"aspect: sound item: {back.items.id_of(item)} others wrote: {train.explain(item, 'sound')} explanation:"
    ]
    (tmp_path / "m" / "explanations.json").write_text('{"pair": [], "feature": []}')
    with pytest.raises(ValueError, match=r"explanations.json: not a retrieved-explanation table"):
        Recommender.from_pretrained(tmp_path / "m", device="cpu")


def test_the_shipped_templates_keep_the_table_and_templates_without_the_variable_do_not(tiny_fit, tiny_model_dir):
    from conftest import tiny_config

    from p5rec.pipeline import fit

    assert tiny_fit.recommender.explanations is not None  # every shipped explanation template shows it
    assert (tiny_model_dir / "explanations.json").is_file()
    # the prompts shipped before, same ids (the ablation in docs/benchmarks.md)
    plain_prompts = Path(__file__).parents[1] / "benchmarks" / "ablation_prompts" / "explanation_plain"
    plain = fit(tiny_config(prompts=[str(plain_prompts)]), progress=False)
    assert plain.recommender.explanations is None
