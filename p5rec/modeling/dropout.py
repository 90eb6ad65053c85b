"""Change a model's dropout for a while: every `nn.Dropout` and the attention-dropout rates.

Why: the recipe's strong dropout (0.5, SASRec's value for sparse item IDs) also falls on the
batches of tasks that answer in words or stars (ratings, explanations, reviews), and there it keeps
the model from reading its prompt at all: trained on ratings alone, with prompts that show the
user's other ratings, a nano model at dropout 0.5 predicts one fixed distribution for every user
(Gift Cards valid RMSE .470, the global mean's), while at 0.1 it learns the users' own scales (.40)
within ten epochs (docs/benchmarks.md, "Ratings"). `model.text_dropout` applies it per batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn

# Attention modules keep their rate as a float attribute, not a module: gpt_neox and llama
# (`attention_dropout`), T5 (`dropout`).
_RATE_ATTRIBUTES = ("attention_dropout", "dropout")


@contextlib.contextmanager
def dropout_rate(model: nn.Module, p: float) -> Iterator[None]:
    """Within the block, every dropout of `model` (hidden and attention) drops with probability `p`."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout `p` ({p!r}) must be in [0, 1)")
    saved: list[tuple[object, str, float]] = []
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            saved.append((module, "p", module.p))
            module.p = p
            continue
        for name in _RATE_ATTRIBUTES:
            value = getattr(module, name, None)
            if isinstance(value, float) and not isinstance(value, bool):
                saved.append((module, name, value))
                setattr(module, name, p)
    try:
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)
