"""Optimization settings: :class:`TrainConfig`, importable without torch."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass

PRECISIONS = ("no", "bf16", "fp16")
WEIGHTINGS = ("fixed", "uncertainty")
GROUPINGS = ("family", "task")
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
        min_validations: early stopping does not end a run before this many validations (0: from
            the first); the first phase of `sequential_first` uses at least 50.
        report_to: None, "tensorboard" or "wandb" (optional packages, through accelerate).
        plot: write `curves.png` into `output_dir` at the end (needs matplotlib: `p5rec[plot]`).
        loss_on_prompt: decoder-only backbones: the loss also covers every prompt token (words too).
        history_loss: decoder-only backbones with one token per item ID (`ids.representation:
            tokens`): each history item shown in a prompt is also trained to predict the item after
            it, SASRec's objective inside the prompt (`collate.history_labels`); ignored otherwise.
        group_by_length: True: batch prompts of similar length together, across tasks (little
            padding; transformers' LengthGroupedSampler). False: each batch holds one task, random
            for prompts with a history (as SASRec draws them), length-grouped for the others
            (`collate.task_batches`). None: the recipe chooses (False with the history loss: on Beauty,
            batches of users with equally long histories halved how fast next-item NDCG rose).
        prefetch: prepare the next epoch (render, tokenize, plan batches) in a forked process
            while this one trains; the same batches either way. Where processes cannot fork
            (macOS, Windows), epochs are prepared in the training process.
        max_minutes: a training budget: no new epoch starts once this many minutes have passed
            (validation included); the best validated weights are kept as with early stopping.
        average_epochs: validate, keep and return an exponential moving average of the weights
            spanning about this many epochs (`training.averaging`) instead of the raw weights;
            None: the raw weights.
        sequential_first: train the next-item (sequential) task alone until early stopping, then
            every task from its best weights (`training.phases`); the first phase logs into
            `output_dir/sequential_first`, takes at most half of `max_minutes`, and is skipped
            when the run does not validate or trains one task only; a resumed run continues the
            phase its checkpoint is from (`resume_from="latest"` finds either). Trained together
            from the start, the other tasks cost next-item NDCG@10 4-11% (docs/benchmarks.md,
            "Where the mix cost comes from" and "Next item first, then every task").
        first_distil: with `sequential_first`, the weight of the KL divergence from the first
            phase's model (frozen) to the trained one on the batches of the tasks that answer
            with an item (next item, direct choice) in the every-task phase (learning without
            forgetting); 0: none.
        keep_within: keep the latest validated weights whose `early_stopping_metric` is within
            this fraction of the best so far, instead of the best (Breiman's one-standard-error
            rule: later weights have trained the other tasks longer). None: 0.08 in the every-task
            phase of `sequential_first` when it trains a text task (one standard error of valid
            NDCG@10 on 450-1,500 users is 8-9% of it), 0 otherwise.
        item_negatives: with one token per item (decoder-only), score each label that is an item
            against the true item and this many catalog items drawn uniformly per batch (a sampled
            softmax) instead of the whole vocabulary; 0 (default): the full softmax. Validation and
            decoding always score the whole catalog. On the CPU it makes a step over a 12k-item
            catalog 1.6x (4,096) to 2.1x (1,024) faster, at a cost on held-out templates once
            trained long (docs/benchmarks.md, "Sampled items"), so it is not the default.
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
    min_validations: int = 0
    report_to: str | None = None
    plot: bool = True
    loss_on_prompt: bool = False
    history_loss: bool = True
    group_by_length: bool | None = None
    max_minutes: float | None = None
    prefetch: bool = True
    average_epochs: float | None = None
    sequential_first: bool = True
    first_distil: float = 1.0
    keep_within: float | None = None
    item_negatives: int = 0

    def __post_init__(self) -> None:
        if self.average_epochs is not None and not self.average_epochs > 0:
            raise ValueError(
                f"`average_epochs` ({self.average_epochs!r}) must be > 0 (epochs the weight average spans), "
                "or null for the raw weights"
            )
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError(f"`max_minutes` ({self.max_minutes!r}) must be > 0, or null for no budget")
        if not self.first_distil >= 0:
            raise ValueError(f"`first_distil` must be >= 0 (0: no distillation), got {self.first_distil!r}")
        if self.keep_within is not None and not 0 <= self.keep_within < 1:
            raise ValueError(f"`keep_within` must be in [0, 1) (a fraction of the best), got {self.keep_within!r}")
        if (
            isinstance(self.min_validations, bool)
            or not isinstance(self.min_validations, int)
            or self.min_validations < 0
        ):
            raise ValueError(f"`min_validations` ({self.min_validations!r}) must be a non-negative integer")
        if isinstance(self.item_negatives, bool) or not isinstance(self.item_negatives, int) or self.item_negatives < 0:
            raise ValueError(
                f"`item_negatives` ({self.item_negatives!r}) must be a non-negative integer (0: the full softmax)"
            )
        if self.epochs < 1:
            raise ValueError(f"`epochs` must be >= 1, got {self.epochs}")
        if self.batch_size < 1 or self.grad_accum < 1:
            raise ValueError(f"`batch_size` ({self.batch_size}) and `grad_accum` ({self.grad_accum}) must be >= 1")
        if self.learning_rate <= 0:
            raise ValueError(f"`learning_rate` must be > 0, got {self.learning_rate}")
        if self.weight_decay < 0:
            raise ValueError(f"`weight_decay` must be >= 0, got {self.weight_decay}")
        if self.max_grad_norm <= 0:
            raise ValueError(f"`max_grad_norm` must be > 0 (it clips the gradient norm), got {self.max_grad_norm}")
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
        if self.report_to is not None and self.report_to not in TRACKERS:
            raise ValueError(f"`report_to` must be one of {TRACKERS} or null, got {self.report_to!r}")

    def check_installed(self) -> None:
        """Fail before training when `report_to` names a tracker that is not installed.

        Not part of `__post_init__`: a saved model's config names the run's tracker, and loading the
        model where that tracker is absent must still work.
        """
        if self.report_to is None:
            return
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
