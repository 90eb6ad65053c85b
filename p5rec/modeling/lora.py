"""LoRA adapters through peft, with per-architecture defaults.

peft's own default targets for T5 and Llama are only the query and value projections; for
recommendation fine-tuning (new vocabulary of IDs, new tasks) adapting attention and feed-forward
layers learns much faster at a small cost, so p5rec defaults to those.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from transformers import PreTrainedModel

DEFAULT_TARGETS: dict[str, list[str]] = {
    "t5": ["q", "k", "v", "o", "wi", "wi_0", "wi_1", "wo"],
    "mt5": ["q", "k", "v", "o", "wi_0", "wi_1", "wo"],
    "bart": ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen3": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}


@dataclass
class LoraSettings:
    """LoRA hyperparameters.

    Args:
        r: rank (default 16).
        alpha: scaling numerator (default 32).
        dropout: dropout on the LoRA path (default 0.05).
        target_modules: module names to adapt; None picks the architecture default above, or
            peft's "all-linear" for architectures not listed.
    """

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.r < 1:
            raise ValueError(f"`lora.r` must be >= 1, got {self.r}")
        if self.alpha <= 0:
            raise ValueError(f"`lora.alpha` must be > 0, got {self.alpha}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"`lora.dropout` must be in [0, 1), got {self.dropout}")


def default_targets(model: PreTrainedModel) -> list[str] | str:
    """Targets present in `model` for its architecture, else peft's "all-linear"."""
    wanted = DEFAULT_TARGETS.get(getattr(model.config, "model_type", ""), None)
    if wanted is None:
        return "all-linear"
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    return [t for t in wanted if t in present]


def apply_lora(model: PreTrainedModel, settings: LoraSettings, trainable_token_ids: Sequence[int] = ()):
    """Wrap `model` with a LoRA adapter; embeddings of `trainable_token_ids` (new ID tokens) train too.

    New tokens are trained with peft's trainable-tokens (only those rows of the embedding matrix),
    so they are saved inside the adapter and restored by `PeftModel.from_pretrained`.
    """
    from peft import LoraConfig, TaskType, get_peft_model

    task_type = TaskType.SEQ_2_SEQ_LM if model.config.is_encoder_decoder else TaskType.CAUSAL_LM
    targets = settings.target_modules or default_targets(model)
    config = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=targets,
        task_type=task_type,
        trainable_token_indices=list(trainable_token_ids) or None,
    )
    return get_peft_model(model, config)


def merge_lora(model) -> PreTrainedModel:
    """Fold a LoRA adapter into the base weights (a plain model that needs no peft to serve)."""
    if not hasattr(model, "merge_and_unload"):
        raise TypeError(f"`model` ({type(model).__name__}) has no LoRA adapter to merge")
    return model.merge_and_unload()
