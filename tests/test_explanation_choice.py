"""Explanations chosen among retrieved training explanations (`model.choose_explanations`)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from p5rec.data.retrieved_explanations import KEEP, RetrievalExplainer
from p5rec.decoding.consensus import consensus
from p5rec.pipeline import CHOICE_TEMPERATURES, pick_readout

TEXTS = ["the tone is warm", "warm tone and good volume", "the tone is warm and clear", "cheap strap"]


def test_consensus_takes_the_text_the_others_agree_with_unless_the_model_outweighs_them():
    # The medoid: ROUGE-L F1 .80 and .36 with the two other tone sentences ("the tone is warm": .80, .22).
    assert TEXTS[consensus(TEXTS)] == "the tone is warm and clear"
    liked = [-9.0, -9.0, -9.0, -0.5]  # the model prefers the odd one out, per token
    assert consensus(TEXTS, liked, temperature=0.02) == 2  # weakly: the agreement still wins
    assert consensus(TEXTS, liked, temperature=10.0) == 3  # sharply: the model's favourite
    assert consensus(["one"]) == 0
    with pytest.raises(ValueError, match="empty"):
        consensus([])
    with pytest.raises(ValueError, match="temperature"):
        consensus(TEXTS, liked, temperature=-1.0)
    with pytest.raises(ValueError, match="one number per text"):
        consensus(TEXTS, liked[:2], temperature=1.0)


def test_candidates_are_the_pairs_then_the_features_and_overall_only_without_either():
    items = ["a", "a", "a", "b", "b", "c"]
    features = ["tone", "tone", "tone", "tone", "price", "price"]
    texts = ["warm", "warm", "bright", "dull", "cheap", "fair"]
    r = RetrievalExplainer().fit(items, features, texts)
    assert r.candidates("a", "tone") == ["warm", "bright", "dull"]  # the pair's, then the feature's
    assert r.candidates("a", "tone")[0] == r.explain("a", "tone")
    assert r.candidates("z", "price") == ["cheap", "fair"]  # the feature's only
    assert r.candidates("z", "size") == ["warm", "bright", "dull", "cheap", "fair"]  # nothing else: overall
    assert r.candidates("a", "tone", k=2) == ["warm", "bright"]
    # The saved table keeps the candidates (up to KEEP per key) and reads back the same.
    many = RetrievalExplainer().fit(["a"] * 30, ["tone"] * 30, [f"text {i}" for i in range(30)])
    back = RetrievalExplainer.from_dict(json.loads(json.dumps(many.to_dict())))
    assert back.candidates("a", "tone") == many.candidates("a", "tone") and len(back.candidates("a", "tone")) == KEEP
    with pytest.raises(ValueError, match=f"1 to {KEEP}"):
        RetrievalExplainer.from_dict({**many.to_dict(), "overall": [["x", 1]] * (KEEP + 1)})


def test_the_read_out_with_the_best_valid_sum_is_kept_and_ties_keep_writing():
    def m(bleu, r1, rl):
        return {"bleu_4": bleu, "rouge_1": r1, "rouge_l": rl}

    assert pick_readout({None: m(0.1, 23.0, 17.0), 0.0: m(2.3, 25.0, 22.5), 0.5: m(1.9, 25.0, 22.5)}) == 0.0
    assert pick_readout({None: m(1.0, 30.0, 25.0), 0.0: m(1.0, 25.0, 22.5)}) is None
    assert pick_readout({None: m(1.0, 20.0, 20.0), 0.5: m(1.0, 20.0, 20.0), 0.0: m(1.0, 20.0, 20.0)}) is None
    assert pick_readout({0.5: m(1.0, 20.0, 20.0), 0.0: m(1.0, 20.0, 20.0)}) == 0.0


def test_the_predictor_answers_with_one_of_each_prompts_candidates(tiny_fit):
    from p5rec.api import predictor_for

    rec = tiny_fit.recommender
    builder = tiny_fit.prepared.builder
    examples = builder.eval_examples("explanation", "test", np.random.default_rng(0))[:6]
    candidates = [builder.explanation_candidates(e) for e in examples]
    assert all(candidates) and all(len(c) <= KEEP for c in candidates)
    predictor = predictor_for(rec.model, rec.tokenizer, rec.items, rec.config)
    prompts = [e.input for e in examples]
    scores = predictor.candidate_scores(prompts, candidates)
    assert [len(s) for s in scores] == [len(c) for c in candidates]
    assert all(np.isfinite(s).all() and max(s) <= 0 for s in scores)  # mean log-probabilities per token
    for t in CHOICE_TEMPERATURES:
        chosen = predictor.choose(prompts, candidates, temperature=t)
        assert [c in texts for c, texts in zip(chosen, candidates)] == [True] * len(examples)
        want = [texts[consensus(texts, s, t)] for texts, s in zip(candidates, scores)]
        assert chosen == want
    from p5rec.pipeline import explanation_readouts

    scored = explanation_readouts(predictor, builder, examples)  # what the choice after training compares
    assert list(scored) == [None, *CHOICE_TEMPERATURES]
    assert all({"bleu_4", "rouge_1", "rouge_l"} <= set(m) for m in scored.values())
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
    return fit(tiny_config(model=model), progress=False)


def test_a_given_temperature_is_saved_and_the_api_and_evaluation_choose(chosen_fit, tmp_path):
    from p5rec.api import Recommender
    from p5rec.evaluation.config import EvalConfig
    from p5rec.evaluation.evaluate import evaluate

    assert chosen_fit.choice == {"explanation": 0.5} and "given" in chosen_fit.describe_choice()
    chosen_fit.recommender.save_pretrained(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "answer_choice.json").read_text()) == {"explanation": 0.5}
    back = Recommender.from_pretrained(tmp_path / "m", device="cpu")
    assert back.choice == {"explanation": 0.5}
    user, item = next((u, h[-1]) for u, h in back.histories.items() if h)
    for feature in (None, "sound"):
        answer = back.explain(user, item, feature)
        assert answer in back.explanations.candidates(item, feature or "")
    builder = chosen_fit.prepared.builder
    cfg = EvalConfig(tasks=["explanation"], max_templates=1, samples=5)
    row = evaluate(back.predictor, builder, cfg, progress=False).rows[0]
    examples = builder.eval_examples("explanation", "test", np.random.default_rng(cfg.seed), [row["template"]])
    answers = [s["answer"] for s in row["samples"]]
    assert answers and [a in builder.explanation_candidates(e) for a, e in zip(answers, examples)] == [True] * 5


def test_choosing_is_off_without_validation_or_when_switched_off(tiny_fit):
    from conftest import tiny_config

    from p5rec.pipeline import explanation_choice

    assert tiny_fit.choice == {} and tiny_fit.describe_choice() == ""  # no temperature, no validation
    rec = tiny_fit.recommender
    off = tiny_config(model={"backbone": "tiny", "choose_explanations": False, "choice_temperature": 1.0})
    assert explanation_choice(off, rec.model, rec.tokenizer, tiny_fit.prepared) == {}


@pytest.mark.parametrize("bad", [-1.0, float("inf"), float("nan"), True])
def test_a_choice_temperature_must_be_a_finite_number_not_below_zero(bad):
    from p5rec.modeling.config import ModelConfig

    with pytest.raises(ValueError, match="choice_temperature"):
        ModelConfig(choice_temperature=bad)


def test_a_damaged_choice_file_names_itself(chosen_fit, tmp_path):
    from p5rec.api import Recommender

    path = tmp_path / "m"
    chosen_fit.recommender.save_pretrained(path)
    for bad in ({"explanation": -1}, {"review_summary": 0.5}, ["explanation"], {"explanation": "hot"}):
        (path / "answer_choice.json").write_text(json.dumps(bad))
        with pytest.raises(ValueError, match="answer_choice.json"):
            Recommender.from_pretrained(path, device="cpu")
    (path / "answer_choice.json").write_text(json.dumps({"explanation": 0}))
    shutil.move(path / "explanations.json", tmp_path / "kept.json")
    with pytest.raises(ValueError, match="explanations.json is missing"):
        Recommender.from_pretrained(path, device="cpu")
