"""Leak-free splits, as in P5.

* Sequences: leave-one-out per user. With a time-ordered sequence ``s``: train on ``s[:-2]``,
  validate on ``s[-2]`` (history ``s[:-2]``), test on ``s[-1]`` (history ``s[:-1]``).
* Reviews (rating, explanation and review tasks): a seeded 8:1:1 split of interaction rows.
* Direct recommendation: seeded negatives per user, never from that user's history.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from p5rec.data.tables import RecData

SPLITS = ("train", "valid", "test")


@dataclass
class Splits:
    """Everything a task needs to know about which data it may see.

    Args:
        sequences: each user's full, time-ordered item sequence (raw item IDs).
        review_split: one of "train"/"valid"/"test" per interaction row, aligned with the table.
        seed: the seed the review split and negatives were drawn with.
    """

    sequences: dict[str, list[str]]
    review_split: np.ndarray
    seed: int

    @classmethod
    def from_data(cls, data: RecData, seed: int = 2022, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> Splits:
        sequences = data.sequences()
        short = [u for u, s in sequences.items() if len(s) < 3]
        if short:
            raise ValueError(
                f"{data.name}: {len(short)} user(s) have fewer than 3 interactions (e.g. {short[0]!r}); "
                "leave-one-out needs train, valid and test items: apply a k-core filter (k >= 3) first"
            )
        return cls(sequences, split_reviews(len(data.interactions), seed, ratios), seed)

    def history(self, user: str, split: str) -> list[str]:
        """The items a model may see for `user` when predicting the `split` target."""
        seq = self._seq(user)
        if split == "train":
            return seq[:-2]
        if split == "valid":
            return seq[:-2]
        if split == "test":
            return seq[:-1]
        raise ValueError(f"`split` must be one of {SPLITS}, got {split!r}")

    def target(self, user: str, split: str) -> str:
        """The held-out item for `split` ("valid": second-last, "test": last)."""
        seq = self._seq(user)
        if split == "valid":
            return seq[-2]
        if split == "test":
            return seq[-1]
        raise ValueError(f"`split` must be 'valid' or 'test' for a held-out target, got {split!r}")

    def train_sequences(self) -> dict[str, list[str]]:
        """Sequences with valid and test items removed: what ID schemes and baselines may be built on."""
        return {u: s[:-2] for u, s in self.sequences.items()}

    def review_rows(self, split: str) -> np.ndarray:
        if split not in SPLITS:
            raise ValueError(f"`split` must be one of {SPLITS}, got {split!r}")
        return np.flatnonzero(self.review_split == split)

    def _seq(self, user: str) -> list[str]:
        try:
            return self.sequences[user]
        except KeyError:
            raise KeyError(f"unknown user {user!r}: not in this dataset") from None


def split_reviews(n: int, seed: int, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> np.ndarray:
    """Assign each of `n` rows to train/valid/test by a seeded permutation (exact proportions)."""
    if len(ratios) != 3 or any(r < 0 for r in ratios) or abs(sum(ratios) - 1.0) > 1e-6:
        raise ValueError(f"`ratios` must be three non-negative numbers summing to 1, got {ratios}")
    order = np.random.default_rng(seed).permutation(n)
    n_train, n_valid = int(round(ratios[0] * n)), int(round(ratios[1] * n))
    labels = np.empty(n, dtype=object)
    labels[order[:n_train]] = "train"
    labels[order[n_train : n_train + n_valid]] = "valid"
    labels[order[n_train + n_valid :]] = "test"
    return labels.astype(str)


def sample_negatives(
    history: list[str], items: list[str], n: int, rng: np.random.Generator, exclude: set[str] | None = None
) -> list[str]:
    """Draw `n` distinct items the user never interacted with (and not in `exclude`)."""
    banned = set(history) | (exclude or set())
    # A lower bound on the items left to draw (banned IDs outside the catalog count as inside): the exact
    # count built a catalog-sized set per call, 48 s per epoch of direct examples on a 12k-item catalog.
    pool_size = len(items) - len(banned)
    if n > pool_size:
        raise ValueError(f"cannot draw {n} negatives: only {pool_size} items are outside the user's history")
    out: list[str] = []
    chosen: set[str] = set()
    # Rejection sampling is fast when the history is small next to the catalog (the usual case).
    while len(out) < n:
        for j in rng.integers(0, len(items), size=2 * (n - len(out)) + 4):
            it = items[j]
            if it not in banned and it not in chosen:
                out.append(it)
                chosen.add(it)
                if len(out) == n:
                    break
    return out
