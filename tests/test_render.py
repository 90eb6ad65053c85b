import numpy as np
import pytest

from p5rec.data.split import Splits
from p5rec.data.synthetic import generate
from p5rec.ids import IdConfig, ItemIndex, UserIndex
from p5rec.templates.load import TemplateSet
from p5rec.templates.render import ExampleBuilder, ExampleConfig
from p5rec.templates.tasks import TASKS


@pytest.fixture(scope="module")
def builder():
    data = generate(num_users=30, num_items=24, num_categories=3, seed=2)
    splits = Splits.from_data(data)
    items = ItemIndex(IdConfig(representation="text"), data.item_ids, [(k,) for k in range(1, 25)])  # item_1 ...
    users = UserIndex.build(data.user_ids)
    config = ExampleConfig(max_history=4, eval_candidates=10)
    return ExampleBuilder(data, splits, items, users, TemplateSet.load(), config)


def test_train_examples_cover_every_task_with_seen_templates_only(builder):
    examples = builder.train_examples(np.random.default_rng(0))
    assert {e.task for e in examples} == set(TASKS)
    assert all(e.template_split == "seen" for e in examples)


def test_same_seed_same_examples(builder):
    a = builder.train_examples(np.random.default_rng(1))
    b = builder.train_examples(np.random.default_rng(1))
    assert [(e.input, e.target) for e in a] == [(e.input, e.target) for e in b]


def test_training_never_sees_valid_or_test_items_as_sequential_targets(builder):
    examples = builder.train_examples(np.random.default_rng(0))
    for e in examples:
        if e.task in ("sequential", "direct_choice"):
            seq = builder.splits.sequences[e.user]
            assert e.item in seq[:-2]
            assert seq[-1] not in e.meta["history"] and seq[-2] not in e.meta["history"]


def test_test_examples_hold_out_the_last_item_and_truncate_history(builder):
    ex = builder.eval_examples("sequential", "test", np.random.default_rng(0), template_ids=["sequential-1"])
    assert len(ex) == len(builder.splits.sequences)
    for e in ex:
        seq = builder.splits.sequences[e.user]
        assert e.item == seq[-1] and e.target == builder.items.id_of(seq[-1])
        shown = [builder.items.id_of(i) for i in seq[:-1][-4:]]
        assert " ".join(shown) in e.input
        if len(seq) > 5:  # the item just before the 4 most recent is cut off
            assert builder.items.id_of(seq[:-1][-5]) not in e.input.split()


@pytest.mark.parametrize("positions", ["last", "windows"])
def test_windows_train_every_transition_of_long_histories_once(builder, positions):
    """With the history loss each shown item but the first is a label (the item before predicts it),
    and so is the answer: "windows" must make every training transition a label exactly once per
    epoch, where "last" only labels the final `max_history` ones."""
    import copy
    import dataclasses

    only = copy.copy(builder)
    only.config = dataclasses.replace(builder.config, sequential_positions=positions)
    examples = [e for e in only.train_examples(np.random.default_rng(0)) if e.task == "sequential"]
    long_users = 0
    for user, seq in builder.splits.sequences.items():
        train = seq[:-2]
        if len(train) < 2:
            continue
        mine = [e for e in examples if e.user == user]
        labelled = []  # indexes into `train` of the items trained as a next item
        for e in mine:
            end = len(e.meta["history"])  # the answer's index
            assert e.item == train[end]
            labelled += range(max(end - builder.config.max_history, 0) + 1, end + 1)
        if positions == "windows":
            assert sorted(labelled) == list(range(1, len(train)))  # every transition, none twice
        else:
            assert len(mine) == 1 and max(labelled) == len(train) - 1
        long_users += len(train) - 1 > builder.config.max_history
    assert long_users >= 5  # histories longer than `max_history` (4), so windows matter here


def test_direct_choice_candidates_hold_the_target_and_unseen_negatives(builder):
    ex = builder.eval_examples("direct_choice", "test", np.random.default_rng(0), max_contexts=5)
    for e in ex:
        cands = e.meta["candidates"]
        assert len(cands) == 10 and e.item in cands
        assert not (set(cands) - {e.item}) & set(builder.splits.sequences[e.user])


def test_task_weights_scale_the_mix(builder):
    rng = np.random.default_rng(0)
    base = builder.train_examples(rng)
    builder2 = ExampleBuilder(
        builder.data,
        builder.splits,
        builder.items,
        builder.users,
        builder.templates,
        ExampleConfig(task_weights={"sequential": 2.0, "review": 0.0}),
    )
    mixed = builder2.train_examples(np.random.default_rng(0))
    count = lambda exs, t: sum(e.task == t for e in exs)  # noqa: E731
    assert count(mixed, "sequential") == 2 * count(base, "sequential")
    assert count(mixed, "review_summary") == 0 and count(mixed, "review_rating") == 0


def test_bad_example_config_is_named():
    with pytest.raises(ValueError, match="unknown task or family 'sequentail'"):
        ExampleConfig(task_weights={"sequentail": 1.0})


def test_the_builder_takes_the_indexes_and_checks_they_cover_the_data(builder):
    raw = {r: builder.items.id_of(r) for r in builder.data.item_ids}
    with pytest.raises(TypeError, match=r"`items` must be a p5rec.ids.ItemIndex, got dict"):
        ExampleBuilder(builder.data, builder.splits, raw, builder.users, builder.templates)
    fewer = UserIndex.build(builder.data.user_ids[1:])
    with pytest.raises(ValueError, match=r"`users` has no ID for 1 user\(s\) of dataset .* \(e.g. '.*'\)"):
        ExampleBuilder(builder.data, builder.splits, builder.items, fewer, builder.templates)


def test_review_prompts_show_only_the_first_words_of_long_reviews(builder):
    from p5rec.templates.render import prompt_variables

    capped = ExampleBuilder(builder.data, builder.splits, builder.items, builder.users, builder.templates,
                            ExampleConfig(max_review_words=3))  # fmt: skip
    reviews = {r: text for r, text in enumerate(builder.data.column("interactions", "review"))}
    for task in ("review_summary", "review_rating"):
        whole = builder.eval_examples(task, "test", np.random.default_rng(0), max_contexts=20)
        short = capped.eval_examples(task, "test", np.random.default_rng(0), max_contexts=20)
        assert [e.meta["row"] for e in whole] == [e.meta["row"] for e in short]  # the same reviews
        for w, s in zip(whole, short):
            words = reviews[s.meta["row"]].split()
            assert " ".join(words[:3]) in s.input and (len(words) <= 3 or " ".join(words) not in s.input)
            assert s.target == w.target  # the answer (summary, rating) is untouched
        assert any(len(reviews[s.meta["row"]].split()) > 3 for s in short)  # some were cut
    v = prompt_variables("user_1", None, None, 5, max_review_words=2, review_text="Great  sound, clear and warm")
    assert v["review_text"] == "Great sound,"
    short_review = prompt_variables("u", None, None, 5, max_review_words=9, review_text="Short one")
    assert short_review["review_text"] == "Short one"
    with pytest.raises(ValueError, match=r"`max_review_words` must be >= 1 \(or null: whole reviews\), got 0"):
        ExampleConfig(max_review_words=0)


def test_an_epoch_plan_renders_the_epoch_in_any_order(builder):
    from p5rec.training.mixture import MixedExamples

    epoch = builder.train_examples(np.random.default_rng(5))
    plan = builder.train_plan(np.random.default_rng(5))
    assert [render() for render in plan[::-1]][::-1] == epoch  # rendering draws nothing: order is free
    mixed = MixedExamples([builder, builder])
    assert [render() for render in mixed.train_plan(np.random.default_rng(6))] == mixed.train_examples(
        np.random.default_rng(6)
    )


def test_user_ratings_show_the_users_other_training_ratings_only(builder):
    """A training row never shows its own rating; valid/test rows show only training ratings."""
    from p5rec.templates.template import PromptTemplate

    b, c = builder, builder._cols
    templates = TemplateSet([PromptTemplate("mine", "rating", "{{ user_ratings | join(' , ') }} . {{ item_id }}",
                                            "{{ rating }}")])  # fmt: skip
    mine = ExampleBuilder(b.data, b.splits, b.items, b.users, templates, b.config)
    train = set(b.splits.review_rows("train").tolist())
    for split in ("train", "test"):
        for e in mine.eval_examples("rating", split, np.random.default_rng(0), template_ids=["mine"]):
            row = e.meta["row"]
            expected = [k for k in train if c["user_id"][k] == e.user and k != row and c["rating"][k] > 0]
            expected = sorted(expected)[-b.config.max_history :]
            shown = " , ".join(f"{b.items.id_of(c['item_id'][k])} {float(c['rating'][k]):.1f}" for k in expected)
            assert e.input == f"{shown} . {b.items.id_of(e.item)}"


def test_average_ratings_leave_out_the_rows_own_rating(builder):
    """Training rows average the other training ratings; test rows average every training rating."""
    from p5rec.data.rating_means import RatingMeans
    from p5rec.templates.template import PromptTemplate

    b, c = builder, builder._cols
    templates = TemplateSet([PromptTemplate("avg", "rating", "{{ user_avg_rating }} {{ item_avg_rating }}",
                                            "{{ rating }}")])  # fmt: skip
    mine = ExampleBuilder(b.data, b.splits, b.items, b.users, templates, b.config)
    train = [k for k in b.splits.review_rows("train").tolist() if c["rating"][k] > 0]
    means = RatingMeans.fit((c["user_id"][k], c["item_id"][k], c["rating"][k]) for k in train)
    for split in ("train", "test"):
        examples = mine.eval_examples("rating", split, np.random.default_rng(0), template_ids=["avg"])
        assert examples
        for e in examples:
            own = float(c["rating"][e.meta["row"]]) if split == "train" else None
            assert e.input == f"{means.user(e.user, own):.1f} {means.item(e.item, own):.1f}"


def test_similar_explanation_is_the_retrieval_baselines_answer_without_the_rows_own(builder):
    """Test rows show what the retrieval baseline answers; a training row never shows its own sentence."""
    from p5rec.evaluation.baselines import RetrievalExplainer
    from p5rec.templates.template import PromptTemplate

    b, c = builder, builder._cols
    templates = TemplateSet([PromptTemplate("sim", "explanation", "{{ item_id }} : {{ similar_explanation }}",
                                            "{{ explanation }}")])  # fmt: skip
    mine = ExampleBuilder(b.data, b.splits, b.items, b.users, templates, b.config)
    train = b.splits.review_rows("train").tolist()
    retrieval = RetrievalExplainer().fit(*([c[k][r] for r in train] for k in ("item_id", "feature", "explanation")))
    test = mine.eval_examples("explanation", "test", np.random.default_rng(0), template_ids=["sim"])
    assert test
    for e in test:
        row = e.meta["row"]
        assert e.input == f"{b.items.id_of(e.item)} : {retrieval.explain(e.item, c['feature'][row])}"
    own = 0
    for e in mine.eval_examples("explanation", "train", np.random.default_rng(0), template_ids=["sim"]):
        row = e.meta["row"]
        others = [c["explanation"][r] for r in train if r != row and c["item_id"][r] == e.item
                  and c["feature"][r] == c["feature"][row]]  # fmt: skip
        shown = e.input.split(" : ", 1)[1]
        own += shown == e.target
        if shown == e.target:  # only when another training row wrote the same sentence
            assert e.target in others or e.target in [c["explanation"][r] for r in train if r != row]
    assert own < len(train) / 2
