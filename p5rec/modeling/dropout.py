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


class DropoutRates:
    """Every dropout rate of `model` (each `nn.Dropout` and the attention rates), found once.

    `with rates.set(p):` drops with probability `p` everywhere within the block and restores the
    model's own rates after. Finding the rates walks every module (0.4-0.7 ms for the `small`
    presets), so it happens here once, not in each training step that switches.
    """

    def __init__(self, model: nn.Module) -> None:
        self._targets: list[tuple[nn.Module, str]] = []
        for module in model.modules():
            if isinstance(module, nn.Dropout):
                self._targets.append((module, "p"))
                continue
            self._targets += [
                (module, name)
                for name in _RATE_ATTRIBUTES
                if isinstance(getattr(module, name, None), float) and not isinstance(getattr(module, name), bool)
            ]

    def __len__(self) -> int:
        return len(self._targets)

    @contextlib.contextmanager
    def set(self, p: float) -> Iterator[None]:
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout `p` ({p!r}) must be in [0, 1)")
        saved = [getattr(module, name) for module, name in self._targets]
        for module, name in self._targets:
            setattr(module, name, p)
        try:
            yield
        finally:
            for (module, name), value in zip(self._targets, saved):
                setattr(module, name, value)
