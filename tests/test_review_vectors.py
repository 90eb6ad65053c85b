"""Item vectors from training reviews, and a scratch model whose item embeddings start there."""

from __future__ import annotations

import numpy as np
import pytest

from p5rec.data.review_vectors import review_tfidf, review_vectors
from p5rec.data.split import Splits
from p5rec.data.tables import RecData

# Two kinds of items: strings (s*) and pedals (p*); every user buys four of one kind, then two more.
TEXT = {
    "s": "bright strings for acoustic guitar, the strings sound warm",
    "p": "a distortion pedal with true bypass, the pedal is quiet",
}


def _data(with_reviews: bool = True, test_review: str = "zebra zebra zebra") -> RecData:
    items = [{"item_id": f"{k}{n}"} for k in "sp" for n in range(6)]
    rows = []
    for u in range(12):
        kind = "sp"[u % 2]
        for t, n in enumerate((u + j) % 6 for j in range(6)):
            review = f"{TEXT[kind]} {u} {t}" if with_reviews else ""
            rows.append({"user_id": f"u{u}", "item_id": f"{kind}{n}", "timestamp": t, "review": review})
    # The last item of u0 (its test item) is a pedal reviewed with words nobody else uses.
    rows.append({"user_id": "u0", "item_id": "p5", "timestamp": 99, "review": test_review})
    return RecData.from_rows("reviews", items, rows)


def test_items_reviewed_alike_are_near_and_valid_or_test_reviews_never_count():
    data = _data()
    splits = Splits.from_data(data)
    vectors = review_vectors(data, splits, dim=2)
    assert set(vectors) == {f"{k}{n}" for k in "sp" for n in range(6)}
    assert all(np.linalg.norm(v) == pytest.approx(1.0) for v in vectors.values())
    same = float(vectors["s0"] @ vectors["s1"])
    other = float(vectors["s0"] @ vectors["p1"])
    assert same > 0.9 and other < same - 0.5
    profiles, items = review_tfidf(data, splits)  # the profiles both come from: one unit row per item
    assert sorted(items) == sorted(vectors) and np.allclose(profiles.multiply(profiles).sum(1), 1.0)
    # u0's test review of p5 is not a training review: other words there change nothing.
    other = _data(test_review="strings strings guitar")
    again = review_vectors(other, Splits.from_data(other), dim=2)
    assert all(np.allclose(vectors[i], again[i]) for i in vectors)


def test_no_review_text_or_too_few_words_give_no_vectors():
    data = _data(with_reviews=False)
    assert review_vectors(data, Splits.from_data(data), dim=2) == {}
    data = _data()
    wide = review_vectors(data, Splits.from_data(data), dim=50)  # 12 items: 11 directions at most, then 0
    assert all(len(v) == 50 and not v[11:].any() for v in wide.values())
    with pytest.raises(ValueError, match="dim"):
        review_vectors(data, Splits.from_data(data), dim=0)


def test_a_scratch_model_starts_its_reviewed_items_at_their_vectors():
    import torch
    from conftest import tiny_config

    from p5rec.pipeline import build_model, prepare

    config = tiny_config(model={"backbone": "tiny", "vocab_size": 200, "item_init": "reviews"})
    prepared = prepare(config)
    model, tokenizer = build_model(config, prepared)
    vectors = review_vectors(prepared.data, prepared.splits, model.get_input_embeddings().weight.shape[1])
    assert vectors, "the synthetic data has reviews"
    weight = model.get_input_embeddings().weight.detach()
    rows = tokenizer.convert_tokens_to_ids([prepared.items.id_of(raw) for raw in vectors])
    got = torch.nn.functional.normalize(weight[rows], dim=1).numpy()
    assert np.allclose(got, np.stack(list(vectors.values())), atol=1e-5)
    assert weight[rows].norm(dim=1).std() < 1e-5  # one norm: the random rows' mean
    random = build_model(tiny_config(), prepared)[0].get_input_embeddings().weight.detach()
    assert not torch.allclose(random[rows], weight[rows])
    with pytest.raises(ValueError, match="item_init"):
        tiny_config(model={"backbone": "tiny", "item_init": "metadata"})
