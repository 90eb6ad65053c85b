"""The CPU dropout that training swaps in: same distribution and eval behaviour, same attention."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from p5rec.modeling.dropout import DropoutRates
from p5rec.modeling.fast_dropout import FastDropout, eager_attention, masked_dropout, use_fast_dropout


def test_masked_dropout_keeps_each_entry_with_probability_one_minus_p_and_rescales():
    torch.manual_seed(0)
    x = torch.rand(200, 500) + 1.0
    y = masked_dropout(x, 0.3)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.01
    assert torch.allclose(y[kept], x[kept] / 0.7)
    assert torch.equal(masked_dropout(x, 0.3, training=False), x)
    assert torch.equal(masked_dropout(x, 0.0), x)
    assert torch.equal(masked_dropout(x, 1.0), torch.zeros_like(x))


def test_gradient_flows_through_kept_entries_only():
    x = torch.rand(50, 40, requires_grad=True)
    y = masked_dropout(x, 0.5)
    y.sum().backward()
    assert torch.allclose(x.grad, (y != 0).float() * 2.0)


def _tiny(architecture: str) -> nn.Module:
    """The nano preset as p5rec builds it, at dropout 0.5, with a 40-odd-token vocabulary."""
    from p5rec.modeling.backbone import ModelConfig, build_scratch_model, train_tokenizer

    tokenizer = train_tokenizer(["which item follows for user_12 , after the purchases"] * 20, 64)
    return build_scratch_model(ModelConfig(backbone="nano", architecture=architecture, dropout=0.5), tokenizer)


@pytest.mark.parametrize("architecture", ["gpt_neox", "llama", "gpt2"])
def test_swapped_model_predicts_the_same_in_eval_and_keeps_its_rates(architecture):
    model = _tiny(architecture)
    ids = torch.randint(3, 12, (3, 9))
    mask = torch.ones_like(ids)
    mask[0, 6:] = 0  # right padding, as p5rec's causal batches
    model.eval()
    with torch.no_grad():
        before = model(input_ids=ids, attention_mask=mask).logits
    rates = len(DropoutRates(model))
    plain = sum(type(m) is nn.Dropout for m in model.modules())
    assert use_fast_dropout(model) == plain
    assert not any(type(m) is nn.Dropout for m in model.modules())
    assert len(DropoutRates(model)) == rates  # `model.text_dropout` still finds every rate
    with torch.no_grad():
        after = model(input_ids=ids, attention_mask=mask).logits
    assert torch.allclose(before, after, atol=1e-6)
    model.train()
    model(input_ids=ids, attention_mask=mask, labels=ids).loss.backward()  # the training path runs and trains
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_training_draws_new_masks_but_reproducibly_under_a_seed():
    model = _tiny("gpt_neox")
    use_fast_dropout(model)
    model.train()
    ids = torch.randint(3, 12, (2, 8))
    torch.manual_seed(1)
    a = model(input_ids=ids).logits
    b = model(input_ids=ids).logits
    torch.manual_seed(1)
    c = model(input_ids=ids).logits
    assert not torch.allclose(a, b)
    assert torch.equal(a, c)


@pytest.mark.parametrize("kv_heads", [4, 2])
def test_eager_attention_without_dropout_is_sdpa(kv_heads):
    torch.manual_seed(0)
    q = torch.randn(3, 4, 7, 8)
    k, v = torch.randn(3, kv_heads, 7, 8), torch.randn(3, kv_heads, 7, 8)
    kr, vr = k.repeat_interleave(4 // kv_heads, 1), v.repeat_interleave(4 // kv_heads, 1)
    causal, _ = eager_attention(q, k, v, None, None, 0.0, causal=True)
    assert torch.allclose(causal, F.scaled_dot_product_attention(q, kr, vr, is_causal=True).transpose(1, 2), atol=1e-6)
    keep = torch.ones(7, 7, dtype=torch.bool).tril().expand(3, 1, 7, 7).clone()
    keep[0, :, :, 5:] = False  # padding
    keep[0, :, 5:, 5] = True  # padded queries still see something (SDPA gives NaN rows otherwise)
    masked, _ = eager_attention(q, k, v, keep, 0.5, 0.0, causal=False)
    ref = F.scaled_dot_product_attention(q, kr, vr, attn_mask=keep, scale=0.5).transpose(1, 2)
    assert torch.allclose(masked, ref, atol=1e-6)


def test_fast_dropout_is_an_nn_dropout():
    layer = FastDropout(0.2)
    assert isinstance(layer, nn.Dropout) and layer.p == 0.2
    layer.eval()
    x = torch.rand(4, 4)
    assert torch.equal(layer(x), x)
