"""The evaluation harness on a tiny trained model: every task, seen/unseen, invalid outputs, baselines."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from p5rec.evaluation.baselines import BPRConfig, MostPop, SASRecConfig
from p5rec.evaluation.evaluate import (
    EvalConfig,
    evaluate,
    evaluate_ranker,
    parse_ratings,
    ranking_examples,
)
from p5rec.evaluation.protocol import BaselineConfig, evaluate_baselines, parse_baselines
from p5rec.templates.tasks import TASKS

SMALL = {"max_users": 6, "max_templates": 1}


@pytest.fixture(scope="module")
def small_result(tiny_fit):
    cfg = EvalConfig(**SMALL)
    return evaluate(tiny_fit.recommender.predictor, tiny_fit.prepared.builder, cfg, progress=False)


def test_every_task_is_scored_on_seen_and_unseen_templates(small_result, tiny_fit):
    builder = tiny_fit.prepared.builder
    for task in TASKS:
        splits = {t.split for t in builder.usable_templates(task)}
        got = {r["template_split"] for r in small_result.rows if r["task"] == task}
        assert got == splits, task
    # --max-templates 1: one template per task and split
    pairs = [(r["task"], r["template_split"]) for r in small_result.rows]
    assert len(pairs) == len(set(pairs))


def test_metric_keys_follow_the_p5_protocol(small_result):
    seq = small_result.by_task("sequential", "seen")
    for key in ("hr@1", "hr@5", "hr@10", "hr@20", "ndcg@5", "ndcg@10", "ndcg@20", "mrr"):
        assert 0.0 <= seq[key] <= 1.0, key
    assert seq["hr@1"] <= seq["hr@5"] <= seq["hr@10"] <= seq["hr@20"]
    assert 0.0 <= small_result.by_task("direct_yesno", "seen")["accuracy"] <= 1.0
    assert set(small_result.by_task("explanation", "seen")) >= {"bleu_4", "rouge_1", "rouge_2", "rouge_l", "usr"}
    assert set(small_result.by_task("review_summary", "seen")) >= {"bleu_2", "rouge_1", "rouge_2", "rouge_l", "usr"}
    for task in ("rating", "review_rating"):
        m = small_result.by_task(task, "seen")
        assert m["invalid"] == 0  # the expected rating always answers
        assert 0.0 < m["rmse"] <= 4.0 and m["mae"] <= m["rmse"]
        assert 0.0 < m["greedy_rmse"] <= 4.0  # the most likely rating string: always a valid answer


def test_samples_show_each_templates_first_prompts_with_the_answers_the_metrics_scored(tiny_fit, small_result):
    from p5rec.evaluation.report import build_report, markdown_table

    predictor, builder = tiny_fit.recommender.predictor, tiny_fit.prepared.builder
    cfg = EvalConfig(tasks=["sequential", "rating", "explanation"], samples=2, **SMALL)
    result = evaluate(predictor, builder, cfg, progress=False)
    assert all("samples" not in r for r in small_result.rows)  # off by default
    for row in result.rows:
        same = next(r for r in small_result.rows if r["template"] == row["template"])
        assert row["metrics"] == pytest.approx({**same["metrics"], "examples_per_s": row["metrics"]["examples_per_s"]})
        tpl = builder.templates[row["template"]]
        rng = np.random.default_rng(cfg.seed)
        examples = builder.eval_examples(row["task"], "test", rng, [tpl.id], max_contexts=cfg.max_users)[:2]
        assert [s["input"] for s in row["samples"]] == [e.input for e in examples]
        assert [s["target"] for s in row["samples"]] == [e.target for e in examples]
        answers = [s["answer"] for s in row["samples"]]
        if row["task"] == "explanation":
            assert answers == predictor.write([e.input for e in examples])
        elif row["task"] == "rating":
            assert all(1.0 <= float(a) <= 5.0 for a in answers)
        else:  # the top five IDs, best first
            assert all(len(a.split(" , ")) == 5 and a.split(" , ")[0].startswith("<item_") for a in answers)
    table = markdown_table(build_report(result))
    assert "Sample answers" in table and row["samples"][0]["answer"] in table
    with pytest.raises(ValueError, match="`samples`"):
        EvalConfig(samples=-1)


def test_direct_choice_ranks_only_the_100_candidates(tiny_fit):
    cfg = EvalConfig(tasks=["direct_choice"], max_users=4, max_templates=1)
    examples = ranking_examples(tiny_fit.prepared.builder, cfg, "direct_choice")
    catalog = len(tiny_fit.prepared.builder.catalog)
    for e in examples:  # 24 items: every non-history item is a candidate, the target among them
        assert e.item in e.meta["candidates"] and len(e.meta["candidates"]) <= min(100, catalog)
        assert not set(e.meta["candidates"]) - {e.item} & set(e.meta["history"])


class _FakePredictor:
    """Answers rating prompts with a fixed distribution over "1.0" ... "5.0"."""

    def __init__(self, items, dist, rating_prior=None):
        self.items, self.dist, self.rating_prior = items, dist, rating_prior or {}
        self.baselines = []

    def rating_distribution(self, prompts, task=None, baselines=None):
        self.baselines.append(baselines)
        return [list(self.dist) for _ in prompts]

    def write(self, prompts, num_beams=1):
        raise AssertionError("ratings are read off the answer distribution, never generated as free text")


def test_ratings_are_the_expected_value_and_the_most_likely_answer_never_invalid(tiny_fit):
    builder = tiny_fit.prepared.builder
    fake = _FakePredictor(tiny_fit.recommender.items, [0.0, 0.1, 0.1, 0.5, 0.3])
    cfg = EvalConfig(tasks=["rating"], max_users=8, max_templates=1)
    result = evaluate(fake, builder, cfg, progress=False)
    row = result.rows[0]
    m = row["metrics"]
    assert row["n"] == 8 and m["count"] == 8 and m["invalid"] == 0
    truths = [e.meta["rating"] for e in builder.eval_examples("rating", "test", np.random.default_rng(2022),
                                                              [row["template"]], 8)]  # fmt: skip
    expected = 0.1 * 2 + 0.1 * 3 + 0.5 * 4 + 0.3 * 5
    assert m["rmse"] == pytest.approx(math.sqrt(np.mean([(expected - t) ** 2 for t in truths])))
    assert m["greedy_rmse"] == pytest.approx(math.sqrt(np.mean([(4.0 - t) ** 2 for t in truths])))  # mode: 4.0
    assert fake.baselines and all(b is None for b in fake.baselines)  # no rating prior: as trained


def test_a_model_with_a_rating_prior_gets_each_pairs_baseline_from_the_training_ratings(tiny_fit):
    builder = tiny_fit.prepared.builder
    fake = _FakePredictor(tiny_fit.recommender.items, [0.2] * 5, {"rating": object()})
    evaluate(fake, builder, EvalConfig(tasks=["rating"], max_users=8, max_templates=1), progress=False)
    examples = builder.eval_examples("rating", "test", np.random.default_rng(2022), max_contexts=8)
    means = builder.rating_means()
    want = [means.user(e.user) + means.item(e.item) - means.global_mean for e in examples[:8]]
    assert fake.baselines and all(got == pytest.approx(want) for got in fake.baselines)  # the same users per template


def test_parse_ratings_rejects_text_and_off_scale_numbers():
    assert parse_ratings(["4.0", "3", "about 2.0 stars", "none", "0.0", "nan", "5.5"]) == [
        4.0, 3.0, 2.0, None, None, None, None,
    ]  # fmt: skip


def test_config_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"`max_users` \(0\) must be a positive integer"):
        EvalConfig(max_users=0)
    with pytest.raises(ValueError, match=r"`max_templates` \(-1\)"):
        EvalConfig(max_templates=-1)
    with pytest.raises(ValueError, match=r"`num_beams` \(5\) must be >= `k` \(20\).*the largest of `ks`"):
        EvalConfig(num_beams=5)
    with pytest.raises(ValueError, match="unknown task"):
        EvalConfig(tasks=["sequentail"])


def test_examples_rendered_with_another_item_index_are_refused(tiny_fit, tmp_path):
    """Ranks are positions in the model's index: examples written with other IDs would be scored wrongly."""
    from p5rec.ids import IdConfig, ItemIndex
    from p5rec.templates.render import ExampleBuilder

    builder = tiny_fit.prepared.builder
    other = ItemIndex.build(IdConfig("random", seed=5), builder.data.item_ids, {})
    foreign = ExampleBuilder(builder.data, builder.splits, other, builder.users, builder.templates, builder.config)
    with pytest.raises(ValueError, match=r"rendered with another item index .* than the model's"):
        evaluate(tiny_fit.recommender.predictor, foreign, EvalConfig(tasks=["sequential"], max_users=2))
    # A copy of the model's own index (as loaded from its directory) is the same index.
    tiny_fit.recommender.items.save(tmp_path / "items.json")
    copy = ItemIndex.load(tmp_path / "items.json")
    reloaded = ExampleBuilder(builder.data, builder.splits, copy, builder.users, builder.templates, builder.config)
    result = evaluate(tiny_fit.recommender.predictor, reloaded, EvalConfig(tasks=["sequential"], max_users=2))
    assert result.rows and result.rows[0]["n"] == 2


def test_baselines_are_scored_on_the_models_users(tiny_fit):
    builder = tiny_fit.prepared.builder
    cfg = EvalConfig(max_users=10, max_templates=1)
    model_users = [
        e.user
        for e in builder.eval_examples(
            "sequential", "test", np.random.default_rng(cfg.seed), [builder.usable_templates("sequential")[-1].id], 10
        )
    ]
    assert [e.user for e in ranking_examples(builder, cfg)] == model_users
    scores = evaluate_baselines(
        builder,
        cfg,
        ["mostpop", "itemknn", "bpr", "sasrec", "mf", "lead", "retrieval"],
        BaselineConfig(sasrec=SASRecConfig(epochs=2, patience=None), bpr=BPRConfig(epochs=2, patience=None)),
        progress=False,
    )
    assert set(scores) == {"mostpop", "itemknn", "bpr", "sasrec", "mf", "lead", "retrieval"}
    assert set(scores["mostpop"]["tasks"]) == {"sequential", "direct_choice", "direct_yesno"}
    pop = MostPop().fit(builder.splits.train_sequences(), builder.catalog)
    assert scores["mostpop"]["tasks"]["sequential"] == evaluate_ranker(pop, builder, cfg)
    # 24 items, >= 5 per user: at most 20 candidates, so every ranker puts the target in its top 20
    for name in ("mostpop", "itemknn", "bpr", "sasrec"):
        assert scores[name]["tasks"]["direct_choice"]["hr@20"] == 1.0
    assert set(scores["mf"]["tasks"]) == {"rating", "review_rating", "direct_yesno"}
    assert set(scores["retrieval"]["tasks"]["explanation"]) == {"bleu_4", "rouge_1", "rouge_2", "rouge_l", "usr"}
    assert scores["mf"]["tasks"]["rating"]["invalid"] == 0
    assert set(scores["lead"]["tasks"]["review_summary"]) == {"bleu_2", "rouge_1", "rouge_2", "rouge_l", "usr"}


def test_baselines_follow_the_task_selection(tiny_fit):
    cfg = EvalConfig(tasks=["rating"], max_users=5)
    scores = evaluate_baselines(tiny_fit.prepared.builder, cfg, ["mostpop", "mf"], progress=False)
    assert list(scores) == ["mf"]  # MostPop answers no selected task


def test_parse_baselines():
    assert parse_baselines("MostPop, sasrec,mostpop") == ["mostpop", "sasrec"]
    assert parse_baselines("all") == ["mostpop", "itemknn", "bpr", "sasrec", "mf", "lead", "retrieval"]
    assert parse_baselines("") == [] and parse_baselines(None) == []
    with pytest.raises(ValueError, match=r"unknown name\(s\) \['ncf'\]"):
        parse_baselines("mostpop,ncf")


class _YesNoStub:
    """A predictor whose P("yes") is scripted: 0.9 for true pairs except one, 0.2 for false ones."""

    def __init__(self, items):
        self.items = items
        self.answers = None

    def yes_probability(self, prompts, items, answers):
        self.answers, self.asked = answers, items
        return list(self.p_yes)

    def write(self, prompts, num_beams=1):
        raise AssertionError("yes/no is read off P(yes) and P(no), never generated as free text")


def test_yes_no_is_read_off_the_predictors_yes_probability(tiny_fit):
    predictor = tiny_fit.recommender.predictor
    cfg = EvalConfig(tasks=["direct_yesno"], max_users=6, max_templates=1, samples=12)
    stub = _YesNoStub(predictor.items)
    builder = tiny_fit.prepared.builder
    template = builder.usable_templates("direct_yesno", "seen")[0]
    examples = builder.eval_examples("direct_yesno", "test", np.random.default_rng(cfg.seed), [template.id])
    labels = [bool(e.meta["label"]) for e in examples[:12]]
    assert True in labels and False in labels
    stub.p_yes = [0.9 if y else 0.2 for y in labels]
    wrong = labels.index(True)
    stub.p_yes[wrong] = 0.1  # one positive scored below every negative: wrong, and it costs AUC
    from p5rec.evaluation.evaluate import _score

    m, answers = _score("direct_yesno", examples[:12], stub, predictor.items, cfg)
    assert answers[wrong] == "no (0.100)" and answers[labels.index(False)] == "no (0.200)"
    assert _score("direct_yesno", examples[:12], stub, predictor.items, EvalConfig(samples=3))[1] == answers[:3]
    assert _score("direct_yesno", examples[:12], stub, predictor.items, EvalConfig())[1] == []  # none by default
    n_pos = labels.count(True)
    assert stub.answers == ("yes", "no")  # the template's own renderings
    assert stub.asked == predictor.items.positions([e.item for e in examples[:12]], "items")  # the asked items
    assert m["accuracy"] == pytest.approx((len(labels) - 1) / len(labels))
    assert m["auc"] == pytest.approx((n_pos - 1) / n_pos)  # its pairs with every negative are lost: 1/n_pos
    assert set(m) == {"accuracy", "auc"}  # no free text to parse: nothing can be invalid


def test_yes_no_baselines_score_the_models_pairs_with_the_rankers_own_scores(tiny_fit):
    builder = tiny_fit.prepared.builder
    cfg = EvalConfig(tasks=["direct_yesno"], max_users=20, max_templates=1)
    scores = evaluate_baselines(builder, cfg, ["mostpop"], progress=False)["mostpop"]["tasks"]["direct_yesno"]
    first = builder.usable_templates("direct_yesno")[0].id
    pairs = builder.eval_examples("direct_yesno", "test", np.random.default_rng(cfg.seed), [first], 20)
    pop = MostPop().fit(builder.splits.train_sequences(), builder.catalog)
    counts = {i: sum(s.count(i) for s in builder.splits.train_sequences().values()) for i in builder.catalog}
    expected = pytest.importorskip("p5rec.evaluation.metrics").binary_auc(
        [float(counts[e.item]) for e in pairs], [bool(e.meta["label"]) for e in pairs]
    )
    assert scores["auc"] == pytest.approx(expected)  # MostPop's score of a pair is the item's training count
    assert list(pop.score_pairs([e.meta["history"] for e in pairs], [e.item for e in pairs])) == [
        float(counts[e.item]) for e in pairs
    ]


def test_a_model_trained_with_the_history_loss_answers_yes_no_from_its_next_item_distribution(tiny_fit):
    from p5rec.decoding.affinity import next_item_percentile
    from p5rec.recipe import trains_history

    rec = tiny_fit.recommender
    assert trains_history(rec.config) and rec.predictor.readout == rec.predictor.yes_no_readout == "next_item"
    builder = tiny_fit.prepared.builder
    template = builder.usable_templates("direct_yesno", "seen")[0]
    examples = builder.eval_examples("direct_yesno", "test", np.random.default_rng(0), [template.id])[:8]
    asked = rec.items.positions([e.item for e in examples], "items")
    got = rec.predictor.yes_probability([e.input for e in examples], asked)
    batch = rec.tokenizer([e.input for e in examples[:1]], add_special_tokens=False, return_tensors="pt")
    first = next_item_percentile(rec.model, dict(batch), rec.predictor.trie.item_tokens[:, 0], asked[:1])
    assert all(0.0 <= p < 1.0 for p in got) and got[0] == pytest.approx(float(first[0]))
    with pytest.raises(ValueError, match="`items` has 1 entries for 8 prompts"):
        rec.predictor.yes_probability([e.input for e in examples], asked[:1])


def test_the_next_item_readout_is_refused_where_it_cannot_apply(tiny_fit):
    from p5rec.decoding import Predictor

    rec = tiny_fit.recommender
    t5 = _t5_like(len(rec.tokenizer))
    with pytest.raises(ValueError, match="needs a decoder-only model with one token per item"):
        Predictor(t5, rec.tokenizer, rec.items, yes_no_readout="next_item")
    with pytest.raises(ValueError, match=r"`yes_no_readout` \('maybe'\) must be one of"):
        Predictor(rec.model, rec.tokenizer, rec.items, yes_no_readout="maybe")
    with pytest.raises(ValueError, match=r"`readout` \('maybe'\) must be one of"):
        Predictor(rec.model, rec.tokenizer, rec.items, readout="maybe")


def test_candidates_are_ordered_by_the_next_item_distribution_after_the_history(tiny_fit):
    """Direct choice with the next-item read-out: the candidates in the order of the scores after the
    last history item (not a candidate), log-probabilities among the candidates; exclusions honoured;
    a prompt without a history falls back to decoding the answer."""
    from p5rec.decoding import Predictor
    from p5rec.decoding.affinity import next_item_scores

    rec = tiny_fit.recommender
    builder = tiny_fit.prepared.builder
    template = builder.usable_templates("direct_choice", "seen")[0]
    examples = builder.eval_examples("direct_choice", "test", np.random.default_rng(0), [template.id])[:6]
    prompts = [e.input for e in examples]
    cands = [rec.items.positions(e.meta["candidates"], "candidates") for e in examples]
    ranked = rec.predictor.rank(prompts, k=5, candidates=cands)
    tokens = rec.predictor.trie.item_tokens[:, 0]
    for prompt, row, got in zip(prompts, cands, ranked):
        batch = dict(rec.tokenizer([prompt], add_special_tokens=False, return_tensors="pt"))
        scores, found = next_item_scores(rec.model, batch, tokens, [row])
        assert bool(found[0])
        logp = torch.log_softmax(scores[0, row], dim=-1)
        best = sorted(range(len(row)), key=lambda j: -float(logp[j]))[:5]
        assert [i for i, _ in got] == [row[j] for j in best]
        assert [s for _, s in got] == pytest.approx([float(logp[j]) for j in best], abs=1e-5)
    banned = [[i for i, _ in g[:2]] for g in ranked]  # the two best of each row, excluded
    again = rec.predictor.rank(prompts, k=3, candidates=cands, exclude=banned)
    assert [[i for i, _ in g] for g in again] == [[i for i, _ in g[2:5]] for g in ranked]
    # No history in the prompt: the answer is decoded, as with the answer read-out.
    shown = {"user_id": "user_new", "history": [], "history_titles": [], "item_id": ""}
    bare = [template.render({**shown, "candidates": [rec.items.id_at(i) for i in cands[0]]})[0]]
    assert not next_item_scores(rec.model, dict(rec.tokenizer(bare, return_tensors="pt")), tokens, cands[:1])[1][0]
    answer = Predictor(rec.model, rec.tokenizer, rec.items, readout="answer", prompt_eos=rec.predictor.prompt_eos)
    assert rec.predictor.rank(bare, k=3, candidates=cands[:1]) == answer.rank(bare, k=3, candidates=cands[:1])
    # In one batch with a prompt that has a history: each row answered its own way.
    mixed = rec.predictor.rank([prompts[0], *bare], k=3, candidates=[cands[0], cands[0]])
    assert [i for i, _ in mixed[0]] == [i for i, _ in ranked[0][:3]]
    assert [v for _, v in mixed[0]] == pytest.approx([v for _, v in ranked[0][:3]], abs=1e-5)
    assert [i for i, _ in mixed[1]] == [i for i, _ in answer.rank(bare, k=3, candidates=cands[:1])[0]]


def test_next_items_are_read_at_the_newest_history_item_over_the_whole_catalog(tiny_fit):
    """Next-item ranking with the next-item read-out and `prompt_eos`: the catalog in the order of the
    scores at the newest history item (the prompt goes on after it: words, the eos), the history
    excluded; a prompt without a history is decoded."""
    from p5rec.decoding import Predictor
    from p5rec.decoding.affinity import next_item_scores

    rec = tiny_fit.recommender
    builder = tiny_fit.prepared.builder
    template = builder.usable_templates("sequential", "seen")[0]
    examples = builder.eval_examples("sequential", "test", np.random.default_rng(0), [template.id])[:5]
    prompts = [e.input + " . Which one ?" for e in examples]  # words after the history
    seen = [rec.items.positions(e.meta["history"], "history") for e in examples]
    reader = Predictor(rec.model, rec.tokenizer, rec.items, readout="next_item", prompt_eos=True)
    ranked = reader.rank(prompts, k=4, exclude=seen)
    tokens = reader.trie.item_tokens[:, 0]
    for prompt, history, got in zip(prompts, seen, ranked):
        batch = dict(rec.tokenizer([prompt], add_special_tokens=False, return_tensors="pt"))
        scores, found = next_item_scores(rec.model, batch, tokens, [[]])
        assert bool(found[0])
        logits = scores[0].clone()
        logits[history] = float("-inf")
        top = torch.topk(torch.log_softmax(logits, dim=-1), 4)
        assert [i for i, _ in got] == top.indices.tolist()
        assert [v for _, v in got] == pytest.approx(top.values.tolist(), abs=1e-5)
        assert not set(history) & {i for i, _ in got}
    # k above what the exclusions leave: every other item once, never an excluded one
    everything = reader.rank(prompts, k=len(rec.items), exclude=seen)
    for history, got in zip(seen, everything):
        assert sorted(i for i, _ in got) == sorted(set(range(len(rec.items))) - set(history))
    bare = [template.render({"user_id": "user_new", "history": [], "history_titles": [], "item_id": ""})[0]]
    answer = Predictor(rec.model, rec.tokenizer, rec.items, readout="answer", prompt_eos=True)
    assert reader.rank(bare, k=3) == answer.rank(bare, k=3)
    # The likelihood validation watches measures the same read-out: the top item's score, unexcluded.
    top1 = [r[0] for r in reader.rank(prompts + bare, k=1)]
    logp = reader.target_logprob(prompts + bare, [i for i, _ in top1])
    assert logp[:-1] == pytest.approx([v for _, v in top1[:-1]], abs=1e-5)
    assert logp[-1] == pytest.approx(answer.target_logprob(bare, [top1[-1][0]])[0], abs=1e-5)  # no history


def _t5_like(vocab: int):
    from transformers import T5Config, T5ForConditionalGeneration

    config = T5Config(vocab_size=vocab, d_model=16, d_ff=32, num_layers=1, num_heads=2, d_kv=8)
    return T5ForConditionalGeneration(config)
