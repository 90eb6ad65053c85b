"""LoRA adapters through peft, with per-architecture defaults.

peft's own default targets for T5 and Llama are only the query and value projections; for
recommendation fine-tuning (new vocabulary of IDs, new tasks) adapting attention and feed-forward
layers learns much faster at a small cost, so p5rec defaults to those (checked against the module
names of tiny T5, BART, GPT-2 and Llama models in tests/test_lora.py).

New ID tokens train as peft trainable tokens: only their rows of the embedding matrices, saved in
the adapter as values (not deltas), so a reload restores them exactly whatever the base's rows are.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from transformers import PreTrainedModel

from p5rec.modeling.config import LoraSettings

DEFAULT_TARGETS: dict[str, list[str]] = {
    "t5": ["q", "k", "v", "o", "wi", "wi_0", "wi_1", "wo"],
    "mt5": ["q", "k", "v", "o", "wi_0", "wi_1", "wo"],
    "umt5": ["q", "k", "v", "o", "wi_0", "wi_1", "wo"],
    "bart": ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"],
    "mbart": ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"],
    "opt": ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen3": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "gemma": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "gemma2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "phi3": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
    "gpt_neox": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
}


def default_targets(model: PreTrainedModel) -> list[str] | str:
    """Targets present in `model` for its architecture, else peft's "all-linear"."""
    wanted = DEFAULT_TARGETS.get(getattr(model.config, "model_type", ""), None)
    if wanted is None:
        return "all-linear"
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    return [t for t in wanted if t in present]


def token_targets(model: PreTrainedModel, token_ids: Sequence[int]) -> list[int] | dict[str, list[int]] | None:
    """Where the rows of `token_ids` live, in the form peft's `trainable_token_indices` takes.

    A list when every vocabulary matrix is one shared tensor (T5, BART, GPT-2, tied Llama): peft
    wraps the input embedding and ties the other users of that tensor to it. A dict naming each
    matrix when none is shared (Llama 2/3, Qwen 7B: untied `lm_head`), so the output rows of new
    tokens train too, instead of staying at their random initialization.
    """
    ids = sorted({int(i) for i in token_ids})
    if not ids:
        return None
    rows = model.get_input_embeddings().num_embeddings
    bad = [i for i in ids if not 0 <= i < rows]
    if bad:
        raise ValueError(f"`trainable_token_ids` {bad[:3]} are outside the embedding matrix ({rows} rows)")
    groups: dict[int, list[str]] = {}  # id(weight tensor) -> names of the modules using it
    output = model.get_output_embeddings()
    for name, module in model.named_modules():
        if (isinstance(module, torch.nn.Embedding) and module.num_embeddings == rows) or module is output:
            groups.setdefault(id(module.weight), []).append(name)
    if len(groups) == 1:
        return ids
    if all(len(names) == 1 for names in groups.values()):
        return {names[0]: ids for names in groups.values()}
    raise ValueError(
        f"the vocabulary matrices of {type(model).__name__} are partly shared ({list(groups.values())}); "
        "p5rec cannot train new ID tokens under LoRA here: use `finetune: full` or `ids.representation: text`"
    )


def apply_lora(model: PreTrainedModel, settings: LoraSettings, trainable_token_ids: Sequence[int] = ()):
    """Wrap `model` with a LoRA adapter; embeddings of `trainable_token_ids` (new ID tokens) train too.

    New tokens are trained with peft's trainable tokens (only those rows of the embedding and, when
    untied, output matrices), so they are saved inside the adapter and restored by `load_lora`.

    Args:
        model: a seq2seq or causal LM.
        settings: rank, alpha, dropout and target modules.
        trainable_token_ids: token ids whose embedding rows train alongside the adapter.
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
        trainable_token_indices=token_targets(model, trainable_token_ids),
    )
    return get_peft_model(model, config)


def load_lora(adapter_dir: str | os.PathLike, base: str | os.PathLike | None = None, vocab_size: int | None = None):
    """Load a saved adapter onto its base model: the inverse of `PeftModel.save_pretrained`.

    Args:
        adapter_dir: the folder holding `adapter_config.json` and the adapter weights.
        base: the base model's folder or hub name; default: the one recorded in the adapter.
        vocab_size: the tokenizer's length; the base gets embedding rows up to it first, since ID
            tokens added at training time are not in the base checkpoint (their trained values
            then come from the adapter).
    """
    from peft import PeftConfig, PeftModel
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

    base = str(base) if base is not None else PeftConfig.from_pretrained(adapter_dir).base_model_name_or_path
    auto = AutoModelForSeq2SeqLM if AutoConfig.from_pretrained(base).is_encoder_decoder else AutoModelForCausalLM
    model = auto.from_pretrained(base)
    if vocab_size is not None and vocab_size > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(vocab_size, mean_resizing=False)  # rows are overwritten by the adapter
    return PeftModel.from_pretrained(model, adapter_dir)


def merge_lora(model) -> PreTrainedModel:
    """Fold a LoRA adapter (and trained token rows) into the base weights: a plain model, no peft needed."""
    if not hasattr(model, "merge_and_unload"):
        raise TypeError(f"`model` ({type(model).__name__}) has no LoRA adapter to merge")
    return model.merge_and_unload()
