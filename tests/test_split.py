import numpy as np
import pytest

from p5rec.data.split import Splits, sample_negatives, split_reviews
from p5rec.data.synthetic import generate


def test_leave_one_out_histories_and_targets():
    data = generate(num_users=20, num_items=30, num_categories=3, seed=1)
    splits = Splits.from_data(data)
    for user, seq in splits.sequences.items():
        assert splits.history(user, "train") == seq[:-2]
        assert splits.target(user, "valid") == seq[-2] and splits.history(user, "valid") == seq[:-2]
        assert splits.target(user, "test") == seq[-1] and splits.history(user, "test") == seq[:-1]
    assert all(len(s) == len(splits.sequences[u]) - 2 for u, s in splits.train_sequences().items())
    with pytest.raises(KeyError, match="unknown user 'nobody'"):
        splits.history("nobody", "test")


def test_review_split_is_seeded_and_8_1_1():
    a, b, c = split_reviews(1000, seed=7), split_reviews(1000, seed=7), split_reviews(1000, seed=8)
    assert (a == b).all() and not (a == c).all()
    assert [(a == s).sum() for s in ("train", "valid", "test")] == [800, 100, 100]
    with pytest.raises(ValueError, match="summing to 1"):
        split_reviews(10, 0, (0.5, 0.5, 0.5))


def test_negatives_avoid_history_and_are_distinct():
    items = [f"i{k}" for k in range(50)]
    rng = np.random.default_rng(0)
    history = items[:40]
    negs = sample_negatives(history, items, 10, rng)
    assert len(set(negs)) == 10 and not set(negs) & set(history)
    with pytest.raises(ValueError, match="only 10 items"):
        sample_negatives(history, items, 11, rng)


def test_too_short_sequences_are_rejected():
    from p5rec.data.tables import RecData

    data = RecData.from_rows(
        "t", [{"item_id": "a"}, {"item_id": "b"}], [{"user_id": "u", "item_id": "a"}, {"user_id": "u", "item_id": "b"}]
    )
    with pytest.raises(ValueError, match="fewer than 3 interactions"):
        Splits.from_data(data)
