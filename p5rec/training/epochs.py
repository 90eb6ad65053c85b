"""One epoch of training data: freshly rendered examples -> tokens -> length-grouped, sharded batches.

Each epoch re-renders the examples (a new random seen template per context, new negatives) from a
generator seeded by (seed, epoch), so a resumed run regenerates exactly the epoch it stopped in.
Since an epoch depends on nothing but (seed, epoch), the next one is prepared in a forked process
while this one trains (`TrainConfig.prefetch`): rendering and tokenizing a Beauty epoch take ~4-5 s
of Python on one CPU core, which would otherwise stall the accelerator between epochs.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import warnings
from collections.abc import Callable, Iterator, Set
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler
from transformers import PreTrainedTokenizerBase

from p5rec.modeling.config import ModelConfig
from p5rec.templates.render import Example
from p5rec.templates.tasks import TASKS
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
    """Anything that renders one epoch of training examples from a generator (`ExampleBuilder`, mixtures).

    A source may also offer `train_plan(rng)`: the same epoch as callables that render one example
    each and draw nothing from `rng`, which lets an epoch be rendered by several processes.
    """

    def train_examples(self, rng: np.random.Generator) -> list[Example]: ...


def plan_of(source: ExampleSource, rng: np.random.Generator) -> list[Callable[[], Example]]:
    """`source.train_plan(rng)`, or its rendered examples wrapped as entries of a plan."""
    plan = getattr(source, "train_plan", None)
    if plan is not None:
        return plan(rng)
    return [partial(_same, e) for e in source.train_examples(rng)]


def _same(example: Example) -> Example:
    return example


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
class _Part:
    """A rendered, tokenized slice of an epoch, as a forked process hands it back."""

    enc: Encoded
    tasks: list[str]
    with_history: set[str]


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
        distil_tasks: the tasks whose batches a teacher's distribution applies to (None: no teacher).
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
        distil_tasks: Set[str] | None = None,
    ) -> None:
        self.builder, self.tokenizer, self.config, self.model_config = builder, tokenizer, config, model_config
        self.accelerator, self.encoder_decoder, self.group_index = accelerator, encoder_decoder, group_index
        self.distil_tasks = distil_tasks
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
        """Render, tokenize and plan the batches of epoch `epoch` (the same in any process).

        The examples are chosen here (every random draw), then rendered and tokenized in slices by
        forked processes when the epoch is large and cores are free (`_workers`): the same tokens
        either way.
        """
        with _no_gc():
            return self._prepare(epoch)

    def _prepare(self, epoch: int) -> _Epoch:
        config = self.config
        rng = epoch_rng(config.seed, epoch)
        plan = plan_of(self.builder, rng)
        if not plan:
            raise ValueError("no training examples: every task has weight 0 or no seen template")
        workers = _workers(len(plan))
        bounds = [len(plan) * k // workers for k in range(workers + 1)]
        children = [_Forked(self._encode, plan[a:b]) for a, b in zip(bounds[1:-1], bounds[2:])]
        try:
            parts = [self._encode(plan[: bounds[1]])]
            for child, a, b in zip(children, bounds[1:-1], bounds[2:]):
                part = child.result()
                parts.append(part if part is not None else self._encode(plan[a:b]))
        except BaseException:
            for child in children:  # none is left waiting to hand back a slice nobody reads
                child.cancel()
            raise
        enc = Encoded(
            [x for p in parts for x in p.enc.input_ids],
            [x for p in parts for x in p.enc.labels],
            None if parts[0].enc.groups is None else [x for p in parts for x in p.enc.groups],
            None if parts[0].enc.prompt_labels is None else [x for p in parts for x in p.enc.prompt_labels],
        )
        tasks = [t for p in parts for t in p.tasks]
        with_history = set().union(*(p.with_history for p in parts))
        if self.model_config.text_dropout is not None:
            enc.history_free = [t not in with_history for t in tasks]
        if self.distil_tasks is not None:
            enc.distil = [t in self.distil_tasks for t in tasks]
        if self.model_config.copy_bonus and not self.encoder_decoder:
            enc.copy = [TASKS[t].kind == "text" for t in tasks]
        lengths = [len(a) + len(b) for a, b in zip(enc.input_ids, enc.labels)]
        if config.group_by_length is False:  # one task per batch; random for prompts that carry a history
            batches = task_batches(tasks, lengths, config.batch_size, rng, with_history)
        else:
            batches = length_grouped_batches(lengths, config.batch_size, rng)
        return _Epoch(enc, batches, len(plan))

    def _encode(self, plan: list[Callable[[], Example]]) -> _Part:
        """Render and tokenize a slice of an epoch's plan, with its history labels and tasks."""
        config, tokenizer = self.config, self.tokenizer
        examples = [render() for render in plan]
        enc = encode(
            tokenizer,
            [e.input for e in examples],
            [e.target for e in examples],
            self.model_config.max_input_length,
            self.model_config.max_target_length,
            prompt_eos=self.encoder_decoder or self.model_config.prompt_eos,
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
        with_history = {e.task for e in examples if e.meta.get("history_ids")}
        return _Part(enc, [e.task for e in examples], with_history)

    def _loader(self, prepared: _Epoch) -> DataLoader:
        from accelerate.data_loader import prepare_data_loader

        config, tokenizer, accelerator, enc = self.config, self.tokenizer, self.accelerator, prepared.enc
        if self.encoder_decoder:
            collate = Seq2SeqCollator(enc, tokenizer.pad_token_id)
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


@contextmanager
def _no_gc() -> Iterator[None]:
    """Without the cyclic garbage collector: an epoch creates ~10^6 acyclic objects (freed by reference
    counting), and the collections they trigger rescan the whole heap: choosing a Beauty epoch's
    examples took 2.8 s with it and 0.8 s without."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _can_fork() -> bool:
    # A forked child inherits the builder and tokenizer without pickling them; elsewhere (spawn on
    # macOS and Windows) the epochs are prepared in the training process, as without `prefetch`.
    # A daemonic process (a prefetching child, a worker of some pool) may not start children.
    return "fork" in multiprocessing.get_all_start_methods() and not multiprocessing.current_process().daemon


MIN_SLICE = 5_000  # examples per process below which forking costs more than it saves


def _workers(num_examples: int) -> int:
    """Processes to render and tokenize an epoch of `num_examples` with: one per free core, up to 8."""
    if not _can_fork():
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, 8, num_examples // MIN_SLICE))


class _Forked:
    """`fn(*args)` run in a forked child process (which inherits everything, nothing is pickled on
    the way in); the result comes back through a pipe."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        ctx = multiprocessing.get_context("fork")
        self._recv, send = ctx.Pipe(duplex=False)
        self._process = ctx.Process(target=_call_and_send, args=(fn, args, send), daemon=True)
        # Frozen objects are left alone by the child's garbage collector, whose scans would otherwise
        # write to (and so copy) every inherited page: a forked half of a Beauty epoch 4.0 -> 3.1 s.
        gc.freeze()
        try:
            with warnings.catch_warnings():  # Python 3.12 warns of fork in a threaded process; no torch in the child
                warnings.simplefilter("ignore", DeprecationWarning)
                self._process.start()
        finally:
            gc.unfreeze()
        send.close()

    def result(self) -> Any | None:
        """The child's result; an error it raised is raised here; None (with a warning) if it died."""
        try:
            status, value = self._recv.recv()
        except EOFError:
            warnings.warn(
                "a background process preparing training data died; preparing its part here",
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


class _Prefetch(_Forked):
    """The whole of epoch `epoch`, prepared in a forked child while the current one trains."""

    def __init__(self, loader: EpochLoader, epoch: int) -> None:
        self.epoch = epoch
        super().__init__(loader.prepare, epoch)


def _call_and_send(fn: Callable[..., Any], args: tuple, send: Any) -> None:
    try:
        send.send(("ok", fn(*args)))
    except BaseException as e:  # noqa: BLE001 - every failure goes back to the training process
        send.send(("error", e))
    finally:
        send.close()
