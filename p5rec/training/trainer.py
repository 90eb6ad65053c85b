"""One training loop over the mixed tasks, on CPU or GPU(s) through accelerate.

Reads top to bottom like nanoGPT's train.py: each epoch re-renders the training examples (a new
random seen template per context, new negatives), tokenizes them once, groups them by length,
and steps the optimizer with gradient accumulation and clipping. Loss is logged to a JSON-lines
file and shown on the progress bar.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase, get_linear_schedule_with_warmup

from p5rec.modeling.backbone import ModelConfig, is_encoder_decoder
from p5rec.templates.render import ExampleBuilder
from p5rec.training.collate import CausalCollator, Seq2SeqCollator, encode, length_grouped_batches

PRECISIONS = ("no", "bf16", "fp16")


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
        seed: seeds example rendering, batching and initialization.
        log_every: steps between loss log lines.
        output_dir: where `train_log.jsonl` is written (None: not written).
        cpu: force CPU even when a GPU is present.
    """

    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.05
    max_grad_norm: float = 1.0
    grad_accum: int = 1
    mixed_precision: str = "no"
    seed: int = 0
    log_every: int = 50
    output_dir: str | None = None
    cpu: bool = False

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


@dataclass
class TrainResult:
    steps: int = 0
    examples: int = 0
    seconds: float = 0.0
    log: list[dict[str, Any]] = field(default_factory=list)

    @property
    def final_loss(self) -> float:
        return self.log[-1]["loss"] if self.log else float("nan")


class _Batches(Sampler[list[int]]):
    """A fixed list of index batches, in a form accelerate can shard across processes."""

    def __init__(self, batches: list[list[int]], batch_size: int) -> None:
        self.batches, self.batch_size, self.drop_last = batches, batch_size, False

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def train(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    builder: ExampleBuilder,
    config: TrainConfig,
    model_config: ModelConfig,
    on_epoch_end: Callable[[int, PreTrainedModel], dict[str, float] | None] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train `model` in place on the examples `builder` renders; returns the loss log."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    set_seed(config.seed)
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision, gradient_accumulation_steps=config.grad_accum, cpu=config.cpu
    )
    rng = np.random.default_rng(config.seed)
    collator_cls = Seq2SeqCollator if is_encoder_decoder(model) else CausalCollator

    def epoch_loader() -> tuple[DataLoader, int]:
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
        lengths = [len(a) + len(b) for a, b in zip(enc.input_ids, enc.labels)]
        batches = length_grouped_batches(lengths, config.batch_size, rng)
        collate = collator_cls(enc, tokenizer.pad_token_id, tokenizer.eos_token_id)
        loader = DataLoader(range(len(enc)), batch_sampler=_Batches(batches, config.batch_size), collate_fn=collate)
        return accelerator.prepare(loader), len(examples)

    loader, n_examples = epoch_loader()
    steps_per_epoch = math.ceil(len(loader) / config.grad_accum)
    total_steps = steps_per_epoch * config.epochs
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
    )
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)

    log_file = None
    if config.output_dir and accelerator.is_main_process:
        Path(config.output_dir).mkdir(parents=True, exist_ok=True)
        log_file = open(os.path.join(config.output_dir, "train_log.jsonl"), "w")  # noqa: SIM115 (closed below)
    result = TrainResult()
    start = time.perf_counter()
    bar = tqdm(
        total=total_steps, desc="training", disable=not (progress and accelerator.is_main_process), dynamic_ncols=True
    )
    running, running_n = 0.0, 0
    try:
        for epoch in range(config.epochs):
            if epoch > 0:
                loader, n_examples = epoch_loader()
            model.train()
            for batch in loader:
                with accelerator.accumulate(model):
                    loss = model(**batch).loss
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and config.max_grad_norm:
                        accelerator.clip_grad_norm_(params, config.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                running += loss.detach().float().item()
                running_n += 1
                if accelerator.sync_gradients:
                    result.steps += 1
                    bar.update(1)
                    if result.steps % config.log_every == 0 or result.steps == total_steps:
                        entry = {
                            "step": result.steps,
                            "epoch": epoch,
                            "loss": running / running_n,
                            "lr": scheduler.get_last_lr()[0],
                            "seconds": round(time.perf_counter() - start, 2),
                        }
                        result.log.append(entry)
                        bar.set_postfix(loss=f"{entry['loss']:.3f}", epoch=epoch)
                        if log_file:
                            log_file.write(json.dumps(entry) + "\n")
                            log_file.flush()
                        running, running_n = 0.0, 0
            result.examples += n_examples
            if on_epoch_end is not None:
                metrics = on_epoch_end(epoch, accelerator.unwrap_model(model))
                if metrics and log_file:
                    log_file.write(json.dumps({"epoch": epoch, "step": result.steps, **metrics}) + "\n")
    finally:
        bar.close()
        if log_file:
            log_file.close()
    result.seconds = time.perf_counter() - start
    accelerator.unwrap_model(model).eval()
    return result
