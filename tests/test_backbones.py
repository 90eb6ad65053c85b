"""Backbones: scratch presets per architecture, hub-style checkpoints from a local folder, ID tokens.

The "hub" models are tiny random T5, BART, GPT-2 and Llama models saved with a SentencePiece
tokenizer to a temp folder and loaded by path, which runs the real `from_pretrained` code offline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import (
    BartConfig,
    BartForConditionalGeneration,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    T5Config,
    T5ForConditionalGeneration,
)

from p5rec.modeling.backbone import (
    ModelConfig,
    add_id_tokens,
    build_scratch_model,
    is_encoder_decoder,
    load_pretrained,
    train_tokenizer,
)

FAMILIES = ("t5", "bart", "gpt2", "llama")
# 30 users x 20 items: the smallest data the issue asks every backbone to train on.
TINY_DATA = {"synthetic": {"num_users": 30, "num_items": 20, "num_categories": 2, "seed": 3}}


def tiny_run(**sections):
    """A seconds-long RunConfig over TINY_DATA; `sections` override its top-level keys."""
    from p5rec.config import RunConfig, from_dict

    values = {
        "data": TINY_DATA,
        "model": {"backbone": "tiny", "vocab_size": 200, "max_input_length": 128},
        "train": {"epochs": 1, "batch_size": 32, "log_every": 5},
        "examples": {"max_history": 5},
        **sections,
    }
    return from_dict(RunConfig, values, "tiny test config")


def tiny_hub_model(family: str, vocab_size: int, tie: bool = True) -> PreTrainedModel:
    """A random model of `family` with one or two layers of width 32, special ids as train_tokenizer's."""
    special = {"pad_token_id": 0, "eos_token_id": 1}
    torch.manual_seed(0)
    if family == "t5":
        cfg = T5Config(
            vocab_size=vocab_size,
            d_model=32,
            d_kv=8,
            d_ff=64,
            num_layers=1,
            num_heads=4,
            feed_forward_proj="gated-gelu",
            decoder_start_token_id=0,
            **special,
        )
        return T5ForConditionalGeneration(cfg)
    if family == "bart":
        cfg = BartConfig(
            vocab_size=vocab_size,
            d_model=32,
            encoder_layers=1,
            decoder_layers=1,
            encoder_attention_heads=4,
            decoder_attention_heads=4,
            encoder_ffn_dim=64,
            decoder_ffn_dim=64,
            max_position_embeddings=256,
            bos_token_id=1,
            decoder_start_token_id=1,
            forced_eos_token_id=None,
            tie_word_embeddings=tie,
            **special,
        )
        return BartForConditionalGeneration(cfg)
    if family == "gpt2":
        cfg = GPT2Config(
            vocab_size=vocab_size,
            n_embd=32,
            n_layer=2,
            n_head=4,
            n_positions=256,
            bos_token_id=1,
            tie_word_embeddings=tie,
            **special,
        )
        return GPT2LMHeadModel(cfg)
    cfg = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=1,
        tie_word_embeddings=tie,
        **special,
    )
    return LlamaForCausalLM(cfg)


def data_tokenizer():
    """A SentencePiece tokenizer trained on TINY_DATA's prompts (what a hub tokenizer would be)."""
    from p5rec.pipeline import prepare

    prepared = prepare(tiny_run())
    corpus = [f"{e.input} {e.target}" for e in prepared.builder.train_examples(np.random.default_rng(0))]
    return train_tokenizer(corpus + prepared.items.id_strings() + prepared.users.id_strings(), vocab_size=200)


def save_hub_models(root: Path, families=FAMILIES, tie_llama: bool = False) -> dict[str, Path]:
    """Save one tiny model per family plus the tokenizer, as a hub repo would hold them."""
    tokenizer = data_tokenizer()
    paths = {}
    for family in families:
        paths[family] = root / family
        tiny_hub_model(family, len(tokenizer), tie=tie_llama or family != "llama").save_pretrained(paths[family])
        tokenizer.save_pretrained(paths[family])
    return paths


@pytest.fixture(scope="module")
def hub_dirs(tmp_path_factory):
    return save_hub_models(tmp_path_factory.mktemp("hub"))


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer([f"user_{u} bought item_{i} and liked it" for u in range(40) for i in range(9)], 80)


@pytest.mark.parametrize("architecture", ["t5", "gpt2", "llama"])
def test_scratch_presets_build_every_architecture_sized_to_the_tokenizer(architecture, tokenizer):
    model = build_scratch_model(ModelConfig(backbone="tiny", architecture=architecture), tokenizer)
    assert model.get_input_embeddings().num_embeddings == len(tokenizer)
    assert is_encoder_decoder(model) == (architecture == "t5")
    ids = torch.tensor([tokenizer("user_3 bought item_4")["input_ids"]])
    extra = {"decoder_input_ids": ids[:, :2]} if architecture == "t5" else {}
    assert model(input_ids=ids, **extra).logits.shape[-1] == len(tokenizer)


def test_unknown_architecture_is_named():
    with pytest.raises(ValueError, match="`architecture` must be one of .*'llama'.*got 'mamba'"):
        ModelConfig(architecture="mamba")


def test_non_preset_is_not_built_from_scratch(tokenizer):
    with pytest.raises(ValueError, match="'gpt2' is not a preset"):
        build_scratch_model(ModelConfig(backbone="gpt2"), tokenizer)


@pytest.mark.parametrize(("family", "seq2seq"), [("t5", True), ("bart", True), ("gpt2", False), ("llama", False)])
def test_load_pretrained_picks_seq2seq_or_causal_from_the_config(hub_dirs, family, seq2seq):
    model, tok = load_pretrained(str(hub_dirs[family]))
    assert is_encoder_decoder(model) == seq2seq
    assert tok.pad_token_id is not None
    assert model.get_input_embeddings().num_embeddings == len(tok)


def test_missing_checkpoint_says_to_use_a_preset(tmp_path):
    with pytest.raises(FileNotFoundError, match="could not load backbone .*Use a preset"):
        load_pretrained(str(tmp_path / "nothing-here"))


def test_id_tokens_grow_the_vocabulary_but_never_cut_spare_rows(tokenizer, tmp_path):
    model = tiny_hub_model("gpt2", len(tokenizer) + 8)  # a checkpoint with spare rows, like t5-small
    tokenizer.save_pretrained(tmp_path)
    tok = type(tokenizer).from_pretrained(tmp_path)
    ids = add_id_tokens(model, tok, ["<item_1>", "<item_2>"])
    assert model.get_input_embeddings().num_embeddings == len(tokenizer) + 8  # spare rows used, kept
    assert tok.convert_ids_to_tokens(ids) == ["<item_1>", "<item_2>"]
    assert tok("<item_2>", add_special_tokens=False)["input_ids"] == [ids[1]]
    many = [f"<user_{u}>" for u in range(20)]
    ids = add_id_tokens(model, tok, many)
    assert model.get_input_embeddings().num_embeddings == len(tok) == max(ids) + 1
    assert add_id_tokens(model, tok, []) == []


def test_full_finetuning_of_a_checkpoint_with_id_tokens_saves_and_reloads(hub_dirs, tmp_path):
    from p5rec.api import Recommender
    from p5rec.pipeline import fit

    config = tiny_run(
        model={"backbone": str(hub_dirs["gpt2"]), "max_input_length": 128}, ids={"representation": "tokens"}
    )
    base = load_pretrained(str(hub_dirs["gpt2"]))[0].get_input_embeddings().weight.detach().clone()
    rec = fit(config, progress=False).recommender
    assert not hasattr(rec.model, "peft_config")
    trained = rec.model.get_input_embeddings().weight
    assert trained.shape[0] == len(rec.tokenizer) > base.shape[0]  # ID tokens were added
    assert not torch.allclose(trained[: base.shape[0]].cpu(), base.cpu())  # every weight trains
    rec.save_pretrained(tmp_path / "full")
    back = Recommender.from_pretrained(tmp_path / "full")
    assert_same_recommendations(back, rec)


def assert_same_recommendations(got, want, users: int = 3, k: int = 5) -> None:
    """Same items in the same order with the same scores (up to float noise) for a few users."""
    for user in list(want.histories)[:users]:
        a, b = got.recommend(user=user, k=k), want.recommend(user=user, k=k)
        assert [i.item_id for i in a] == [i.item_id for i in b]
        assert [i.score for i in a] == pytest.approx([i.score for i in b], abs=1e-4)


def test_llama_preset_trains_and_recommends_valid_unseen_items():
    from p5rec.pipeline import fit

    rec = fit(tiny_run(model={"backbone": "tiny", "architecture": "llama", "vocab_size": 200}), progress=False)
    rec = rec.recommender
    assert type(rec.model).__name__ == "LlamaForCausalLM"
    user = next(iter(rec.histories))
    items = [i.item_id for i in rec.recommend(user=user, k=5)]
    assert len(set(items)) == 5 and set(items) <= set(rec.catalog)
    assert not set(items) & set(rec.histories[user])


def test_tokenizer_learns_whole_words_from_prompts_without_review_text():
    """Prompts made of a few template words and numeric IDs (a dataset with no reviews) still give
    word pieces: a template word is one token, an ID one token per digit, and the tokenizer's
    split is the one its pieces were learned with (no learned word comes apart)."""
    rng = np.random.default_rng(0)
    templates = [
        "Predict the next item user_{u} will buy. They bought , in this order:",
        "Answer yes or no: after , will user_{u} pick ? no",
        "Which item will user_{u} choose next from the following candidates ?",
    ]
    corpus = [templates[k % 3].format(u=rng.integers(1, 30000)) for k in range(3000)]
    corpus += [f"user_{u}" for u in range(1, 5000)]
    tok = train_tokenizer(corpus, vocab_size=2000)
    assert tok.tokenize("Predict the next item user_13930 will buy.") == [
        "▁Predict", "▁the", "▁next", "▁item", "▁user", "_", "1", "3", "9", "3", "0", "▁will", "▁buy", ".",
    ]  # fmt: skip
    assert tok.tokenize("candidates") == ["▁candidates"]
    assert len(tok) > 150  # the words are pieces, not only their characters
