"""Choose how a trained model's rating answers are centred on the baseline rating (the rating prior).

The baseline (`RatingMeans.baseline`: global mean plus damped user and item offsets) gives each
answer its centre; the weight says how much of the model's own lean per prompt to keep
(`p5rec.decoding.rating.tilt`). Both the model's average distribution (the tilt's base) and the
weight come from valid prompts after training, so nothing is tuned by hand and a model that has
learnt its users keeps what it learnt.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from p5rec.decoding.rating import RatingTilt, tilt

__all__ = ["WEIGHT_GRID", "choose_tilt"]

WEIGHT_GRID = (0.0, 0.5, 1.0, 2.0)  # 0: the baseline alone; 1: the model's lean kept whole; 2: doubled


def choose_tilt(
    dist: torch.Tensor,
    values: Sequence[float],
    truths: Sequence[float],
    baselines: Sequence[float],
    weight: float | None = None,
) -> tuple[RatingTilt, dict[float, float]]:
    """The tilt for one rating task from its valid answers, and the RMSE of each weight tried.

    Args:
        dist: `(N, V)` the model's rating distributions on N valid prompts.
        values: the V rating values.
        truths: the N true ratings.
        baselines: the N baseline ratings of the prompts' users and items.
        weight: a given weight (only the base is fitted); None: the smallest of `WEIGHT_GRID`
            within one standard error of the lowest RMSE.
    """
    if dist.dim() != 2 or dist.shape[0] == 0 or not (dist.shape[0] == len(truths) == len(baselines)):
        raise ValueError(
            f"need one distribution, truth and baseline per valid prompt, got {tuple(dist.shape)}, "
            f"{len(truths)} and {len(baselines)}"
        )
    base = tuple(dist.double().mean(0).clamp_min(1e-6).tolist())
    v = torch.tensor([float(x) for x in values], dtype=torch.float64)
    y = torch.tensor([float(t) for t in truths], dtype=torch.float64)
    errors = {}
    for w in (weight,) if weight is not None else WEIGHT_GRID:
        expected = tilt(dist, values, RatingTilt(float(w), base), baselines).double() @ v
        errors[float(w)] = (expected - y) ** 2
    best = min(errors, key=lambda w: (float(errors[w].mean()), w))
    # One standard error: the smallest weight whose squared errors are not worse than the best's by
    # more than their paired difference's standard error. A lean that wins by chance on a few hundred
    # valid prompts (Gift Cards: the held-out templates' RMSE rose from .29 to .36 with it) is dropped.
    if len(y) > 1:
        for w in sorted(errors):
            diff = errors[w] - errors[best]
            if float(diff.mean()) <= float(diff.std()) / len(y) ** 0.5:
                best = w
                break
    return RatingTilt(best, base), {w: float(e.mean().sqrt()) for w, e in errors.items()}
