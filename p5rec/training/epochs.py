"""One epoch of training data: freshly rendered examples -> tokens -> length-grouped, sharded batches.

Each epoch re-renders the examples (a new random seen template per context, new negatives) from a
generator seeded by (seed, epoch), so a resumed run regenerates exactly the epoch it stopped in.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler
from transformers import PreTrainedTokenizerBase

from p5rec.modeling.config import ModelConfig
from p5rec.templates.render import Example
from p5rec.training.collate import (
    CausalCollator,
    Seq2SeqCollator,
    encode,
    history_labels,
    length_grouped_batches,
    task_batches,
)
from p5rec.training.config import TrainConfig
from p5rec.training.weighting import group_of


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


class EpochLoader:
    """Builds the DataLoader of any epoch for one run.

    Args:
        builder: renders the examples.
        tokenizer: the model's tokenizer.
        config: batch size, seed, loss options (`history_loss`, `loss_on_prompt`, weighting groups).
        model_config: token limits.
        accelerator: shards the batches across processes.
        encoder_decoder: the model's kind (decides the collator and whether the history loss applies).
        group_index: loss group name -> index, when task weights are learned (None: fixed weighting).
    """

    def __init__(
        self,
        builder: ExampleSource,
        tokenizer: PreTrainedTokenizerBase,
        config: TrainConfig,
        model_config: ModelConfig,
        accelerator,
        encoder_decoder: bool,
        group_index: dict[str, int] | None = None,
    ) -> None:
        self.builder, self.tokenizer, self.config, self.model_config = builder, tokenizer, config, model_config
        self.accelerator, self.encoder_decoder, self.group_index = accelerator, encoder_decoder, group_index

    def __call__(self, epoch: int) -> tuple[DataLoader, int]:
        """This process's batches of epoch `epoch`, and the number of examples in the whole epoch."""
        from accelerate.data_loader import prepare_data_loader

        config, tokenizer, accelerator = self.config, self.tokenizer, self.accelerator
        rng = epoch_rng(config.seed, epoch)
        examples = self.builder.train_examples(rng)
        if not examples:
            raise ValueError("no training examples: every task has weight 0 or no seen template")
        enc = encode(
            tokenizer,
            [e.input for e in examples],
            [e.target for e in examples],
            self.model_config.max_input_length,
            self.model_config.max_target_length,
        )
        if self.group_index is not None:
            enc.groups = [self.group_index[group_of(e.task, config.weighting_groups)] for e in examples]
        if config.history_loss and not self.encoder_decoder:
            enc.prompt_labels = history_labels(
                tokenizer,
                enc.input_ids,
                [e.meta.get("history_ids") for e in examples],
                [e.meta.get("next_id") for e in examples],
            )
        lengths = [len(a) + len(b) for a, b in zip(enc.input_ids, enc.labels)]
        if config.group_by_length is False:  # one task per batch; random for prompts that carry a history
            with_history = {e.task for e in examples if e.meta.get("history_ids")}
            batches = task_batches([e.task for e in examples], lengths, config.batch_size, rng, with_history)
        else:
            batches = length_grouped_batches(lengths, config.batch_size, rng)
        if self.encoder_decoder:
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
