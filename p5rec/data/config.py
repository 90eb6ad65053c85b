"""Settings of the built-in synthetic dataset: :class:`SyntheticConfig`, importable without datasets."""

from __future__ import annotations

from dataclasses import dataclass

# (category name, the noun its items are called by) of the generated catalog.
CATEGORIES = [
    ("Guitar Strings", "strings"),
    ("Drum Sticks", "sticks"),
    ("Headphones", "headphones"),
    ("Microphones", "microphone"),
    ("Keyboard Stands", "stand"),
    ("Amplifiers", "amp"),
    ("Capos", "capo"),
    ("Tuners", "tuner"),
    ("Cables", "cable"),
    ("Effect Pedals", "pedal"),
    ("Straps", "strap"),
    ("Picks", "picks"),
]


@dataclass
class SyntheticConfig:
    """Sizes and strengths of the generated structure.

    Args:
        num_users: users (default 1000).
        num_items: items (default 300), spread over up to 12 categories.
        num_categories: categories (default 10); items per category = num_items / num_categories.
        min_seq_len / mean_extra_len: each sequence has min_seq_len + Poisson(mean_extra_len) items
            (min 5 keeps it 5-core like the Amazon files).
        p_follow: probability the next item is the chain successor of the previous one.
        p_taste: probability it is another item of the user's preferred categories (else popularity).
        seed: everything is drawn from one `numpy.random.Generator` seeded here.
    """

    num_users: int = 1000
    num_items: int = 300
    num_categories: int = 10
    min_seq_len: int = 5
    mean_extra_len: float = 4.0
    p_follow: float = 0.7
    p_taste: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.num_users < 1 or self.num_items < 2:
            raise ValueError(f"`num_users` ({self.num_users}) must be >= 1 and `num_items` ({self.num_items}) >= 2")
        if not 1 <= self.num_categories <= len(CATEGORIES):
            raise ValueError(f"`num_categories` ({self.num_categories}) must be between 1 and {len(CATEGORIES)}")
        if self.num_items < self.num_categories:
            raise ValueError(f"`num_items` ({self.num_items}) must be >= `num_categories` ({self.num_categories})")
        if self.min_seq_len < 3:
            raise ValueError(
                f"`min_seq_len` ({self.min_seq_len}) must be >= 3 (leave-one-out needs train, valid, test)"
            )
        if self.min_seq_len > self.num_items:
            raise ValueError(f"`min_seq_len` ({self.min_seq_len}) must be <= `num_items` ({self.num_items})")
        if not (0 <= self.p_follow <= 1 and 0 <= self.p_taste <= 1 and self.p_follow + self.p_taste <= 1):
            raise ValueError(
                f"`p_follow` ({self.p_follow}) and `p_taste` ({self.p_taste}) must be in [0, 1] with a sum <= 1"
            )
