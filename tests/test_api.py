import shutil

import pytest
import torch

from p5rec.api import Recommender


def test_every_recommendation_is_a_catalog_item_even_untrained(tiny_fit):
    """Constrained decoding returns real items where free decoding of the same untrained model returns junk."""
    from p5rec.modeling.backbone import ModelConfig, build_scratch_model

    rec = tiny_fit.recommender
    untrained = build_scratch_model(ModelConfig(backbone="tiny"), rec.tokenizer, seed=123)
    fresh = Recommender(
        untrained, rec.tokenizer, rec.items, rec.users, rec.catalog, rec.histories, rec.templates, rec.config
    )
    users = list(rec.histories)[:5]
    catalog = set(rec.catalog)
    for r in fresh.recommend_batch(users, k=5):
        assert len(r) == 5 and {i.item_id for i in r} <= catalog
        assert len({i.item_id for i in r}) == 5  # distinct
    free = fresh.generate(rec.items.id_strings()[0] + " , " + rec.items.id_strings()[1], max_new_tokens=8)
    assert free not in set(rec.items.id_strings())  # unconstrained output of the same model is not an item ID


def test_recommendations_exclude_history_and_carry_titles(tiny_fit):
    rec = tiny_fit.recommender
    user = next(iter(rec.histories))
    recs = rec.recommend(user=user, k=5)
    assert [r.rank for r in recs] == [1, 2, 3, 4, 5]
    assert not {r.item_id for r in recs} & set(rec.histories[user])
    assert all(r.title == rec.catalog[r.item_id]["title"] for r in recs)
    assert [r.score for r in recs] == sorted((r.score for r in recs), reverse=True)
    assert recs.sentence.startswith("We recommend") and recs.items[0].title in recs.sentence


def test_candidates_restrict_the_answer(tiny_fit):
    rec = tiny_fit.recommender
    user = next(iter(rec.histories))
    pool = [i for i in rec.catalog if i not in rec.histories[user]][:4]
    recs = rec.recommend(user=user, k=3, candidates=pool)
    assert {r.item_id for r in recs} <= set(pool) and len(recs) == 3


def test_reloaded_model_gives_identical_answers(tiny_fit, tiny_model_dir):
    rec = tiny_fit.recommender
    back = Recommender.from_pretrained(tiny_model_dir, device="cpu")
    users = list(rec.histories)[:4]
    a = [[(i.item_id, round(i.score, 4)) for i in r] for r in rec.recommend_batch(users, k=5)]
    b = [[(i.item_id, round(i.score, 4)) for i in r] for r in back.recommend_batch(users, k=5)]
    assert a == b
    item = next(iter(rec.catalog))
    assert back.predict_rating(users[0], item) == pytest.approx(rec.predict_rating(users[0], item), abs=1e-5)
    assert back.explain(users[0], item, feature="sound") == rec.explain(users[0], item, feature="sound")


def _seen_template(rec, task, available):
    """The template the API picks for `task` when it can fill `available`: the first seen one that fits."""
    return next(t for t in rec.templates.for_task(task, "seen") if t.input_variables <= available)


def test_a_rating_is_the_mean_of_the_models_stars_for_that_user_and_item(tiny_fit):
    from p5rec.templates.tasks import RATING_VALUES

    rec = tiny_fit.recommender
    user, items = next(iter(rec.histories)), list(rec.catalog)[:4]
    tpl = _seen_template(rec, "rating", {"user_id", "item_id", "item_title"})
    prompts = [
        tpl.render({"user_id": rec.users.id_of(user), "item_id": rec.items.id_of(i),
                    "item_title": rec.catalog[i]["title"], "rating": ""})[0]
        for i in items
    ]  # fmt: skip
    stars = [float(v) for v in RATING_VALUES]
    distributions = rec.predictor.answer_distribution(prompts, RATING_VALUES)
    expected = [sum(s * q for s, q in zip(stars, dist)) for dist in distributions]
    ratings = rec.predict_ratings([(user, i) for i in items])
    assert ratings == pytest.approx(expected, abs=1e-5)  # this user's and this item's prompt, read off the model
    assert ratings == pytest.approx([rec.predict_rating(user, i) for i in items], abs=1e-5)  # batching changes nothing
    assert len({round(r, 6) for r in ratings}) == len(items)  # the item in the prompt moves the answer


def test_a_rating_template_with_user_ratings_shows_the_users_other_ratings(tiny_fit):
    """`user_ratings` holds the user's own ratings, the asked item's left out, the most recent `max_history`."""
    from p5rec.templates.load import TemplateSet
    from p5rec.templates.template import PromptTemplate

    base = tiny_fit.recommender
    text = "{{ user_id }} rated {{ user_ratings | join(' , ') }} . {{ item_id }}"
    mine = PromptTemplate("rating-mine", "rating", text, "{{ rating }}")
    templates = TemplateSet([*base.templates, mine])
    rec = Recommender(base.model, base.tokenizer, base.items, base.users, base.catalog, base.histories, templates,
                      base.config, base.ratings)  # fmt: skip
    users = list(rec.histories)[:2]
    rated = rec.ratings[users[0]]
    asked = rated[-1][0]  # an item the first user rated: its own rating must not show in its prompt
    seen = []
    original = rec.predictor.rate
    rec.predictor.rate = lambda prompts, *rest: seen.extend(prompts) or original(prompts, *rest)
    ratings = rec.predict_ratings([(u, asked) for u in users], template="rating-mine")
    shown = [f"{rec.items.id_of(i)} {r:.1f}" for i, r in rated if i != asked][-rec.max_history :]
    assert seen[0] == f"{rec.users.id_of(users[0])} rated {' , '.join(shown)} . {rec.items.id_of(asked)}"
    last = rec.ratings[users[1]][-1]
    assert f"{rec.items.id_of(last[0])} {last[1]:.1f}" in seen[1]
    assert ratings[0] != pytest.approx(ratings[1], abs=1e-6)  # their own ratings move the answer


def test_a_rating_template_with_averages_shows_the_known_ratings_averages(tiny_fit):
    """`user_avg_rating`/`item_avg_rating` average every known rating but the asked one; none known: an error."""
    from p5rec.data.rating_means import RatingMeans
    from p5rec.templates.load import TemplateSet
    from p5rec.templates.template import PromptTemplate

    base = tiny_fit.recommender
    mine = PromptTemplate("rating-avg", "rating", "{{ user_avg_rating }} {{ item_avg_rating }} {{ item_id }}",
                          "{{ rating }}")  # fmt: skip
    templates = TemplateSet([*base.templates, mine])
    rec = Recommender(base.model, base.tokenizer, base.items, base.users, base.catalog, base.histories, templates,
                      base.config, base.ratings)  # fmt: skip
    user = next(u for u, rated in rec.ratings.items() if rated)
    asked, stars = rec.ratings[user][-1]
    other = next(i for i in rec.catalog if i not in {j for j, _ in rec.ratings[user]})
    seen = []
    original = rec.predictor.rate
    rec.predictor.rate = lambda prompts, *rest: seen.extend(prompts) or original(prompts, *rest)
    rec.predict_ratings([(user, asked), (user, other)], template="rating-avg")
    means = RatingMeans.fit((u, i, r) for u, rated in rec.ratings.items() for i, r in rated)
    assert seen[0] == f"{means.user(user, stars):.1f} {means.item(asked, stars):.1f} {rec.items.id_of(asked)}"
    assert seen[1] == f"{means.user(user):.1f} {means.item(other):.1f} {rec.items.id_of(other)}"
    bare = Recommender(base.model, base.tokenizer, base.items, base.users, base.catalog, base.histories, templates,
                       base.config)  # fmt: skip
    with pytest.raises(ValueError, match="no known ratings"):
        bare.predict_rating(user, asked, template="rating-avg")


def test_a_summary_is_the_models_continuation_of_the_review_prompt(tiny_fit):
    from p5rec.api import NEW_USER

    rec = tiny_fit.recommender
    reviews = ["The sound is great. I use it every day.", "Strings broke after a week."]
    tpl = _seen_template(rec, "review_summary", {"review_text", "user_id"})
    own = rec.predictor.write([tpl.render({"review_text": r, "user_id": NEW_USER, "summary": ""})[0] for r in reviews])
    assert rec.summarize_batch(reviews) == own  # no echo of the prompt, no other template, same in a batch
    user, item = next(iter(rec.histories)), next(iter(rec.catalog))
    requests = [(user, item, "sound"), (user, item, None)]
    assert rec.explain_batch(requests) == [rec.explain(*r) for r in requests]


def test_cold_start_user_with_history(tiny_fit):
    rec = tiny_fit.recommender
    history = list(rec.catalog)[:3]
    recs = rec.recommend(history=history, k=4)
    assert recs.user is None and len(recs) == 4 and not {r.item_id for r in recs} & set(history)


def test_unknown_user_and_items_are_clear_errors(tiny_fit):
    rec = tiny_fit.recommender
    user = next(iter(rec.histories))
    with pytest.raises(KeyError, match=r"unknown user 'ghost' in `user` \(not among .*`history`"):
        rec.recommend(user="ghost")
    with pytest.raises(KeyError, match=r"unknown item 'nope' in `history` \(not in the catalog of 24 items\)"):
        rec.recommend(history=["nope"])
    with pytest.raises(KeyError, match="unknown item"):
        rec.predict_rating(user, "nope")
    with pytest.raises(KeyError, match="unknown user"):
        rec.explain("ghost", next(iter(rec.catalog)))
    with pytest.raises(ValueError, match="`k`"):
        rec.recommend(user=user, k=0)
    with pytest.raises(ValueError, match="`history` is empty"):
        rec.recommend(history=[])


def test_the_recommender_reads_a_typed_run_config(tiny_fit, tiny_model_dir):
    from p5rec.config import RunConfig

    rec = tiny_fit.recommender
    back = Recommender.from_pretrained(tiny_model_dir)
    assert isinstance(back.config, RunConfig) and back.config == rec.config
    # The run's own limits (TINY_RUN: 128 tokens, 5 history items), not defaults typed again in the API.
    assert back.predictor.max_input_length == 128 and back.max_history == 5


def test_a_model_trained_with_a_tracker_loads_where_it_is_not_installed(tiny_model_dir, tmp_path, monkeypatch):
    import importlib.util

    from p5rec.pipeline import check_paths

    moved = tmp_path / "from-a-gpu-box"
    shutil.copytree(tiny_model_dir, moved)
    _meta(moved, lambda m: m["run_config"]["train"].__setitem__("report_to", "wandb"))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)  # no wandb here
    rec = Recommender.from_pretrained(moved)
    assert rec.config.train.report_to == "wandb"
    with pytest.raises(ValueError, match=r"`report_to` is 'wandb' but it is not installed: pip install wandb"):
        check_paths(rec.config)  # training with it, though, stops before any work


def test_missing_or_incomplete_model_directory(tiny_model_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Recommender.from_pretrained(tmp_path / "nothing-here")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "item_index.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing \['item_index.json'\]"):
        Recommender.from_pretrained(broken)


def test_corrupt_weights_are_named(tiny_model_dir, tmp_path):
    broken = tmp_path / "corrupt"
    shutil.copytree(tiny_model_dir, broken)
    weights = next((broken / "model").glob("*.safetensors"))
    weights.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="model weights could not be loaded"):
        Recommender.from_pretrained(broken)


def test_save_over_existing_directory_is_atomic(tiny_fit, tmp_path, monkeypatch):
    rec = tiny_fit.recommender
    target = tmp_path / "m"
    rec.save_pretrained(target)
    monkeypatch.setattr(type(rec.templates), "save", lambda self, path: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        rec.save_pretrained(target)
    assert Recommender.from_pretrained(target).items.id_strings() == rec.items.id_strings()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_lora_model_saves_adapter_and_reloads(tmp_path):
    from conftest import tiny_config

    from p5rec.pipeline import fit

    result = fit(tiny_config(finetune="lora", lora={"r": 4, "alpha": 8}), progress=False)
    rec = result.recommender
    assert hasattr(rec.model, "peft_config")
    rec.save_pretrained(tmp_path / "lora")
    assert (tmp_path / "lora" / "model" / "adapter_config.json").exists()
    back = Recommender.from_pretrained(tmp_path / "lora")
    user = next(iter(rec.histories))
    assert [i.item_id for i in back.recommend(user=user, k=3)] == [i.item_id for i in rec.recommend(user=user, k=3)]
    with torch.no_grad():
        assert any(p.requires_grad for n, p in rec.model.named_parameters() if "lora" in n)


def test_batch_explanations_equal_single_ones(tiny_fit):
    rec = tiny_fit.recommender
    users, items = list(rec.histories)[:3], list(rec.catalog)[:3]
    requests = [(users[0], items[0], "sound"), (users[1], items[1], None), (users[2], items[2], "price")]
    assert rec.explain_batch(requests) == [rec.explain(u, i, feature=f) for u, i, f in requests]


# ------------------------------------------------------------------ arguments of the wrong type or range (#17)
def test_generate_checks_beams_and_lengths(tiny_fit):
    rec = tiny_fit.recommender
    for bad in (0, -5, 2.0, True, "3"):
        with pytest.raises(ValueError, match=rf"`num_beams` \({bad!r}\) must be a positive integer"):
            rec.generate("hello", num_beams=bad)
    with pytest.raises(ValueError, match=r"`max_new_tokens` \(0\) must be a positive integer"):
        rec.generate("hello", max_new_tokens=0)
    user = rec.users.raw_ids()[0]
    with pytest.raises(ValueError, match=r"`num_beams` \(-5\) must be a positive integer .*max\(20, k\)"):
        rec.recommend(user=user, k=3, num_beams=-5)
    with pytest.raises(ValueError, match=r"`k` \(True\)"):
        rec.recommend(user=user, k=True)


def test_ids_of_the_wrong_type_are_type_errors_naming_the_argument(tiny_fit):
    rec = tiny_fit.recommender
    user, item = rec.users.raw_ids()[0], rec.items.raw_ids()[0]
    with pytest.raises(TypeError, match=r"`user` must be a user ID \(a string\) or None, got \['a'\]"):
        rec.recommend(user=["a"])
    with pytest.raises(TypeError, match=r"`user` must be a user ID \(a string\), got \['a'\]"):
        rec.predict_rating(["a"], item)
    with pytest.raises(TypeError, match=r"`history` must hold item IDs as strings, got \['x'\] \(list\)"):
        rec.recommend(history=[["x"]])
    with pytest.raises(TypeError, match=r"`item` must hold item IDs as strings, got 7"):
        rec.explain(user, 7)
    for feature in (123, "", ["sound"]):
        with pytest.raises(TypeError, match=r"`feature` must be a non-empty string"):
            rec.explain(user, item, feature=feature)
    with pytest.raises(TypeError, match=r"`users` must be a list of user IDs"):
        rec.recommend_batch(user)


def test_explaining_without_training_explanations_says_why(tiny_fit):
    """Data without explanations (P5's Beauty files) leaves no table to fill `similar_explanation`,
    which every shipped explanation template shows: the error says so, and nothing else breaks."""
    import copy

    rec = copy.copy(tiny_fit.recommender)
    rec.explanations = None
    user, item = rec.users.raw_ids()[0], rec.items.raw_ids()[0]
    with pytest.raises(ValueError, match=r"no explanation template can be filled .*training data had no explanations"):
        rec.explain(user, item)
    assert len(rec.recommend(user=user, k=3).items) == 3


# ------------------------------------------------------------------ damaged model directories (#17)
def _meta(path, change):
    import json

    meta = json.loads((path / "p5rec_config.json").read_text())
    change(meta)
    (path / "p5rec_config.json").write_text(json.dumps(meta))


def _set_model(key, value):
    return lambda p: _meta(p, lambda m: m["run_config"]["model"].__setitem__(key, value))


def _prepend_line(name, line):
    return lambda p: (p / name).write_text(line + "\n" + (p / name).read_text())


def _unlink(name):
    return lambda p: (p / name).unlink()


def _write(name, data: bytes):
    return lambda p: (p / name).write_bytes(data)


DAMAGES = {
    "no tokenizer.json": (
        _unlink("tokenizer/tokenizer.json"),
        FileNotFoundError,
        r"missing \['tokenizer/tokenizer.json'\]; copy the whole directory",
    ),
    "run_config a string": (
        lambda p: _meta(p, lambda m: m.__setitem__("run_config", "oops")),
        ValueError,
        r"p5rec_config.json: `run_config`: expected a mapping for RunConfig, got str; restore the file",
    ),
    "max_input_length text": (
        _set_model("max_input_length", "abc"),
        ValueError,
        r"p5rec_config.json: `run_config`: `model`: `max_input_length` must be int, got 'abc' .*; restore the file",
    ),
    "max_target_length float": (
        _set_model("max_target_length", 3.5),
        ValueError,
        r"`run_config`: `model`: `max_target_length` must be int, got 3.5",
    ),
    "config random bytes": (
        _write("p5rec_config.json", bytes(range(256))),
        ValueError,
        r"p5rec_config.json: not a text file .*copy the model directory again",
    ),
    "config a list": (_write("p5rec_config.json", b"[1]"), ValueError, r"p5rec_config.json: expected a JSON object"),
    "catalog line": (_prepend_line("catalog.jsonl", "{broken"), ValueError, r"catalog.jsonl:1: not a JSON object"),
    "catalog row without id": (
        _prepend_line("catalog.jsonl", '{"title": "no id"}'),
        ValueError,
        r"catalog.jsonl:1: expected an object with a string `item_id`",
    ),
    "history a string": (
        _write("histories.json", b'{"u": "item"}'),
        ValueError,
        r"histories.json: `u` must map to a list of catalog item IDs",
    ),
    "rating out of range": (
        _write("ratings.json", b'{"u": [["S000193987", 7]]}'),
        ValueError,
        r"ratings.json: `u` must map to a list of \[catalog item ID, stars 1-5\]",
    ),
}


def test_a_model_directory_from_before_user_ratings_still_loads_and_rates(tiny_fit, tiny_model_dir, tmp_path):
    """Directories written before ratings.json existed load with no ratings; their prompts show none."""
    old = tmp_path / "old"
    shutil.copytree(tiny_model_dir, old)
    (old / "ratings.json").unlink()
    back = Recommender.from_pretrained(old, device="cpu")
    assert back.ratings == {}
    user, item = next(iter(back.histories)), next(iter(back.catalog))
    assert 1.0 <= back.predict_rating(user, item) <= 5.0
    # The saved directory keeps every user's ratings: a reload rates as the trained model does.
    assert Recommender.from_pretrained(tiny_model_dir, device="cpu").ratings == tiny_fit.recommender.ratings


@pytest.mark.parametrize("damage, error, match", list(DAMAGES.values()), ids=list(DAMAGES))
def test_a_damaged_model_directory_names_the_file_the_key_and_the_fix(tiny_model_dir, tmp_path, damage, error, match):
    broken = tmp_path / "damaged"
    shutil.copytree(tiny_model_dir, broken)
    damage(broken)
    with pytest.raises(error, match=match):
        Recommender.from_pretrained(broken)


def test_loading_and_saving_print_no_progress_bars(tiny_model_dir, tmp_path, capfd, monkeypatch):
    import transformers

    import p5rec.model_dir

    load = p5rec.model_dir._load_model

    def load_with_a_bar(*args, **kwargs):  # what transformers does per weight file in some versions
        for _ in transformers.utils.logging.tqdm(range(3), desc="Loading weights"):
            pass
        return load(*args, **kwargs)

    monkeypatch.setattr(p5rec.model_dir, "_load_model", load_with_a_bar)
    capfd.readouterr()
    rec = Recommender.from_pretrained(tiny_model_dir)
    rec.save_pretrained(tmp_path / "again")
    err = capfd.readouterr().err
    assert "Loading weights" not in err and "Writing model shards" not in err, err
    assert transformers.utils.logging.is_progress_bar_enabled()  # restored for the caller


def test_saving_never_replaces_a_folder_of_other_files(tiny_fit, tmp_path):
    """#17 item 1's rule for models: p5rec deletes only what it wrote."""
    from p5rec.api import check_model_dir

    rec = tiny_fit.recommender
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match=r"`path` \(.*mine'\) is a folder that is not a p5rec model .*\(notes.txt\)"):
        rec.save_pretrained(mine)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # nothing half-written beside it
    with pytest.raises(ValueError, match=r"`--output` .* is a file"):
        check_model_dir(mine / "notes.txt", flag="--output")
    (tmp_path / "empty").mkdir()
    rec.save_pretrained(tmp_path / "empty")
    rec.save_pretrained(tmp_path / "empty")  # a model directory is replaced
    check_model_dir(tmp_path / "empty")


def test_text_answers_are_never_empty_and_never_item_ids(tiny_fit, monkeypatch):
    """`write` (summaries, explanations) holds a visible word and no ID token; raw generation is unconstrained."""
    from p5rec.decoding.text import VisibleTextLogitsProcessor

    rec = tiny_fit.recommender
    asked = []
    generate = rec.model.generate
    monkeypatch.setattr(rec.model, "generate", lambda **kw: asked.append(kw) or generate(**kw))
    prompts = ["Write a headline for the review. Review: good strings", rec.items.id_strings()[0]]
    raw = [rec.generate(p) for p in prompts]
    assert "logits_processor" not in asked[-1]
    written = rec.predictor.write(prompts)
    assert isinstance(asked[-1]["logits_processor"][0], VisibleTextLogitsProcessor)
    assert all(w and not set(w.split()) & set(rec.items.id_strings()) for w in written)
    assert "" in raw  # the same untrained model, unconstrained, ends before writing anything


def test_a_summary_prompt_shows_as_many_review_words_as_training_did(tiny_fit, monkeypatch):
    import dataclasses

    rec = tiny_fit.recommender
    seen = []

    def write(prompts, **kw):
        seen.extend(prompts)
        return ["x"] * len(prompts)

    monkeypatch.setattr(rec.predictor, "write", write)
    examples = dataclasses.replace(rec.config.examples, max_review_words=2)
    monkeypatch.setattr(rec, "config", dataclasses.replace(rec.config, examples=examples))
    rec.summarize("The sound is great. I use it every day.")
    assert "The sound" in seen[0] and "is great" not in seen[0]


def test_will_like_reads_the_yes_no_prompt_of_the_users_history(tiny_fit):
    from p5rec.decoding.affinity import next_item_percentile

    rec = tiny_fit.recommender
    user = next(iter(rec.histories))
    items = list(rec.catalog)[:4]
    scores = rec.will_like_batch([(user, i) for i in items])
    assert scores == pytest.approx([rec.will_like(user, i) for i in items])  # batching changes nothing
    assert all(0.0 <= s < 1.0 for s in scores) and len(set(scores)) > 1  # the asked item moves the answer
    tpl = rec._template("direct_yesno", None, {"user_id", "item_id", "item_title", "history"})
    hist = " , ".join(rec.items.id_of(i) for i in rec.histories[user][-rec.max_history :])
    prompt = tpl.render({"user_id": rec.users.id_of(user), "item_id": rec.items.id_of(items[0]), "item_title": "",
                         "history": hist.split(" , "), "history_titles": [], "answer": "yes"})[0]  # fmt: skip
    batch = dict(rec.tokenizer([prompt], add_special_tokens=False, return_tensors="pt"))
    own = next_item_percentile(rec.model, batch, rec.predictor.trie.item_tokens[:, 0], [rec.items.position(items[0])])
    assert scores[0] == pytest.approx(float(own[0]))
    with pytest.raises(KeyError, match="nope"):
        rec.will_like(user, "nope")
