"""Examples -> token tensors, for encoder-decoder and decoder-only models.

Tokenization happens once per epoch for the whole example list (the fast tokenizer is batched);
batches are padded only to their own longest row (dynamic padding), and rows of similar length are
grouped into the same batch so little compute goes to padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from p5rec.modeling.inputs import end_prompts, pad_rows, tokenize, truncate_prompt


@dataclass
class Encoded:
    """Token ids per example: `input_ids` (prompt), `labels` (target incl. eos) and, optionally, a
    loss group per example (`groups`: task or family index) that the collator passes on as `task_ids`
    so the loss can be split by task (uncertainty weighting), and extra losses inside the prompt
    (`prompt_labels`, see `history_labels`)."""

    input_ids: list[list[int]]
    labels: list[list[int]]
    groups: list[int] | None = None
    prompt_labels: list[list[tuple[int, int]]] | None = None  # per example: (prompt position, token) losses
    # Per example: its task shows no item history (ratings, text); the collator passes it on as `history_free`.
    history_free: list[bool] | None = None
    # Per example: its task is distilled from a teacher; the collator passes it on as `distil`.
    distil: list[bool] | None = None
    # Per example: its answer gets the copy bonus (`ModelConfig.copy_bonus`: text answers); the
    # causal collator passes the prompt positions of those rows on as `copy_source`.
    copy: list[bool] | None = None

    def __len__(self) -> int:
        return len(self.input_ids)


def encode(
    tokenizer: PreTrainedTokenizerBase,
    inputs: Sequence[str],
    targets: Sequence[str],
    max_input_length: int,
    max_target_length: int,
    prompt_eos: bool = False,
) -> Encoded:
    """Tokenize prompts and targets separately; targets always end with eos.

    Prompts are encoded without special tokens; with `prompt_eos` (an encoder's input always, a
    decoder's with `model.prompt_eos`: the rule of `encode_prompts`) each is followed by eos, so a
    history label can sit on it. For decoder-only models the collator joins prompt and target
    itself. Targets are tokenized alone, exactly as the decoding trie tokenizes item IDs, so
    training and constrained decoding see the same tokens.
    """
    eos = tokenizer.eos_token_id
    src, tgt = tokenize(tokenizer, inputs), tokenize(tokenizer, targets)
    src = [truncate_prompt(s, max_input_length) for s in src]
    if prompt_eos:
        src = end_prompts(src, eos)
    tgt = [t[: max_target_length - 1] + [eos] for t in tgt]
    return Encoded(src, tgt)


def history_labels(
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Sequence[int]],
    histories: Sequence[Sequence[str] | None],
    next_items: Sequence[str | None],
) -> list[list[tuple[int, int]]] | None:
    """Next-item losses inside each prompt: the history, read left to right, predicts each next item.

    SASRec, BERT4Rec and HSTU learn from every position of a history in one pass, where a P5 prompt
    gives one answer. With one token per item, the hidden state at the token of history item j is
    trained to predict item j + 1 (and the last one the item that followed the history), whatever
    the template puts between them (" , ", words): the loss label sits on the token after item j,
    since position t predicts label t + 1. A template listing the history in another order (newest
    first) or only partly (a truncated prompt) gets no such labels, only its answer.

    Args:
        tokenizer: the tokenizer the prompts were encoded with; item IDs must be single tokens of it.
        prompts: token ids per prompt (as fed to the model).
        histories: per prompt, the ID strings of the history it shows, oldest first (None: none).
        next_items: per prompt, the ID string of the item that followed that history (None: unknown).

    Returns:
        Per prompt, `(position, token id)` pairs; None when the IDs are not single tokens (text IDs
        such as "item_12"), where there is no item token to read the prediction from.
    """
    strings = {s for h in histories if h for s in h} | {s for s in next_items if s}
    if not strings:
        return [[] for _ in prompts]
    ordered = sorted(strings)
    token_of = dict(zip(ordered, tokenizer.convert_tokens_to_ids(ordered)))
    if any(t is None or t == tokenizer.unk_token_id for t in token_of.values()):
        return None
    out: list[list[tuple[int, int]]] = []
    for ids, history, nxt in zip(prompts, histories, next_items, strict=True):
        labels: list[tuple[int, int]] = []
        if history:
            wanted = [token_of[s] for s in history]
            members = set(wanted)
            shown = [(p, t) for p, t in enumerate(ids) if t in members]
            start = _find_run([t for _, t in shown], wanted)
            if start is not None:
                positions = [p for p, _ in shown[start : start + len(wanted)]]
                followers = wanted[1:] + ([token_of[nxt]] if nxt else [])
                labels = [(p + 1, t) for p, t in zip(positions, followers) if p + 1 < len(ids)]
        out.append(labels)
    return out


def _find_run(sequence: list[int], run: list[int]) -> int | None:
    """Index where `run` occurs contiguously in `sequence` (first occurrence), else None."""
    n = len(run)
    for i in range(len(sequence) - n + 1):
        if sequence[i : i + n] == run:
            return i
    return None


class Seq2SeqCollator:
    """Pads prompts (encoded with `prompt_eos`, as an encoder reads them) and targets of a batch;
    padded target positions get label -100 (ignored)."""

    def __init__(self, encoded: Encoded, pad_token_id: int) -> None:
        self.encoded, self.pad = encoded, pad_token_id

    def __call__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        batch = pad_rows([self.encoded.input_ids[i] for i in indices], self.pad)  # eos-ended by `encode`
        labels = pad_rows([self.encoded.labels[i] for i in indices], self.pad)
        batch["labels"] = labels["input_ids"].masked_fill(labels["attention_mask"] == 0, -100)
        return _with_groups(batch, self.encoded, indices)


class CausalCollator:
    """Joins prompt + target for a decoder-only model; the loss covers the target, plus the
    `prompt_labels` of each example (next items inside the history), or with `loss_on_prompt` every
    prompt token. Rows marked `copy` add `copy_source` (B, T): their prompt positions, whose tokens
    the objective's copy bonus favours in their answers."""

    def __init__(self, encoded: Encoded, pad_token_id: int, eos_token_id: int, loss_on_prompt: bool = False) -> None:
        self.encoded, self.pad, self.loss_on_prompt = encoded, pad_token_id, loss_on_prompt

    def __call__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        rows = [self.encoded.input_ids[i] + self.encoded.labels[i] for i in indices]
        batch = pad_rows(rows, self.pad)
        ids = batch["input_ids"]
        # No loss on the prompt (or only on its first token, with `loss_on_prompt`), nor on padding.
        starts = torch.tensor([1 if self.loss_on_prompt else len(self.encoded.input_ids[i]) for i in indices])
        prompt = torch.arange(ids.shape[1]) < starts[:, None]
        labels = ids.masked_fill(prompt | (batch["attention_mask"] == 0), -100)
        extra = self.encoded.prompt_labels
        if extra is not None:  # all rows' (position, token) losses in one indexed write
            cells = [(k, p, t) for k, i in enumerate(indices) for p, t in extra[i]]
            if cells:
                rows, positions, tokens = torch.tensor(cells).unbind(1)
                labels[rows, positions] = tokens
        batch["labels"] = labels
        if self.encoded.copy is not None and any(self.encoded.copy[i] for i in indices):
            copying = torch.tensor([self.encoded.copy[i] for i in indices])
            lengths = torch.tensor([len(self.encoded.input_ids[i]) for i in indices])
            batch["copy_source"] = (torch.arange(ids.shape[1]) < lengths[:, None]) & copying[:, None]
        return _with_groups(batch, self.encoded, indices)


def _with_groups(batch: dict[str, torch.Tensor], encoded: Encoded, indices: list[int]) -> dict[str, torch.Tensor]:
    """Add `task_ids` (B,) when the examples carry loss groups, `history_free` when the examples
    say whether their task shows a history, and `distil` when they say whether a teacher applies.

    `history_free` and `distil` are one Python bool for the batch (true when true of all its
    examples): they stay on the CPU, so reading them costs the step no device synchronisation.
    The trainer pops `task_ids` and `history_free` before the forward; `distil` goes to the
    objective."""
    if encoded.groups is not None:
        batch["task_ids"] = torch.tensor([encoded.groups[i] for i in indices], dtype=torch.long)
    if encoded.history_free is not None:
        batch["history_free"] = all(encoded.history_free[i] for i in indices)
    if encoded.distil is not None:
        batch["distil"] = all(encoded.distil[i] for i in indices)
    return batch


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, rng: np.random.Generator, mega_factor: int = 50
) -> list[list[int]]:
    """Shuffle, then sort by length inside windows of `mega_factor` batches, then shuffle the batches.

    Same idea as transformers' LengthGroupedSampler: rows in a batch have similar lengths (little
    padding) while the batch order stays random. Only the last batch may be short, and it stays
    last: under DDP accelerate pads a short batch with repeated rows, which must not happen mid-epoch.
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1, got {batch_size}")
    order = rng.permutation(len(lengths))
    window = batch_size * mega_factor
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window].tolist(), key=lambda i: -lengths[i])
        batches += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
    short = [batches.pop()] if batches and len(batches[-1]) < batch_size else []
    return [batches[i] for i in rng.permutation(len(batches))] + short


def task_batches(
    tasks: Sequence[str],
    lengths: Sequence[int],
    batch_size: int,
    rng: np.random.Generator,
    random_tasks: frozenset[str] | set[str] = frozenset(),
) -> list[list[int]]:
    """Batches that each hold one task's examples: random ones for `random_tasks`, length-grouped
    (`length_grouped_batches`) for the others; the batch order is shuffled.

    Why: a batch mixing a 40-token next-item prompt with 500-token reviews pads everything to 500,
    while grouping next-item prompts by length puts users with equally long histories together,
    which slowed learning (Beauty's valid NDCG@10 rose half as fast). The remainders of the tasks
    fill mixed batches at the end, of which only the last may be short (see `length_grouped_batches`).
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1, got {batch_size}")
    by_task: dict[str, list[int]] = {}
    for i, task in enumerate(tasks):
        by_task.setdefault(task, []).append(i)
    full: list[list[int]] = []
    rest: list[int] = []
    for task in sorted(by_task):
        rows = by_task[task]
        if task in random_tasks:
            order = [rows[i] for i in rng.permutation(len(rows))]
            chunks = [order[j : j + batch_size] for j in range(0, len(order), batch_size)]
        else:
            chunks = [[rows[i] for i in b] for b in length_grouped_batches([lengths[i] for i in rows], batch_size, rng)]
        full += [c for c in chunks if len(c) == batch_size]
        rest += [i for c in chunks if len(c) < batch_size for i in c]
    tail = [rest[j : j + batch_size] for j in range(0, len(rest), batch_size)]
    return [full[i] for i in rng.permutation(len(full))] + tail
