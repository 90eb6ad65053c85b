import pytest

from p5rec.data.synthetic import SyntheticConfig, generate


def test_same_seed_same_data_other_seed_other_data():
    sizes = {"num_users": 30, "num_items": 20, "num_categories": 2}
    a, b, c = generate(**sizes, seed=5), generate(**sizes, seed=5), generate(**sizes, seed=6)
    assert a.interactions.to_dict() == b.interactions.to_dict()
    assert a.interactions.to_dict() != c.interactions.to_dict()


def test_shape_like_a_5_core_category_with_text():
    data = generate(num_users=60, num_items=40, num_categories=4, seed=0)
    stats = data.stats()
    assert stats["users"] == 60 and stats["items"] == 40 and stats["seq_len_min"] >= 5
    assert all(v == 1.0 for v in stats["coverage"].values())  # every task has targets
    row = data.interactions[0]
    assert row["feature"] in row["explanation"] and row["explanation"] in row["review"]
    assert 1.0 <= row["rating"] <= 5.0 and row["summary"]
    assert all(len(set(s)) == len(s) for s in data.sequences().values())  # no repeated purchases


def test_transitions_are_learnable():
    """Most next items follow a fixed successor: a sequence model can beat popularity."""
    from collections import Counter

    data = generate(num_users=300, num_items=50, num_categories=5, seed=0)
    pairs = Counter((a, b) for s in data.sequences().values() for a, b in zip(s, s[1:]))
    firsts = Counter(a for a, _next in pairs.elements())
    best = {}
    for (a, _next), n in pairs.items():
        best[a] = max(best.get(a, 0), n)
    share = sum(best.values()) / sum(firsts.values())
    assert share > 0.5  # the most common successor explains most transitions


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="min_seq_len"):
        SyntheticConfig(min_seq_len=2)
    with pytest.raises(ValueError, match="p_follow"):
        SyntheticConfig(p_follow=0.9, p_taste=0.3)
