"""The sampled softmax at item labels (`train.item_negatives`): what it scores, and when it is off."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from p5rec.modeling.backbone import ModelConfig, add_id_tokens_to_tokenizer, build_scratch_model, train_tokenizer
from p5rec.training.config import TrainConfig
from p5rec.training.objective import CausalLMObjective, SampledItems, Teacher

ITEMS = [f"<item_{k}>" for k in range(1, 9)]


@pytest.fixture(scope="module")
def setup():
    tok = train_tokenizer(["bought these in this order and then what comes next"] * 30, 80)
    item_ids = add_id_tokens_to_tokenizer(tok, ITEMS)
    torch.manual_seed(0)
    model = build_scratch_model(ModelConfig(backbone="nano", dropout=0.0, attention_dropout=0.0), tok)
    ids = torch.randint(3, len(tok), (3, 10))
    ids[:, 2:8] = torch.tensor(item_ids)[torch.randint(0, len(item_ids), (3, 6))]
    labels = torch.full_like(ids, -100)
    labels[:, 3:9] = ids[:, 3:9]  # item labels at 3-7, and position 8 is text in some rows
    labels[0, 8] = tok.convert_tokens_to_ids(ITEMS[0])  # an item label
    labels[1, 8] = 5  # a text token label
    return tok, model, item_ids, ids, torch.ones_like(ids), labels


def _reference(model, ids, mask, labels, item_ids, draws):
    """Cross-entropy per label written out: item labels over (true item, draws other than it), the
    rest over the vocabulary."""
    keep = labels[:, 1:] != -100
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1][keep]
    targets = labels[:, 1:][keep]
    losses = []
    for row, t in zip(logits, targets.tolist()):
        if t in item_ids:
            others = [d for d in draws.tolist() if d != t]
            cand = torch.cat([row[[t]], row[others]])
            losses.append(-cand.log_softmax(-1)[0])
        else:
            losses.append(F.cross_entropy(row[None], torch.tensor([t])))
    return torch.stack(losses), keep


def test_item_labels_are_scored_against_the_true_item_and_uniform_draws(setup):
    tok, model, item_ids, ids, mask, labels = setup
    objective = CausalLMObjective(model, sampled=SampledItems(item_ids, 3)).train()
    torch.manual_seed(7)
    out = objective(ids, mask, labels)
    torch.manual_seed(7)
    draws = torch.tensor(sorted(item_ids))[torch.randperm(len(item_ids))[:3]]
    losses, keep = _reference(model, ids, mask, labels, item_ids, draws)
    assert out.loss.item() == pytest.approx(losses.mean().item(), rel=1e-5)
    rows = keep.nonzero()[:, 0]
    per_row = torch.zeros(3).index_add(0, rows, losses) / keep.sum(1)
    assert torch.allclose(out.per_example, per_row, rtol=1e-5)
    full = CausalLMObjective(model).train()(ids, mask, labels)
    assert out.loss.item() < full.loss.item()  # 4 candidates, not the whole vocabulary


def test_validation_and_catalogs_no_larger_than_the_draws_use_the_full_softmax(setup):
    tok, model, item_ids, ids, mask, labels = setup
    full = CausalLMObjective(model)(ids, mask, labels).loss.item()
    sampled = CausalLMObjective(model, sampled=SampledItems(item_ids, 3))
    assert sampled.eval()(ids, mask, labels).loss.item() == pytest.approx(full, rel=1e-6)
    whole = CausalLMObjective(model, sampled=SampledItems(item_ids, len(item_ids))).train()
    assert whole.negatives == 0  # the draws would be the catalog: the exact softmax costs the same
    assert whole(ids, mask, labels).loss.item() == pytest.approx(full, rel=1e-6)


def test_the_teachers_kl_is_taken_over_the_same_candidates_and_is_zero_for_a_copy(setup):
    tok, model, item_ids, ids, mask, labels = setup
    sampled = SampledItems(item_ids, 3)
    torch.manual_seed(1)
    plain = CausalLMObjective(model, sampled=sampled).train()(ids, mask, labels)
    same = CausalLMObjective(model, Teacher(copy.deepcopy(model), 1.0, {"sequential"}), sampled).train()
    torch.manual_seed(1)
    out = same(ids, mask, labels, distil=True)
    assert torch.isfinite(out.loss)  # the excluded draw (the row's own item) must not make the KL nan
    assert out.loss.item() == pytest.approx(plain.loss.item(), abs=1e-5)
    other = copy.deepcopy(model)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(torch.randn_like(p))
    distilled = CausalLMObjective(model, Teacher(other, 1.0, {"sequential"}), sampled).train()
    torch.manual_seed(1)
    out = distilled(ids, mask, labels, distil=True)
    assert out.loss.item() > plain.loss.item() + 1e-3
    out.loss.backward()
    assert all(p.grad is None for p in other.parameters())


def test_gradients_reach_only_the_head_rows_of_scored_items(setup):
    tok, model, item_ids, ids, mask, labels = setup
    labels = labels.clone()
    labels[1:, 8] = -100  # item labels only: no full-softmax row
    m = copy.deepcopy(model)
    objective = CausalLMObjective(m, sampled=SampledItems(item_ids, 2)).train()
    torch.manual_seed(3)
    objective(ids, mask, labels).loss.backward()
    torch.manual_seed(3)
    draws = set(torch.tensor(sorted(item_ids))[torch.randperm(len(item_ids))[:2]].tolist())
    scored = draws | set(labels[:, 1:][labels[:, 1:] != -100].tolist())
    head = m.get_output_embeddings().weight
    if head is m.get_input_embeddings().weight:  # tied: the prompt's tokens get input gradients too
        scored |= set(ids.flatten().tolist())
    touched = set((head.grad.abs().sum(1) > 0).nonzero()[:, 0].tolist())
    assert touched <= scored and touched & draws


@pytest.mark.parametrize("bad", [-1, True, 2.5, None])
def test_item_negatives_must_be_a_count(bad):
    with pytest.raises(ValueError, match="item_negatives"):
        TrainConfig(item_negatives=bad)


def test_sampled_items_need_at_least_one_draw():
    with pytest.raises(ValueError, match="negatives"):
        SampledItems(torch.arange(5), 0)


def test_fit_hands_the_catalog_to_the_sampled_softmax(monkeypatch):
    from conftest import TINY_RUN, tiny_config

    from p5rec.pipeline import fit

    catalogs: list[torch.Tensor] = []
    original = CausalLMObjective._draws

    def spy(self, targets):
        draws, scored = original(self, targets)
        if draws is not None:  # batches without item labels (ratings, text) keep the full softmax
            catalogs.append(self._items)
            assert len(draws) == 8 and set(draws.tolist()) <= set(self._items.tolist())
        return draws, scored

    monkeypatch.setattr(CausalLMObjective, "_draws", spy)
    config = tiny_config(train={**TINY_RUN["train"], "item_negatives": 8})
    result = fit(config, progress=False)
    assert catalogs, "no batch used the sampled softmax"
    catalog = result.recommender.tokenizer.convert_tokens_to_ids(result.prepared.items.new_tokens())
    assert sorted(catalogs[0].tolist()) == sorted(catalog)  # every item, and nothing but items, can be drawn
    assert all(math.isfinite(e["loss"]) for e in result.train.log if "loss" in e)


def test_item_negatives_without_item_tokens_is_an_error_before_training():
    from conftest import TINY_RUN, tiny_config

    from p5rec.pipeline import fit

    config = tiny_config(train={**TINY_RUN["train"], "item_negatives": 8}, ids={"representation": "text"})
    with pytest.raises(ValueError, match="item_negatives.*one token per item"):
        fit(config, progress=False)


def test_a_peft_wrapped_head_is_refused(setup):
    from p5rec.modeling.config import LoraSettings
    from p5rec.modeling.lora import apply_lora

    tok, model, item_ids, ids, mask, labels = setup
    wrapped = apply_lora(copy.deepcopy(model), LoraSettings(), trainable_token_ids=item_ids)
    with pytest.raises(ValueError, match="plain linear output layer"):  # its rows lack the trained token deltas
        CausalLMObjective(wrapped, sampled=SampledItems(item_ids, 3))
