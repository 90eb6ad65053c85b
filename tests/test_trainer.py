"""The training loop: resume on the same loss curve, learned task weights, early stopping, curves."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from conftest import tiny_config

from p5rec.training.checkpoint import list_checkpoints, resolve_resume
from p5rec.training.trainer import TrainConfig, train
from p5rec.training.weighting import UncertaintyWeighting, group_means, loss_groups, per_example_loss

SMALL_EXAMPLES = {
    "max_history": 5,
    "sequential_positions": "last",
    "task_weights": {"rating": 0.2, "explanation": 0.2, "review": 0.2},
}


@pytest.fixture(scope="module")
def prepared():
    from p5rec.pipeline import prepare

    config = tiny_config(examples=SMALL_EXAMPLES)
    return config, prepare(config)


def _train(prepared, train_config, **kwargs):
    from p5rec.pipeline import build_model

    config, prep = prepared
    model, tokenizer = build_model(config, prep)
    return model, train(model, tokenizer, prep.builder, train_config, config.model, progress=False, **kwargs)


def _losses(result):
    return [(e["step"], e["loss"]) for e in result.log if "loss" in e]


class _Interrupt(Exception):
    pass


def test_resumed_run_continues_the_same_loss_curve(prepared, tmp_path):
    # Dropout is on (0.1): the same curve needs the RNG states, data order and optimizer restored.
    cfg = TrainConfig(epochs=2, batch_size=64, log_every=1, seed=1)  # 6 steps per epoch
    _, straight = _train(prepared, cfg)
    run = replace(cfg, output_dir=str(tmp_path), save_every=4)

    def stop_at_step_10(step, state):  # 2 steps after the checkpoint at step 8, in the second epoch
        if step == 10:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        _train(prepared, run, on_step=stop_at_step_10)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000004", "step_00000008"]
    _, resumed = _train(prepared, replace(run, resume_from="latest"))
    assert resumed.resumed_from.endswith("step_00000008")
    assert resumed.steps == straight.steps == 12
    a, b = _losses(straight), _losses(resumed)
    assert [s for s, _ in a] == [s for s, _ in b]
    assert max(abs(x - y) for (_, x), (_, y) in zip(a, b)) < 1e-5
    logged = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in logged] == [s for s, _ in a]  # the killed run's extra lines are gone


def test_resume_from_a_missing_checkpoint_names_the_setting(tmp_path):
    with pytest.raises(FileNotFoundError, match="`resume_from`.*no complete checkpoint"):
        resolve_resume("latest", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="`resume_from` .*nope.* is not a training checkpoint"):
        resolve_resume(str(tmp_path / "nope"), None)


def test_uncertainty_weighting_learns_weights_and_lowers_the_loss(prepared, tmp_path):
    cfg = TrainConfig(
        epochs=1, batch_size=32, log_every=4, learning_rate=1e-2, loss_weighting="uncertainty", output_dir=str(tmp_path)
    )
    _, result = _train(prepared, cfg)
    weights = result.task_weights
    assert set(weights) == set(loss_groups("family"))
    assert all(abs(w - 1.0) > 1e-3 for w in weights.values())  # every family was present and moved
    losses = [loss for _, loss in _losses(result)]
    assert losses[-1] < losses[0]
    assert "weight/sequential" in result.log[-1]
    assert (tmp_path / "curves.png").stat().st_size > 1000


def test_uncertainty_objective_and_per_example_losses():
    w = UncertaintyWeighting(["a", "b", "c"])
    with torch.no_grad():
        w.log_vars.copy_(torch.tensor([0.0, 1.0, 5.0]))
    # exp(-0)*2 + 0 + exp(-1)*3 + 1; group c is absent and contributes nothing
    got = w(torch.tensor([2.0, 3.0, 7.0]), torch.tensor([True, True, False]))
    assert got.item() == pytest.approx(2 + 3 * torch.exp(torch.tensor(-1.0)).item() + 1)
    means, present = group_means(torch.tensor([1.0, 3.0, 5.0]), torch.tensor([0, 0, 2]), 3)
    assert means.tolist() == [2.0, 0.0, 5.0] and present.tolist() == [True, False, True]
    logits = torch.zeros(2, 3, 4)  # uniform: every token costs log(4)
    labels = torch.tensor([[1, 2, -100], [3, -100, -100]])
    assert per_example_loss(logits, labels, True).tolist() == pytest.approx([1.3862944] * 2)
    # decoder-only: position t predicts label t+1, so row 2 (one label, at position 0) has nothing to predict
    assert per_example_loss(logits, labels, False).tolist() == pytest.approx([1.3862944, 0.0])


def _scripted_validation(scores: list[float]):
    """A validate function that returns `scores` in turn, and the weights it saw for each score."""
    pending, snapshots = iter(scores), {}

    def validate(model):
        score = next(pending)
        snapshots[score] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return {"sequential/ndcg@10": score}

    return validate, snapshots


def test_early_stopping_stops_and_restores_the_best_weights(prepared):
    validate, snapshots = _scripted_validation([0.5, 0.7, 0.6, 0.4, 0.3, 0.2])
    cfg = TrainConfig(epochs=3, batch_size=32, log_every=1, eval_every=2, early_stopping_patience=2)
    model, result = _train(prepared, cfg, validate=validate)
    assert result.stopped_early and result.steps == 8  # validations at 2, 4 (best), 6, 8: two without gain
    assert result.best_metric == 0.7 and result.best_step == 4 and result.kept_metric == 0.7
    assert "; best valid sequential/ndcg@10 0.7000 at step 4; stopped early" in result.describe("sequential/ndcg@10")
    best = snapshots[0.7]
    assert all(torch.equal(v, best[k]) for k, v in model.state_dict().items())
    assert [e["valid/sequential/ndcg@10"] for e in result.log if "valid/sequential/ndcg@10" in e] == [
        0.5,
        0.7,
        0.6,
        0.4,
    ]


def test_progress_on_an_also_metric_resets_the_patience_but_the_best_weights_follow_the_main_one(prepared):
    """On the popularity plateau NDCG@10 is flat while the true item's likelihood improves: the run goes
    on while the NLL falls, and the kept weights are still those of the best NDCG@10."""
    plateau = [(0.5, 9.0), (0.7, 8.0), (0.6, 7.0), (0.6, 6.0), (0.6, 6.5), (0.6, 6.6), (0.6, 6.7)]
    pending, snapshots = iter(plateau), {}

    def validate(model):
        ndcg, nll = next(pending)
        snapshots.setdefault(ndcg, {k: v.detach().clone() for k, v in model.state_dict().items()})
        return {"sequential/ndcg@10": ndcg, "sequential/nll": nll}

    cfg = TrainConfig(
        epochs=4,
        batch_size=32,
        log_every=1,
        eval_every=2,
        early_stopping_patience=2,
        early_stopping_also=["sequential/nll"],
    )
    model, result = _train(prepared, cfg, validate=validate)
    # NLL improves at steps 6 and 8, so the patience of 2 runs out only at step 12 (not at 8 as NDCG alone)
    assert result.stopped_early and result.steps == 12
    assert result.best_metric == 0.7 and result.best_step == 4
    assert all(torch.equal(v, snapshots[0.7][k]) for k, v in model.state_dict().items())


def test_early_stopping_waits_for_min_validations(prepared):
    validate, snapshots = _scripted_validation([0.5, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1])
    cfg = TrainConfig(epochs=4, batch_size=32, log_every=1, eval_every=2, early_stopping_patience=2, min_validations=6)
    model, result = _train(prepared, cfg, validate=validate)
    # patience ran out at the 4th validation (step 8); the run goes on to the 6th (step 12)
    assert result.stopped_early and result.steps == 12
    assert result.best_metric == 0.7 and result.best_step == 4
    assert all(torch.equal(v, snapshots[0.7][k]) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="min_validations"):
        TrainConfig(min_validations=-1)


def test_keep_within_keeps_the_latest_weights_near_the_best(prepared):
    validate, snapshots = _scripted_validation([0.5, 0.7, 0.66, 0.6, 0.65, 0.3])
    cfg = TrainConfig(epochs=3, batch_size=32, log_every=1, eval_every=2, early_stopping_patience=3, keep_within=0.08)
    model, result = _train(prepared, cfg, validate=validate)
    # .66 and .65 are within 8% of .7 (>= .644), .6 is not; patience counts from the best
    assert result.stopped_early and result.steps == 10
    assert result.best_metric == 0.7 and result.best_step == 10 and result.kept_metric == 0.65
    assert "; kept step 10 (valid sequential/ndcg@10 0.6500, best 0.7000)" in result.describe("sequential/ndcg@10")
    kept = snapshots[0.65]
    assert all(torch.equal(v, kept[k]) for k, v in model.state_dict().items())


def test_a_teacher_sees_the_batches_of_its_tasks_only(prepared, monkeypatch):
    import copy

    from p5rec.pipeline import build_model
    from p5rec.training.objective import CausalLMObjective, Teacher

    config, prep = prepared
    model, tokenizer = build_model(config, prep)
    teacher = Teacher(copy.deepcopy(model), 1.0, frozenset({"sequential"}))
    before = {k: v.clone() for k, v in teacher.model.state_dict().items()}
    flags, real = [], CausalLMObjective.forward

    def spy(self, input_ids, attention_mask, labels, distil=False):
        flags.append(distil)
        return real(self, input_ids, attention_mask, labels, distil)

    monkeypatch.setattr(CausalLMObjective, "forward", spy)
    cfg = TrainConfig(epochs=1, batch_size=8, group_by_length=False)
    train(model, tokenizer, prep.builder, cfg, config.model, progress=False, teacher=teacher)
    assert True in flags and False in flags  # next-item batches distilled, the others not
    assert all(torch.equal(v, before[k]) for k, v in teacher.model.state_dict().items())  # frozen


def test_a_teacher_pulls_under_learned_task_weights_too(prepared):
    """With `loss_weighting="uncertainty"` the step optimises the weighted per-task losses, not
    `loss`; the teacher's term must reach that objective as well."""
    import copy

    from p5rec.pipeline import build_model
    from p5rec.training.objective import Teacher

    config, prep = prepared
    cfg = TrainConfig(epochs=1, batch_size=8, group_by_length=False, loss_weighting="uncertainty")
    finals = []
    for weight in (0.0, 1.0):
        model, tokenizer = build_model(config, prep)
        other = copy.deepcopy(model)
        with torch.no_grad():
            for p in other.parameters():
                p.add_(torch.randn_like(p))
        train(
            model,
            tokenizer,
            prep.builder,
            cfg,
            config.model,
            progress=False,
            teacher=Teacher(other, weight, {"sequential"}),
        )
        finals.append({k: v.clone() for k, v in model.state_dict().items()})
    assert any(not torch.equal(v, finals[1][k]) for k, v in finals[0].items())


def test_the_weight_average_is_validated_kept_and_resumed(prepared, tmp_path):
    """With `average_epochs`, validation sees the averaged weights, the best average is returned, and
    a resumed run continues the same average."""
    from p5rec.training.averaging import WeightAverage, ema_decay

    seen, holds_average = [], []
    tracked: dict[str, WeightAverage] = {}

    def validate(model):
        seen.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        average = tracked["average"]
        holds_average.append(all(torch.equal(p, a) for p, a in zip(average.params, average.shadow)))
        return {"sequential/ndcg@10": [0.5, 0.7, 0.6][len(seen) - 1]}

    original = WeightAverage.__init__

    def spy(self, model, decay):
        original(self, model, decay)
        tracked["average"] = self

    cfg = TrainConfig(epochs=3, batch_size=64, log_every=1, seed=1, average_epochs=0.5)  # 6 steps per epoch
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(WeightAverage, "__init__", spy)
        model, result = _train(prepared, cfg, validate=validate)
    average = tracked["average"]
    assert average.decay == pytest.approx(ema_decay(0.5, 6)) == pytest.approx(1 - 1 / 3)
    assert holds_average == [True, True, True]  # validation sees the average, not the raw weights
    assert result.best_step == 12  # the second validation's average is what the model holds now
    assert all(torch.equal(v, seen[1][k]) for k, v in model.state_dict().items())
    assert not all(torch.equal(v, seen[2][k]) for k, v in model.state_dict().items())

    run = replace(cfg, output_dir=str(tmp_path), save_every=12)
    shadows = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(WeightAverage, "__init__", spy)
        for resume in (None, str(tmp_path / "checkpoints" / "step_00000012")):
            _train(prepared, replace(run, resume_from=resume))
            shadows.append(tracked["average"].shadow)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*shadows))  # the checkpoint carries the average


def test_weight_average_updates_applies_and_restores():
    from p5rec.training.averaging import WeightAverage, ema_decay

    layer = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(0.0)
    average = WeightAverage(layer, decay=0.5)
    with torch.no_grad():
        layer.weight.fill_(4.0)
    average.update()  # 0 + 0.5 * (4 - 0)
    with torch.no_grad():
        layer.weight.fill_(8.0)
    average.update()  # 2 + 0.5 * (8 - 2)
    with average.applied():
        assert torch.allclose(layer.weight, torch.full((1, 2), 5.0))
    assert torch.allclose(layer.weight, torch.full((1, 2), 8.0))  # its own weights back
    state = average.state_dict()
    other = WeightAverage(torch.nn.Linear(2, 1, bias=False), decay=0.9)
    other.load_state_dict(state)
    assert other.decay == 0.5 and torch.equal(other.shadow[0], average.shadow[0])
    with pytest.raises(ValueError, match="positive number of epochs"):
        ema_decay(0, 10)
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        WeightAverage(layer, decay=1.0)


def test_lower_is_better_for_error_metrics():
    assert not TrainConfig(early_stopping_metric="rating/rmse").higher_is_better()
    assert TrainConfig(early_stopping_metric="sequential/hr@10").higher_is_better()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"loss_weighting": "learned"}, "`loss_weighting` must be one of"),
        ({"save_every": 10}, "`save_every` \\(10\\) needs `output_dir`"),
        ({"early_stopping_metric": "ndcg"}, "`early_stopping_metric` \\('ndcg'\\) must look like"),
        ({"report_to": "mlflow"}, "`report_to` must be one of"),
        ({"eval_every": -1}, "`eval_every` must be >= 0"),
        ({"average_epochs": 0}, "`average_epochs` \\(0\\) must be > 0"),
    ],
)
def test_train_config_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_curves_png_has_training_and_validation_panels(tmp_path):
    from p5rec.training.curves import plot_curves

    log = [{"step": s, "loss": 3.0 / s, "weight/rating": 1 + s / 10} for s in range(1, 6)]
    log += [{"step": 5, "valid/sequential/ndcg@10": 0.1}]
    path = plot_curves(log, tmp_path / "sub" / "curves.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_diverged_loss_stops_training_with_the_step_and_keeps_earlier_checkpoints(prepared, tmp_path, monkeypatch):
    from p5rec.pipeline import build_model

    config, prep = prepared
    from p5rec.training.objective import CausalLMObjective

    model, tokenizer = build_model(config, prep)
    forward = CausalLMObjective.forward  # the default decoder-only model trains through this loss
    calls = {"n": 0}

    def nan_from_the_fifth_batch(self, *args, **kwargs):
        out = forward(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] >= 5:
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(CausalLMObjective, "forward", nan_from_the_fifth_batch)
    cfg = TrainConfig(epochs=2, batch_size=64, log_every=1, output_dir=str(tmp_path), save_every=2)
    with pytest.raises(FloatingPointError, match=r"loss is nan at step 5 \(epoch 0.*learning_rate"):
        train(model, tokenizer, prep.builder, cfg, config.model, progress=False)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000002", "step_00000004"]
    logged = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in logged] == [1, 2, 3, 4]  # the NaN step is not logged as a loss


def test_gpu_attention_leaves_out_cudnn_only_inside_the_block():
    from p5rec.modeling.attention import attention_kernels

    backends = torch.backends.cuda
    before = (backends.cudnn_sdp_enabled(), backends.flash_sdp_enabled(), backends.mem_efficient_sdp_enabled())
    with attention_kernels("cuda"):  # the flags are process settings: no GPU needed to check them
        assert not backends.cudnn_sdp_enabled()
        assert backends.flash_sdp_enabled() and backends.mem_efficient_sdp_enabled()
    assert (backends.cudnn_sdp_enabled(), backends.flash_sdp_enabled(), backends.mem_efficient_sdp_enabled()) == before
    with attention_kernels("cpu"):  # CPU: nothing changes
        assert backends.cudnn_sdp_enabled() == before[0]


def _epoch_loader(prepared, builder=None, **train):
    from accelerate import Accelerator

    from p5rec.pipeline import build_model
    from p5rec.training.epochs import EpochLoader

    config, prep = prepared
    _, tokenizer = build_model(config, prep)
    cfg = TrainConfig(epochs=5, batch_size=16, **train)
    return EpochLoader(builder or prep.builder, tokenizer, cfg, config.model, Accelerator(cpu=True), False)


def _batches(loader):
    return [b["input_ids"].tolist() for b in loader]


@pytest.fixture
def handed_back(monkeypatch):
    """Whether each forked child's result came back through its pipe (False: it died, the work was redone here)."""
    from p5rec.training import epochs

    seen, result = [], epochs._Forked.result

    def recorded(self):
        value = result(self)
        seen.append(value is not None)
        return value

    monkeypatch.setattr(epochs._Forked, "result", recorded)
    return seen


def test_the_next_epoch_is_prepared_in_the_background_and_matches_one_prepared_here(prepared, handed_back):
    on, off = _epoch_loader(prepared), _epoch_loader(prepared, prefetch=False)
    try:
        on(0)
        assert on._ahead is not None and on._ahead.epoch == 1 and off._ahead is None
        (a, n_a), (b, n_b) = on(1), off(1)
        assert handed_back == [True]  # epoch 1 came from the child, not from a fallback here
        assert n_a == n_b and _batches(a) == _batches(b)
        assert on._ahead.epoch == 2
        c, _ = on(4)  # not the prefetched epoch: prepared here, the background one stopped
        assert _batches(c) == _batches(off(4)[0]) and on._ahead is None  # the last epoch prefetches nothing
    finally:
        on.close()


def test_an_error_while_preparing_in_the_background_is_raised_in_training(prepared):
    class Failing:
        def __init__(self, builder):
            self.builder = builder

        def train_examples(self, rng):
            if self.failing:
                raise ValueError("no such template: 'x'")
            return self.builder.train_examples(rng)

    source = Failing(prepared[1].builder)
    source.failing = False
    loader = _epoch_loader(prepared, builder=source)
    loader(0)  # forks the child for epoch 1 before the builder starts failing: it prepares it fine
    source.failing = True
    loader(1)  # the child for epoch 2 inherits the failing builder
    with pytest.raises(ValueError, match="no such template: 'x'"):
        loader(2)
    loader.close()


def test_an_epoch_rendered_by_several_processes_equals_one_rendered_here(prepared, monkeypatch, handed_back):
    from p5rec.training import epochs

    loader = _epoch_loader(prepared, prefetch=False)
    alone = loader.prepare(2)
    monkeypatch.setattr(epochs, "_workers", lambda n: 3)  # the parent's slice and two forked ones
    started = []

    class Counted(epochs._Forked):
        def __init__(self, fn, *args):
            started.append(len(args[0]))
            super().__init__(fn, *args)

    monkeypatch.setattr(epochs, "_Forked", Counted)
    forked = loader.prepare(2)
    assert len(started) == 2 and all(started) and handed_back == [True, True]  # two slices came from children
    assert forked.num_examples == alone.num_examples > 3
    assert forked.enc.input_ids == alone.enc.input_ids and forked.enc.labels == alone.enc.labels
    assert forked.enc.prompt_labels == alone.enc.prompt_labels and forked.batches == alone.batches


def test_validation_builds_its_predictor_once_and_reads_the_model_in_eval_mode(prepared, monkeypatch):
    import dataclasses

    import p5rec.pipeline as pipeline
    from p5rec.evaluation.config import EvalConfig

    config, prep = prepared
    config = dataclasses.replace(
        config, validation=EvalConfig(tasks=["sequential", "explanation"], max_users=8, max_templates=1)
    )
    model, tokenizer = pipeline.build_model(config, prep)
    built, real = [], pipeline.predictor_for
    monkeypatch.setattr(pipeline, "predictor_for", lambda *a, **k: built.append(1) or real(*a, **k))
    validate = pipeline.make_validator(config, [prep], tokenizer)
    first = validate(model)
    model.train()  # as the trainer leaves it between validations: dropout on
    assert validate(model) == first and len(built) == 1
    other, _ = pipeline.build_model(config, prep)  # another model: its own predictor
    validate(other)
    assert len(built) == 2
