import numpy as np
import pytest

from p5rec.training.collate import CausalCollator, Seq2SeqCollator, encode, length_grouped_batches
from p5rec.training.trainer import TrainConfig


class _Tok:
    """A whitespace tokenizer with T5's special ids, enough to test collation exactly."""

    pad_token_id, eos_token_id = 0, 1

    def __call__(self, texts, add_special_tokens=False):
        return {"input_ids": [[10 + len(w) for w in t.split()] for t in texts]}


def test_seq2seq_batch_pads_inputs_and_masks_padded_labels():
    enc = encode(
        _Tok(), ["a bb ccc", "dddd"], ["x", "yy zz"], max_input_length=16, max_target_length=8, prompt_eos=True
    )
    batch = Seq2SeqCollator(enc, 0)([0, 1])
    assert batch["input_ids"].tolist() == [[11, 12, 13, 1], [14, 1, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert batch["labels"].tolist() == [[11, 1, -100], [12, 12, 1]]


def test_causal_batch_puts_loss_on_target_only():
    enc = encode(_Tok(), ["a bb"], ["x"], max_input_length=16, max_target_length=8)
    batch = CausalCollator(enc, 0, 1)([0])
    assert batch["input_ids"].tolist() == [[11, 12, 11, 1]]
    assert batch["labels"].tolist() == [[-100, -100, 11, 1]]


def test_causal_batch_with_loss_on_prompt_predicts_every_real_token_after_the_first():
    enc = encode(_Tok(), ["a bb", "ccc"], ["x", "y"], max_input_length=16, max_target_length=8)
    batch = CausalCollator(enc, 0, 1, loss_on_prompt=True)([0, 1])
    assert batch["input_ids"].tolist() == [[11, 12, 11, 1], [13, 11, 1, 0]]
    assert batch["labels"].tolist() == [[-100, 12, 11, 1], [-100, 11, 1, -100]]


def test_loss_on_prompt_is_refused_for_an_encoder_decoder():
    from conftest import tiny_config

    from p5rec.pipeline import fit

    with pytest.raises(ValueError, match="loss_on_prompt` needs a decoder-only backbone"):
        fit(
            tiny_config(train={"loss_on_prompt": True}, model={"backbone": "tiny", "architecture": "t5"}),
            progress=False,
        )


def test_long_prompts_keep_their_end_and_targets_end_with_eos():
    enc = encode(_Tok(), ["a b c d e f"], ["x y z w"], max_input_length=4, max_target_length=3)
    assert enc.input_ids == [[11, 11, 11]]  # the last 3 words; eos makes 4
    assert enc.labels == [[11, 11, 1]]


def test_length_grouped_batches_cover_every_row_once_with_similar_lengths():
    lengths = list(np.random.default_rng(0).integers(1, 100, size=500))
    batches = length_grouped_batches(lengths, 10, np.random.default_rng(0))
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(500))
    spread = np.mean([max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches])
    assert spread < 15  # random batches would spread ~80


def test_train_config_rejects_bad_values():
    with pytest.raises(ValueError, match="mixed_precision"):
        TrainConfig(mixed_precision="fp8")
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)


def test_training_lowers_the_loss(tiny_fit):
    log = tiny_fit.train.log
    assert tiny_fit.train.steps > 5 and len(log) >= 2
    assert log[-1]["loss"] < log[0]["loss"]


def test_only_the_last_batch_may_be_short():
    batches = length_grouped_batches([5] * 105, 10, np.random.default_rng(0), mega_factor=2)
    assert [len(b) for b in batches[:-1]] == [10] * 10 and len(batches[-1]) == 5


def test_epoch_tokenization_takes_the_fast_path_and_equals_the_tokenizers_own_call(tiny_fit):
    # The fast path (the Rust backend, once per distinct text) must give exactly the wrapper's tokens, and
    # must be the path taken: the wrapper only tokenizes the first CHECKED_TEXTS texts, as the check.
    from p5rec.modeling.inputs import CHECKED_TEXTS, tokenize

    tok = tiny_fit.recommender.tokenizer

    class Spy:  # the tokenizer, counting the texts each call of the Python wrapper gets
        backend_tokenizer = tok.backend_tokenizer

        def __init__(self):
            self.calls = []

        def __call__(self, texts, **kwargs):
            self.calls.append(len(texts))
            return tok(texts, **kwargs)

    examples = tiny_fit.prepared.builder.train_examples(np.random.default_rng(0))
    prompts, targets = [e.input for e in examples], [e.target for e in examples]
    assert len(prompts) > CHECKED_TEXTS and any("<item_" in p for p in prompts)
    for texts in (prompts, targets):
        spy = Spy()
        assert tokenize(spy, texts) == tok(texts, add_special_tokens=False)["input_ids"]
        assert spy.calls == [CHECKED_TEXTS]  # the rest came from the backend
    assert tokenize(tok, prompts[:5]) == tok(prompts[:5], add_special_tokens=False)["input_ids"]
    assert tokenize(tok, []) == []
    tok.backend_tokenizer.enable_padding(pad_id=tok.pad_token_id)  # a backend left padding: the plain call
    try:
        spy = Spy()
        tokenize(spy, prompts)
        assert spy.calls == [len(prompts)]
    finally:
        tok.backend_tokenizer.no_padding()


@pytest.mark.parametrize("architecture", ["gpt_neox", "t5"])
def test_dropout_rates_set_every_dropout_and_restore_it(architecture, tiny_fit):
    import torch

    from p5rec.modeling.backbone import ModelConfig, build_scratch_model
    from p5rec.modeling.dropout import DropoutRates

    model = build_scratch_model(
        ModelConfig(backbone="tiny", architecture=architecture, dropout=0.5), tiny_fit.recommender.tokenizer, seed=0
    )

    def rates():
        mods = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
        attn = [
            getattr(m, n) for m in model.modules() for n in ("attention_dropout", "dropout")
            if isinstance(getattr(m, n, None), float)
        ]  # fmt: skip
        return mods, attn

    before = rates()
    assert before[0] and before[1] and set(before[0] + before[1]) == {0.5}  # hidden and attention dropout found
    switch = DropoutRates(model)
    assert len(switch) == len(before[0]) + len(before[1])
    with switch.set(0.1):
        inside = rates()
        assert set(inside[0] + inside[1]) == {0.1} and len(inside[0]) == len(before[0])
    assert rates() == before
    with pytest.raises(ValueError, match=r"must be in \[0, 1\)"), switch.set(1.0):
        pass


def test_batches_without_a_history_train_at_text_dropout(monkeypatch):
    """Only the batches of tasks that show no item history (ratings, text) switch to `text_dropout`."""
    import dataclasses

    from conftest import tiny_config

    import p5rec.training.trainer as trainer
    from p5rec.modeling.dropout import DropoutRates
    from p5rec.pipeline import fit

    switched, history_free = [], []
    step = trainer._train_step

    def spy(model, batch, *args, **kwargs):
        history_free.append(batch.get("history_free"))
        return step(model, batch, *args, **kwargs)

    original = DropoutRates.set
    monkeypatch.setattr(trainer, "_train_step", spy)
    monkeypatch.setattr(DropoutRates, "set", lambda self, p: switched.append(p) or original(self, p))
    config = tiny_config()
    fit(dataclasses.replace(config, model=dataclasses.replace(config.model, text_dropout=0.05)), progress=False)
    assert set(history_free) == {True, False}  # a plain bool per batch, kept on the CPU
    assert switched == [0.05] * history_free.count(True)
    switched.clear()
    history_free.clear()
    fit(config, progress=False)  # unset: no flag is collated, no batch switches
    assert switched == [] and set(history_free) == {None}
