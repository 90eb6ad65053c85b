"""One epoch of training data: freshly rendered examples -> tokens -> length-grouped, sharded batches.

Each epoch re-renders the examples (a new random seen template per context, new negatives) from a
generator seeded by (seed, epoch), so a resumed run regenerates exactly the epoch it stopped in.
Since an epoch depends on nothing but (seed, epoch), the next one is prepared in a forked process
while this one trains (`TrainConfig.prefetch`): rendering and tokenizing a Beauty epoch take ~8 s
of Python, which would otherwise stall the accelerator between epochs.
"""

from __future__ import annotations

import multiprocessing
import warnings
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler
from transformers import PreTrainedTokenizerBase

from p5rec.modeling.config import ModelConfig
from p5rec.templates.render import Example
from p5rec.training.collate import (
    CausalCollator,
    Encoded,
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


@dataclass
class _Epoch:
    """The expensive, picklable part of an epoch: tokens, history labels and the batch plan."""

    enc: Encoded
    batches: list[list[int]]
    num_examples: int


class EpochLoader:
    """Builds the DataLoader of any epoch for one run, the next one prepared in the background.

    Args:
        builder: renders the examples.
        tokenizer: the model's tokenizer.
        config: batch size, seed, loss options (`history_loss`, `loss_on_prompt`, weighting groups),
            `prefetch`.
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
        self._ahead: _Prefetch | None = None

    def __call__(self, epoch: int) -> tuple[DataLoader, int]:
        """This process's batches of epoch `epoch`, and the number of examples in the whole epoch.

        With `config.prefetch`, epoch `epoch + 1` starts preparing in a forked process now, and a
        call for it picks the result up; any other epoch is prepared here.
        """
        ahead, self._ahead = self._ahead, None
        prepared = ahead.result() if ahead is not None and ahead.epoch == epoch else None
        if ahead is not None and prepared is None:
            ahead.cancel()
        if prepared is None:
            prepared = self.prepare(epoch)
        if self.config.prefetch and epoch + 1 < self.config.epochs and _can_fork():
            self._ahead = _Prefetch(self, epoch + 1)
        return self._loader(prepared), prepared.num_examples

    def close(self) -> None:
        """Stop a background preparation that is no longer needed (training ended)."""
        if self._ahead is not None:
            self._ahead.cancel()
            self._ahead = None

    def prepare(self, epoch: int) -> _Epoch:
        """Render, tokenize and plan the batches of epoch `epoch` (the same in any process)."""
        config, tokenizer = self.config, self.tokenizer
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
        return _Epoch(enc, batches, len(examples))

    def _loader(self, prepared: _Epoch) -> DataLoader:
        from accelerate.data_loader import prepare_data_loader

        config, tokenizer, accelerator, enc = self.config, self.tokenizer, self.accelerator, prepared.enc
        if self.encoder_decoder:
            collate = Seq2SeqCollator(enc, tokenizer.pad_token_id, tokenizer.eos_token_id)
        else:
            collate = CausalCollator(enc, tokenizer.pad_token_id, tokenizer.eos_token_id, config.loss_on_prompt)
        # Its own generator: starting an iteration draws a seed, and from the global RNG that draw
        # would shift the dropout stream of a resumed run (its RNG is restored, then a loader starts).
        loader = DataLoader(
            range(len(enc)),
            batch_sampler=_Batches(prepared.batches, config.batch_size),
            collate_fn=collate,
            generator=torch.Generator().manual_seed(config.seed),
        )
        # Sharded per process without `accelerator.prepare`, which would keep every epoch's loader alive.
        return prepare_data_loader(
            loader,
            accelerator.device,
            num_processes=accelerator.num_processes,
            process_index=accelerator.process_index,
            split_batches=accelerator.split_batches,
            put_on_device=accelerator.device_placement,
            even_batches=accelerator.even_batches,
        )


def _can_fork() -> bool:
    # A forked child inherits the builder and tokenizer without pickling them; elsewhere (spawn on
    # macOS and Windows) the epochs are prepared in the training process, as without `prefetch`.
    # A daemonic process (a worker of some pool) may not start children.
    return "fork" in multiprocessing.get_all_start_methods() and not multiprocessing.current_process().daemon


class _Prefetch:
    """One epoch prepared in a forked child process, handed back through a pipe."""

    def __init__(self, loader: EpochLoader, epoch: int) -> None:
        self.loader, self.epoch = loader, epoch
        ctx = multiprocessing.get_context("fork")
        self._recv, send = ctx.Pipe(duplex=False)
        self._process = ctx.Process(target=_prepare_and_send, args=(loader, epoch, send), daemon=True)
        with warnings.catch_warnings():  # Python 3.12 warns about fork in a threaded process; the child runs no torch
            warnings.simplefilter("ignore", DeprecationWarning)
            self._process.start()
        send.close()

    def result(self) -> _Epoch | None:
        """The child's epoch; an error it raised is raised here; None if it died without one."""
        try:
            status, value = self._recv.recv()
        except EOFError:
            warnings.warn(
                f"preparing epoch {self.epoch} in the background failed (the process died); preparing it here",
                RuntimeWarning,
                stacklevel=3,
            )
            return None
        finally:
            self._process.join()
            self._recv.close()
        if status == "error":
            raise value
        return value

    def cancel(self) -> None:
        self._process.terminate()
        self._process.join()
        self._recv.close()


def _prepare_and_send(loader: EpochLoader, epoch: int, send: Any) -> None:
    try:
        send.send(("ok", loader.prepare(epoch)))
    except BaseException as e:  # noqa: BLE001 - every failure goes back to the training process
        send.send(("error", e))
    finally:
        send.close()
