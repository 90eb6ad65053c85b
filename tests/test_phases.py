"""Next-item first (`train.sequential_first`): the next-item task alone, then every task from its weights."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import tiny_config


def _tasks(builder) -> set[str]:
    return {e.task for e in builder.train_examples(np.random.default_rng(0))}


def test_only_tasks_renders_the_named_tasks_and_leaves_the_builder_as_it_was():
    from p5rec.pipeline import prepare
    from p5rec.training.mixture import MixedExamples
    from p5rec.training.phases import only_tasks, trains_others, writes_text

    builder = prepare(tiny_config()).builder
    every = _tasks(builder)
    assert {"sequential", "direct_yesno", "rating"} <= every
    alone = only_tasks(builder, {"sequential"})
    assert _tasks(alone) == {"sequential"}
    assert _tasks(builder) == every  # a view: the builder still renders every task
    assert trains_others(builder) and not trains_others(alone)
    mixed = only_tasks(MixedExamples([builder, builder]), {"sequential"})
    assert _tasks(mixed) == {"sequential"} and trains_others(MixedExamples([builder]))
    assert writes_text(builder) and not writes_text(only_tasks(builder, {"sequential", "direct_yesno", "rating"}))
    assert writes_text(MixedExamples([only_tasks(builder, {"sequential"}), only_tasks(builder, {"explanation"})]))


def test_data_without_reviews_writes_no_text_though_its_templates_exist(tmp_path, monkeypatch):
    """P5's Beauty files hold sequences only: the text tasks have templates but no examples, so the
    every-task phase keeps its best weights (`keep_within` 0), where data with reviews keeps 0.08."""
    import json

    from p5rec.data.loaders import load_p5
    from p5rec.pipeline import fit, prepare
    from p5rec.training.phases import SECOND_KEEP_WITHIN, trains_others, writes_text

    rng = np.random.default_rng(0)
    lines = [" ".join(map(str, [u, *rng.choice(np.arange(1, 21), 6, replace=False)])) for u in range(1, 31)]
    (tmp_path / "sequential_data.txt").write_text("\n".join(lines) + "\n")
    maps = {"user2id": {f"U{u}": str(u) for u in range(1, 31)}, "item2id": {f"I{i}": str(i) for i in range(1, 21)}}
    (tmp_path / "datamaps.json").write_text(json.dumps(maps))
    builder = prepare(tiny_config(), load_p5(tmp_path / "sequential_data.txt", tmp_path / "datamaps.json")).builder
    assert builder.usable_templates("explanation", "seen") and not builder.trains("explanation")
    assert builder.trains("sequential") and builder.trains("direct_choice")
    assert trains_others(builder) and not writes_text(builder)
    assert writes_text(prepare(tiny_config()).builder)  # the synthetic data has reviews
    # the pipeline hands it to the every-task phase
    calls = _recording_train(monkeypatch)
    config = tiny_config(
        model={"backbone": "auto", "vocab_size": 200},
        validation={"max_users": 10},
        train={"epochs": 1, "batch_size": 16, "sequential_first": True},
    )
    fit(config, data=load_p5(tmp_path / "sequential_data.txt", tmp_path / "datamaps.json"), progress=False)
    fit(config, progress=False)
    assert [c["config"].keep_within for c in calls] == [None, 0.0, None, SECOND_KEEP_WITHIN]


def test_the_phases_split_the_budget_and_log_apart():
    from p5rec.training.config import TrainConfig
    from p5rec.training.phases import first_phase, second_phase

    config = TrainConfig(output_dir="runs/x", max_minutes=20, resume_from="latest")
    first = first_phase(config)
    assert first.output_dir.endswith("sequential_first") and first.max_minutes == 10 and first.resume_from is None
    # the popularity plateau cannot end the first phase: at least 50 validations, the config's if higher
    assert first.min_validations == 50 and second_phase(config, 60).min_validations == 0
    assert first_phase(TrainConfig(min_validations=80)).min_validations == 80
    assert second_phase(config, first_seconds=240).max_minutes == pytest.approx(16)
    assert second_phase(TrainConfig(), first_seconds=240).max_minutes is None
    assert first_phase(TrainConfig()).output_dir is None


def test_next_item_first_is_the_default_and_then_the_text_tasks_get_all_their_examples():
    from p5rec.data.synthetic import generate
    from p5rec.recipe import describe, mixture_weights, resolve

    data = generate(tiny_config().data.synthetic)
    validating = {"validation": {"max_users": 10}}
    on = resolve(tiny_config(**validating), [data])
    assert on.train.sequential_first is True and "next-item task alone first" in describe(on)
    off = resolve(tiny_config(train={"sequential_first": False}, **validating), [data])
    assert "next-item task alone first" not in describe(off)
    capped = mixture_weights({}, [data])  # every task from the start: review tasks capped at one epoch of users
    assert capped["explanation"] < 1 and capped["review_summary"] < 1 and capped["rating"] < 1
    assert off.examples.task_weights == capped
    weights = on.examples.task_weights  # next item first: the text tasks uncapped, the others as before
    assert "explanation" not in weights and "review_summary" not in weights
    assert weights["rating"] == capped["rating"] and weights["review_rating"] == capped["review_rating"]
    given = resolve(tiny_config(examples={"task_weights": {"explanation": 0.3}}, **validating), [data])
    assert given.examples.task_weights["explanation"] == 0.3  # a weight the config gives is kept
    one_phase = resolve(tiny_config(), [data])  # no validation: no first phase, every task capped
    assert one_phase.examples.task_weights == capped


def test_the_every_task_phase_keeps_the_latest_weights_near_the_best():
    from p5rec.training.config import TrainConfig
    from p5rec.training.phases import SECOND_KEEP_WITHIN, first_phase, second_phase

    config = TrainConfig()
    assert first_phase(config).keep_within is None  # the first phase keeps its best weights
    assert second_phase(config, 60).keep_within == SECOND_KEEP_WITHIN
    assert second_phase(TrainConfig(keep_within=0.0), 60).keep_within == 0.0
    # nothing writes text (Beauty: next item, yes/no, choice): nothing learns late, the best is kept
    assert second_phase(config, 60, text_tasks=False).keep_within == 0.0
    assert second_phase(TrainConfig(keep_within=0.05), 60, text_tasks=False).keep_within == 0.05
    with pytest.raises(ValueError, match="keep_within"):
        TrainConfig(keep_within=1.5)


def _recording_train(monkeypatch):
    """Patch the pipeline's `train` to record, per call, its tasks and the weights it began and ended with."""
    import p5rec.pipeline as pipeline

    calls, real = [], pipeline.train

    def checksum(model) -> float:
        return float(sum(p.detach().double().sum() for p in model.parameters()))

    def recording(model, tokenizer, builder, config, *args, **kwargs):
        start = checksum(model)
        result = real(model, tokenizer, builder, config, *args, **kwargs)
        teacher = kwargs.get("teacher")
        calls.append(
            {
                "tasks": _tasks(builder),
                "start": start,
                "end": checksum(model),
                "config": config,
                "teacher": None if teacher is None else (checksum(teacher.model), teacher.weight, teacher.tasks),
            }
        )
        return result

    monkeypatch.setattr(pipeline, "train", recording)
    return calls


def test_fit_trains_next_item_alone_then_every_task_from_its_best_weights(monkeypatch, tmp_path):
    from p5rec.pipeline import fit

    calls = _recording_train(monkeypatch)
    config = tiny_config(
        model={"backbone": "auto", "vocab_size": 200},
        validation={"max_users": 10},
        train={"epochs": 2, "batch_size": 16, "output_dir": str(tmp_path), "sequential_first": True},
    )
    result = fit(config, progress=False)
    assert [len(c["tasks"]) > 1 for c in calls] == [False, True]
    assert calls[0]["tasks"] == {"sequential"}
    assert calls[1]["start"] == pytest.approx(calls[0]["end"], rel=1e-12)  # phase 2 starts where phase 1 ended
    assert calls[0]["end"] != pytest.approx(calls[0]["start"], rel=1e-9)  # and the first one trained
    # phase 2 is pulled toward phase 1's best model on the item-answer tasks' batches; that model stays frozen
    item_tasks = frozenset({"sequential", "direct_choice"})  # every label of their prompts is an item
    assert calls[0]["teacher"] is None and calls[1]["teacher"][1:] == (1.0, item_tasks)
    assert calls[1]["teacher"][0] == pytest.approx(calls[0]["end"], rel=1e-12)
    assert result.first is not None and result.first.best_metric is not None and result.train.best_metric is not None
    assert (tmp_path / "sequential_first" / "train_log.jsonl").is_file() and (tmp_path / "train_log.jsonl").is_file()
    from p5rec.training.phases import describe_first

    assert describe_first(result.first).startswith(f"next-item task alone first: {result.first.steps} steps")
    saved = result.recommender.config.to_dict()["train"]
    assert saved["sequential_first"] is True


def test_without_validation_there_is_one_phase(monkeypatch):
    from p5rec.pipeline import fit

    calls = _recording_train(monkeypatch)
    config = tiny_config(model={"backbone": "auto", "vocab_size": 200}, train={"epochs": 1, "sequential_first": True})
    result = fit(config, progress=False)
    assert len(calls) == 1 and result.first is None and len(calls[0]["tasks"]) > 1


def test_no_teacher_when_distillation_is_off(monkeypatch):
    from p5rec.pipeline import fit

    calls = _recording_train(monkeypatch)
    config = tiny_config(
        model={"backbone": "auto", "vocab_size": 200},
        validation={"max_users": 10},
        train={"epochs": 1, "batch_size": 16, "sequential_first": True, "first_distil": 0.0},
    )
    fit(config, progress=False)
    assert len(calls) == 2 and calls[1]["teacher"] is None


def test_first_distil_must_not_be_negative():
    from p5rec.training.config import TrainConfig

    with pytest.raises(ValueError, match="first_distil"):
        TrainConfig(first_distil=-1)


class _Killed(Exception):
    pass


def _phase_losses(result) -> list[tuple[int, float]]:
    return [(e["step"], e["loss"]) for e in result.log if "loss" in e]


def _resumable(tmp_path, name: str, **train):
    return tiny_config(
        model={"backbone": "auto", "vocab_size": 200},
        validation={"max_users": 10},
        train={"epochs": 2, "batch_size": 16, "log_every": 1, "output_dir": str(tmp_path / name), **train},
    )


@pytest.mark.parametrize("killed_in", ["first", "second"])
def test_a_killed_run_resumes_the_phase_it_was_in(tmp_path, killed_in):
    from p5rec.pipeline import fit
    from p5rec.training.checkpoint import list_checkpoints
    from p5rec.training.phases import FIRST_DIR

    straight = fit(_resumable(tmp_path, "straight"), progress=False)
    first_steps = straight.first.steps
    kill_at = first_steps - 1 if killed_in == "first" else first_steps + 3  # the hook counts both phases' steps
    calls = []

    def kill(step, state):
        calls.append(step)
        if len(calls) == kill_at:
            raise _Killed

    run = _resumable(tmp_path, "run", save_every=2)
    with pytest.raises(_Killed):
        fit(run, progress=False, on_step=kill)
    assert bool(list_checkpoints(tmp_path / "run")) == (killed_in == "second")
    resumed = fit(_resumable(tmp_path, "run", save_every=2, resume_from="latest"), progress=False)
    if killed_in == "first":  # the first phase resumes from its own checkpoint, then every task trains
        assert f"{FIRST_DIR}/checkpoints/step_" in resumed.first.resumed_from.replace("\\", "/")
        assert resumed.first.steps == first_steps and resumed.train.resumed_from is None
    else:  # the every-task phase resumes, with the first phase's kept weights as its teacher again
        assert resumed.first is None and resumed.train.resumed_from.endswith("step_00000002")
    # Either way the every-task phase ends as the uninterrupted run's did, loss for loss.
    a, b = _phase_losses(straight.train), _phase_losses(resumed.train)
    assert [s for s, _ in a] == [s for s, _ in b]
    assert max(abs(x - y) for (_, x), (_, y) in zip(a, b)) < 1e-5


def test_resuming_the_every_task_phase_without_the_first_phase_weights_says_what_is_missing(tmp_path):
    from types import SimpleNamespace

    import torch

    from p5rec.training.config import TrainConfig
    from p5rec.training.phases import saved_teacher

    model = torch.nn.Linear(2, 2)
    model.config = SimpleNamespace(is_encoder_decoder=False)
    with pytest.raises(FileNotFoundError, match="first phase's kept weights.*first_distil=0"):
        saved_teacher(model, TrainConfig(output_dir=str(tmp_path)))
    assert saved_teacher(model, TrainConfig(output_dir=str(tmp_path), first_distil=0.0)) is None
