"""A deterministic, seeded dataset shaped like an Amazon 5-core category.

It exists so the whole pipeline can be trained and tested offline, and it carries structure a
recommender can learn (and a popularity baseline cannot):

* **item-to-item transitions in time**: each category is a chain of items; after buying an item a
  user most often buys its successor in the chain next (`p_follow`);
* **user tastes**: each user prefers one or two categories and draws the rest of the sequence there;
* **ratings** from item quality + user leniency + taste match + noise;
* **reviews** that name one of the item's salient features with an opinion matching the rating,
  so (feature, sentence) explanation targets and review titles are real functions of the data.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from p5rec.data.config import CATEGORIES, SyntheticConfig
from p5rec.data.tables import RecData

BRANDS = ["Acme", "Nova", "Orion", "Vega", "Atlas", "Zenith", "Echo", "Pulse", "Forte", "Lumen", "Apex", "Cobalt"]
STYLES = ["Pro", "Classic", "Studio", "Lite", "Max", "Mini", "Deluxe", "Travel"]
FEATURES = ["sound", "price", "quality", "design", "weight", "comfort", "durability", "color", "size", "grip"]
POSITIVE = ["great", "excellent", "amazing", "solid", "perfect", "fantastic"]
NEGATIVE = ["poor", "terrible", "disappointing", "flimsy", "awful", "weak"]
NEUTRAL = ["okay", "decent", "average", "fine"]
FILLERS = [
    "I bought it for my home studio.",
    "Shipping was quick.",
    "I use it every day.",
    "It arrived well packed.",
    "My band mates noticed the difference.",
    "It was a gift for my son.",
]


def generate(config: SyntheticConfig | None = None, **overrides) -> RecData:
    """Generate the built-in dataset. Same config, same data, on every machine.

    >>> data = generate(num_users=50, num_items=40, num_categories=4, seed=1)
    >>> len(data.items)
    40
    """
    cfg = config or SyntheticConfig()
    if overrides:
        cfg = SyntheticConfig(**{**asdict(cfg), **overrides})
    rng = np.random.default_rng(cfg.seed)
    n_items, n_cat = cfg.num_items, cfg.num_categories

    # Catalog: items dealt round-robin into categories, each category a shuffled chain.
    item_cat = np.arange(n_items) % n_cat
    quality = rng.normal(0.0, 0.8, n_items)  # latent item quality
    salient = np.stack([rng.choice(len(FEATURES), 2, replace=False) for _ in range(n_items)])  # (N, 2)
    # Long-tailed but not degenerate popularity (p ~ 1/rank^0.8), as in a real 5-core category.
    popularity = 1.0 / (1.0 + rng.permutation(n_items)) ** 0.8
    popularity /= popularity.sum()
    raw_ids = [f"B{rng.integers(10**8, 10**9):09d}{i:03d}"[:10] for i in range(n_items)]  # ASIN-like, unique via suffix
    raw_ids = [f"S{i:05d}{r[-4:]}" for i, r in enumerate(raw_ids)]
    successor = np.empty(n_items, dtype=int)
    cat_members = []
    for c in range(n_cat):
        members = rng.permutation(np.flatnonzero(item_cat == c))
        cat_members.append(members)
        successor[members] = np.roll(members, -1)
    items = []
    for i in range(n_items):
        cat_name, noun = CATEGORIES[item_cat[i]]
        title = f"{BRANDS[rng.integers(len(BRANDS))]} {STYLES[rng.integers(len(STYLES))]} {noun.title()} {100 + i}"
        feats = ", ".join(FEATURES[f] for f in salient[i])
        items.append(
            {
                "item_id": raw_ids[i],
                "title": title,
                "category": cat_name,
                "description": f"A {noun} known for its {feats}.",
            }
        )

    interactions = []
    t0 = 1_400_000_000
    for u in range(cfg.num_users):
        user = f"U{u:05d}"
        tastes = rng.choice(n_cat, size=1 + int(rng.random() < 0.5), replace=False)
        leniency = rng.normal(0.0, 0.5)
        length = min(n_items, cfg.min_seq_len + int(rng.poisson(cfg.mean_extra_len)))
        seen: set[int] = set()
        cur = int(rng.choice(cat_members[int(rng.choice(tastes))]))
        t = t0 + int(rng.integers(0, 3 * 10**7))
        for _ in range(length):
            seen.add(cur)
            t += int(rng.integers(3600, 30 * 86400))
            interactions.append(
                _review(rng, user, cur, raw_ids, items, item_cat, quality, salient, tastes, leniency, t)
            )
            cur = _next_item(rng, cfg, cur, successor, cat_members, tastes, popularity, seen)
    return RecData.from_rows(
        "synthetic",
        items,
        interactions,
        info={"source": "p5rec.data.synthetic", "config": asdict(cfg)},
    )


def _next_item(rng, cfg, cur, successor, cat_members, tastes, popularity, seen) -> int:
    """Follow the chain, else stay in taste, else popularity; never repeat an item."""
    r = rng.random()
    if r < cfg.p_follow and successor[cur] not in seen:
        return int(successor[cur])
    if r < cfg.p_follow + cfg.p_taste:
        pool = [i for c in tastes for i in cat_members[c] if i not in seen]
        if pool:
            return int(rng.choice(pool))
    p = popularity.copy()
    p[list(seen)] = 0.0
    if p.sum() == 0:  # every item seen (tiny catalogs): fall back to uniform over unseen
        p = np.ones_like(p)
        p[list(seen)] = 0.0
    return int(rng.choice(len(p), p=p / p.sum()))


def _review(rng, user, i, raw_ids, items, item_cat, quality, salient, tastes, leniency, t) -> dict:
    """One interaction: a rating from the latent factors and a review naming one salient feature."""
    taste_bonus = 0.6 if item_cat[i] in tastes else -0.3
    score = 3.6 + quality[i] + leniency + taste_bonus + rng.normal(0.0, 0.5)
    rating = float(np.clip(np.rint(score), 1, 5))
    feature = FEATURES[salient[i][int(rng.integers(2))]]
    noun = CATEGORIES[item_cat[i]][1]
    if rating >= 4:
        word = POSITIVE[int(rng.integers(len(POSITIVE)))]
        sentence = f"The {feature} of this {noun} is {word}."
        summary = f"{word.title()} {feature}"
    elif rating <= 2:
        word = NEGATIVE[int(rng.integers(len(NEGATIVE)))]
        sentence = f"The {feature} is {word} for the money."
        summary = f"{word.title()} {feature}, not recommended"
    else:
        word = NEUTRAL[int(rng.integers(len(NEUTRAL)))]
        sentence = f"The {feature} is {word} but nothing special."
        summary = f"{word.title()} {noun}"
    filler = FILLERS[int(rng.integers(len(FILLERS)))]
    review = f"{filler} {sentence}" if rng.random() < 0.5 else f"{sentence} {filler}"
    return {
        "user_id": user,
        "item_id": raw_ids[i],
        "rating": rating,
        "timestamp": t,
        "review": review,
        "summary": summary,
        "feature": feature,
        "explanation": sentence,
    }
