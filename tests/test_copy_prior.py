"""The copy prior: prompt tokens that the data's answers repeat are favoured when a text answer is written."""

from __future__ import annotations

import pytest
import torch

from p5rec.decoding.text import CopyBonusLogitsProcessor
from p5rec.training.copy_prior import CLIP, WEIGHT_GRID, copy_log_odds


def test_log_odds_rank_the_tokens_answers_repeat_above_those_they_drop():
    # token 3 ("strings") is always repeated, 4 ("the") never, 5 half the time; 0 is special.
    pairs = [([0, 3, 4, 5], [3, 5]), ([0, 3, 4, 5], [3]), ([3, 4], [3]), ([4, 5], [5]), ([4, 6], [])] * 4
    odds = copy_log_odds(pairs, 8, exclude=[0])
    assert odds[3] > odds[5] > 0 > odds[4]
    assert odds[0] == 0 and odds[7] == 0  # special, and never in a prompt
    assert odds.abs().max() <= CLIP
    assert not copy_log_odds([([1, 2], [])], 4).any()  # no answer repeats anything: no signal


def test_few_sightings_stay_near_the_base_rate():
    rare = copy_log_odds([([1, 2], [1]), ([2, 3], [])] + [([2, 3], [2])] * 20, 4)
    often = copy_log_odds([([1, 2], [1])] * 10 + [([2, 3], [])] + [([2, 3], [2])] * 20, 4)
    assert 0 < rare[1] < often[1]  # once repeated in one prompt: a little; ten times in ten: more


def test_the_processor_adds_the_prior_to_prompt_tokens_and_never_goes_below_zero():
    prior = torch.tensor([0.0, 0.0, 0.0, 2.0, -3.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    processor = CopyBonusLogitsProcessor(0.0, exclude=[0], prior=prior)
    prompt = torch.tensor([[0, 3, 4, 6], [5, 5, 7, 8]])
    added = processor(prompt, torch.zeros(2, 10))
    assert {k: v for k, v in enumerate(added[0].tolist()) if v} == {3: 2.0}  # 4's -3 floors at 0; 6 has none
    assert {k: v for k, v in enumerate(added[1].tolist()) if v} == {5: 1.0}
    later = processor(torch.cat([prompt, torch.tensor([[3], [9]])], 1), torch.zeros(2, 10))
    assert not later[0].any()  # 3 written: it loses its share, as with the bonus
    with_bonus = CopyBonusLogitsProcessor(1.0, exclude=[0], prior=prior)(prompt, torch.zeros(2, 10))
    assert with_bonus[0, 3] == 3.0 and with_bonus[0, 4] == 0.0 and with_bonus[0, 6] == 1.0
    with pytest.raises(ValueError, match="changes? nothing"):
        CopyBonusLogitsProcessor(0.0)
    with pytest.raises(ValueError, match="one number per vocabulary token"):
        CopyBonusLogitsProcessor(1.0, prior=torch.zeros(2, 10))


@pytest.mark.parametrize("bad", [-1.0, float("inf"), float("nan")])
def test_a_prior_weight_must_be_finite_and_not_negative(bad):
    from p5rec.modeling.config import ModelConfig

    with pytest.raises(ValueError, match="copy_prior"):
        ModelConfig(copy_prior=bad)


def test_the_weight_is_chosen_on_valid_saved_with_the_model_and_used_to_write(tmp_path, monkeypatch):
    from conftest import tiny_config

    import p5rec.evaluation.metrics as metrics
    from p5rec.api import Recommender
    from p5rec.pipeline import fit

    # ROUGE that rises with each weight tried (the grid in order): the largest weight must win
    calls: list[int] = []

    def rising(refs, hyps):
        calls.append(len(hyps))
        return {"rouge_1": float(len(calls) % len(WEIGHT_GRID))}  # 1, 2, 3, 4, then 0 at the grid's top

    monkeypatch.setattr(metrics, "rouge", rising)
    config = tiny_config(
        validation={"tasks": ["sequential"], "max_users": 20},
        # The explanation choice after the copy prior's would score with the patched ROUGE: off here.
        model={"backbone": "tiny", "vocab_size": 200, "max_input_length": 128, "choose_answers": False},
    )
    result = fit(config, progress=False)
    rec = result.recommender
    assert len(calls) == 2 * len(WEIGHT_GRID)  # every weight, for each of the two text tasks
    assert result.copy_weights == {"explanation": WEIGHT_GRID[-2], "review_summary": WEIGHT_GRID[-2]}
    assert "chosen on valid" in result.describe_copy()
    assert set(rec.copy_prior) == {"explanation", "review_summary"}
    rec.save_pretrained(tmp_path / "m")
    back = Recommender.from_pretrained(tmp_path / "m", device="cpu")
    for task in ("explanation", "review_summary"):
        assert back.copy_prior[task].any()
        assert torch.allclose(back.copy_prior[task], rec.copy_prior[task])
    # `summarize` writes with the summary task's prior, through the processor
    priors: list[torch.Tensor | None] = []
    init = CopyBonusLogitsProcessor.__init__

    def spy(self, bonus, exclude=(), prior=None):
        priors.append(prior)
        init(self, bonus, exclude, prior)

    monkeypatch.setattr(CopyBonusLogitsProcessor, "__init__", spy)
    assert back.summarize("the pedal works fine and sounds great")
    assert priors and torch.allclose(priors[0], back.copy_prior["review_summary"])
    with pytest.raises(ValueError, match="one per vocabulary token"):
        back.predictor.write(["a prompt"], copy_prior=torch.tensor([float("nan")]))


def test_ties_go_to_the_smaller_weight(monkeypatch):
    from conftest import tiny_config

    import p5rec.evaluation.metrics as metrics
    from p5rec.pipeline import fit

    monkeypatch.setattr(metrics, "rouge", lambda refs, hyps: {"rouge_1": 5.0})
    config = tiny_config(
        validation={"tasks": ["sequential"], "max_users": 20},
        # The explanation choice after the copy prior's would score with the patched ROUGE: off here.
        model={"backbone": "tiny", "vocab_size": 200, "max_input_length": 128, "choose_answers": False},
    )
    result = fit(config, progress=False)
    assert result.copy_weights == {"explanation": 0.0, "review_summary": 0.0}
    assert result.recommender.copy_prior == {}  # weight 0: the answers as trained


def test_a_given_weight_is_used_without_validation():
    from conftest import tiny_config

    from p5rec.pipeline import fit

    config = tiny_config(model={"backbone": "tiny", "vocab_size": 200, "max_input_length": 128, "copy_prior": 2.0})
    result = fit(config, progress=False)
    assert result.copy_weights == {"explanation": 2.0, "review_summary": 2.0}
    assert "given" in result.describe_copy()
    assert set(result.recommender.copy_prior) == {"explanation", "review_summary"}
    off = fit(tiny_config(), progress=False)  # the tiny config does not validate: nothing to choose on
    assert off.copy_weights == {} and off.recommender.copy_prior == {}


def test_a_damaged_prior_file_names_itself(tiny_model_dir, tmp_path):
    import shutil

    from p5rec.api import Recommender

    copy = tmp_path / "m"
    shutil.copytree(tiny_model_dir, copy)
    (copy / "copy_prior.json").write_text('{"review_summary": {"999999": 1.0}}')
    with pytest.raises(ValueError, match=r"copy_prior.json: `review_summary` must be a text task mapping token ids"):
        Recommender.from_pretrained(copy, device="cpu")
    (copy / "copy_prior.json").write_text('{"review_summary": {"3": 1.5}}')
    assert Recommender.from_pretrained(copy, device="cpu").copy_prior["review_summary"][3] == 1.5
