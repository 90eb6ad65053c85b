"""The language model and its tokenizer: hub/local checkpoints or offline scratch presets.

Scratch presets are small T5, GPT-2 or Llama-style models built from a config, with a SentencePiece
tokenizer trained on the dataset's own text and IDs: this is how p5rec runs without any download
(tests, the demo, air-gapped machines). Pretrained checkpoints (``t5-small``, ``google/flan-t5-base``,
``facebook/bart-base``, ``gpt2``, a Llama or Qwen model, a local path) load through the usual
``from_pretrained``: any seq2seq or causal language model of transformers.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from tokenizers import AddedToken
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    T5Config,
    T5ForConditionalGeneration,
    T5Tokenizer,
)

from p5rec.modeling.config import PRESETS, ModelConfig


def train_tokenizer(corpus: Iterable[str], vocab_size: int = 2000, user_symbols: Iterable[str] = ()) -> T5Tokenizer:
    """Learn SentencePiece pieces from `corpus` and wrap them as a Hugging Face (T5) tokenizer.

    Digits are split (`split_digits`), so numeric IDs tokenize digit by digit and every ID shares
    the same small set of tokens: the model can generalize over IDs and the decoding trie stays
    narrow. `user_symbols` (e.g. added ID tokens) become single, unsplittable pieces.
    Special ids follow T5: pad=0, eos=1, unk=2.

    The pieces come from BPE, not the unigram trainer: on a corpus of few distinct words (prompts
    without review text) the unigram trainer with split digits keeps ~100 pieces, mostly single
    characters ("Predict" in 5 tokens), whatever `vocab_size` asks; BPE learns the words. The wrapper
    segments like a unigram model (the best-scoring split), so each piece is scored by its log
    frequency in BPE's own segmentation of the corpus (add-one): that split then matches BPE's, and
    pieces BPE built only as merge steps ("▁us" on the way to "▁user") score too low to be chosen.
    """
    import sentencepiece as spm

    sentences = [s for s in corpus if s and s.strip()]
    symbols = list(user_symbols)
    if not sentences:
        raise ValueError("cannot train a tokenizer on an empty corpus")
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=buf,
        vocab_size=vocab_size + len(symbols),  # the symbols come on top of the text pieces
        hard_vocab_limit=False,  # a small corpus may support fewer pieces; take what it supports
        model_type="bpe",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        split_digits=True,
        character_coverage=1.0,
        user_defined_symbols=symbols,
        input_sentence_size=2_000_000,
        shuffle_input_sentence=True,
        num_threads=2,
        minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_proto=buf.getvalue())
    pieces = [i for ids in sp.encode(sentences) for i in ids]
    counts = np.bincount(pieces, minlength=sp.get_piece_size()) + 1.0
    log_freq = np.log(counts / counts.sum())
    vocab = [
        (sp.id_to_piece(i), 0.0 if sp.is_control(i) or sp.is_unknown(i) else float(log_freq[i]))
        for i in range(sp.get_piece_size())
    ]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def build_scratch_model(config: ModelConfig, tokenizer: PreTrainedTokenizerBase, seed: int = 0) -> PreTrainedModel:
    """A randomly initialized model of the preset's shape, sized to `tokenizer`."""
    if config.is_auto:
        raise ValueError("`backbone` is 'auto': resolve it from the data first (`p5rec.recipe.resolve`)")
    if not config.is_preset:
        raise ValueError(f"`backbone` {config.backbone!r} is not a preset; choose one of {sorted(PRESETS)} or load it")
    d_model, layers, heads, d_ff = PRESETS[config.backbone]
    torch.manual_seed(seed)
    vocab = len(tokenizer)
    if config.architecture == "t5":
        cfg = T5Config(
            vocab_size=vocab,
            d_model=d_model,
            d_kv=d_model // heads,
            d_ff=d_ff,
            num_layers=layers,
            num_decoder_layers=layers,
            num_heads=heads,
            dropout_rate=config.hidden_dropout,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            decoder_start_token_id=tokenizer.pad_token_id,
            feed_forward_proj="relu",
            tie_word_embeddings=True,
        )
        return T5ForConditionalGeneration(cfg)
    if config.architecture == "llama":
        cfg = LlamaConfig(
            vocab_size=vocab,
            hidden_size=d_model,
            intermediate_size=d_ff,
            num_hidden_layers=2 * layers,
            num_attention_heads=heads,
            num_key_value_heads=heads,
            max_position_embeddings=config.max_input_length + config.max_target_length + 8,
            attention_dropout=config.attention_probs_dropout,
            bos_token_id=tokenizer.eos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            tie_word_embeddings=True,  # as small Llama 3.2 / Qwen models do; halves the embedding cost
        )
        return _causal_loss(LlamaForCausalLM(cfg))
    if config.architecture == "gpt_neox":
        cfg = GPTNeoXConfig(
            vocab_size=vocab,
            hidden_size=d_model,
            intermediate_size=d_ff,
            num_hidden_layers=2 * layers,
            num_attention_heads=heads,
            max_position_embeddings=config.max_input_length + config.max_target_length + 8,
            hidden_dropout=config.hidden_dropout,  # embeddings and both residual branches
            attention_dropout=config.attention_probs_dropout,
            use_parallel_residual=False,  # sequential blocks, as GPT-2 and SASRec
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 1.0},
            bos_token_id=tokenizer.eos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            tie_word_embeddings=True,  # an item token is read and written with one vector, as in SASRec
        )
        return _causal_loss(GPTNeoXForCausalLM(cfg))
    cfg = GPT2Config(
        vocab_size=vocab,
        n_embd=d_model,
        n_layer=2 * layers,
        n_head=heads,
        n_inner=d_ff,
        n_positions=config.max_input_length + config.max_target_length + 8,
        resid_pdrop=config.hidden_dropout,
        embd_pdrop=config.hidden_dropout,
        attn_pdrop=config.attention_probs_dropout,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return _causal_loss(GPT2LMHeadModel(cfg))


def _causal_loss(model: PreTrainedModel) -> PreTrainedModel:
    """Name the loss transformers already uses, so it does not warn "`loss_type=None` ... unrecognized"."""
    model.loss_type = "ForCausalLM"
    return model


def load_pretrained(name_or_path: str, **kwargs) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a hub or local checkpoint: seq2seq if its config is encoder-decoder, else causal LM.

    Decoder-only tokenizers get a pad token (their eos) and left padding, which generation needs.
    """
    from transformers import AutoTokenizer

    try:
        hf_config = AutoConfig.from_pretrained(name_or_path, **kwargs)
    except OSError as e:
        raise FileNotFoundError(
            f"could not load backbone {name_or_path!r}: {e}. Use a preset ({sorted(PRESETS)}) offline."
        ) from None
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, **kwargs)
    if hf_config.is_encoder_decoder:
        model = AutoModelForSeq2SeqLM.from_pretrained(name_or_path, **kwargs)
    else:
        model = AutoModelForCausalLM.from_pretrained(name_or_path, **kwargs)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
            model.config.pad_token_id = tokenizer.eos_token_id
    return model, tokenizer


def add_id_tokens(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, tokens: Sequence[str]) -> list[int]:
    """Add ID tokens to a pretrained tokenizer (and embedding rows when needed); return their ids.

    The embedding matrix grows only when the vocabulary outgrows it: checkpoints such as t5-small
    carry spare rows (32128 for 32100 tokens), which must not be cut off.

    Args:
        model: the model whose input (and output) embeddings may need more rows.
        tokenizer: the tokenizer to extend, in place.
        tokens: the ID tokens (`ItemIndex.new_tokens()` + `UserIndex.new_tokens()`).
    """
    ids = add_id_tokens_to_tokenizer(tokenizer, tokens)
    if ids and len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    return ids


def add_id_tokens_to_tokenizer(tokenizer: PreTrainedTokenizerBase, tokens: Sequence[str]) -> list[int]:
    """Add ID tokens to `tokenizer` in place (tokens it already has keep their ids); return their ids.

    Each is an added token with `lstrip`: the space before an ID belongs to it, so "bought <item_3> ,
    <item_7>" holds exactly one token per item whatever the text around it, as the ID tokenizes
    alone for the decoding trie. Adding tokens to a trained tokenizer costs nothing, where training
    SentencePiece with every ID as a user symbol took most of the setup time on a 12k-item catalog.
    """
    tokens = list(tokens)
    if not tokens:
        return []
    tokenizer.add_tokens([AddedToken(t, lstrip=True, rstrip=False, normalized=False) for t in tokens])
    ids = tokenizer.convert_tokens_to_ids(tokens)
    unk = [t for t, i in zip(tokens, ids) if i is None or i == tokenizer.unk_token_id]
    if unk:
        raise ValueError(f"ID tokens {unk[:3]} did not become single tokens of {type(tokenizer).__name__}")
    return ids


def is_encoder_decoder(model: PreTrainedModel) -> bool:
    return bool(getattr(model.config, "is_encoder_decoder", False))
