"""The copy bonus (`model.copy_bonus`): the prompt's tokens favoured in text answers, in training and decoding alike."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from p5rec.decoding.text import CopyBonusLogitsProcessor
from p5rec.modeling.backbone import ModelConfig, build_scratch_model, train_tokenizer
from p5rec.training.collate import CausalCollator, Encoded
from p5rec.training.objective import CausalLMObjective


@pytest.fixture(scope="module")
def setup():
    tok = train_tokenizer(["the strings sound great and the pedal works fine for the price"] * 30, 80)
    torch.manual_seed(0)
    model = build_scratch_model(ModelConfig(backbone="nano", dropout=0.0, attention_dropout=0.0), tok)
    prompts = [[5, 6, 7, tok.eos_token_id], [8, 9, 10, 11]]
    answers = [[6, 12, tok.eos_token_id], [13, 8, tok.eos_token_id]]
    return tok, model, Encoded(prompts, answers, copy=[True, False])


def _batch(tok, enc):
    return CausalCollator(enc, tok.pad_token_id, tok.eos_token_id)([0, 1])


def test_the_collator_marks_the_prompt_positions_of_the_rows_that_copy(setup):
    tok, _, enc = setup
    batch = _batch(tok, enc)
    source = batch["copy_source"]
    assert source[0].tolist() == [True] * 4 + [False] * 3  # row 0's prompt, not its answer
    assert not source[1].any()  # row 1 does not copy
    none = Encoded(enc.input_ids, enc.labels, copy=[False, False])
    assert "copy_source" not in CausalCollator(none, tok.pad_token_id, tok.eos_token_id)([0, 1])


def test_the_loss_adds_the_bonus_to_the_prompts_unwritten_tokens_at_the_copying_rows_labels_only(setup):
    tok, model, enc = setup
    batch = _batch(tok, enc)
    bonus = 3.0
    objective = CausalLMObjective(model, copy_bonus=bonus, copy_exclude=tok.all_special_ids).eval()
    out = objective(**batch)
    # The reference, written out: logits at each label, plus the bonus where row 0's prompt has the token.
    labels, ids = batch["labels"], batch["input_ids"]
    keep = labels[:, 1:] != -100
    logits = model(input_ids=ids, attention_mask=batch["attention_mask"]).logits[:, :-1].float()
    added = torch.zeros(logits.shape[-1])
    added[[5, 6, 7]] = bonus  # row 0's prompt tokens; its eos is a special token: no bonus
    answer_start = 3  # position 3 (the prompt's eos) predicts the first answer token, 6
    logits[0, answer_start] += added
    added[6] = 0.0  # once written, 6 is not favoured again
    logits[0, answer_start + 1 :] += added
    logits[0, answer_start + 1, 7] += bonus  # after 6, the token that follows 6 in the prompt: 7
    losses = F.cross_entropy(logits[keep], labels[:, 1:][keep], reduction="none")
    assert out.loss.item() == pytest.approx(losses.mean().item(), rel=1e-5)
    plain = CausalLMObjective(model).eval()(**{k: v for k, v in batch.items() if k != "copy_source"})
    assert out.per_example[1].item() == pytest.approx(plain.per_example[1].item(), rel=1e-6)  # row 1 unchanged
    assert out.per_example[0].item() < plain.per_example[0].item()  # token 6 of the answer is in the prompt


def test_without_a_bonus_the_marks_change_nothing(setup):
    tok, model, enc = setup
    batch = _batch(tok, enc)
    marked = CausalLMObjective(model).eval()(**batch)
    plain = CausalLMObjective(model).eval()(**{k: v for k, v in batch.items() if k != "copy_source"})
    assert torch.equal(marked.per_example, plain.per_example)


def test_the_processor_favours_the_prompts_unwritten_tokens_and_the_next_piece_of_a_copy():
    processor = CopyBonusLogitsProcessor(2.0, exclude=[0])
    prompt = torch.tensor([[0, 0, 3, 4], [5, 3, 6, 7]])  # row 0 left-padded with the special token 0
    first = processor(prompt, torch.zeros(2, 10))
    assert first[0].nonzero().flatten().tolist() == [3, 4]
    assert first[1].nonzero().flatten().tolist() == [3, 5, 6, 7]
    assert first[first != 0].unique().tolist() == [2.0]
    later = processor(torch.cat([prompt, torch.tensor([[8], [9]])], 1), torch.zeros(2, 10))
    assert torch.equal(later, first)  # the answer's own tokens are not the source
    after = processor(torch.cat([prompt, torch.tensor([[8, 3], [9, 6]])], 1), torch.zeros(2, 10))
    # A prompt token once written loses its bonus; the one after it in the prompt gets it twice.
    assert {k: v for k, v in enumerate(after[0].tolist()) if v} == {4: 4.0}
    assert {k: v for k, v in enumerate(after[1].tolist()) if v} == {3: 2.0, 5: 2.0, 7: 4.0}


@pytest.mark.parametrize("bad", [-1.0, float("inf"), float("nan")])
def test_a_bonus_must_be_finite_and_not_negative(bad):
    with pytest.raises(ValueError, match="copy_bonus"):
        ModelConfig(copy_bonus=bad)


def test_a_model_trained_with_the_bonus_writes_with_it(monkeypatch):
    from conftest import tiny_config

    from p5rec.pipeline import fit

    trained: list[bool] = []
    original = CausalLMObjective._bonus

    def spy(self, *args):
        out = original(self, *args)
        trained.append(out is not None)
        return out

    monkeypatch.setattr(CausalLMObjective, "_bonus", spy)
    config = tiny_config(model={"backbone": "tiny", "vocab_size": 200, "max_input_length": 128, "copy_bonus": 50.0})
    rec = fit(config, progress=False).recommender
    assert any(trained) and not all(trained)  # the text batches copy; the item and rating batches do not
    assert rec.predictor.copy_bonus == 50.0
    seen: list[torch.Tensor] = []
    call = CopyBonusLogitsProcessor.__call__

    def record(self, input_ids, scores):
        out = call(self, input_ids, scores)
        seen.append(out - scores)
        return out

    monkeypatch.setattr(CopyBonusLogitsProcessor, "__call__", record)
    prompt = "Summarize this review: the pedal works fine and sounds great"
    answer = rec.predictor.write([prompt], num_beams=2)[0]
    assert answer and seen  # written with the bonus: 50 on the prompt's tokens, for both beams
    tokens = rec.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert sorted(seen[0][0].nonzero().flatten().tolist()) == sorted(set(tokens))
    assert torch.equal(seen[0][0], seen[0][1]) and seen[0].max().item() == 50.0


def test_an_encoder_decoder_cannot_use_the_bonus():
    from conftest import tiny_config

    from p5rec.pipeline import fit

    config = tiny_config(
        model={"backbone": "tiny", "architecture": "t5", "vocab_size": 200, "max_input_length": 128, "copy_bonus": 2.0}
    )
    with pytest.raises(ValueError, match="copy_bonus.*decoder-only"):
        fit(config, progress=False)
