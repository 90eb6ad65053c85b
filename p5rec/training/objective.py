"""The training loss of a decoder-only LM, computed only where there is something to predict.

A causal LM's head maps every position to the whole vocabulary: `(batch, length, vocab)` logits.
p5rec's prompts carry losses on a few positions only (the answer, and with `history_loss` each
history item), while the vocabulary holds one token per catalog item, so most of that tensor would
be thrown away: on a 12k-item catalog with batches of 128 prompts it is ~100M floats a step. Here
the backbone runs without its head, and the head multiplies only the labelled hidden states.

With `SampledItems`, the labels that are item tokens are scored against the true item and a few
catalog items drawn uniformly per batch instead of the whole vocabulary (a sampled softmax, Jean et
al. 2015): on a 12k-item catalog the head's matrix product and log-softmax over every item are most
of a small model's step.

The wrapper is itself a module so that `accelerate` (DDP, FSDP) wraps and synchronises it like the
model it holds; `.model` is the language model that is saved and used for decoding.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ObjectiveOutput:
    """`loss`: token-mean cross-entropy of the batch, plus `distillation`; `per_example`: `(B,)`
    token-mean cross-entropy per row (for per-task weighting, which must add `distillation` itself);
    `distillation`: the teacher's weighted KL term (0 when the batch is not distilled)."""

    loss: torch.Tensor
    per_example: torch.Tensor
    distillation: torch.Tensor | float = 0.0


@dataclass
class Teacher:
    """A frozen model whose distribution the trained one is pulled toward on some tasks' batches.

    `loss + weight * KL(teacher || model)` at the labelled positions of batches whose examples all
    belong to `tasks` (learning without forgetting: Li and Hoiem, 2016). `model` is not trained,
    saved or prepared; it must sit on the training device.
    """

    model: nn.Module
    weight: float
    tasks: Set[str]


@dataclass
class SampledItems:
    """A sampled softmax at the labels that are item tokens, in training.

    Each batch draws `negatives` distinct tokens of `item_tokens` uniformly; a label that is an item
    is scored against itself and those draws (a draw equal to the label is left out). Every
    candidate has the same chance to be drawn, so the logits need no sampling correction (the
    log-expected-count term of a sampled softmax is the same constant for all) and the gradient's
    bias shrinks as `negatives` grows toward the catalog. Labels that are not items (text answers)
    keep the full softmax; validation and decoding score the whole catalog exactly.
    """

    item_tokens: torch.Tensor  # (n_items,) token ids
    negatives: int

    def __post_init__(self) -> None:
        if self.negatives < 1:
            raise ValueError(f"`negatives` must be >= 1, got {self.negatives}")
        self.item_tokens = torch.as_tensor(self.item_tokens, dtype=torch.long).unique()

    def active(self) -> bool:
        """False when the draws would cover the catalog: the full softmax is then exact and as cheap."""
        return self.negatives < len(self.item_tokens)


class CausalLMObjective(nn.Module):
    """Next-token cross-entropy of a (peft-wrapped or plain) Hugging Face causal LM at labelled positions.

    Args:
        model: the causal LM; its `base_model` (the transformer without head) and
            `get_output_embeddings()` (the head) are used, as transformers names them for GPT-2,
            GPT-NeoX, Llama, Qwen and the others.
        teacher: pulls the model's distribution toward the teacher's on batches marked `distil`.
        sampled: score item labels against sampled items in training (see `SampledItems`); a head
            that is not a plain `nn.Linear` (a peft-wrapped one) keeps the full softmax.
        copy_bonus: added to the vocabulary logit of every token of a row's prompt at that row's
            labels, for the rows a batch's `copy_source` marks (`ModelConfig.copy_bonus`; the
            `Predictor` adds the same when it writes), except `copy_exclude` (special tokens).
    """

    def __init__(
        self,
        model: nn.Module,
        teacher: Teacher | None = None,
        sampled: SampledItems | None = None,
        copy_bonus: float = 0.0,
        copy_exclude: Sequence[int] = (),
    ) -> None:
        super().__init__()
        self.model = model
        self._teacher = (teacher,)  # in a tuple: not a submodule, so not in the state dict nor trained
        self.negatives = 0
        self.copy_bonus = float(copy_bonus)
        if self.copy_bonus:
            head = _base(model).get_output_embeddings()
            vocab = head.weight.shape[0] if hasattr(head, "weight") else _base(model).config.vocab_size
            copyable = torch.ones(vocab, dtype=torch.bool)
            copyable[[t for t in copy_exclude if 0 <= t < vocab]] = False
            self.register_buffer("_copyable", copyable, persistent=False)
        if sampled is not None and sampled.active():
            head = _base(model).get_output_embeddings()
            if not isinstance(head, nn.Linear):  # candidate logits read the head's rows; a peft head adds deltas
                raise ValueError(
                    f"`train.item_negatives` needs a plain linear output layer; this model's is a "
                    f"{type(head).__name__} (a LoRA model's trained ID tokens): set `train.item_negatives=0`"
                )
            self.negatives = sampled.negatives
            is_item = torch.zeros(head.weight.shape[0], dtype=torch.bool)
            is_item[sampled.item_tokens] = True
            # Not persistent: the state dict stays the model's; `.to()` (accelerate) moves them with it.
            self.register_buffer("_items", sampled.item_tokens, persistent=False)
            self.register_buffer("_is_item", is_item, persistent=False)

    @property
    def teacher(self) -> Teacher | None:
        return self._teacher[0]

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor,
        distil: bool = False,
        copy_source: torch.Tensor | None = None,
    ) -> ObjectiveOutput:
        """Labels are aligned with `input_ids` (-100: no loss); position t predicts label t + 1, as in HF.

        With `distil` (and a teacher), `loss` adds the teacher's weight times the mean KL divergence
        from the teacher's distribution to the model's at the labelled positions; `per_example`
        stays the cross-entropy. `copy_source` (B, T) marks the prompt positions whose tokens get
        the copy bonus in their row's answer.
        """
        keep = labels[:, 1:] != -100  # (B, T - 1)
        targets = labels[:, 1:][keep]
        rows = keep.nonzero()[:, 0]
        picked = _hidden(self.model, input_ids, attention_mask)[:, :-1][keep]  # (N, d): states with a label
        bonus = self._bonus(input_ids, copy_source, keep)  # (N, V) or None
        draws, scored = self._draws(targets)  # scored: the labels ranked against the draws (None: every label, fully)
        states = picked if scored is None else picked[scored]
        logits = _label_logits(self.model, states, targets if scored is None else targets[scored], draws)
        if scored is None and bonus is not None:
            logits = logits + bonus
        answer = targets if draws is None else targets.new_zeros(len(logits))  # the true item comes first
        tokens = F.cross_entropy(logits, answer, reduction="none")  # (N,) or (scored,)
        if scored is not None:  # the other labels (text) against the vocabulary
            every = tokens.new_zeros(len(targets))
            every[scored] = tokens
            rest = ~scored
            text = _head(self.model, picked[rest])
            text = text if bonus is None else text + bonus[rest]
            every[rest] = F.cross_entropy(text, targets[rest], reduction="none")
            tokens = every
        sums = tokens.new_zeros(len(input_ids)).index_add(0, rows, tokens)
        counts = keep.sum(1).to(tokens.dtype).clamp(min=1.0)
        loss = tokens.mean() if tokens.numel() else picked.sum() * 0.0  # a batch without labels: zero, in graph
        teacher, distillation = self.teacher, 0.0
        if distil and teacher is not None and teacher.weight > 0 and tokens.numel():
            with torch.no_grad():
                other = _hidden(teacher.model, input_ids, attention_mask)[:, :-1][keep]
                other = other if scored is None else other[scored]
                target = _label_logits(teacher.model, other, targets if scored is None else targets[scored], draws)
                if scored is None and bonus is not None:
                    target = target + bonus
            kl = F.kl_div(logits.log_softmax(-1), target.log_softmax(-1), log_target=True, reduction="batchmean")
            share = 1.0 if scored is None else scored.float().mean()  # KL per label, as without sampling
            distillation = teacher.weight * kl * share
        return ObjectiveOutput(loss=loss + distillation, per_example=sums / counts, distillation=distillation)

    def _bonus(self, input_ids: torch.Tensor, source: torch.Tensor | None, keep: torch.Tensor) -> torch.Tensor | None:
        """The copy bonus per label `(N, V)`, or None when nothing is marked or the bonus is off.

        `copy_bonus` at the tokens of the row's marked prompt positions (never special tokens) that
        the answer so far does not hold, and `copy_bonus` more at each token that follows, somewhere
        in the source, the answer's previous token: the next piece of a word or phrase being copied
        (what a pointer's attention moving one position on gives). The label at input position p
        has written the answer's tokens at the unmarked positions up to p, and follows the token at p.
        """
        if not self.copy_bonus or source is None:  # the collator sends `copy_source` only when a row copies
            return None
        rows, at = keep.nonzero(as_tuple=True)
        src, ids = source[rows], input_ids[rows]  # (N, T): each label's row
        before = torch.arange(ids.shape[1], device=ids.device)[None, :] <= at[:, None]
        previous = ids.gather(1, at[:, None])  # the label's input token
        answering = ~src.gather(1, at[:, None])  # not the first answer token, whose input is the prompt's last
        nexts = torch.zeros_like(src)
        nexts[:, 1:] = (ids[:, :-1] == previous) & src[:, :-1] & src[:, 1:] & answering
        copy = _tokens_at(input_ids, source, self._copyable)[rows]  # the prompt's tokens, per row once
        copy[_cells(ids, ~src & before)] = False  # ... but not those the answer holds already
        follows = torch.zeros_like(copy)
        follows[_cells(ids, nexts)] = True
        return (copy.float() + (follows & self._copyable).float()) * self.copy_bonus

    def _draws(self, targets: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """This batch's drawn items and the labels they score (item labels), or (None, None) for the
        full softmax: in evaluation, without sampling, or when no label is an item."""
        if not (self.negatives and self.training):
            return None, None
        scored = self._is_item[targets]
        if not bool(scored.any()):
            return None, None
        return self._items[torch.randperm(len(self._items), device=targets.device)[: self.negatives]], scored


_EXCLUDED = -1e30


def _cells(ids: torch.Tensor, where: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Index of the `(row, token)` cells of the tokens of `ids` `(N, T)` at the positions `where` marks."""
    rows, positions = where.nonzero(as_tuple=True)
    return rows, ids[rows, positions]


def _tokens_at(ids: torch.Tensor, where: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """`(N, V)` bool: per row, the `allowed` tokens of `ids` at the positions `where` marks."""
    present = torch.zeros(len(ids), len(allowed), dtype=torch.bool, device=ids.device)
    present[_cells(ids, where)] = True
    return present & allowed


def _base(model: nn.Module) -> nn.Module:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _hidden(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The transformer's last hidden states `(B, T, d)`, without the head."""
    return _base(model).base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def _head(model: nn.Module, states: torch.Tensor) -> torch.Tensor:
    """Float logits over the vocabulary for `states` `(N, d)`."""
    return _base(model).get_output_embeddings()(states).float()


def _label_logits(
    model: nn.Module, states: torch.Tensor, targets: torch.Tensor, draws: torch.Tensor | None
) -> torch.Tensor:
    """Over the vocabulary without `draws`, else over each label's own target and the draws."""
    return _head(model, states) if draws is None else _candidate_logits(model, states, targets, draws)


def _candidate_logits(
    model: nn.Module, states: torch.Tensor, targets: torch.Tensor, draws: torch.Tensor
) -> torch.Tensor:
    """Float logits `(n, 1 + K)`: each state's own target first, then the `K` drawn tokens (a huge
    negative where a draw is that row's target, so that the true item is never its own negative;
    finite, so that a KL divergence between two such rows stays 0 there, not nan)."""
    head = _base(model).get_output_embeddings()
    weight, bias = head.weight, getattr(head, "bias", None)
    own = (states * weight[targets].to(states.dtype)).sum(-1, keepdim=True)
    others = states @ weight[draws].to(states.dtype).T
    if bias is not None:
        own, others = own + bias[targets, None], others + bias[draws]
    others = others.float().masked_fill(draws[None, :] == targets[:, None], _EXCLUDED)
    return torch.cat([own.float(), others], dim=1)


def language_model(module: nn.Module) -> nn.Module:
    """The LM inside a `CausalLMObjective` (or `module` itself)."""
    return module.model if isinstance(module, CausalLMObjective) else module
