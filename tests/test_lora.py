"""LoRA over T5, BART, GPT-2 and Llama: default targets, trainable ID tokens, save/reload, merge and export.

Every family runs the real path a user runs: a checkpoint folder as `model.backbone`, `finetune:
lora`, token IDs, `Recommender.save_pretrained` / `from_pretrained`, then `merge_lora` to a plain model.
"""

from __future__ import annotations

import json
import sys

import pytest
import torch
from safetensors import safe_open
from test_backbones import FAMILIES, assert_same_recommendations, save_hub_models, tiny_hub_model, tiny_run

from p5rec.modeling.lora import DEFAULT_TARGETS, LoraSettings, apply_lora, default_targets, merge_lora, token_targets

# Module names of each family that hold the attention and feed-forward weights (what LoRA should adapt).
EXPECTED_TARGETS = {
    "t5": {"q", "k", "v", "o", "wi_0", "wi_1", "wo"},  # gated-gelu feed-forward, as in FLAN-T5
    "bart": {"q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"},
    "gpt2": {"c_attn", "c_proj", "c_fc"},
    "llama": {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
}


def _linear_names(model) -> set[str]:
    """Last name part of every weight layer except the vocabulary projection."""
    layers = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if type(m).__name__ in ("Linear", "Conv1D")}
    return layers - {"lm_head"}


@pytest.mark.parametrize("family", FAMILIES)
def test_default_targets_are_every_attention_and_feed_forward_layer(family):
    model = tiny_hub_model(family, 64)
    assert set(default_targets(model)) == EXPECTED_TARGETS[family] == _linear_names(model)
    wrapped = apply_lora(model, LoraSettings(r=2, alpha=4))
    adapted = {n.split(".lora_A")[0].rsplit(".", 1)[-1] for n, _ in wrapped.named_parameters() if ".lora_A" in n}
    assert adapted == EXPECTED_TARGETS[family]
    assert all(("lora_" in n) == p.requires_grad for n, p in wrapped.named_parameters())


def test_unknown_architecture_adapts_all_linear_layers():
    model = tiny_hub_model("gpt2", 64)
    model.config.model_type = "some-new-arch"
    assert "some-new-arch" not in DEFAULT_TARGETS
    assert default_targets(model) == "all-linear"


def test_rank_alpha_and_dropout_reach_peft():
    wrapped = apply_lora(
        tiny_hub_model("llama", 64), LoraSettings(r=3, alpha=12, dropout=0.2, target_modules=["q_proj"])
    )
    config = wrapped.peft_config["default"]
    assert (config.r, config.lora_alpha, config.lora_dropout, config.target_modules) == (3, 12, 0.2, {"q_proj"})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"r": 0}, r"`lora.r` must be >= 1, got 0"), ({"dropout": 1.0}, r"`lora.dropout` must be in \[0, 1\)")],
)
def test_bad_lora_settings_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LoraSettings(**kwargs)


def test_token_rows_follow_weight_tying():
    assert token_targets(tiny_hub_model("bart", 64), [60, 61]) == [60, 61]  # one shared matrix
    untied = token_targets(tiny_hub_model("llama", 64, tie=False), [61, 60])
    assert untied == {"model.embed_tokens": [60, 61], "lm_head": [60, 61]}  # output rows train too
    assert token_targets(tiny_hub_model("gpt2", 64), []) is None


def test_token_rows_outside_the_vocabulary_or_partly_shared_matrices_are_errors():
    with pytest.raises(ValueError, match=r"`trainable_token_ids` \[64\] are outside the embedding matrix \(64 rows\)"):
        token_targets(tiny_hub_model("gpt2", 64), [63, 64])
    model = tiny_hub_model("bart", 64, tie=False)
    model.model.encoder.embed_tokens.weight = model.model.shared.weight  # shared with the encoder only
    with pytest.raises(ValueError, match="partly shared .*use `finetune: full` or `ids.representation: text`"):
        token_targets(model, [60])


def test_merging_a_plain_model_is_a_type_error():
    with pytest.raises(TypeError, match=r"`model` \(GPT2LMHeadModel\) has no LoRA adapter to merge"):
        merge_lora(tiny_hub_model("gpt2", 64))


def _token_rows(model, ids):
    """(trained values, frozen base values) of `ids` in every matrix that trains them."""
    from peft.utils.other import TrainableTokensWrapper

    out = []
    for module in model.modules():
        if isinstance(module, TrainableTokensWrapper) and module.token_adapter.tied_adapter is None:
            adapter = module.token_adapter
            idx = torch.tensor(adapter.token_indices["default"])
            assert sorted(idx.tolist()) == sorted(ids)
            out.append((adapter.trainable_tokens_delta["default"].detach(), adapter.base_layer.weight[idx].detach()))
    return out


@pytest.fixture(scope="module")
def hub_dirs(tmp_path_factory):
    return save_hub_models(tmp_path_factory.mktemp("hub"))


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_with_id_tokens_trains_saves_reloads_and_merges(family, hub_dirs, tmp_path, monkeypatch):
    from p5rec.api import Recommender
    from p5rec.pipeline import fit

    config = tiny_run(
        model={"backbone": str(hub_dirs[family]), "max_input_length": 128},
        finetune="lora",
        lora={"r": 4, "alpha": 8},
        ids={"representation": "tokens"},
        train={"epochs": 1, "batch_size": 32, "learning_rate": 0.01},
    )
    rec = fit(config, progress=False).recommender
    new_ids = rec.tokenizer.convert_tokens_to_ids(rec.items.new_tokens() + rec.users.new_tokens())
    rows = _token_rows(rec.model, new_ids)
    assert len(rows) == (2 if family == "llama" else 1)  # untied Llama: input and output rows
    for trained, base in rows:
        assert not torch.allclose(trained, base)  # the new ID rows moved; the base matrix stayed frozen

    user = next(iter(rec.histories))
    items = [i.item_id for i in rec.recommend(user=user, k=5)]
    assert len(set(items)) == 5 and set(items) <= set(rec.catalog) and not set(items) & set(rec.histories[user])

    rec.save_pretrained(tmp_path / "lora")
    assert not (tmp_path / "lora" / "base_model").exists()  # the base is the checkpoint, not copied
    with safe_open(tmp_path / "lora" / "model" / "adapter_model.safetensors", "pt") as f:
        saved = {name: f.get_slice(name).get_shape() for name in f.keys()}  # noqa: SIM118 (not a dict)
    assert all("lora_" in name or shape[0] == len(new_ids) for name, shape in saved.items())  # no full matrix
    back = Recommender.from_pretrained(tmp_path / "lora")
    for (trained, _), (restored, _) in zip(rows, _token_rows(back.model, new_ids)):
        assert torch.equal(trained, restored)
    assert_same_recommendations(back, rec)

    back.merge_lora().save_pretrained(tmp_path / "merged")
    assert json.loads((tmp_path / "merged" / "p5rec_config.json").read_text())["finetune"] == "full"
    assert not (tmp_path / "merged" / "model" / "adapter_config.json").exists()
    monkeypatch.setitem(sys.modules, "peft", None)  # the merged model must load without peft
    merged = Recommender.from_pretrained(tmp_path / "merged")
    assert not hasattr(merged.model, "peft_config")
    assert_same_recommendations(merged, rec)


def test_lora_over_a_scratch_preset_trains_the_id_tokens_and_saves_the_base(tmp_path):
    from p5rec.api import Recommender
    from p5rec.pipeline import fit

    config = tiny_run(finetune="lora", lora={"r": 4, "alpha": 8}, ids={"representation": "tokens"})
    rec = fit(config, progress=False).recommender
    new_ids = rec.tokenizer.convert_tokens_to_ids(rec.items.new_tokens() + rec.users.new_tokens())
    ((trained, base),) = _token_rows(rec.model, new_ids)  # the SentencePiece pieces of the ID tokens
    assert not torch.allclose(trained, base)
    rec.save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / "base_model").is_dir()
    assert_same_recommendations(Recommender.from_pretrained(tmp_path / "m"), rec)
