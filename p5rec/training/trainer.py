"""One training loop over the mixed tasks, on CPU or GPU(s) through accelerate.

Reads top to bottom like nanoGPT's train.py: each epoch re-renders the training examples (a new
random seen template per context, new negatives) from a generator seeded by (seed, epoch), tokenizes
them once, groups them by length, and steps the optimizer with gradient accumulation and clipping.
Around that loop: checkpoints every `save_every` steps that a killed run resumes from on the same
loss curve (see `checkpoint.py`), validation with early stopping and best-model restore, learned
task weights (`weighting.py`), trackers (tensorboard/wandb) and a curves PNG (`curves.py`).

Multi-process runs (`accelerate launch`) shard each epoch's batches across processes, so N
processes with batch size B take the same optimizer steps as one process with `grad_accum` N.
FSDP and DeepSpeed come from the accelerate config file; nothing here is specific to DDP.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase, get_linear_schedule_with_warmup

from p5rec._atomic import atomic_path
from p5rec.modeling.attention import attention_kernels
from p5rec.modeling.backbone import is_encoder_decoder
from p5rec.modeling.config import ModelConfig
from p5rec.templates.render import Example
from p5rec.training.checkpoint import BEST_FILE, load_checkpoint, resolve_resume, save_checkpoint
from p5rec.training.collate import CausalCollator, Seq2SeqCollator, encode, history_labels, length_grouped_batches
from p5rec.training.config import TrainConfig
from p5rec.training.objective import CausalLMObjective, language_model
from p5rec.training.weighting import (
    UncertaintyWeighting,
    group_means,
    group_of,
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
    best_step: int | None = None
    stopped_early: bool = False
    resumed_from: str | None = None
    task_weights: dict[str, float] = field(default_factory=dict)

    @property
    def final_loss(self) -> float:
        losses = [e["loss"] for e in self.log if "loss" in e]
        return losses[-1] if losses else float("nan")


class ExampleSource(Protocol):
    """Anything that renders one epoch of training examples from a generator (`ExampleBuilder`, mixtures)."""

    def train_examples(self, rng: np.random.Generator) -> list[Example]: ...


class _Batches(Sampler[list[int]]):
    """A fixed list of index batches, in a form accelerate can shard across processes."""

    def __init__(self, batches: list[list[int]], batch_size: int) -> None:
        self.batches, self.batch_size, self.drop_last = batches, batch_size, False

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """The generator of one epoch's examples and batches: a resumed run regenerates the same epoch."""
    return np.random.default_rng([seed, epoch])


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
) -> TrainResult:
    """Train `model` in place on the examples `builder` renders; returns the log and validation outcome.

    Args:
        model, tokenizer: the backbone (with LoRA applied or not) and its tokenizer.
        builder: renders each epoch's examples (`ExampleBuilder`, or a mixture of several).
        config: optimization, checkpoint, weighting, validation and logging settings.
        model_config: token limits.
        on_epoch_end: called with (epoch, unwrapped model); returned metrics are logged.
        progress: show the progress bar (main process only).
        validate: unwrapped model -> {"task/metric": value} on the validation split; enables
            early stopping on `config.early_stopping_metric` and best-model restore.
        on_step: called after every optimizer step (and checkpoint) with (step, loop state).
    """
    from accelerate import Accelerator
    from accelerate.data_loader import prepare_data_loader
    from accelerate.utils import broadcast_object_list, set_seed

    config.check_installed()
    resume_path = resolve_resume(config.resume_from, config.output_dir) if config.resume_from else None
    set_seed(config.seed)
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.grad_accum,
        cpu=config.cpu,
        step_scheduler_with_optimizer=False,  # stepped once per optimizer step below, whatever the process count
        log_with=config.report_to,
        project_dir=config.output_dir,
    )
    encoder_decoder = is_encoder_decoder(model)
    if encoder_decoder and config.loss_on_prompt:
        raise ValueError(
            "`train.loss_on_prompt` needs a decoder-only backbone (model.architecture gpt2 or llama, or a "
            "GPT-style checkpoint); this model is an encoder-decoder, whose prompt is not predicted"
        )
    weighting = None
    if config.loss_weighting == "uncertainty":
        group_names = loss_groups(config.weighting_groups)
        group_index = {n: k for k, n in enumerate(group_names)}
        weighting = UncertaintyWeighting(group_names).to(accelerator.device)

    def epoch_loader(epoch: int) -> tuple[DataLoader, int]:
        rng = epoch_rng(config.seed, epoch)
        examples = builder.train_examples(rng)
        if not examples:
            raise ValueError("no training examples: every task has weight 0 or no seen template")
        enc = encode(
            tokenizer,
            [e.input for e in examples],
            [e.target for e in examples],
            model_config.max_input_length,
            model_config.max_target_length,
        )
        if weighting is not None:
            enc.groups = [group_index[group_of(e.task, config.weighting_groups)] for e in examples]
        if config.history_loss and not encoder_decoder:
            enc.prompt_labels = history_labels(
                tokenizer,
                enc.input_ids,
                [e.meta.get("history_ids") for e in examples],
                [e.meta.get("next_id") for e in examples],
            )
        lengths = [len(a) + len(b) for a, b in zip(enc.input_ids, enc.labels)]
        batches = length_grouped_batches(lengths, config.batch_size, rng)
        if encoder_decoder:
            collate = Seq2SeqCollator(enc, tokenizer.pad_token_id, tokenizer.eos_token_id)
        else:
            collate = CausalCollator(enc, tokenizer.pad_token_id, tokenizer.eos_token_id, config.loss_on_prompt)
        # Its own generator: starting an iteration draws a seed, and from the global RNG that draw
        # would shift the dropout stream of a resumed run (its RNG is restored, then a loader starts).
        loader = DataLoader(
            range(len(enc)),
            batch_sampler=_Batches(batches, config.batch_size),
            collate_fn=collate,
            generator=torch.Generator().manual_seed(config.seed),
        )
        # Sharded per process without `accelerator.prepare`, which would keep every epoch's loader alive.
        loader = prepare_data_loader(
            loader,
            accelerator.device,
            num_processes=accelerator.num_processes,
            process_index=accelerator.process_index,
            split_batches=accelerator.split_batches,
            put_on_device=accelerator.device_placement,
            even_batches=accelerator.even_batches,
        )
        return loader, len(examples)

    state: dict[str, Any] = {
        "epoch": 0,  # epoch in progress
        "batch": 0,  # this process's batches done in that epoch
        "step": 0,  # optimizer steps done
        "examples": 0,
        "running": [0.0, 0],  # loss sum and count since the last log line
        "log": [],
        "best": None,
        "best_step": None,
        "bad_evals": 0,
        "best_also": {},  # best value so far of each `early_stopping_also` metric
        "stopped": False,
        "setup": {
            "num_processes": accelerator.num_processes,
            "batch_size": config.batch_size,
            "grad_accum": config.grad_accum,
            "seed": config.seed,
        },
    }
    loader, n_examples = epoch_loader(0)
    steps_per_epoch = math.ceil(len(loader) / config.grad_accum)
    total_steps = steps_per_epoch * config.epochs
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    if weighting is not None:
        groups.append({"params": list(weighting.parameters()), "weight_decay": 0.0})
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate, betas=(0.9, 0.98))  # SASRec's betas
    if not encoder_decoder:  # logits only where a label is: the vocabulary holds every item
        model = CausalLMObjective(model)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    if weighting is not None:
        accelerator.register_for_checkpointing(weighting)

    result = TrainResult()
    if resume_path is not None:
        saved = load_checkpoint(accelerator, resume_path)
        if saved["setup"] != state["setup"]:
            raise ValueError(
                f"`resume_from` ({str(resume_path)!r}) was written with {saved['setup']}, this run has "
                f"{state['setup']}: resume with the same settings and process count"
            )
        state = saved
        result.resumed_from = str(resume_path)
    best_in_memory: dict[str, torch.Tensor] | None = None

    def run_validation() -> bool:
        """Validate, log, keep the best weights; True when patience has run out."""
        nonlocal best_in_memory
        metrics = validate(
            language_model(accelerator.unwrap_model(model))
        )  # every process runs it (FSDP needs all ranks); the main one decides
        metrics = broadcast_object_list([metrics])[0]
        model.train()
        name = config.early_stopping_metric
        if name not in metrics:
            raise KeyError(f"`early_stopping_metric` {name!r} is not among the validation metrics {sorted(metrics)}")
        value = float(metrics[name])
        entry = {"step": state["step"], "epoch": state["epoch"], **{f"valid/{k}": v for k, v in metrics.items()}}
        record(entry)
        best = state["best"]
        if best is None or (value > best if config.higher_is_better() else value < best):
            state.update(best=value, best_step=state["step"], bad_evals=0)
            weights = accelerator.get_state_dict(model)
            if config.output_dir:
                if accelerator.is_main_process:
                    with atomic_path(Path(config.output_dir) / BEST_FILE) as tmp:
                        torch.save(weights, tmp)
            else:
                best_in_memory = {k: v.detach().cpu().clone() for k, v in weights.items()}
        else:
            state["bad_evals"] += 1
        for other in config.early_stopping_also:  # progress on these resets the patience, too
            if other in metrics:
                seen = state.setdefault("best_also", {}).get(other)
                value = float(metrics[other])
                if seen is None or (value > seen if config.higher_is_better(other) else value < seen):
                    state["best_also"][other] = value
                    state["bad_evals"] = 0
        return bool(config.patience and state["bad_evals"] >= config.patience)

    log_file = None
    if config.output_dir and accelerator.is_main_process:
        Path(config.output_dir).mkdir(parents=True, exist_ok=True)
        # A resumed run rewrites the log up to its checkpoint: lines the killed run wrote later are dropped.
        log_file = open(os.path.join(config.output_dir, "train_log.jsonl"), "w")  # noqa: SIM115 (closed below)
        log_file.write("".join(json.dumps(e) + "\n" for e in state["log"]))
    if config.report_to:
        hparams = {k: v for k, v in asdict(config).items() if isinstance(v, (int, float, str, bool))}
        accelerator.init_trackers("p5rec", config=hparams)

    def record(entry: dict[str, Any]) -> None:
        state["log"].append(entry)
        if log_file:
            log_file.write(json.dumps(entry) + "\n")
            log_file.flush()
        if config.report_to:
            accelerator.log({k: v for k, v in entry.items() if k != "step"}, step=entry["step"])

    start = time.perf_counter()
    bar = tqdm(
        total=total_steps,
        initial=state["step"],
        desc="training",
        disable=not (progress and accelerator.is_main_process),
        dynamic_ncols=True,
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
                task_ids = batch.pop("task_ids", None)
                with accelerator.accumulate(model), attention_kernels(accelerator.device):
                    out = model(**batch)
                    if weighting is None:
                        loss = objective = out.loss
                    else:
                        if encoder_decoder:
                            per_example = per_example_loss(out.logits, batch["labels"], encoder_decoder)  # (B,)
                        else:
                            per_example = out.per_example
                        group_loss, present = group_means(per_example, task_ids, len(weighting.names))
                        objective = weighting(group_loss, present)
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
                state["batch"] += 1
                value = accelerator.reduce(loss.detach().float(), "mean").item()
                if not math.isfinite(value):
                    # NaN gradients have already reached the weights: every later step would be wasted.
                    raise FloatingPointError(
                        f"training diverged: the loss is {value} at step {state['step'] + 1} (epoch {epoch}, "
                        f"learning rate {scheduler.get_last_lr()[0]:.2e}, mixed precision "
                        f"{config.mixed_precision!r}). Lower `train.learning_rate`, keep `max_grad_norm`, "
                        "or train in full precision; checkpoints saved before this step are intact."
                    )
                state["running"][0] += value
                state["running"][1] += 1
                if not accelerator.sync_gradients:
                    continue
                state["step"] += 1
                bar.update(1)
                if state["step"] % config.log_every == 0 or state["step"] == total_steps:
                    entry = {
                        "step": state["step"],
                        "epoch": epoch,
                        "loss": state["running"][0] / state["running"][1],
                        "lr": scheduler.get_last_lr()[0],
                        "seconds": round(time.perf_counter() - start, 2),
                    }
                    if weighting is not None:
                        entry.update({f"weight/{k}": v for k, v in weighting.weights().items()})
                    record(entry)
                    bar.set_postfix(loss=f"{entry['loss']:.3f}", epoch=epoch)
                    state["running"] = [0.0, 0]
                if validate is not None and config.eval_every and state["step"] % config.eval_every == 0:
                    state["stopped"] = run_validation()
                if config.save_every and state["step"] % config.save_every == 0:
                    save_checkpoint(accelerator, config.output_dir, state, config.save_total_limit)
                if on_step is not None:
                    on_step(state["step"], state)
                if state["stopped"]:
                    break
            if not state["stopped"]:
                state["examples"] += n_examples
                if on_epoch_end is not None:
                    metrics = on_epoch_end(epoch, language_model(accelerator.unwrap_model(model)))
                    if metrics:
                        record({"epoch": epoch, "step": state["step"], **metrics})
                if validate is not None and not config.eval_every:
                    state["stopped"] = run_validation()
            state["epoch"], state["batch"] = epoch + 1, 0
    finally:
        bar.close()
        if log_file:
            log_file.close()
        if config.report_to:
            accelerator.end_training()
    result.steps, result.examples, result.log = state["step"], state["examples"], state["log"]
    result.best_metric, result.best_step, result.stopped_early = state["best"], state["best_step"], state["stopped"]
    result.seconds = time.perf_counter() - start
    if weighting is not None:
        result.task_weights = weighting.weights()
    unwrapped = accelerator.unwrap_model(model)  # the objective wrapper too: best weights are its state dict
    if state["best"] is not None:  # restore the best validated weights on every process
        accelerator.wait_for_everyone()
        best = best_in_memory
        if best is None:
            best = torch.load(Path(config.output_dir) / BEST_FILE, map_location="cpu", weights_only=True)
        unwrapped.load_state_dict(best)
    if config.output_dir and config.plot and accelerator.is_main_process:
        _plot(result.log, Path(config.output_dir) / "curves.png")
    unwrapped.eval()
    return result


def _plot(log: list[dict[str, Any]], path: Path) -> None:
    """Write the curves PNG; without matplotlib, say how to get it instead of failing a finished run."""
    import warnings

    try:
        from p5rec.training.curves import plot_curves

        plot_curves(log, path)
    except ImportError as e:
        warnings.warn(f"training curves not written: {e}", stacklevel=2)
