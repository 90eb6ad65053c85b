"""Text answers chosen among retrieved training texts (`model.choose_answers`)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from p5rec.data.retrieved_explanations import KEEP, RetrievalExplainer
from p5rec.data.retrieved_titles import RetrievedTitles, frequent_titles
from p5rec.decoding.consensus import ChoiceRule, consensus, coverage, texts_and_counts
from p5rec.pipeline import CHOICE_GRID, choice_rules, pick_readout

TEXTS = ["the tone is warm", "warm tone and good volume", "the tone is warm and clear", "cheap strap"]


def test_consensus_takes_the_text_the_others_agree_with_unless_the_model_outweighs_them():
    # The medoid: ROUGE-L F1 .80 and .36 with the two other tone sentences ("the tone is warm": .80, .22).
    assert TEXTS[consensus(TEXTS)] == "the tone is warm and clear"
    liked = [-9.0, -9.0, -9.0, -0.5]  # the model prefers the odd one out, per token
    assert consensus(TEXTS, liked, ChoiceRule(0.02)) == 2  # weakly: the agreement still wins
    assert consensus(TEXTS, liked, ChoiceRule(10.0)) == 3  # sharply: the model's favourite
    # Relevance: the share of a candidate's words its source holds can outweigh the agreement.
    assert coverage(TEXTS, "A cheap strap, sadly.").tolist() == [0.0, 0.0, 0.0, 1.0]
    assert consensus(TEXTS, rule=ChoiceRule(relevance=0.1), source="A cheap strap, sadly.") == 2
    assert consensus(TEXTS, rule=ChoiceRule(relevance=1.0), source="A cheap strap, sadly.") == 3
    assert consensus(["one"]) == 0
    with pytest.raises(ValueError, match="empty"):
        consensus([])
    with pytest.raises(ValueError, match="one number per text"):
        consensus(TEXTS, liked[:2], ChoiceRule(1.0))
    for bad in ({"temperature": -1.0}, {"relevance": float("nan")}, {"temperature": True}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            ChoiceRule(**bad)


def test_candidates_are_the_pairs_then_the_features_and_overall_only_without_either():
    items = ["a", "a", "a", "b", "b", "c"]
    features = ["tone", "tone", "tone", "tone", "price", "price"]
    texts = ["warm", "warm", "bright", "dull", "cheap", "fair"]
    r = RetrievalExplainer().fit(items, features, texts)
    # The pair's, then the feature's, each with its count where it was found (dull: once for the feature).
    assert r.candidates("a", "tone") == [("warm", 2), ("bright", 1), ("dull", 1)]
    assert r.candidates("a", "tone")[0][0] == r.explain("a", "tone")
    assert r.candidates("z", "price") == [("cheap", 1), ("fair", 1)]  # the feature's only
    assert [t for t, _ in r.candidates("z", "size")] == ["warm", "bright", "dull", "cheap", "fair"]  # overall
    assert r.candidates("a", "tone", k=2) == [("warm", 2), ("bright", 1)]
    # The saved table keeps the candidates (up to KEEP per key) and reads back the same.
    many = RetrievalExplainer().fit(["a"] * 30, ["tone"] * 30, [f"text {i}" for i in range(30)])
    back = RetrievalExplainer.from_dict(json.loads(json.dumps(many.to_dict())))
    assert back.candidates("a", "tone") == many.candidates("a", "tone") and len(back.candidates("a", "tone")) == KEEP
    with pytest.raises(ValueError, match=f"1 to {KEEP}"):
        RetrievalExplainer.from_dict({**many.to_dict(), "overall": [["x", 1]] * (KEEP + 1)})


def test_frequent_titles_are_the_candidates_of_a_summary():
    titles = ["Great", "ok", "Great", "  ", "", "fine", "ok", "Great"]
    assert frequent_titles(titles) == [("Great", 3), ("ok", 2), ("fine", 1)]
    assert frequent_titles(["b", "a", "a", "b", "c"], k=2) == [("b", 2), ("a", 2)]  # ties: the first seen


def test_a_summary_is_chosen_among_its_items_titles_then_the_most_frequent():
    items = ["a", "a", "b", "b", "b", "c"]
    titles = ["Warm tone", "Great", "Great", "Great", "Cheap", " "]
    table = RetrievedTitles.fit(items, titles)
    assert table.candidates() == [("Great", 3), ("Warm tone", 1), ("Cheap", 1)]  # no item: the most frequent
    # The item's own, with their counts for it, then the most frequent that are not among them.
    assert table.candidates("a") == [("Warm tone", 1), ("Great", 1), ("Cheap", 1)]
    assert table.candidates("b") == [("Great", 2), ("Cheap", 1), ("Warm tone", 1)]
    assert table.candidates("c") == table.candidates("unknown") == table.candidates()  # no title of its own
    back = RetrievedTitles.from_dict(json.loads(json.dumps(table.to_dict())))
    assert all(back.candidates(i) == table.candidates(i) for i in (None, "a", "b", "c"))
    for bad in ({"frequent": [["x", 0]], "items": []}, {"frequent": [], "items": [["a"]]}, {"frequent": []}, 3):
        with pytest.raises(ValueError):
            RetrievedTitles.from_dict(bad)
    assert not RetrievedTitles([])


def test_counts_weigh_the_candidates_and_brevity_favours_the_expected_length():
    texts = ["the tone is warm and clear", "great gift", "a great gift for him"]
    assert consensus(texts) == 1  # the two gifts agree (a tie: the earlier)
    # Written by many reviewers, "the tone is warm and clear" outweighs the two others' agreement.
    counts = [6, 1, 1]
    assert consensus(texts, rule=ChoiceRule(frequency=1.0), counts=counts) == 0
    assert consensus(texts, rule=ChoiceRule(frequency=0.0), counts=counts) == 1  # counts off
    assert consensus(texts, rule=ChoiceRule(frequency=1.0)) == 1  # no counts: once each
    # Brevity: BLEU's factor against the expected length (the weighted mean, 4 words) lifts a text
    # that is not shorter than that; it never rewards being longer.
    short = ["great gift", "great gift", "great gift card for a friend"]
    assert consensus(short) == 0
    assert consensus(short, rule=ChoiceRule(brevity=1.0)) == 2
    assert consensus(["great", "great gift card for a friend who plays"], rule=ChoiceRule(brevity=5.0)) == 1
    with pytest.raises(ValueError, match="one count >= 1 per text"):
        consensus(texts, rule=ChoiceRule(frequency=1.0), counts=[1, 0, 1])
    assert texts_and_counts([("a", 2), "b"]) == (["a", "b"], [2, 1])
    with pytest.raises(ValueError, match="a text or a"):
        texts_and_counts([("a", "2")])
    with pytest.raises(ValueError, match="brevity"):
        ChoiceRule(brevity=-0.1)
    # The grid tried after training, and a number the config gives fixed.
    from conftest import tiny_config

    assert len(choice_rules()) == np.prod([len(v) for v in CHOICE_GRID.values()])
    fixed = choice_rules(tiny_config(model={"backbone": "tiny", "choice_frequency": 1.0}))
    assert {r.frequency for r in fixed} == {1.0} and len(fixed) == len(choice_rules()) // len(CHOICE_GRID["frequency"])


def test_the_simplest_read_out_within_one_standard_error_of_the_best_is_kept():
    from p5rec.evaluation.metrics import TextScores

    refs = [f"great tone for the price number {i}" for i in range(40)]

    def scores(hits: int, max_n: int = 4, start: int = 0) -> TextScores:  # `hits` answers from `start` are right
        rows = range(start, start + hits)
        return TextScores(refs, [r if i in rows else "cheap strings" for i, r in enumerate(refs)], max_n=max_n)

    cold, warm, relevant = ChoiceRule(0.0), ChoiceRule(0.5), ChoiceRule(0.0, 0.25)
    # Clearly better on many examples: kept over writing and over a worse rule.
    assert pick_readout({None: scores(2), cold: scores(30), warm: scores(20)}) == cold
    assert pick_readout({None: scores(30, 2), cold: scores(10, 2)}) is None  # summaries: BLEU-2
    # Ahead by one answer in forty (right on four where the other is wrong, wrong on three where it is
    # right): within one standard error, so the simpler read-out is kept.
    assert pick_readout({None: scores(21, start=3), warm: scores(20)}) == warm
    assert pick_readout({warm: scores(21, start=3), relevant: scores(20), cold: scores(20)}) == cold
    # Ties: fewer numbers above 0, then the smaller numbers, writing last.
    assert pick_readout({warm: scores(20), relevant: scores(20), None: scores(20)}) == relevant
    assert pick_readout({None: scores(20), warm: scores(19, start=3)}) == warm
    assert pick_readout({ChoiceRule(0.5, 0.25): scores(20), ChoiceRule(2.0): scores(20), warm: scores(20)}) == warm


def test_the_predictor_answers_with_one_of_each_prompts_candidates(tiny_fit):
    from p5rec.api import predictor_for

    rec = tiny_fit.recommender
    builder = tiny_fit.prepared.builder
    examples = builder.eval_examples("explanation", "test", np.random.default_rng(0))[:6]
    candidates = [builder.answer_candidates(e) for e in examples]
    assert all(candidates) and all(len(c) <= KEEP for c in candidates)
    predictor = predictor_for(rec.model, rec.tokenizer, rec.items, rec.config)
    prompts = [e.input for e in examples]
    scores = predictor.candidate_scores(prompts, candidates)
    assert [len(s) for s in scores] == [len(c) for c in candidates]
    assert all(np.isfinite(s).all() and max(s) <= 0 for s in scores)  # mean log-probabilities per token
    split = [texts_and_counts(c) for c in candidates]
    for rule in (ChoiceRule(0.0), ChoiceRule(1.0), ChoiceRule(0.5, 0.5), ChoiceRule(0.5, 0.0, 1.0, 0.3)):
        chosen = predictor.choose(prompts, candidates, rule=rule)
        assert [c in texts for c, (texts, _) in zip(chosen, split)] == [True] * len(examples)
        want = [t[consensus(t, s, rule, p, n)] for p, (t, n), s in zip(prompts, split, scores)]
        assert chosen == want
    # A relevance measured on each answer's own source (here the feature), not on the template's words.
    sources = [builder.answer_source(e) for e in examples]
    assert all(src and src in e.input for src, e in zip(sources, examples))
    rule = ChoiceRule(0.0, 1.0)
    got = predictor.choose(prompts, candidates, rule=rule, sources=sources)
    assert got == [t[consensus(t, None, rule, src)] for src, (t, _) in zip(sources, split)]
    with pytest.raises(ValueError, match="one source per prompt"):
        predictor.choose(prompts, candidates, rule=rule, sources=sources[:-1])
    from p5rec.pipeline import choice_readouts

    scored = choice_readouts(predictor, builder, examples)  # what the choice after training compares
    assert list(scored) == [None, *choice_rules()]
    assert all({"bleu_4", "rouge_1", "rouge_l"} <= set(m.metrics()) for m in scored.values())
    summaries = builder.eval_examples("review_summary", "test", np.random.default_rng(0))[:3]
    titles = builder.review_titles()
    for e in summaries:  # the reviewed item's own titles first, then every frequent one not among them
        own, cands = titles.items.get(e.item, []), builder.answer_candidates(e)
        assert cands[: len(own)] == own and {t for t, _ in titles.frequent} <= {t for t, _ in cands}
    with pytest.raises(ValueError, match="none chosen for task 'explanation'"):
        predictor.choose(prompts, candidates, task="explanation")
    with pytest.raises(ValueError, match="one list per prompt"):
        predictor.candidate_scores(prompts, candidates[:-1])
    with pytest.raises(ValueError, match=r"candidates\[0\]"):
        predictor.candidate_scores(prompts[:1], [["fine", "  "]])


@pytest.fixture(scope="module")
def chosen_fit():
    from conftest import tiny_config

    from p5rec.pipeline import fit

    model = {"backbone": "tiny", "vocab_size": 200, "max_input_length": 128, "choice_temperature": 0.5}
    return fit(tiny_config(model=model), progress=False)  # no validation: the relevance is 0


def test_a_given_temperature_is_saved_and_the_api_and_evaluation_choose(chosen_fit, tmp_path):
    from p5rec.api import Recommender
    from p5rec.evaluation.config import EvalConfig
    from p5rec.evaluation.evaluate import evaluate

    rule = ChoiceRule(0.5, 0.0)
    assert chosen_fit.choice == {"explanation": rule, "review_summary": rule}
    assert "given" in chosen_fit.describe_choice()
    chosen_fit.recommender.save_pretrained(tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "answer_choice.json").read_text())
    numbers = {"temperature": 0.5, "relevance": 0.0, "frequency": 0.0, "brevity": 0.0}
    assert saved == dict.fromkeys(("explanation", "review_summary"), numbers)
    back = Recommender.from_pretrained(tmp_path / "m", device="cpu")
    assert back.choice == chosen_fit.choice
    assert back.review_titles.to_dict() == chosen_fit.prepared.builder.review_titles().to_dict()
    user, item = next((u, h[-1]) for u, h in back.histories.items() if h)
    for feature in (None, "sound"):
        answer = back.explain(user, item, feature)
        assert answer in texts_and_counts(back.explanations.candidates(item, feature or ""))[0]
    review = "The sound of this guitar is warm. Great strings too."
    assert back.summarize(review) in texts_and_counts(back.review_titles.candidates())[0]
    # With the reviewed item: among its own titles, then the most frequent.
    reviewed = next(i for i in back.review_titles.items if i in back.items)
    assert back.summarize(review, item=reviewed) in texts_and_counts(back.review_titles.candidates(reviewed))[0]
    with pytest.raises(KeyError, match="no-such-item"):
        back.summarize(review, item="no-such-item")
    with pytest.raises(ValueError, match="one item"):
        back.summarize_batch([review, review], items=[reviewed])
    # Chosen without reading the prompt (temperature 0): no rating is predicted for the prompt.
    back.predictor.choice["explanation"] = ChoiceRule(0.0)

    def no_ratings(*args, **kwargs):
        raise AssertionError("ratings predicted for prompts the choice does not read")

    back.predict_ratings = no_ratings
    quoting = "explanation-4"  # "{user_id} rated {item_id} {rating} out of 5. ..."
    assert "rating" in back.templates[quoting].input_variables
    answer = back.explain(user, item, template=quoting)
    assert answer in texts_and_counts(back.explanations.candidates(item, ""))[0]
    builder = chosen_fit.prepared.builder
    for task in ("explanation", "review_summary"):
        cfg = EvalConfig(tasks=[task], max_templates=1, samples=5)
        row = evaluate(back.predictor, builder, cfg, progress=False).rows[0]
        examples = builder.eval_examples(task, "test", np.random.default_rng(cfg.seed), [row["template"]])
        answers = [s["answer"] for s in row["samples"]]
        chosen = [a in texts_and_counts(builder.answer_candidates(e))[0] for a, e in zip(answers, examples)]
        assert answers and chosen == [True] * 5


def test_choosing_is_off_without_validation_or_when_switched_off(tiny_fit):
    from conftest import tiny_config

    from p5rec.pipeline import answer_choice

    assert tiny_fit.choice == {} and tiny_fit.describe_choice() == ""  # nothing given, no validation
    rec = tiny_fit.recommender
    off = tiny_config(model={"backbone": "tiny", "choose_answers": False, "choice_relevance": 1.0})
    assert answer_choice(off, rec.model, rec.tokenizer, tiny_fit.prepared) == {}


def test_with_validation_each_task_keeps_the_best_read_out_of_its_valid_prompts(tiny_fit):
    """The choice after training, on the valid split: per text task, what `pick_readout` takes of
    `choice_readouts` on the task's first seen template (writing when it wins: no entry)."""
    from conftest import tiny_config

    from p5rec.api import predictor_for
    from p5rec.pipeline import CHOICE_TASKS, CHOICE_VALID_EXAMPLES, answer_choice, choice_readouts

    rec, prepared = tiny_fit.recommender, tiny_fit.prepared
    config = tiny_config(validation={"tasks": ["sequential"], "max_users": 20})
    got = answer_choice(config, rec.model, rec.tokenizer, prepared)
    predictor = predictor_for(rec.model, rec.tokenizer, rec.items, config)
    want = {}
    for task in CHOICE_TASKS:
        seen = prepared.builder.usable_templates(task, "seen")[0].id
        rng = np.random.default_rng(config.train.seed)
        examples = prepared.builder.eval_examples(task, "valid", rng, [seen], CHOICE_VALID_EXAMPLES)
        scored = choice_readouts(predictor, prepared.builder, examples)
        assert len(scored) == 1 + len(choice_rules())
        if (best := pick_readout(scored)) is not None:
            want[task] = best
    assert got == want


@pytest.mark.parametrize("name", ["choice_temperature", "choice_relevance", "choice_frequency", "choice_brevity"])
@pytest.mark.parametrize("bad", [-1.0, float("inf"), float("nan"), True])
def test_a_choice_setting_must_be_a_finite_number_not_below_zero(name, bad):
    from p5rec.modeling.config import ModelConfig

    with pytest.raises(ValueError, match=name):
        ModelConfig(**{name: bad})


def test_a_damaged_choice_file_names_itself(chosen_fit, tmp_path):
    from p5rec.api import Recommender

    path = tmp_path / "m"
    chosen_fit.recommender.save_pretrained(path)
    good = {"temperature": 0.5, "relevance": 0.25}
    for bad in ({"explanation": 0.5}, {"rating": good}, ["explanation"], {"explanation": {**good, "temperature": -1}},
                {"explanation": {"temperature": 0.5}}):  # fmt: skip
        (path / "answer_choice.json").write_text(json.dumps(bad))
        with pytest.raises(ValueError, match="answer_choice.json"):
            Recommender.from_pretrained(path, device="cpu")
    (path / "answer_choice.json").write_text(json.dumps({"explanation": {**good, "speed": 1.0}}))
    with pytest.raises(ValueError, match="speed"):
        Recommender.from_pretrained(path, device="cpu")
    # A file saved before the counts and brevity: those are 0.
    (path / "answer_choice.json").write_text(json.dumps({"explanation": good}))
    assert Recommender.from_pretrained(path, device="cpu").choice == {"explanation": ChoiceRule(0.5, 0.25)}
    table = json.loads((path / "review_titles.json").read_text())
    titles = table["frequent"]
    assert titles and all(isinstance(t, str) and type(n) is int and n >= 1 for t, n in titles) and table["items"]
    # Saved before the items' own titles: a list of the most frequent, bare (counted once) or with counts.
    (path / "review_titles.json").write_text(json.dumps([t for t, _ in titles]))
    back = Recommender.from_pretrained(path, device="cpu").review_titles
    assert back.candidates("any") == [(t, 1) for t, _ in titles] and not back.items
    (path / "review_titles.json").write_text(json.dumps(titles))
    assert Recommender.from_pretrained(path, device="cpu").review_titles.candidates() == [tuple(t) for t in titles]
    for bad in ([["Great", 0]], [["Great", "2"]], [["  ", 1]], {"frequent": titles}, {**table, "items": [["a", 3]]}):
        (path / "review_titles.json").write_text(json.dumps(bad))
        with pytest.raises(ValueError, match="review_titles.json"):
            Recommender.from_pretrained(path, device="cpu")
    (path / "review_titles.json").write_text(json.dumps(table))
    shutil.move(path / "explanations.json", tmp_path / "kept.json")
    with pytest.raises(ValueError, match="explanations.json is missing"):
        Recommender.from_pretrained(path, device="cpu")
    (path / "review_titles.json").write_text(json.dumps([]))
    with pytest.raises(ValueError, match="review_titles.json"):
        Recommender.from_pretrained(path, device="cpu")
