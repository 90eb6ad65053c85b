"""Stage 4: the model: scratch presets with a SentencePiece tokenizer, or a Hugging Face checkpoint; LoRA."""

from p5rec._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "p5rec.modeling.backbone": (
            "add_id_tokens",
            "add_id_tokens_to_tokenizer",
            "build_scratch_model",
            "is_encoder_decoder",
            "load_pretrained",
            "train_tokenizer",
        ),
        "p5rec.modeling.config": ("LoraSettings", "ModelConfig"),
        "p5rec.modeling.inputs": ("encode_prompts",),
        "p5rec.modeling.lora": ("apply_lora", "load_lora", "merge_lora"),
    },
)
