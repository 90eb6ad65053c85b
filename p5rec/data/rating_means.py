"""Each user's and each item's average star rating, damped toward the global mean.

A biased matrix factorisation's rating is a global mean plus a user and an item offset; a text ID
(`user_12`) cannot carry those offsets to a language model, so rating prompts can show the two
averages instead (`user_avg_rating`, `item_avg_rating`). An average over few ratings is mostly
noise, so each is shrunk toward the global mean with a strength chosen from the data (empirical
Bayes: the within-group variance over the variance of the true group means), not by tuning.
A training row's own rating is left out of the averages its prompt shows, as the test rows'
ratings are left out of theirs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = ["RatingMeans", "shrinkage"]

NO_SIGNAL = 1e9  # prior strength when the groups' means vary no more than noise: every average is the global mean


def shrinkage(groups: Iterable[np.ndarray]) -> float:
    """Prior strength `k` for damped group means `(sum + k * mean) / (n + k)`, by the method of moments.

    `k` = within-group variance / between-group variance of the true means, estimated from the
    groups with at least two ratings: the between-group variance is the variance of the groups'
    means less the part their sampling noise explains.
    """
    means, counts, within = [], [], []
    for g in groups:
        if len(g) >= 2:
            means.append(g.mean())
            counts.append(len(g))
            within.append(g.var(ddof=1))
    if len(means) < 2:
        return NO_SIGNAL
    sigma2 = float(np.average(within, weights=np.asarray(counts) - 1))
    tau2 = float(np.var(means, ddof=1) - np.mean(sigma2 / np.asarray(counts)))
    if tau2 <= 0:
        return NO_SIGNAL
    return min(sigma2 / tau2, NO_SIGNAL)


@dataclass(frozen=True)
class RatingMeans:
    """Damped average rating per user and per item, from (user, item, stars) triples.

    Build with :meth:`fit`; :meth:`user` and :meth:`item` give the averages, leaving out one rating
    (`exclude`) when the asked row is itself among the fitted ones.
    """

    global_mean: float
    user_k: float
    item_k: float
    user_sum: dict[str, float]
    user_n: dict[str, int]
    item_sum: dict[str, float]
    item_n: dict[str, int]

    @classmethod
    def fit(cls, triples: Iterable[tuple[str, str, float]]) -> RatingMeans:
        """Sums, counts and the two prior strengths from the known ratings (stars > 0)."""
        by_user: dict[str, list[float]] = {}
        by_item: dict[str, list[float]] = {}
        for user, item, stars in triples:
            if stars > 0:
                by_user.setdefault(user, []).append(float(stars))
                by_item.setdefault(item, []).append(float(stars))
        if not by_user:
            raise ValueError("no ratings to average: the data has no interaction with a star rating (> 0)")
        user_sum, user_n = {u: sum(v) for u, v in by_user.items()}, {u: len(v) for u, v in by_user.items()}
        return cls(
            global_mean=sum(user_sum.values()) / sum(user_n.values()),
            user_k=shrinkage(np.asarray(v) for v in by_user.values()),
            item_k=shrinkage(np.asarray(v) for v in by_item.values()),
            user_sum=user_sum,
            user_n=user_n,
            item_sum={i: sum(v) for i, v in by_item.items()},
            item_n={i: len(v) for i, v in by_item.items()},
        )

    def user(self, user: str, exclude: float | None = None) -> float:
        """The user's damped average; `exclude`: a rating of theirs to leave out (the asked row's)."""
        return self._damped(self.user_sum.get(user, 0.0), self.user_n.get(user, 0), self.user_k, exclude)

    def item(self, item: str, exclude: float | None = None) -> float:
        """The item's damped average; `exclude`: a rating it received to leave out (the asked row's)."""
        return self._damped(self.item_sum.get(item, 0.0), self.item_n.get(item, 0), self.item_k, exclude)

    def baseline(self, user: str, item: str, exclude: float | None = None) -> float:
        """A baseline predictor's rating (Koren's): the global mean plus the user's and the item's
        offsets, each the damped average's distance from it. Unclipped; `exclude` as for :meth:`user`.

        Alone it beats a biased matrix factorisation on sparse data (Musical Instruments test RMSE
        .887 against .904, Gift Cards .292 against .408): the rating answer is centred on it
        (`p5rec.decoding.rating.tilt`).
        """
        return self.user(user, exclude) + self.item(item, exclude) - self.global_mean

    def _damped(self, total: float, n: int, k: float, exclude: float | None) -> float:
        if exclude is not None and n > 0:
            total, n = total - exclude, n - 1
        return (total + k * self.global_mean) / (n + k)
