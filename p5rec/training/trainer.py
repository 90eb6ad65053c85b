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

import importlib.util
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase, get_linear_schedule_with_warmup

from p5rec.modeling.attention import attention_kernels
from p5rec.modeling.backbone import ModelConfig, is_encoder_decoder
from p5rec.templates.render import Example
from p5rec.training.checkpoint import BEST_FILE, load_checkpoint, resolve_resume, save_checkpoint
from p5rec.training.collate import CausalCollator, Seq2SeqCollator, encode, history_labels, length_grouped_batches
from p5rec.training.objective import CausalLMObjective, language_model
from p5rec.training.weighting import (
    GROUPINGS,
    WEIGHTINGS,
    UncertaintyWeighting,
    group_means,
    group_of,
    loss_groups,
    per_example_loss,
)

PRECISIONS = ("no", "bf16", "fp16")
TRACKERS = ("tensorboard", "wandb")
_LOWER_IS_BETTER = ("rmse", "mae", "loss", "invalid", "nll")
DEFAULT_PATIENCE = 20  # epochs: ranking metrics sit at popularity level for 15-25 epochs before item-to-item
# transitions are learned (SASRec and p5rec alike, docs/benchmarks.md); a shorter patience stops there


@dataclass
class TrainConfig:
    """Optimization settings.

    Args:
        epochs: passes over freshly rendered training examples.
        batch_size: examples per optimizer step per process (before accumulation).
        learning_rate: peak AdamW learning rate (scratch presets like 1e-3; LoRA on a pretrained
            model ~1e-3; full fine-tuning of a pretrained model ~1e-4).
        weight_decay, warmup_ratio, max_grad_norm: the usual.
        grad_accum: gradient accumulation steps.
        mixed_precision: "no", "bf16" or "fp16" (GPU).
        seed: seeds example rendering (per epoch: (seed, epoch)), batching and initialization.
        log_every: steps between loss log lines.
        output_dir: where `train_log.jsonl`, `curves.png`, checkpoints and the best model are
            written (None: nothing is written; best weights are kept in memory).
        cpu: force CPU even when a GPU is present.
        save_every: optimizer steps between checkpoints (0: none); needs `output_dir`.
        save_total_limit: how many of the newest checkpoints to keep.
        resume_from: "latest" (newest checkpoint in `output_dir`) or a checkpoint folder.
        loss_weighting: "fixed" (the model's token-mean loss over the mixture sampled with
            `examples.task_weights`) or "uncertainty" (learned per-group weights, Kendall et al. 2018).
        weighting_groups: what gets one learned weight: "family" (P5's five) or "task".
        eval_every: optimizer steps between validations (0: at the end of each epoch); validation
            runs only when the run config has a `validation` section.
        early_stopping_metric: "task/metric" from validation, e.g. "sequential/ndcg@10" (higher is
            better unless it is an rmse, mae, loss or invalid count); the best weights are restored.
        early_stopping_patience: validations without improvement before stopping (0: never stop;
            None: 20, when the run validates: next-item metrics can stay flat for 15-25 epochs before
            they rise, and a shorter patience stops the run on that plateau).
        early_stopping_also: further "task/metric" names whose improvement also resets the patience
            (e.g. "sequential/nll"; default none). The best weights are those of `early_stopping_metric`.
        report_to: None, "tensorboard" or "wandb" (optional packages, through accelerate).
        plot: write `curves.png` into `output_dir` at the end (needs matplotlib: `p5rec[plot]`).
        loss_on_prompt: decoder-only backbones: the loss also covers every prompt token (words too).
        history_loss: decoder-only backbones with one token per item ID (`ids.representation:
            tokens`): each history item shown in a prompt is also trained to predict the item after
            it, SASRec's objective inside the prompt (`collate.history_labels`); ignored otherwise.
    """

    epochs: int = 200
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    max_grad_norm: float = 1.0
    grad_accum: int = 1
    mixed_precision: str = "no"
    seed: int = 0
    log_every: int = 50
    output_dir: str | None = None
    cpu: bool = False
    save_every: int = 0
    save_total_limit: int = 2
    resume_from: str | None = None
    loss_weighting: str = "fixed"
    weighting_groups: str = "family"
    eval_every: int = 0
    early_stopping_metric: str = "sequential/ndcg@10"
    early_stopping_patience: int | None = None
    early_stopping_also: Sequence[str] = ()
    report_to: str | None = None
    plot: bool = True
    loss_on_prompt: bool = False
    history_loss: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"`epochs` must be >= 1, got {self.epochs}")
        if self.batch_size < 1 or self.grad_accum < 1:
            raise ValueError(f"`batch_size` ({self.batch_size}) and `grad_accum` ({self.grad_accum}) must be >= 1")
        if self.learning_rate <= 0:
            raise ValueError(f"`learning_rate` must be > 0, got {self.learning_rate}")
        if self.mixed_precision not in PRECISIONS:
            raise ValueError(f"`mixed_precision` must be one of {PRECISIONS}, got {self.mixed_precision!r}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"`warmup_ratio` must be in [0, 1), got {self.warmup_ratio}")
        for name in ("log_every", "save_total_limit"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}")
        for name in ("save_every", "eval_every", "early_stopping_patience"):
            if (getattr(self, name) or 0) < 0:
                raise ValueError(f"`{name}` must be >= 0, got {getattr(self, name)}")
        if self.save_every and not self.output_dir:
            raise ValueError(f"`save_every` ({self.save_every}) needs `output_dir` to write checkpoints into")
        if self.loss_weighting not in WEIGHTINGS:
            raise ValueError(f"`loss_weighting` must be one of {WEIGHTINGS}, got {self.loss_weighting!r}")
        if self.weighting_groups not in GROUPINGS:
            raise ValueError(f"`weighting_groups` must be one of {GROUPINGS}, got {self.weighting_groups!r}")
        for key, name in [("early_stopping_metric", self.early_stopping_metric)] + [
            ("early_stopping_also", n) for n in self.early_stopping_also
        ]:
            if not isinstance(name, str) or name.count("/") != 1:
                raise ValueError(f"`{key}` ({name!r}) must look like 'task/metric', e.g. 'sequential/ndcg@10'")
        if self.report_to is not None:
            if self.report_to not in TRACKERS:
                raise ValueError(f"`report_to` must be one of {TRACKERS} or null, got {self.report_to!r}")
            modules = ("tensorboard", "tensorboardX") if self.report_to == "tensorboard" else ("wandb",)
            if not any(importlib.util.find_spec(m) for m in modules):
                raise ValueError(f"`report_to` is {self.report_to!r} but it is not installed: pip install {modules[0]}")

    @property
    def patience(self) -> int:
        """Validations without progress before stopping; 0 never stops."""
        return DEFAULT_PATIENCE if self.early_stopping_patience is None else self.early_stopping_patience

    def higher_is_better(self, metric: str | None = None) -> bool:
        """Direction of `metric` (default `early_stopping_metric`): errors and likelihoods go down, ranking up."""
        return not (metric or self.early_stopping_metric).split("/")[1].startswith(_LOWER_IS_BETTER)


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
                    tmp = Path(config.output_dir) / (BEST_FILE + ".tmp")
                    torch.save(weights, tmp)
                    os.replace(tmp, Path(config.output_dir) / BEST_FILE)
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
