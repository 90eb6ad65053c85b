"""The rating prior: rating answers centred on the damped user and item averages' baseline rating."""

from __future__ import annotations

import pytest
import torch

from p5rec.data.rating_means import RatingMeans
from p5rec.decoding.rating import RatingTilt, tilt
from p5rec.training.rating_prior import WEIGHT_GRID, choose_tilt

VALUES = [1.0, 2.0, 3.0, 4.0, 5.0]
STARS = torch.tensor(VALUES)
BASE = (0.05, 0.05, 0.1, 0.2, 0.6)


def test_weight_zero_answers_the_baseline_whatever_the_model_says():
    dist = torch.tensor([[0.9, 0.05, 0.03, 0.01, 0.01], list(BASE), [0.0, 0.0, 0.0, 0.0, 1.0]])
    out = tilt(dist, VALUES, RatingTilt(0.0, BASE), [2.5, 4.2, 3.7])
    assert torch.allclose(out.sum(1), torch.ones(3))
    assert torch.allclose(out @ STARS, torch.tensor([2.5, 4.2, 3.7]), atol=1e-4)
    # off the scale: just inside it, never a rating the answer strings cannot say
    edge = tilt(dist[:2], VALUES, RatingTilt(0.0, BASE), [-3.0, 7.0]) @ STARS
    assert 1.0 < edge[0] < 1.01 and 4.99 < edge[1] < 5.0


def test_weight_one_keeps_the_models_lean_around_the_baseline():
    lean_up = [0.01, 0.01, 0.03, 0.15, 0.8]  # the model thinks this pair rates higher than usual
    lean_down = [0.2, 0.2, 0.2, 0.2, 0.2]
    out = tilt(torch.tensor([list(BASE), lean_up, lean_down]), VALUES, RatingTilt(1.0, BASE), [4.0] * 3) @ STARS
    assert out[0] == pytest.approx(4.0, abs=1e-4)  # the model's average answer: the baseline exactly
    assert out[1] > 4.0 > out[2]
    doubled = tilt(torch.tensor([lean_up]), VALUES, RatingTilt(2.0, BASE), [4.0]) @ STARS
    assert doubled[0] > out[1]


def test_bad_tilts_and_shapes_are_refused():
    with pytest.raises(ValueError, match="weight"):
        RatingTilt(-1.0, BASE)
    with pytest.raises(ValueError, match="positive probabilities"):
        RatingTilt(1.0, (0.5, 0.5, 0.0, 0.0, 0.0))
    assert sum(RatingTilt(1.0, (1, 1, 1, 1, 4)).base) == pytest.approx(1.0)  # normalised
    with pytest.raises(ValueError, match="one column per value"):
        tilt(torch.ones(2, 4) / 4, VALUES, RatingTilt(1.0, BASE), [4.0, 4.0])
    with pytest.raises(ValueError, match="2 distributions"):
        tilt(torch.ones(2, 5) / 5, VALUES, RatingTilt(1.0, BASE), [4.0])


def test_the_baseline_is_the_mean_plus_the_users_and_the_items_offsets():
    means = RatingMeans.fit([("u", "a", 5.0), ("u", "b", 5.0), ("v", "a", 3.0), ("v", "b", 1.0), ("w", "a", 4.0)])
    for user, item in [("u", "a"), ("v", "b"), ("new", "a"), ("u", "new")]:
        want = means.user(user) + means.item(item) - means.global_mean
        assert means.baseline(user, item) == pytest.approx(want)
    assert means.baseline("new", "new") == pytest.approx(means.global_mean)
    assert means.baseline("u", "a", exclude=5.0) == pytest.approx(
        means.user("u", 5.0) + means.item("a", 5.0) - means.global_mean
    )


def _valid(lean_matters: bool, n: int = 400, seed: int = 0):
    """Valid answers whose truth follows the model's lean (or does not), around a baseline of 4."""
    g = torch.Generator().manual_seed(seed)
    shift = torch.randn(n, generator=g)
    logits = torch.tensor(BASE).log() + 0.5 * shift[:, None] * STARS
    dist = logits.softmax(-1)
    lean = dist @ STARS - torch.tensor(BASE) @ STARS
    noise = torch.randn(n, generator=g) * 0.3
    truths = (4.0 + (1.0 * lean if lean_matters else 0.0) + noise).clamp(1, 5)
    return dist, truths.tolist(), [4.0] * n


def test_the_weight_follows_the_valid_split():
    dist, truths, baselines = _valid(True)
    informative, rmse = choose_tilt(dist, VALUES, truths, baselines)
    assert informative.weight >= 1.0 and set(rmse) == set(WEIGHT_GRID)
    assert rmse[informative.weight] < rmse[0.0]  # kept only because it beats the baseline alone
    flat = _valid(False)
    noise, _ = choose_tilt(flat[0], VALUES, *flat[1:])
    assert noise.weight == 0.0  # a lean that says nothing is dropped
    given, tried = choose_tilt(flat[0], VALUES, *flat[1:], weight=1.5)
    assert given.weight == 1.5 and list(tried) == [1.5]
    assert informative.base == pytest.approx(tuple((dist.double().mean(0)).tolist()), abs=1e-6)
    with pytest.raises(ValueError, match="one distribution, truth and baseline"):
        choose_tilt(dist, VALUES, truths[:-1], baselines)


def test_a_given_weight_is_fitted_saved_and_used_by_the_api(tmp_path):
    from conftest import tiny_config

    from p5rec.api import Recommender
    from p5rec.pipeline import fit

    model = {"backbone": "tiny", "vocab_size": 200, "max_input_length": 128, "rating_prior_weight": 0.0}
    result = fit(tiny_config(model=model), progress=False)
    rec = result.recommender
    assert set(rec.rating_prior) == {"rating", "review_rating"}
    assert all(how.weight == 0.0 for how in rec.rating_prior.values())
    assert "given" in result.describe_rating()
    rec.save_pretrained(tmp_path / "m")
    back = Recommender.from_pretrained(tmp_path / "m", device="cpu")
    for task, how in rec.rating_prior.items():
        assert back.rating_prior[task].weight == how.weight
        assert back.rating_prior[task].base == pytest.approx(how.base)
    # weight 0: the answer is the baseline of the user's and the item's known ratings (the asked one's left out)
    means = RatingMeans.fit((u, i, r) for u, rated in back.ratings.items() for i, r in rated)
    user = next(iter(back.ratings))
    unrated = next(i for i in back.items.raw_ids() if i not in {j for j, _ in back.ratings[user]})
    pairs = [(u, rated[0][0]) for u, rated in list(back.ratings.items())[:3]] + [(user, unrated)]
    got = back.predict_ratings(pairs)
    for (user, item), answer in zip(pairs, got):
        own = [r for i, r in back.ratings[user] if i == item]
        want = min(max(means.baseline(user, item, own[-1] if own else None), 1.004), 4.996)
        assert answer == pytest.approx(want, abs=1e-3)


def test_off_or_nothing_to_choose_on_leaves_the_ratings_as_trained():
    from conftest import tiny_config

    from p5rec.pipeline import fit

    base = {"backbone": "tiny", "vocab_size": 200, "max_input_length": 128}
    off = fit(tiny_config(model={**base, "rating_prior": False, "rating_prior_weight": 1.0}), progress=False)
    assert off.rating_prior == {} and off.recommender.rating_prior == {} and off.describe_rating() == ""
    unvalidated = fit(tiny_config(model=base), progress=False)  # no weight and no validation
    assert unvalidated.rating_prior == {}


@pytest.mark.parametrize("bad", [-1.0, float("inf"), float("nan"), True])
def test_a_rating_prior_weight_must_be_a_finite_number_not_below_zero(bad):
    from p5rec.modeling.config import ModelConfig

    with pytest.raises(ValueError, match="rating_prior_weight"):
        ModelConfig(rating_prior_weight=bad)


def test_a_damaged_rating_prior_file_names_itself(tiny_model_dir, tmp_path):
    import json
    import shutil

    from p5rec.api import Recommender

    copy = tmp_path / "m"
    shutil.copytree(tiny_model_dir, copy)
    for bad in ({"rating": {"weight": -1, "base": list(BASE)}}, {"explanation": {"weight": 1, "base": list(BASE)}},
                {"rating": {"weight": 1, "base": [0.5, 0.5]}}, ["rating"]):  # fmt: skip
        (copy / "rating_prior.json").write_text(json.dumps(bad))
        with pytest.raises(ValueError, match="rating_prior.json"):
            Recommender.from_pretrained(copy, device="cpu")
    (copy / "rating_prior.json").write_text(json.dumps({"rating": {"weight": 0.5, "base": list(BASE)}}))
    assert Recommender.from_pretrained(copy, device="cpu").rating_prior["rating"].weight == 0.5
