import numpy as np
import pytest

from p5rec.data.rating_means import NO_SIGNAL, RatingMeans, shrinkage


def test_shrinkage_is_weak_when_groups_differ_and_infinite_when_they_do_not():
    rng = np.random.default_rng(0)
    distinct = [np.full(20, m) + rng.normal(0, 0.1, 20) for m in (1.0, 3.0, 5.0, 2.0)]
    alike = [rng.normal(4.0, 1.0, 5) for _ in range(200)]  # one true mean: every spread is noise
    assert shrinkage(distinct) < 0.1
    assert shrinkage(alike) > 5  # many ratings before a user's own average counts
    assert shrinkage([np.array([5.0]), np.array([1.0])]) == NO_SIGNAL  # no group with two ratings


def test_averages_are_damped_toward_the_global_mean_and_leave_out_the_asked_rating():
    rows = "a x 5, a y 5, a z 5, b x 1, b y 2, b z 1, c x 3, c z 0"  # 0 stars: no rating
    triples = [(u, i, float(r)) for u, i, r in (t.split() for t in rows.split(", "))]
    m = RatingMeans.fit(triples)
    assert m.global_mean == pytest.approx(22 / 7)
    assert m.user_n == {"a": 3, "b": 3, "c": 1} and m.item_n["z"] == 2
    k = m.user_k
    assert m.user("a") == pytest.approx((15 + k * m.global_mean) / (3 + k))
    assert m.global_mean < m.user("a") < 5.0 and 1.0 < m.user("b") < m.global_mean
    assert m.user("a", exclude=5.0) == pytest.approx((10 + k * m.global_mean) / (2 + k))
    assert m.user("nobody") == pytest.approx(m.global_mean) and m.item("nothing") == pytest.approx(m.global_mean)
    assert m.item("z", exclude=1.0) == pytest.approx((5 + m.item_k * m.global_mean) / (1 + m.item_k))


def test_no_ratings_is_a_clear_error():
    with pytest.raises(ValueError, match="no ratings"):
        RatingMeans.fit([("a", "x", 0.0)])
