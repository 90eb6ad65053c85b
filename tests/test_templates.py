"""Prompt templates: the shipped collection, loading, layering, saving, and every validation error."""

from __future__ import annotations

import textwrap
from collections import Counter

import numpy as np
import pytest

from p5rec.data.synthetic import generate
from p5rec.data.tables import RecData
from p5rec.templates import PromptTemplate, TemplateError, TemplateSet, read_template_file
from p5rec.templates.tasks import FAMILIES, TASKS, format_rating, parse_rating, parse_yes_no, sample_variables
from p5rec.templates.validate import validate_paths, validate_templates


def write(folder, name, text):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


@pytest.fixture(scope="module")
def defaults():
    return TemplateSet.load()


@pytest.fixture(scope="module")
def prepared():
    from p5rec.config import RunConfig
    from p5rec.pipeline import prepare

    return prepare(RunConfig(), generate(num_users=30, num_items=24, num_categories=3))


# ------------------------------------------------------------------ the collection
def test_collection_has_p5_scale_per_family(defaults):
    per_family = Counter(t.family for t in defaults)
    assert per_family["rating"] >= 10 and per_family["sequential"] >= 13 and per_family["explanation"] >= 12
    assert per_family["review"] >= 4 and per_family["direct"] >= 8
    for task in TASKS:
        splits = {t.split for t in defaults.for_task(task)}
        assert splits == {"seen", "unseen"}, f"{task} needs seen and unseen templates"


def test_first_seen_template_of_each_task_needs_no_metadata(defaults):
    # The API's default template is the first seen one: it must work for data without titles.
    for task in TASKS:
        assert not defaults.for_task(task, split="seen")[0].requires


def test_defaults_validate_clean():
    assert validate_paths([], include_defaults=True) == []


def test_title_templates_exist_and_declare_their_need(defaults):
    needing = [t for t in defaults if t.requires]
    assert {t.family for t in needing} == set(FAMILIES)
    for t in needing:
        assert set(t.requires) <= {"item_title", "history_titles"} and set(t.requires) <= t.input_variables


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_default_template_renders_real_examples(prepared, task):
    builder = prepared.builder
    for tpl in prepared.templates.for_task(task):
        examples = builder.eval_examples(task, "test", np.random.default_rng(0), template_ids=[tpl.id], max_contexts=3)
        assert examples, f"{tpl.id} rendered nothing"
        for e in examples:
            assert e.template_id == tpl.id and e.input and e.target
            assert "{{" not in e.input and '""' not in e.input  # every variable filled, titles not empty
            tokens = e.input.split()
            for item in e.meta.get("candidates", []):
                assert builder.items.id_of(item) in tokens  # IDs stand alone, as the trie needs
            if TASKS[task].kind == "item":
                assert e.target == builder.items.id_of(e.item)
            elif TASKS[task].kind == "rating":
                assert e.target == format_rating(e.meta["rating"])
            elif TASKS[task].kind == "yes_no":
                assert parse_yes_no(e.target) == e.meta["label"]


def test_templates_needing_titles_are_skipped_for_data_without_titles(prepared):
    from p5rec.data.split import Splits
    from p5rec.templates.render import ExampleBuilder

    data = prepared.data
    blank = RecData.from_rows("no-titles", [dict(r, title="") for r in data.items], list(data.interactions))
    builder = ExampleBuilder(blank, Splits.from_data(blank), prepared.items, prepared.users, prepared.templates)
    assert "item_title" not in builder.available and "history_titles" not in builder.available
    used = {e.template_id for e in builder.train_examples(np.random.default_rng(0))}
    assert used and not any(prepared.templates[i].requires for i in used)
    rng = np.random.default_rng(0)
    assert builder.eval_examples("rating", "test", rng, template_ids=["rating-2"]) == []
    assert builder.eval_examples("rating", "test", rng, template_ids=["rating-1"])
    assert "sequential-8" not in {t.id for t in builder.usable_templates("sequential")}


# ------------------------------------------------------------------ layering, Python, saving
def test_user_folders_override_defaults_by_id_and_python_wins(tmp_path, defaults):
    write(
        tmp_path / "a",
        "mine.yaml",
        """
        family: rating
        templates:
          - id: rating-1
            split: seen
            input: "A: {{ user_id }} rates {{ item_id }} :"
            target: "{{ rating }}"
          - id: my-rating
            split: unseen
            input: "Mine: {{ user_id }} , {{ item_id }}"
            target: "{{ rating }}"
        """,
    )
    write(
        tmp_path / "b",
        "later.yaml",
        """
        templates:
          - id: rating-1
            family: rating
            input: "B: {{ user_id }} rates {{ item_id }} :"
            target: "{{ rating }}"
        """,
    )
    ts = TemplateSet.load(tmp_path / "a", tmp_path / "b")
    assert len(ts) == len(defaults) + 1 and "my-rating" in ts
    assert ts["rating-1"].input.startswith("B:") and ts["rating-1"].source.endswith("later.yaml:2")
    ts.add(PromptTemplate("rating-1", "rating", "P: {{ user_id }} {{ item_id }}", "{{ rating }}"))
    assert ts["rating-1"].input.startswith("P:") and ts["rating-1"].source == "python"
    only_user = TemplateSet.load(tmp_path / "a", include_defaults=False)
    assert [t.id for t in only_user] == ["rating-1", "my-rating"]


def test_python_template_renders_and_derives_requires():
    t = PromptTemplate("t", "rating", '{{ user_id }} on "{{ item_title }}" ( {{ item_id }} )', "{{ rating }}")
    assert t.requires == ("item_title",) and t.input_variables == {"user_id", "item_title", "item_id"}
    assert t.render({"user_id": "user_1", "item_id": "item_2", "item_title": "Pick", "rating": "3.0"}) == (
        'user_1 on "Pick" ( item_2 )',
        "3.0",
    )
    assert not t.usable_with({"user_id", "item_id"}) and t.usable_with({"user_id", "item_id", "item_title"})
    with pytest.raises(TemplateError, match="template 't': 'item_id' is undefined"):
        t.render({"user_id": "user_1", "item_title": "x", "rating": "3.0"})
    with pytest.raises(TypeError, match="`template` must be a PromptTemplate, got dict"):
        TemplateSet().add({"id": "x"})
    with pytest.raises(TemplateError, match="duplicate template id 't'"):
        TemplateSet([t, t])


def test_save_and_load_round_trip(tmp_path, defaults):
    ts = TemplateSet.load()
    ts.add(PromptTemplate("extra", "review_summary", "Title : {{ review_text }}", "{{ summary }}", "unseen", "d"))
    ts.save(tmp_path / "prompts.yaml")
    back = TemplateSet.load(tmp_path / "prompts.yaml", include_defaults=False)
    assert [t.to_dict() for t in back] == [t.to_dict() for t in ts]
    assert [t.requires for t in back] == [t.requires for t in ts]
    assert back["sequential-8"].requires == ("history_titles",)


def test_for_task_filters(defaults):
    seen = defaults.for_task("sequential", split="seen")
    assert seen and all(t.split == "seen" and t.task == "sequential" for t in seen)
    plain = defaults.for_task("sequential", available={"user_id", "history"})
    assert plain and not any(t.requires for t in plain)
    with pytest.raises(KeyError, match="unknown task 'sequentail'"):
        defaults.for_task("sequentail")
    with pytest.raises(ValueError, match="`split` must be 'seen', 'unseen' or None, got 'test'"):
        defaults.for_task("rating", split="test")
    with pytest.raises(KeyError, match="unknown template id 'nope'"):
        defaults["nope"]


# ------------------------------------------------------------------ error classes
def one(family: str, tid: str, input: str, target: str, extra: str = "") -> str:
    """A file holding one template: line 3 is its id, `extra` lines follow, then input and target."""
    return f"family: {family}\ntemplates:\n  - id: {tid}\n{extra}    input: {input}\n    target: {target}\n"


RATING = '"{{ rating }}"'
NEXT = '"{{ item_id }}"'
SPACING = one("sequential", "s", "\"{{ history | join(',') }}\"", NEXT)
BAD_CASES = {
    "yaml": ('templates:\n  - id: x\n    input: "a\n  - [\n', r"bad\.yaml:\d+: not valid YAML"),
    "jinja": (
        one("rating", "j", "|\n      Rate {{ item_id }}\n      and {% if %}", RATING),
        r"bad\.yaml:6: template 'j': Jinja syntax error in `input`",
    ),
    "unknown-variable": (
        one("rating", "u", '"{{ user_id }} {{ itme_id }}"', RATING),
        r"bad\.yaml:4: template 'u': unknown variable `itme_id` in `input`; task 'rating' provides",
    ),
    "answer-in-input": (
        one("rating", "a", '"{{ user_id }} gave {{ rating }}"', RATING),
        r"template 'a': `input` uses the answer variable `rating`, which leaks the target",
    ),
    "hidden-in-input": (
        one("sequential", "h", "\"{{ history | join(' , ') }} then {{ item_title }}\"", NEXT),
        r"template 'h': `input` uses a variable that reveals the answer `item_title`",
    ),
    "answer-missing": (
        one("rating", "m", '"{{ user_id }} {{ item_id }}"', '"{{ item_title }}"'),
        r"template 'm': `target` does not use the answer variable `rating`",
    ),
    "ranking-target": (
        one("sequential", "r", "\"{{ history | join(' , ') }}\"", '"next: {{ item_id }}"'),
        r"template 'r': `target` renders to 'next: item_104' for the answer 'item_104'; it must be exactly",
    ),
    "rating-target": (
        one("rating", "n", '"{{ user_id }} {{ item_id }}"', "\"{{ rating ~ ' stars' }}\""),
        r"template 'n': `target` renders to '4.0 stars' for the answer '4.0'",
    ),
    "duplicate": (
        one("rating", "d", '"{{ item_id }} ?"', RATING)
        + one("rating", "d", '"{{ item_id }} ?"', RATING).split("templates:\n")[1],
        r"bad\.yaml:6: template 'd': duplicate template id \(first at .*bad\.yaml:3\)",
    ),
    "unknown-key": (
        one("rating", "k", '"{{ item_id }} ?"', RATING, extra='    inptu: "x"\n'),
        r"bad\.yaml:4: template 'k': unknown key\(s\) \['inptu'\]",
    ),
    "unknown-task": (
        'templates:\n  - id: t\n    task: rate\n    input: "x"\n    target: "y"\n',
        r"bad\.yaml:3: template 't': unknown task 'rate'",
    ),
    "split": (
        one("rating", "p", '"{{ item_id }} ?"', RATING, extra="    split: held-out\n"),
        r"template 'p': `split` must be 'seen' or 'unseen', got 'held-out'",
    ),
    "requires": (
        one("rating", "q", '"{{ item_id }} ?"', RATING, extra="    requires: [review_text]\n"),
        r"template 'q': `requires` names \['review_text'\], which task 'rating' does not provide",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_each_error_class_fails_loading_and_is_reported(tmp_path, case):
    text, pattern = BAD_CASES[case]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(TemplateError, match=pattern):
        TemplateSet.load(tmp_path, include_defaults=False)
    problems = validate_paths([tmp_path], include_defaults=False)
    assert any(p.severity == "error" for p in problems)
    import re

    assert any(re.search(pattern, str(p)) for p in problems), [str(p) for p in problems]


def test_item_ids_glued_to_text_are_a_warning_that_does_not_stop_loading(tmp_path):
    # A warning, not an error: a model saved with such a prompt must still load.
    write(tmp_path, "s.yaml", SPACING)
    assert [t.id for t in TemplateSet.load(tmp_path, include_defaults=False)] == ["s"]
    (p,) = [p for p in validate_paths([tmp_path]) if p.kind == "spacing"]
    assert p.severity == "warning" and p.line == 4
    assert "template 's': an item ID touches other text in the rendered input ('item_101,item_102" in str(p)


def test_validate_collects_every_problem_across_files(tmp_path):
    folder = tmp_path / "mine"
    for case in ("jinja", "unknown-variable", "duplicate"):
        write(folder, f"{case}.yaml", BAD_CASES[case][0])
    write(folder, "spacing.yaml", SPACING)
    ok = one("review", "fine", '"T : {{ review_text }}"', '"{{ summary }}"', "    task: review_summary\n")
    write(folder, "ok.yaml", ok)
    problems = validate_paths([folder])
    kinds = Counter(p.kind for p in problems)
    assert kinds == {"syntax": 1, "variable": 1, "spacing": 1, "duplicate": 1}
    assert {p.path.rsplit("/", 1)[-1] for p in problems} == {
        "jinja.yaml",
        "unknown-variable.yaml",
        "spacing.yaml",
        "duplicate.yaml",
    }
    # Loading stops at the first one.
    with pytest.raises(TemplateError, match="duplicate.yaml"):
        TemplateSet.load(folder)


def test_duplicate_across_files_of_one_folder_names_both(tmp_path):
    for name in ("a.yaml", "b.yaml"):
        write(tmp_path, name, one("rating", "same", '"{{ item_id }} ?"', RATING))
    with pytest.raises(TemplateError, match=r"b\.yaml:3: duplicate template id 'same' \(first at .*a\.yaml:3\)"):
        TemplateSet.load(tmp_path, include_defaults=False)
    (p,) = [p for p in validate_paths([tmp_path], include_defaults=False) if p.severity == "error"]
    assert p.kind == "duplicate" and p.line == 3 and "a.yaml:3" in p.message and p.path.endswith("b.yaml")


def test_family_without_seen_template_is_an_error(tmp_path):
    write(tmp_path, "r.yaml", one("rating", "only", '"{{ item_id }} ?"', RATING, "    split: unseen\n"))
    # Loading accepts it (an unseen-only folder is how zero-shot prompts are evaluated)...
    assert len(TemplateSet.load(tmp_path, include_defaults=False)) == 1
    # ...but validation says training would never see the family.
    (p,) = validate_paths([tmp_path], include_defaults=False)
    assert p.severity == "error" and p.kind == "family" and p.line == 3
    assert "family 'rating' has no seen template, so it is never trained" in str(p)
    # Layered over the defaults the family has seen templates: fine.
    assert validate_paths([tmp_path]) == []


def test_task_without_seen_template_and_family_without_unseen_are_warnings():
    ts = TemplateSet.load().select(["review-summary-1", "review-rating-3"])
    (p,) = validate_templates(ts)
    assert (p.severity, p.message) == ("warning", "task 'review_rating' has no seen template, so it is never trained")
    only_seen = TemplateSet.load().select(["rating-1"])
    (p,) = validate_templates(only_seen)
    assert p.severity == "warning" and "family 'rating' has no unseen template" in p.message


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="prompt folder .*nowhere does not exist"):
        TemplateSet.load(tmp_path / "nowhere")
    (p,) = validate_paths([tmp_path / "nowhere"])
    assert p.kind == "missing" and p.severity == "error"


def test_read_template_file_reports_line(tmp_path):
    path = write(tmp_path, "x.yaml", BAD_CASES["unknown-variable"][0])
    with pytest.raises(TemplateError, match=r"x\.yaml:4: template 'u'"):
        read_template_file(path)


# ------------------------------------------------------------------ answer parsing
def test_answer_parsing():
    assert format_rating(4) == "4.0" and parse_rating("4.0") == 4.0 and parse_rating("about 3 , maybe") == 3.0
    assert parse_rating("no idea") is None
    assert parse_yes_no("Yes.") is True and parse_yes_no(" no") is False
    assert parse_yes_no("not sure") is None and parse_yes_no("") is None and parse_yes_no("yesterday") is None


def test_sample_variables_cover_each_task_and_differ():
    for task, spec in TASKS.items():
        a, b = sample_variables(task, 0), sample_variables(task, 1)
        assert set(a) == set(spec.variables) == set(b)
        assert a[spec.answer] != b[spec.answer]
    with pytest.raises(ValueError, match="`variant` must be 0 or 1, got 2"):
        sample_variables("rating", 2)
