"""The KV-cache argument across transformers releases: `cache` from 5.24, `past_key_values` before (#17 item 9).

pyproject allows transformers >= 5.0. The installed release is checked for silence (no deprecation
warning from decoding), and the `past_key_values` path that releases before 5.24 take is run here by
forcing it, and must give the same answers.
"""

from __future__ import annotations

import warnings
from contextlib import nullcontext

import pytest
import torch
import transformers
from packaging.version import Version
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    T5Config,
    T5ForConditionalGeneration,
)

from p5rec.decoding import ItemTrie, _decoder, recommend_items, score_items

V, EOS = 40, 1
RENAMED = Version(transformers.__version__) >= Version("5.24.0")  # the release that renamed the argument


def _models() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    t5 = T5Config(
        vocab_size=V, d_model=16, d_ff=32, num_layers=1, num_decoder_layers=1, num_heads=2, d_kv=8,
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=EOS,
    )  # fmt: skip
    gpt2 = GPT2Config(vocab_size=V, n_embd=16, n_layer=1, n_head=2, n_positions=32, eos_token_id=EOS)
    llama = LlamaConfig(
        vocab_size=V, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=32, eos_token_id=EOS, pad_token_id=0,
    )  # fmt: skip
    return {
        "t5": T5ForConditionalGeneration(t5).eval(),
        "gpt2": GPT2LMHeadModel(gpt2).eval(),
        "llama": LlamaForCausalLM(llama).eval(),
    }


MODELS = _models()
TRIE = ItemTrie([[10, 11, 3], [10, 11, 4, 5], [10, 11, 6], [10, 11, 7, 8], [10, 11, 9]], eos_token_id=EOS)


def _batch(model) -> dict[str, torch.Tensor]:
    ids = torch.arange(3, 15).reshape(2, 6)
    mask = torch.ones_like(ids)
    mask[1, :2] = 0 if not model.config.is_encoder_decoder else 1
    return {"input_ids": ids * mask, "attention_mask": mask}


def _decode(model):
    batch = _batch(model)
    return recommend_items(model, batch, TRIE, k=3, num_beams=4), score_items(model, batch, TRIE, item_batch_size=2)


def test_cache_keyword_follows_the_installed_release():
    expected = "cache" if RENAMED else "past_key_values"
    assert {_decoder.cache_keyword(m) for m in MODELS.values()} == {expected}

    class Old(torch.nn.Module):
        def forward(self, input_ids=None, past_key_values=None, use_cache=None): ...

    class New(torch.nn.Module):
        def forward(self, input_ids=None, cache=None, use_cache=None): ...

    assert _decoder.cache_keyword(Old()) == "past_key_values" and _decoder.cache_keyword(New()) == "cache"


def test_a_peft_wrapper_uses_its_base_models_keyword():
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(_models()["t5"], LoraConfig(r=2, target_modules=["q", "v"]))
    assert _decoder.cache_keyword(model) == _decoder.cache_keyword(MODELS["t5"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        recommend_items(model, _batch(model), TRIE, k=2, num_beams=2)


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_decoding_emits_no_deprecation_warning(kind, capfd):
    model = MODELS[kind]
    capfd.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # transformers warns with FutureWarning
        _decode(model)
        model.generate(**_batch(model), max_new_tokens=3, do_sample=False, pad_token_id=0)
    err = capfd.readouterr().err  # transformers' own logger writes to stderr
    assert "deprecated" not in err, err


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_the_past_key_values_path_gives_the_same_answers(kind, monkeypatch):
    model = MODELS[kind]
    ranked, scores = _decode(model)
    monkeypatch.setattr(_decoder, "cache_keyword", lambda model: "past_key_values")  # a release before 5.24
    expect = pytest.warns(FutureWarning, match="past_key_values") if RENAMED else nullcontext()
    with expect:
        old_ranked, old_scores = _decode(model)
    assert old_ranked == ranked
    torch.testing.assert_close(old_scores, scores)
