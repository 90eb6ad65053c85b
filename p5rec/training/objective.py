"""The training loss of a decoder-only LM, computed only where there is something to predict.

A causal LM's head maps every position to the whole vocabulary: `(batch, length, vocab)` logits.
p5rec's prompts carry losses on a few positions only (the answer, and with `history_loss` each
history item), while the vocabulary holds one token per catalog item, so most of that tensor would
be thrown away: on a 12k-item catalog with batches of 128 prompts it is ~100M floats a step. Here
the backbone runs without its head, and the head multiplies only the labelled hidden states.

The wrapper is itself a module so that `accelerate` (DDP, FSDP) wraps and synchronises it like the
model it holds; `.model` is the language model that is saved and used for decoding.
"""

from __future__ import annotations

from collections.abc import Set
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


class CausalLMObjective(nn.Module):
    """Next-token cross-entropy of a (peft-wrapped or plain) Hugging Face causal LM at labelled positions.

    Args:
        model: the causal LM; its `base_model` (the transformer without head) and
            `get_output_embeddings()` (the head) are used, as transformers names them for GPT-2,
            GPT-NeoX, Llama, Qwen and the others.
        teacher: pulls the model's distribution toward the teacher's on batches marked `distil`.
    """

    def __init__(self, model: nn.Module, teacher: Teacher | None = None) -> None:
        super().__init__()
        self.model = model
        self._teacher = (teacher,)  # in a tuple: not a submodule, so not in the state dict nor trained

    @property
    def teacher(self) -> Teacher | None:
        return self._teacher[0]

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor, distil: bool = False
    ) -> ObjectiveOutput:
        """Labels are aligned with `input_ids` (-100: no loss); position t predicts label t + 1, as in HF.

        With `distil` (and a teacher), `loss` adds the teacher's weight times the mean KL divergence
        from the teacher's distribution to the model's at the labelled positions; `per_example`
        stays the cross-entropy.
        """
        keep = labels[:, 1:] != -100  # (B, T - 1)
        logits, hidden = _labelled_logits(self.model, input_ids, attention_mask, keep)  # (N, V), N labelled
        tokens = F.cross_entropy(logits, labels[:, 1:][keep], reduction="none")  # (N,)
        rows = keep.nonzero()[:, 0]
        sums = tokens.new_zeros(len(input_ids)).index_add(0, rows, tokens)
        counts = keep.sum(1).to(tokens.dtype).clamp(min=1.0)
        loss = tokens.mean() if tokens.numel() else hidden.sum() * 0.0  # a batch without labels: zero, in graph
        teacher, distillation = self.teacher, 0.0
        if distil and teacher is not None and teacher.weight > 0 and tokens.numel():
            with torch.no_grad():
                target = _labelled_logits(teacher.model, input_ids, attention_mask, keep)[0].log_softmax(-1)
            kl = F.kl_div(logits.log_softmax(-1), target, log_target=True, reduction="batchmean")
            distillation = teacher.weight * kl
        return ObjectiveOutput(loss=loss + distillation, per_example=sums / counts, distillation=distillation)


def _labelled_logits(
    model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, keep: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The head's float logits at the positions `keep` marks (those that predict a label), and the
    hidden states `(B, T, d)` they come from."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = base.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, T, d)
    return base.get_output_embeddings()(hidden[:, :-1][keep]).float(), hidden


def language_model(module: nn.Module) -> nn.Module:
    """The LM inside a `CausalLMObjective` (or `module` itself)."""
    return module.model if isinstance(module, CausalLMObjective) else module
