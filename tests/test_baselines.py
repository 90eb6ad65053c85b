"""Baselines on tiny hand-made data: exact answers where the model is simple, learnability otherwise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from p5rec.evaluation.baselines import (
    BPRMF,
    BiasedMF,
    BiasedMFConfig,
    BPRConfig,
    ItemKNN,
    MostPop,
    Ranker,
    SASRec,
    SASRecConfig,
    lead_sentence,
)
from p5rec.evaluation.metrics import hit_rate_at_k, ndcg_at_k

CATALOG = ["a", "b", "c", "d", "e"]
TRAIN = {"u1": ["a", "b", "c"], "u2": ["b", "c"], "u3": ["c"], "u4": []}  # counts: c 3, b 2, a 1


# ----------------------------------------------------------------------------------------- MostPop


def test_mostpop_ranks_by_training_count_then_catalog_order():
    model = MostPop().fit(TRAIN, CATALOG)
    assert model.popularity == {"a": 1, "b": 2, "c": 3, "d": 0, "e": 0}
    # d and e tie at 0: catalog order puts d first.
    assert model.recommend([[]], k=5) == [["c", "b", "a", "d", "e"]]


def test_mostpop_excludes_history_only_when_asked():
    model = MostPop().fit(TRAIN, CATALOG)
    assert model.recommend([["c", "a"], ["b"]], k=2) == [["b", "d"], ["c", "a"]]
    assert model.recommend([["c", "a"]], k=2, exclude_seen=False) == [["c", "b"]]


def test_ranking_returns_fewer_items_when_the_catalog_runs_out():
    model = MostPop().fit(TRAIN, CATALOG)
    assert model.recommend([["a", "b", "c", "d"]], k=3) == [["e"]]


@pytest.mark.parametrize(
    "model",
    [
        MostPop(),
        ItemKNN(),
        BPRMF(BPRConfig(factors=4, epochs=1, patience=None)),
        SASRec(SASRecConfig(hidden_size=8, num_blocks=1, epochs=1, patience=None)),
    ],
)
def test_every_ranker_follows_the_common_interface_and_validates_inputs(model):
    assert isinstance(model, Ranker)
    with pytest.raises(ValueError, match="is not fitted: call fit"):
        model.recommend([["a"]], k=1)
    with pytest.raises(ValueError, match=r"`train_sequences`\['u1'\] contains item 'zz', which is not in `items`"):
        model.fit({"u1": ["a", "zz"]}, CATALOG)
    with pytest.raises(ValueError, match=r"`items` lists 'a' twice \(positions 0 and 2\)"):
        model.fit(TRAIN, ["a", "b", "a"])
    model.fit(TRAIN, CATALOG)
    with pytest.raises(ValueError, match=r"`histories`\[1\] contains item 'zz', which is not in the catalog"):
        model.recommend([["a"], ["zz"]], k=1)
    with pytest.raises(ValueError, match=r"`k` \(0\) must be a positive integer"):
        model.recommend([["a"]], k=0)
    with pytest.raises(TypeError, match=r"`histories`\[0\] is a string"):
        model.recommend(["abc"], k=1)
    out = model.recommend([["a"], []], k=3)
    assert [len(r) for r in out] == [3, 3] and "a" not in out[0]
    with pytest.raises(ValueError, match=r"`users` must hold one user ID per history \(2\)"):
        model.recommend([["a"], []], k=3, users=["u1"])


# ----------------------------------------------------------------------------------------- ItemKNN

# Columns: a bought by u1,u2,u3; b by u1,u2; c by u3; p by four users alone (most popular).
# cos(a, b) = 2 / (sqrt(3) sqrt(2)) = 0.816; cos(a, c) = 1 / sqrt(3) = 0.577; cos(b, c) = 0.
KNN_TRAIN = {"u1": ["a", "b"], "u2": ["a", "b"], "u3": ["a", "c"], **{f"v{i}": ["p"] for i in range(4)}}
KNN_ITEMS = ["a", "b", "c", "p"]


def test_itemknn_recommends_the_co_occurring_item():
    model = ItemKNN().fit(KNN_TRAIN, KNN_ITEMS)
    # History [a]: b (0.816) > c (0.577) > p (0), although p is the most popular item.
    assert model.recommend([["a"]], k=3) == [["b", "c", "p"]]
    assert model.recommend([["b"]], k=1) == [["a"]]


def test_itemknn_neighbors_prunes_each_candidates_neighbour_list():
    # With 2 neighbours, candidate a keeps b and c, so history [c] scores a = 0.577.
    assert ItemKNN(neighbors=2).fit(KNN_TRAIN, KNN_ITEMS).recommend([["c"]], k=3) == [["a", "p", "b"]]
    # With 1, a keeps only b: every score is 0 and popularity decides (p 4, a 3, b 2).
    assert ItemKNN(neighbors=1).fit(KNN_TRAIN, KNN_ITEMS).recommend([["c"]], k=3) == [["p", "a", "b"]]


def test_itemknn_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"`neighbors` \(0\) must be a positive integer"):
        ItemKNN(neighbors=0)
    with pytest.raises(ValueError, match=r"`shrink` \(-1.0\) must be >= 0"):
        ItemKNN(shrink=-1.0)


# ------------------------------------------------------------------------------------------ SASRec

N_CYCLE = 8
CYCLE_ITEMS = [f"i{j}" for j in range(N_CYCLE)]


def _cyclic_data(n_users: int = 48, length: int = 7) -> dict[str, list[str]]:
    """User u walks the cycle i0 -> i1 -> ... -> i7 -> i0 from start u mod 8."""
    return {f"u{u}": [CYCLE_ITEMS[(u + t) % N_CYCLE] for t in range(length)] for u in range(n_users)}


def _small_sasrec(**overrides) -> SASRec:
    cfg = dict(hidden_size=16, num_blocks=1, num_heads=1, dropout=0.0, max_len=8, epochs=20, batch_size=24)
    cfg.update(lr=1e-2, patience=None, seed=0)
    cfg.update(overrides)
    return SASRec(SASRecConfig(**cfg))


def test_sasrec_learns_a_cyclic_next_item_pattern():
    model = _small_sasrec().fit(_cyclic_data(), CYCLE_ITEMS)
    # Histories ending at every item, of various lengths; the answer is always the next item.
    histories = [[CYCLE_ITEMS[(s + t) % N_CYCLE] for t in range(n)] for s in range(N_CYCLE) for n in (2, 4, 6)]
    targets = [CYCLE_ITEMS[(s + n) % N_CYCLE] for s in range(N_CYCLE) for n in (2, 4, 6)]
    ranked = model.recommend(histories, k=1, exclude_seen=False)
    assert hit_rate_at_k(ranked, targets, 1) >= 0.9
    assert model.history[-1]["loss"] < model.history[0]["loss"]


def test_sasrec_is_seeded_and_leaves_global_rng_alone():
    data = _cyclic_data(16, 5)
    state = torch.get_rng_state()
    first = _small_sasrec(epochs=2, dropout=0.2).fit(data, CYCLE_ITEMS)
    assert torch.equal(torch.get_rng_state(), state)
    second = _small_sasrec(epochs=2, dropout=0.2).fit(data, CYCLE_ITEMS)
    other = _small_sasrec(epochs=2, dropout=0.2, seed=1).fit(data, CYCLE_ITEMS)
    assert [h["loss"] for h in first.history] == [h["loss"] for h in second.history]
    assert [h["loss"] for h in first.history] != [h["loss"] for h in other.history]


def test_sasrec_early_stopping_keeps_the_best_validation_weights():
    data = _cyclic_data(16, 6)
    valid = ([s[:-1] for s in data.values()], [s[-1] for s in data.values()])
    train = {u: s[:-1] for u, s in data.items()}
    model = _small_sasrec(epochs=30, patience=2).fit(train, CYCLE_ITEMS, valid=valid)
    scores = [h["valid_ndcg@10"] for h in model.history]
    # Validation NDCG saturates within a few epochs, so training stops long before 30 ...
    assert len(scores) < 30
    # ... exactly `patience` evaluations after the best one,
    assert max(scores[-2:]) <= max(scores[:-2])
    # and the weights kept are those of the best evaluation.
    assert ndcg_at_k(model.recommend(valid[0], k=10), valid[1], 10) == pytest.approx(max(scores))


def test_sasrec_config_and_fit_errors():
    with pytest.raises(ValueError, match=r"`hidden_size` \(10\) must be divisible by `num_heads` \(3\)"):
        SASRecConfig(hidden_size=10, num_heads=3)
    with pytest.raises(ValueError, match=r"`dropout` \(1.0\) must be in \[0, 1\)"):
        SASRecConfig(dropout=1.0)
    with pytest.raises(ValueError, match=r"`device` \('tpu'\) must be 'auto', 'cpu' or 'cuda"):
        SASRecConfig(device="tpu")
    assert SASRecConfig(device="cpu").resolved_device().type == "cpu"
    with pytest.raises(ValueError, match="no user with 2 or more items"):
        _small_sasrec().fit({"u": ["i0"]}, CYCLE_ITEMS)
    with pytest.raises(ValueError, match="`valid` targets include 'zz'"):
        _small_sasrec().fit(_cyclic_data(4), CYCLE_ITEMS, valid=([["i0"]], ["zz"]))


# ---------------------------------------------------------------------------------------- BiasedMF


def _bias_ratings(seed: int = 0):
    """Ratings = 3 + user bias + item bias + small noise, over most (user, item) pairs."""
    rng = np.random.default_rng(seed)
    user_bias, item_bias = rng.normal(0, 0.8, 30), rng.normal(0, 0.8, 20)
    pairs = [(u, i) for u in range(30) for i in range(20) if rng.random() < 0.8]
    pairs = [pairs[j] for j in rng.permutation(len(pairs))]  # so a prefix/suffix split is random
    ratings = [3 + user_bias[u] + item_bias[i] + rng.normal(0, 0.1) for u, i in pairs]
    users, items = [f"u{u}" for u, _ in pairs], [f"i{i}" for _, i in pairs]
    return users, items, ratings


@pytest.mark.parametrize("optimizer, lr", [("adam", 0.05), ("sgd", 0.5)])
def test_biased_mf_beats_the_global_mean(optimizer, lr):
    users, items, ratings = _bias_ratings()
    n = int(0.8 * len(ratings))
    cfg = BiasedMFConfig(factors=4, epochs=30, batch_size=128, lr=lr, reg=0.01, optimizer=optimizer, clip=False)
    model = BiasedMF(cfg).fit(users[:n], items[:n], ratings[:n])
    truth = np.array(ratings[n:])
    mf_rmse = np.sqrt(np.mean((model.predict(users[n:], items[n:]) - truth) ** 2))
    mean_rmse = np.sqrt(np.mean((np.mean(ratings[:n]) - truth) ** 2))
    assert mf_rmse < 0.25 * mean_rmse  # about 0.15 vs 0.98 with this seed


def test_biased_mf_unknown_ids_fall_back_to_biases_and_predictions_are_clipped():
    # Item a: ratings 5 and 3 -> mean 4 over all; item b gets 5 from u: b's bias is positive.
    model = BiasedMF(BiasedMFConfig(epochs=40, lr=0.05, reg=0.0)).fit(["u", "v", "u"], ["a", "a", "b"], [5, 3, 5])
    mean = 13 / 3
    assert model.global_mean == pytest.approx(mean)
    assert model.predict(["new"], ["other"])[0] == pytest.approx(mean)
    new_user_b, new_user_a = model.predict(["new", "new"], ["b", "a"])
    assert new_user_b > mean > new_user_a  # mu + b_i only
    assert np.all((model.predict(["u", "v"], ["b", "a"]) >= 3) & (model.predict(["u", "v"], ["b", "a"]) <= 5))


def test_biased_mf_early_stopping_records_validation_rmse():
    users, items, ratings = _bias_ratings(1)
    valid = (users[:50], items[:50], ratings[:50])
    model = BiasedMF(BiasedMFConfig(epochs=10, lr=0.05, batch_size=256, patience=1)).fit(
        users[50:], items[50:], ratings[50:], valid=valid
    )
    best = min(h["valid_rmse"] for h in model.history)
    pred = model.predict(valid[0], valid[1])
    assert np.sqrt(np.mean((pred - np.array(valid[2])) ** 2)) == pytest.approx(best)


def test_biased_mf_errors():
    with pytest.raises(ValueError, match=r"`optimizer` \('rmsprop'\) must be one of \('adam', 'sgd'\)"):
        BiasedMFConfig(optimizer="rmsprop")
    with pytest.raises(ValueError, match="must be aligned, got lengths 2, 1 and 1"):
        BiasedMF().fit(["u", "v"], ["a"], [1.0])
    with pytest.raises(ValueError, match=r"`ratings`\[1\] is nan"):
        BiasedMF().fit(["u", "v"], ["a", "b"], [1.0, float("nan")])
    with pytest.raises(ValueError, match="not fitted"):
        BiasedMF().predict(["u"], ["a"])


# ------------------------------------------------------------------------------------------- text


@pytest.mark.parametrize(
    "review, max_words, expected",
    [
        ("Great strings! They stay in tune.", 10, "Great strings!"),
        ("Works with 9.5 volt supplies. Recommended.", 10, "Works with 9.5 volt supplies."),
        ('He said "wow." Then left.', 10, 'He said "wow."'),
        ("no punctuation at all here", 3, "no punctuation at"),
        ("  Spaced\n\tout   text.  Next", 10, "Spaced out text."),
        ("", 5, ""),
    ],
)
def test_lead_sentence(review, max_words, expected):
    assert lead_sentence(review, max_words) == expected


def test_lead_sentence_errors():
    with pytest.raises(ValueError, match=r"`max_words` \(0\) must be a positive integer"):
        lead_sentence("text", 0)
    with pytest.raises(TypeError, match="`review` must be a str, got NoneType"):
        lead_sentence(None)


def test_score_pairs_reads_the_same_scores_recommend_ranks_by():
    seqs = {"u1": ["a", "b", "c"], "u2": ["a", "b", "d"], "u3": ["b", "c"]}
    knn = ItemKNN().fit(seqs, ["a", "b", "c", "d", "e"])
    top = knn.recommend([["b"]], k=1, exclude_seen=True)[0][0]
    scores = knn.score_pairs([["b"]] * 5, ["a", "b", "c", "d", "e"])
    assert max(s for i, s in zip("abcde", scores) if i != "b") == scores["abcde".index(top)]
    with pytest.raises(ValueError, match="one item per history"):
        knn.score_pairs([["b"]], ["a", "c"])
    with pytest.raises(ValueError, match="'zz', which is not in the catalog"):
        knn.score_pairs([["b"]], ["zz"])
    with pytest.raises(ValueError, match=r"`users` must hold one user ID per history \(2\)"):
        knn.score_pairs([["b"], ["c"]], ["a", "d"], users=["u1"])


def test_retrieval_explainer_copies_the_items_explanation_then_the_features():
    from p5rec.evaluation.baselines import RetrievalExplainer

    r = RetrievalExplainer().fit(
        ["a", "a", "a", "b", "c"],
        ["tone", "tone", "tone", "tone", "price"],
        ["warm tone", "clear tone", "warm tone", "bright tone", ""],
    )
    assert r.explain("a", "tone") == "warm tone"  # the item's own most frequent one
    assert r.explain("b", "tone") == "bright tone"
    assert r.explain("z", "tone") == "warm tone"  # the feature's most frequent one
    assert r.explain("c", "price") == "warm tone"  # no explanation for the feature: the most frequent overall
    # One row's own text left out (a training prompt must not show its own answer):
    assert r.explain("a", "tone", leave_out="warm tone") == "clear tone"  # 1 "warm" left ties 1 "clear": the other
    assert r.explain("a", "tone", leave_out="clear tone") == "warm tone"
    assert r.explain("b", "tone", leave_out="bright tone") == "warm tone"  # b's only one: the feature's
    alone = RetrievalExplainer().fit(["a"], ["tone"], ["only one"])
    assert alone.explain("a", "tone", leave_out="only one") == ""  # nothing else to show
    with pytest.raises(ValueError, match="must be aligned"):
        RetrievalExplainer().fit(["a"], [], ["x"])
    with pytest.raises(ValueError, match="nothing to copy"):
        RetrievalExplainer().fit(["a"], ["tone"], [""])


def test_bpr_ranks_the_users_own_taste_first_and_folds_in_new_users():
    # two tastes: u1-u4 buy from {a, b, c}, v1-v4 from {x, y, z}
    train = {f"u{i}": ["a", "b", "c"][: 1 + i % 3] for i in range(1, 5)} | {f"v{i}": ["x", "y"] for i in range(1, 5)}
    train["u4"], train["v4"] = ["a", "c"], ["x", "z"]
    items = ["a", "b", "c", "x", "y", "z"]
    model = BPRMF(BPRConfig(factors=8, epochs=200, batch_size=4, lr=0.05, patience=None)).fit(train, items)
    assert set(model.recommend([["a"]], k=2, users=["u1"])[0]) == {"b", "c"}
    assert set(model.recommend([["x"]], k=2, users=["v1"])[0]) == {"y", "z"}
    assert set(model.recommend([["y"]], k=2)[0]) <= {"x", "z", "a", "b", "c"}  # no user: folded in
    assert model.recommend([["y"]], k=1)[0][0] in {"x", "z"}
    with pytest.raises(ValueError, match=r"`factors` \(0\) must be a positive integer"):
        BPRConfig(factors=0)


@pytest.mark.parametrize("config", [BPRConfig, BiasedMFConfig, SASRecConfig])
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": 0}, r"`epochs` \(0\) must be a positive integer$"),
        ({"batch_size": True}, r"`batch_size` \(True\) must be a positive integer$"),
        ({"patience": 0}, r"`patience` \(0\) must be a positive integer or None"),
        ({"patience": 2.5}, r"`patience` \(2.5\) must be a positive integer or None"),
        ({"num_threads": 0}, r"`num_threads` \(0\) must be a positive integer or None"),
    ],
)
def test_baseline_configs_name_a_bad_count(config, kwargs, match):
    with pytest.raises(ValueError, match=match):
        config(**kwargs)
    assert config(patience=None).patience is None  # None: no early stopping
