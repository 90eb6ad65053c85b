"""An edited or added YAML template takes effect in training, evaluation and the API, with no code change."""

import numpy as np

from p5rec.api import Recommender
from p5rec.evaluation.evaluate import EvalConfig, evaluate
from p5rec.pipeline import fit

CUSTOM = """\
family: sequential
templates:
  - id: my-next-item
    split: seen
    description: Added by a user.
    input: "zebra mode: {{ user_id }} owns {{ history | join(' , ') }} . next ?"
    target: "{{ item_id }}"
  - id: sequential-1
    split: seen
    description: Overrides the shipped template of the same id.
    input: "giraffe mode: {{ history | join(' , ') }} then what ?"
    target: "{{ item_id }}"
  - id: my-zero-shot
    split: unseen
    description: Held out.
    input: "okapi mode: {{ history | join(' , ') }} ?"
    target: "{{ item_id }}"
"""


def test_edited_and_added_templates_reach_training_evaluation_and_the_api(tmp_path):
    from conftest import tiny_config

    folder = tmp_path / "my_prompts"
    folder.mkdir()
    (folder / "sequential.yaml").write_text(CUSTOM)
    result = fit(tiny_config(prompts=[str(folder)]), progress=False)

    # Training renders the added and the edited template (seen), never the unseen one.
    examples = result.prepared.builder.train_examples(np.random.default_rng(0))
    inputs = [e.input for e in examples if e.task == "sequential"]
    assert any(i.startswith("zebra mode:") for i in inputs) and any(i.startswith("giraffe mode:") for i in inputs)
    assert not any(i.startswith("okapi mode:") for i in inputs)

    # Evaluation scores them per template, the held-out one in the unseen split.
    cfg = EvalConfig(tasks=["sequential"], max_users=5, templates=["my-next-item", "sequential-1", "my-zero-shot"])
    rows = evaluate(result.recommender.predictor, result.prepared.builder, cfg, progress=False).rows
    assert {(r["template"], r["template_split"]) for r in rows} == {
        ("my-next-item", "seen"),
        ("sequential-1", "seen"),
        ("my-zero-shot", "unseen"),
    }

    # The API uses them, and they travel with the saved model.
    rec = result.recommender
    rec.save_pretrained(tmp_path / "model")
    back = Recommender.from_pretrained(tmp_path / "model")
    assert back.templates["sequential-1"].input.startswith("giraffe mode:")
    user = next(iter(back.histories))
    recs = back.recommend(user=user, k=3, template="my-next-item")
    assert recs.template == "my-next-item" and len(recs) == 3
