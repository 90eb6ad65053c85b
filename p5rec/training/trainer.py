"""One training loop over the mixed tasks, on CPU or GPU(s) through accelerate.

`train` reads top to bottom like nanoGPT's train.py, in four steps: set up (seed, accelerator, the
first epoch's data from `epochs.py`: re-rendered each epoch from a generator seeded by (seed, epoch),
tokenized once, grouped by length), prepare the optimizer and resume a checkpoint, loop over the
batches (one `_train_step` each: accumulation, clipping, an optimizer step), and restore the best
weights. Around the loop: checkpoints every `save_every` steps that a killed run resumes from on the
same loss curve (`checkpoint.py`), the log (`_RunLog`: train_log.jsonl, trackers), validation with
early stopping and best-model restore (`_EarlyStopping`), learned task weights (`weighting.py`) and a
curves PNG (`curves.py`).

Multi-process runs (`accelerate launch`) shard each epoch's batches across processes, so N
processes with batch size B take the same optimizer steps as one process with `grad_accum` N.
FSDP and DeepSpeed come from the accelerate config file; nothing here is specific to DDP.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase, get_linear_schedule_with_warmup

from p5rec._atomic import atomic_path
from p5rec.modeling.attention import attention_kernels
from p5rec.modeling.backbone import is_encoder_decoder
from p5rec.modeling.config import ModelConfig
from p5rec.modeling.dropout import DropoutRates
from p5rec.modeling.fast_dropout import use_fast_dropout
from p5rec.training.averaging import WeightAverage, ema_decay
from p5rec.training.checkpoint import BEST_FILE, load_checkpoint, resolve_resume, save_checkpoint
from p5rec.training.config import TrainConfig
from p5rec.training.epochs import EpochLoader, ExampleSource
from p5rec.training.objective import CausalLMObjective, SampledItems, Teacher, language_model
from p5rec.training.weighting import (
    UncertaintyWeighting,
    group_means,
    loss_groups,
    per_example_loss,
)


@dataclass
class TrainResult:
    """What a run did: steps, examples seen, wall time, the log, and the validation outcome."""

    steps: int = 0
    examples: int = 0
    seconds: float = 0.0
    log: list[dict[str, Any]] = field(default_factory=list)
    best_metric: float | None = None
    best_step: int | None = None  # the step of the weights kept: the best's, or with `keep_within` a later one
    kept_metric: float | None = None  # the validation metric at `best_step`
    stopped_early: bool = False
    resumed_from: str | None = None
    task_weights: dict[str, float] = field(default_factory=dict)

    @property
    def final_loss(self) -> float:
        losses = [e["loss"] for e in self.log if "loss" in e]
        return losses[-1] if losses else float("nan")

    def describe(self, metric: str) -> str:
        """One line for `p5rec train` and the demo: steps, time, loss, and which validated weights were kept."""
        line = f"trained {self.steps} steps on {self.examples} examples in {self.seconds:.0f}s"
        line += f"; final loss {self.final_loss:.3f}"
        if self.best_metric is not None and self.kept_metric in (None, self.best_metric):
            line += f"; best valid {metric} {self.best_metric:.4f} at step {self.best_step}"
        elif self.best_metric is not None:
            line += f"; kept step {self.best_step} (valid {metric} {self.kept_metric:.4f}, best {self.best_metric:.4f})"
        return line + ("; stopped early" if self.stopped_early else "")


def train(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    builder: ExampleSource,
    config: TrainConfig,
    model_config: ModelConfig,
    on_epoch_end: Callable[[int, PreTrainedModel], dict[str, float] | None] | None = None,
    progress: bool = True,
    validate: Callable[[PreTrainedModel], dict[str, float]] | None = None,
    on_step: Callable[[int, dict[str, Any]], None] | None = None,
    teacher: Teacher | None = None,
    item_tokens: Sequence[int] | None = None,
) -> TrainResult:
    """Train `model` in place on the examples `builder` renders; returns the log and validation outcome.

    On the CPU the model's dropout is swapped for `p5rec.modeling.fast_dropout`'s (same rates and
    weights, cheaper masks); it stays swapped after training, which changes nothing in eval mode.

    Args:
        model, tokenizer: the backbone (with LoRA applied or not) and its tokenizer.
        builder: renders each epoch's examples (`ExampleBuilder`, or a mixture of several).
        config: optimization, checkpoint, weighting, validation and logging settings.
        model_config: token limits, `text_dropout` for batches without an item history, and
            `copy_bonus` for text answers.
        on_epoch_end: called with (epoch, unwrapped model); returned metrics are logged.
        progress: show the progress bar (main process only).
        validate: unwrapped model -> {"task/metric": value} on the validation split; enables
            early stopping on `config.early_stopping_metric` and best-model restore.
        on_step: called after every optimizer step (and checkpoint) with (step, loop state).
        teacher: a frozen model the loss pulls this one toward on `teacher.tasks`' batches
            (decoder-only models; see `objective.Teacher`).
        item_tokens: the catalog's item token ids, for `config.item_negatives` (a sampled softmax at
            item labels); without them every label is scored over the whole vocabulary.
    """
    from accelerate.utils import broadcast_object_list, set_seed

    # 1. Set up: checks, seed, accelerator, learned task weights, the first epoch's data.
    config.check_installed()
    resume_path = resolve_resume(config.resume_from, config.output_dir) if config.resume_from else None
    set_seed(config.seed)
    accelerator = _accelerator(config)
    encoder_decoder = is_encoder_decoder(model)
    if encoder_decoder and config.loss_on_prompt:
        raise ValueError(
            "`train.loss_on_prompt` needs a decoder-only backbone (model.architecture gpt2 or llama, or a "
            "GPT-style checkpoint); this model is an encoder-decoder, whose prompt is not predicted"
        )
    if config.item_negatives and (encoder_decoder or not item_tokens):
        raise ValueError(
            f"`train.item_negatives` ({config.item_negatives}) samples item tokens, so it needs a decoder-only "
            "backbone with one token per item (`ids.representation: tokens`, flat); set it to 0 for this model"
        )
    if model_config.copy_bonus and encoder_decoder:
        raise ValueError(
            f"`model.copy_bonus` ({model_config.copy_bonus}) needs a decoder-only backbone, whose prompt and "
            "answer share one sequence; this model is an encoder-decoder: set it to 0"
        )
    if teacher is not None and encoder_decoder:
        raise ValueError("a `teacher` needs a decoder-only backbone; this model is an encoder-decoder")
    weighting, group_index = None, None
    if config.loss_weighting == "uncertainty":
        group_names = loss_groups(config.weighting_groups)
        group_index = {n: k for k, n in enumerate(group_names)}
        weighting = UncertaintyWeighting(group_names).to(accelerator.device)
    epoch_loader = EpochLoader(
        builder, tokenizer, config, model_config, accelerator, encoder_decoder, group_index,
        None if teacher is None else teacher.tasks,
    )  # fmt: skip
    if accelerator.device.type == "cpu":  # dropout masks from `rand_like`: 3-4x cheaper there than `bernoulli_`
        use_fast_dropout(model)
    state = _new_state(accelerator, config)
    loader, n_examples = epoch_loader(0)
    total_steps = math.ceil(len(loader) / config.grad_accum) * config.epochs

    # 2. Optimizer, schedule and the loss wrapper, prepared by accelerate; then a checkpoint, if resuming.
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = _optimizer(params, config, weighting)
    if not encoder_decoder:  # logits only where a label is: the vocabulary holds every item
        if teacher is not None:
            teacher.model.to(accelerator.device).eval().requires_grad_(False)
        sampled = SampledItems(item_tokens, config.item_negatives) if config.item_negatives else None
        model = CausalLMObjective(model, teacher, sampled, model_config.copy_bonus, tokenizer.all_special_ids)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    # Rating and text batches train at their own dropout; the model's rates are found once, here.
    text_dropout = None if model_config.text_dropout is None else (DropoutRates(model), model_config.text_dropout)
    if weighting is not None:
        accelerator.register_for_checkpointing(weighting)
    average = None
    if config.average_epochs is not None:
        steps_per_epoch = math.ceil(len(loader) / config.grad_accum)
        average = WeightAverage(model, ema_decay(config.average_epochs, steps_per_epoch))
        accelerator.register_for_checkpointing(average)
    averaged = average.applied if average is not None else contextlib.nullcontext
    result = TrainResult()
    if resume_path is not None:
        state = _resume(accelerator, resume_path, state)
        result.resumed_from = str(resume_path)
    log = _RunLog(accelerator, config, state)
    stopping = _EarlyStopping(accelerator, config, state, log)

    # 3. The loop: epochs of batches; log, validate, checkpoint after optimizer steps.
    start = time.perf_counter()
    bar = tqdm(
        total=total_steps,
        initial=state["step"],
        desc="training",
        disable=not (progress and accelerator.is_main_process),
        dynamic_ncols=True,
        # Into a log file (not a terminal) every refresh is a new line: one every 30 s, not 10 a second.
        mininterval=0.1 if sys.stderr.isatty() else 30.0,
    )
    try:
        for epoch in range(state["epoch"], config.epochs):
            if state["stopped"]:
                break
            if epoch != 0:
                loader, n_examples = epoch_loader(epoch)
            batches = accelerator.skip_first_batches(loader, state["batch"]) if state["batch"] else loader
            model.train()
            for batch in batches:
                loss = _train_step(
                    model, batch, accelerator, optimizer, scheduler, params, config, weighting, encoder_decoder,
                    text_dropout,
                )  # fmt: skip
                state["batch"] += 1
                value = accelerator.reduce(loss.detach().float(), "mean").item()
                if not math.isfinite(value):
                    raise _diverged(value, state["step"] + 1, epoch, scheduler, config)
                state["running"][0] += value
                state["running"][1] += 1
                if not accelerator.sync_gradients:
                    continue
                state["step"] += 1
                if average is not None:
                    average.update()
                bar.update(1)
                if state["step"] % config.log_every == 0 or state["step"] == total_steps:
                    entry = log.loss(epoch, scheduler.get_last_lr()[0], time.perf_counter() - start, weighting)
                    bar.set_postfix(loss=f"{entry['loss']:.3f}", epoch=epoch)
                if validate is not None and config.eval_every and state["step"] % config.eval_every == 0:
                    with averaged():
                        state["stopped"] = stopping.validate(model, validate)
                if config.save_every and state["step"] % config.save_every == 0:
                    save_checkpoint(accelerator, config.output_dir, state, config.save_total_limit)
                if on_step is not None:
                    on_step(state["step"], state)
                if state["stopped"]:
                    break
            if not state["stopped"]:
                state["examples"] += n_examples
                with averaged():  # the weights validated, kept and returned are the average, when there is one
                    if on_epoch_end is not None:
                        metrics = on_epoch_end(epoch, language_model(accelerator.unwrap_model(model)))
                        if metrics:
                            log.record({"epoch": epoch, "step": state["step"], **metrics})
                    if validate is not None and not config.eval_every:
                        state["stopped"] = stopping.validate(model, validate)
                if config.max_minutes is not None and not state["stopped"]:
                    # The main process's clock decides, so every process stops after the same epoch.
                    over = time.perf_counter() - start > 60 * config.max_minutes
                    if broadcast_object_list([over])[0]:
                        state["stopped"] = True
                        log.record({"step": state["step"], "epoch": epoch, "stopped": "max_minutes"})
            state["epoch"], state["batch"] = epoch + 1, 0
    finally:
        epoch_loader.close()
        bar.close()
        log.close()

    # 4. The outcome, with the best validated weights restored on every process.
    result.steps, result.examples, result.log = state["step"], state["examples"], state["log"]
    result.best_metric, result.best_step, result.stopped_early = state["best"], state["best_step"], state["stopped"]
    result.kept_metric = _logged(state["log"], state["best_step"], f"valid/{config.early_stopping_metric}")
    result.seconds = time.perf_counter() - start
    if weighting is not None:
        result.task_weights = weighting.weights()
    unwrapped = accelerator.unwrap_model(model)  # the objective wrapper too: best weights are its state dict
    if state["best"] is not None:
        accelerator.wait_for_everyone()
        unwrapped.load_state_dict(stopping.best_weights())
    elif average is not None:
        average.apply()
    if config.output_dir and config.plot and accelerator.is_main_process:
        _plot(result.log, Path(config.output_dir) / "curves.png")
    unwrapped.eval()
    return result


def _logged(log: list[dict[str, Any]], step: int | None, key: str) -> float | None:
    """The value of `key` in the validation entry of `step`, if the log has one."""
    return next((e[key] for e in log if e.get("step") == step and key in e), None)


def _accelerator(config: TrainConfig):
    from accelerate import Accelerator

    return Accelerator(
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.grad_accum,
        cpu=config.cpu,
        step_scheduler_with_optimizer=False,  # stepped once per optimizer step below, whatever the process count
        log_with=config.report_to,
        project_dir=config.output_dir,
    )


def _new_state(accelerator, config: TrainConfig) -> dict[str, Any]:
    """The loop's position and history: everything a checkpoint saves besides accelerate's own state."""
    return {
        "epoch": 0,  # epoch in progress
        "batch": 0,  # this process's batches done in that epoch
        "step": 0,  # optimizer steps done
        "examples": 0,
        "running": [0.0, 0],  # loss sum and count since the last log line
        "log": [],
        "best": None,
        "best_step": None,
        "bad_evals": 0,
        "validations": 0,
        "best_also": {},  # best value so far of each `early_stopping_also` metric
        "stopped": False,
        "setup": {
            "num_processes": accelerator.num_processes,
            "batch_size": config.batch_size,
            "grad_accum": config.grad_accum,
            "seed": config.seed,
            # Only when set: checkpoints written before weight averaging existed still resume.
            **({"average_epochs": config.average_epochs} if config.average_epochs is not None else {}),
        },
    }


def _optimizer(params: list[torch.nn.Parameter], config: TrainConfig, weighting) -> torch.optim.Optimizer:
    """AdamW with SASRec's betas; no weight decay on biases, norms and the learned task weights."""
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    if weighting is not None:
        groups.append({"params": list(weighting.parameters()), "weight_decay": 0.0})
    return torch.optim.AdamW(groups, lr=config.learning_rate, betas=(0.9, 0.98))


def _resume(accelerator, path: Path, state: dict[str, Any]) -> dict[str, Any]:
    """Restore a checkpoint (weights, optimizer, RNGs) and return its loop state; the setup must match."""
    saved = load_checkpoint(accelerator, path)
    if saved["setup"] != state["setup"]:
        raise ValueError(
            f"`resume_from` ({str(path)!r}) was written with {saved['setup']}, this run has "
            f"{state['setup']}: resume with the same settings and process count"
        )
    return saved


def _train_step(
    model,
    batch,
    accelerator,
    optimizer,
    scheduler,
    params,
    config: TrainConfig,
    weighting,
    encoder_decoder: bool,
    text_dropout: tuple[DropoutRates, float] | None = None,
) -> torch.Tensor:
    """Forward, backward and (at the end of an accumulation) an optimizer step; returns the batch's loss.

    A batch whose examples all show no item history trains at `text_dropout` = (the model's rates,
    `ModelConfig.text_dropout`), if set.
    """
    task_ids = batch.pop("task_ids", None)
    quiet = batch.pop("history_free", False) and text_dropout is not None
    with (
        accelerator.accumulate(model),
        attention_kernels(accelerator.device),
        text_dropout[0].set(text_dropout[1]) if quiet else contextlib.nullcontext(),
    ):
        out = model(**batch)
        if weighting is None:
            loss = objective = out.loss
        else:
            if encoder_decoder:
                per_example = per_example_loss(out.logits, batch["labels"], encoder_decoder)  # (B,)
            else:
                per_example = out.per_example  # the causal objective computes it
            group_loss, present = group_means(per_example, task_ids, len(weighting.names))
            objective = weighting(group_loss, present)
            if not encoder_decoder:  # the teacher's term is not a task's loss: it is added, not weighted
                objective = objective + out.distillation
            loss = per_example.mean()
        accelerator.backward(objective)
        if accelerator.sync_gradients:
            if weighting is not None and accelerator.num_processes > 1:
                # The weights are not inside the DDP model: average their gradients by hand.
                for p in weighting.parameters():
                    p.grad = accelerator.reduce(p.grad, "mean")
            if config.max_grad_norm:
                accelerator.clip_grad_norm_(params, config.max_grad_norm)
        optimizer.step()
        if accelerator.sync_gradients:
            scheduler.step()
        optimizer.zero_grad(set_to_none=True)
    return loss


def _diverged(value: float, step: int, epoch: int, scheduler, config: TrainConfig) -> FloatingPointError:
    # NaN gradients have already reached the weights: every later step would be wasted.
    return FloatingPointError(
        f"training diverged: the loss is {value} at step {step} (epoch {epoch}, "
        f"learning rate {scheduler.get_last_lr()[0]:.2e}, mixed precision "
        f"{config.mixed_precision!r}). Lower `train.learning_rate`, keep `max_grad_norm`, "
        "or train in full precision; checkpoints saved before this step are intact."
    )


class _RunLog:
    """The run's log: `state["log"]`, `train_log.jsonl` (main process) and the trackers."""

    def __init__(self, accelerator, config: TrainConfig, state: dict[str, Any]) -> None:
        self.accelerator, self.config, self.state = accelerator, config, state
        self.file = None
        if config.output_dir and accelerator.is_main_process:
            Path(config.output_dir).mkdir(parents=True, exist_ok=True)
            # A resumed run rewrites the log up to its checkpoint: lines the killed run wrote later are dropped.
            self.file = open(os.path.join(config.output_dir, "train_log.jsonl"), "w")  # noqa: SIM115 (closed below)
            self.file.write("".join(json.dumps(e) + "\n" for e in state["log"]))
        if config.report_to:
            hparams = {k: v for k, v in asdict(config).items() if isinstance(v, (int, float, str, bool))}
            accelerator.init_trackers("p5rec", config=hparams)

    def record(self, entry: dict[str, Any]) -> None:
        self.state["log"].append(entry)
        if self.file:
            self.file.write(json.dumps(entry) + "\n")
            self.file.flush()
        if self.config.report_to:
            self.accelerator.log({k: v for k, v in entry.items() if k != "step"}, step=entry["step"])

    def loss(self, epoch: int, lr: float, seconds: float, weighting) -> dict[str, Any]:
        """Log the mean loss since the last loss line (and the learned task weights); reset the sums."""
        running = self.state["running"]
        entry = {
            "step": self.state["step"],
            "epoch": epoch,
            "loss": running[0] / running[1],
            "lr": lr,
            "seconds": round(seconds, 2),
        }
        if weighting is not None:
            entry.update({f"weight/{k}": v for k, v in weighting.weights().items()})
        self.record(entry)
        self.state["running"] = [0.0, 0]
        return entry

    def close(self) -> None:
        if self.file:
            self.file.close()
        if self.config.report_to:
            self.accelerator.end_training()


class _EarlyStopping:
    """Validation during training: logs the metrics, keeps the best weights, counts validations without progress."""

    def __init__(self, accelerator, config: TrainConfig, state: dict[str, Any], log: _RunLog) -> None:
        self.accelerator, self.config, self.state, self.log = accelerator, config, state, log
        self.best_in_memory: dict[str, torch.Tensor] | None = None  # without an output_dir to write them to

    def validate(self, model, validate: Callable[[PreTrainedModel], dict[str, float]]) -> bool:
        """Validate, log, keep the best weights; True when patience has run out."""
        from accelerate.utils import broadcast_object_list

        accelerator, config, state = self.accelerator, self.config, self.state
        # Every process runs it (FSDP needs all ranks); the main one decides.
        metrics = validate(language_model(accelerator.unwrap_model(model)))
        metrics = broadcast_object_list([metrics])[0]
        model.train()
        name = config.early_stopping_metric
        if name not in metrics:
            raise KeyError(f"`early_stopping_metric` {name!r} is not among the validation metrics {sorted(metrics)}")
        value = float(metrics[name])
        entry = {"step": state["step"], "epoch": state["epoch"], **{f"valid/{k}": v for k, v in metrics.items()}}
        self.log.record(entry)
        best = state["best"]
        if best is None or (value > best if config.higher_is_better() else value < best):
            state.update(best=value, best_step=state["step"], bad_evals=0)
            self._keep(accelerator.get_state_dict(model))
        else:
            state["bad_evals"] += 1
            within = config.keep_within or 0.0
            if within and abs(value - best) <= within * abs(best):  # close enough: keep the later weights
                state["best_step"] = state["step"]
                self._keep(accelerator.get_state_dict(model))
        for other in config.early_stopping_also:  # progress on these resets the patience, too
            if other in metrics:
                seen = state.setdefault("best_also", {}).get(other)
                value = float(metrics[other])
                if seen is None or (value > seen if config.higher_is_better(other) else value < seen):
                    state["best_also"][other] = value
                    state["bad_evals"] = 0
        state["validations"] = state.get("validations", 0) + 1  # get: checkpoints from before the count
        return bool(
            config.patience and state["bad_evals"] >= config.patience and state["validations"] >= config.min_validations
        )

    def _keep(self, weights: dict[str, torch.Tensor]) -> None:
        if not self.config.output_dir:
            self.best_in_memory = {k: v.detach().cpu().clone() for k, v in weights.items()}
        elif self.accelerator.is_main_process:
            with atomic_path(Path(self.config.output_dir) / BEST_FILE) as tmp:
                torch.save(weights, tmp)

    def best_weights(self) -> dict[str, torch.Tensor]:
        """The best validated state dict (of the objective wrapper, when there is one)."""
        if self.best_in_memory is not None:
            return self.best_in_memory
        return torch.load(Path(self.config.output_dir) / BEST_FILE, map_location="cpu", weights_only=True)


def _plot(log: list[dict[str, Any]], path: Path) -> None:
    """Write the curves PNG; without matplotlib, say how to get it instead of failing a finished run."""
    import warnings

    try:
        from p5rec.training.curves import plot_curves

        plot_curves(log, path)
    except ImportError as e:
        warnings.warn(f"training curves not written: {e}", stacklevel=2)
