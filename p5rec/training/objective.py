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

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ObjectiveOutput:
    """`loss`: token-mean cross-entropy of the batch; `per_example`: `(B,)` token-mean per row (for
    per-task weighting)."""

    loss: torch.Tensor
    per_example: torch.Tensor


class CausalLMObjective(nn.Module):
    """Next-token cross-entropy of a (peft-wrapped or plain) Hugging Face causal LM at labelled positions.

    Args:
        model: the causal LM; its `base_model` (the transformer without head) and
            `get_output_embeddings()` (the head) are used, as transformers names them for GPT-2,
            GPT-NeoX, Llama, Qwen and the others.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> ObjectiveOutput:
        """Labels are aligned with `input_ids` (-100: no loss); position t predicts label t + 1, as in HF."""
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        hidden = base.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, T, d)
        targets = labels[:, 1:]
        keep = targets != -100  # (B, T - 1)
        logits = base.get_output_embeddings()(hidden[:, :-1][keep]).float()  # (N, V), N labelled positions
        tokens = F.cross_entropy(logits, targets[keep], reduction="none")  # (N,)
        rows = keep.nonzero()[:, 0]
        sums = tokens.new_zeros(len(input_ids)).index_add(0, rows, tokens)
        counts = keep.sum(1).to(tokens.dtype).clamp(min=1.0)
        loss = tokens.mean() if tokens.numel() else hidden.sum() * 0.0  # a batch without labels: zero, in graph
        return ObjectiveOutput(loss=loss, per_example=sums / counts)


def language_model(module: nn.Module) -> nn.Module:
    """The LM inside a `CausalLMObjective` (or `module` itself)."""
    return module.model if isinstance(module, CausalLMObjective) else module
