"""Item and user ID schemes: uniqueness, determinism, no leakage, persistence, errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import scipy.sparse as sp

from p5rec.data.tables import RecData
from p5rec.ids import IdConfig, ItemIndex, UserIndex, item_texts
from p5rec.ids.collaborative import cooccurrence_graph
from p5rec.ids.hierarchy import build_paths
from p5rec.ids.kmeans import kmeans

SCHEMES = ["random", "sequential", "collaborative", "semantic"]
GROUPS, PER_GROUP = 4, 12
HIER = {"num_clusters": 3, "max_leaf_size": 5}


def toy(seed: int = 0) -> tuple[list[str], dict[str, list[str]], dict[str, str]]:
    """Catalog of 4 groups x 12 items (plus 2 never bought), full sequences within one group, texts."""
    rng = np.random.default_rng(seed)
    items = [f"g{g}i{i}" for g in range(GROUPS) for i in range(PER_GROUP)] + ["cold1", "cold2"]
    sequences = {}
    for u in range(40):
        g = u % GROUPS
        picks = rng.choice(PER_GROUP, size=7, replace=False)
        sequences[f"u{u:02d}"] = [f"g{g}i{i}" for i in picks]
    topics = ["guitar string acoustic", "drum stick snare", "piano key pedal", "microphone cable stand"]
    texts = {raw: f"{topics[int(raw[1])]} model {raw}" for raw in items if raw.startswith("g")}
    return items, sequences, texts


def train_part(sequences: dict[str, list[str]]) -> dict[str, list[str]]:
    return {u: s[:-2] for u, s in sequences.items()}


def build(scheme: str, representation: str = "text", seed: int = 0, sequences=None, **options) -> ItemIndex:
    items, full, texts = toy()
    options = {**(HIER if scheme in ("collaborative", "semantic") else {}), **options}
    config = IdConfig(scheme=scheme, representation=representation, seed=seed, **options)
    return ItemIndex.build(config, items, train_part(sequences or full), item_texts=texts)


# ----------------------------------------------------------------------------- config
def test_unknown_scheme_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"`scheme` \('tiger'\) must be one of \['random', 'sequential', "):
        IdConfig(scheme="tiger")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"representation": "bytes"}, ValueError, r"`representation` \('bytes'\) must be one of"),
        ({"prefix": "item 1"}, ValueError, r"`prefix` \('item 1'\) must start with a letter"),
        ({"prefix": "<item>"}, ValueError, r"`prefix`"),
        ({"num_clusters": 1}, ValueError, r"`num_clusters` \(1\) must be >= 2"),
        ({"max_depth": 30}, ValueError, r"`max_depth` \(30\) must be <= 25"),
        ({"seed": -1}, ValueError, r"`seed` \(-1\) must be >= 0"),
        ({"window": 2.5}, TypeError, r"`window` must be an int, got float"),
    ],
)
def test_config_rejects_bad_values(kwargs, error, match):
    with pytest.raises(error, match=match):
        IdConfig(**kwargs)


def test_config_dict_round_trip_and_unknown_keys():
    config = IdConfig(scheme="semantic", num_clusters=8)
    assert IdConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match=r"unknown ID config key\(s\) \['clusters'\]"):
        IdConfig.from_dict({"scheme": "semantic", "clusters": 8})


# ------------------------------------------------------------------ every scheme
@pytest.mark.parametrize("representation", ["text", "tokens"])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_ids_are_unique_invertible_and_deterministic(scheme, representation):
    index = build(scheme, representation)
    items = toy()[0]
    ids = index.id_strings()
    assert len(ids) == len(set(ids)) == len(items)
    assert index.raw_ids() == items  # catalog order
    assert [index.id_of(raw) for raw in items] == ids
    assert [index.raw_of(s) for s in ids] == items
    assert build(scheme, representation).id_strings() == ids


@pytest.mark.parametrize("scheme", SCHEMES)
def test_text_ids_have_the_documented_shape(scheme):
    pattern = r"item_\d+" if scheme in ("random", "sequential") else r"item_\d+(_\d+)+"
    assert all(re.fullmatch(pattern, s) for s in build(scheme).id_strings())


@pytest.mark.parametrize("scheme", SCHEMES)
def test_tokens_representation_is_made_of_new_tokens(scheme):
    text_index, token_index = build(scheme, "text"), build(scheme, "tokens")
    assert text_index.new_tokens() == []
    tokens = token_index.new_tokens()
    assert len(tokens) == len(set(tokens))
    for s in token_index.id_strings():
        parts = re.findall(r"<[^<>]+>", s)
        assert "".join(parts) == s and set(parts) <= set(tokens)
    if scheme in ("random", "sequential"):
        assert tokens[:2] == ["<item_1>", "<item_2>"]
    else:
        assert tokens[0] == "<a_0>" and all(re.fullmatch(r"<[a-z]_\d+>", t) for t in tokens)
        assert len(tokens) < len(token_index)  # levels share tokens: the point of hierarchical IDs


@pytest.mark.parametrize("scheme", ["collaborative", "semantic"])
def test_hierarchical_ids_are_prefix_free_by_level(scheme):
    """A cluster is a leaf or split, never both: no full ID is a level-prefix of another."""
    index = build(scheme)
    codes = {index.code_of(raw) for raw in index.raw_ids()}
    for code in codes:
        assert not any(code[:cut] in codes for cut in range(1, len(code)))
    assert max(len(c) for c in codes) >= 3  # 50 items, leaves <= 5: at least two cluster levels


@pytest.mark.parametrize("scheme", SCHEMES)
def test_save_load_round_trip(scheme, tmp_path):
    index = build(scheme, "tokens")
    path = tmp_path / "ids" / "items.json"
    index.save(path)
    loaded = ItemIndex.load(path)
    assert loaded.config == index.config
    assert loaded.id_strings() == index.id_strings()
    assert loaded.new_tokens() == index.new_tokens()
    assert [p.name for p in path.parent.iterdir()] == ["items.json"]  # no temp file left behind
    build(scheme, "text").save(path)  # overwrite in place
    assert ItemIndex.load(path).config.representation == "text"


# ------------------------------------------------------------------------ random
def test_random_is_a_seeded_permutation():
    a, b = build("random", seed=0), build("random", seed=1)
    numbers = sorted(a.code_of(raw)[0] for raw in a.raw_ids())
    assert numbers == list(range(1, len(a) + 1))
    assert a.id_strings() != b.id_strings()


# ------------------------------------------------------------------- no leakage
@pytest.mark.parametrize("scheme", ["sequential", "collaborative"])
def test_held_out_items_do_not_change_ids(scheme):
    """Replacing every user's valid and test items must not change a single ID."""
    items, full, _ = toy()
    rng = np.random.default_rng(5)
    swapped = {u: s[:-2] + [items[i] for i in rng.integers(len(items), size=2)] for u, s in full.items()}
    assert build(scheme, sequences=swapped).id_strings() == build(scheme).id_strings()


def test_sequential_numbers_by_first_training_appearance():
    config = IdConfig("sequential", representation="text")
    index = ItemIndex.build(config, ["a", "b", "c", "d", "e"], {"u1": ["c", "a", "c"], "u2": ["e", "a"]})
    # c, a, e seen in training; b and d never: they follow in catalog order
    assert [index.id_of(x) for x in "abcde"] == ["item_2", "item_4", "item_1", "item_5", "item_3"]


def test_sequential_item_only_held_out_is_numbered_as_unseen():
    items, full, _ = toy()
    full = {u: [*s[:-1], "cold1"] for u, s in full.items()}  # cold1 is every user's test item
    index = build("sequential", sequences=full)
    seen = {raw for s in train_part(full).values() for raw in s}
    assert index.code_of("cold1")[0] > max(index.code_of(raw)[0] for raw in seen)


# --------------------------------------------------------------- collaborative
def same_top_rate(index: ItemIndex, items: list[str]) -> tuple[float, float]:
    """Share of same-group and of cross-group pairs whose IDs share the first level."""
    same, cross = [], []
    for i, a in enumerate(items):
        for b in items[i + 1 :]:
            shared = index.code_of(a)[0] == index.code_of(b)[0]
            (same if a[:2] == b[:2] else cross).append(shared)
    return float(np.mean(same)), float(np.mean(cross))


def test_collaborative_ids_follow_co_occurrence():
    index = build("collaborative", num_clusters=4, max_leaf_size=8)
    within, across = same_top_rate(index, [x for x in index.raw_ids() if x.startswith("g")])
    assert within > 0.9 and across < 0.1


def test_collaborative_cold_items_get_unique_ids():
    index = build("collaborative")
    assert index.id_of("cold1") != index.id_of("cold2")


def test_cooccurrence_graph_is_sparse_and_bounded():
    items, full, _ = toy()
    graph = cooccurrence_graph(items, full, window=2)
    assert sp.issparse(graph)
    assert graph.nnz <= 2 * 2 * sum(len(s) for s in full.values())
    assert (graph != graph.T).nnz == 0 and graph.diagonal().sum() == 0
    with pytest.raises(KeyError, match=r"`train_sequences\['u'\]` holds item 'zzz'"):
        cooccurrence_graph(items, {"u": ["zzz"]}, window=2)


# -------------------------------------------------------------------- semantic
def test_semantic_ids_follow_text():
    index = build("semantic", num_clusters=4, max_leaf_size=8)
    within, across = same_top_rate(index, [x for x in index.raw_ids() if x.startswith("g")])
    assert within > 0.9 and across < 0.1


def test_semantic_identical_embeddings_still_unique():
    items = [f"x{i}" for i in range(30)]
    config = IdConfig("semantic", num_clusters=2, max_leaf_size=4)
    index = ItemIndex.build(config, items, {}, embeddings=np.ones((30, 3)))
    assert len(set(index.id_strings())) == 30


def test_semantic_uses_given_embeddings():
    items = [f"x{i}" for i in range(20)]
    emb = np.array([[1.0, 0.0]] * 10 + [[0.0, 1.0]] * 10) + np.random.default_rng(0).normal(0, 0.01, (20, 2))
    index = ItemIndex.build(IdConfig("semantic", num_clusters=2, max_leaf_size=10), items, {}, embeddings=emb)
    tops = [index.code_of(x)[0] for x in items]
    assert len(set(tops[:10])) == 1 and len(set(tops[10:])) == 1 and tops[0] != tops[10]


@pytest.mark.parametrize(
    ("embeddings", "match"),
    [
        (None, r"semantic scheme needs `item_texts`"),
        (np.zeros((3, 2)), r"`embeddings` must have shape \(len\(item_ids\), d\) = \(4, d\), got \(3, 2\)"),
        (np.full((4, 2), np.nan), r"`embeddings` must be finite"),
    ],
)
def test_semantic_input_errors(embeddings, match):
    with pytest.raises(ValueError, match=match):
        ItemIndex.build(IdConfig("semantic"), ["a", "b", "c", "d"], {}, embeddings=embeddings)


def test_from_data_uses_catalog_and_texts():
    data = RecData.from_rows(
        "tiny",
        [{"item_id": "a", "title": "red guitar", "category": "strings"}, {"item_id": "b", "title": "drum"}],
        [{"user_id": "u", "item_id": "b", "timestamp": 1}, {"user_id": "u", "item_id": "a", "timestamp": 2}],
    )
    assert item_texts(data) == {"a": "red guitar strings", "b": "drum"}
    index = ItemIndex.from_data(IdConfig("semantic"), data, {"u": []})
    assert index.raw_ids() == ["a", "b"] and len(set(index.id_strings())) == 2
    assert ItemIndex.from_data(None, data, {"u": ["b"]}).id_of("b") == "<item_1>"  # default: token IDs


# ---------------------------------------------------------------------- errors
def test_lookup_errors_name_the_value():
    index = build("sequential")
    with pytest.raises(KeyError, match=r"unknown item 'nope'"):
        index.id_of("nope")
    with pytest.raises(KeyError, match=r"unknown item ID string 'item_999'"):
        index.raw_of("item_999")


@pytest.mark.parametrize(
    ("item_ids", "sequences", "error", "match"),
    [
        (["a", "a"], {}, ValueError, r"`item_ids` holds 'a' more than once"),
        ([], {}, ValueError, r"`item_ids` is empty"),
        (["a", 3], {}, TypeError, r"`item_ids` must hold strings, got int"),
        (["a"], {"u1": ["a", "b"]}, KeyError, r"`train_sequences\['u1'\]` holds item 'b'"),
        (["a"], {"u1": "a"}, TypeError, r"`train_sequences\['u1'\]` must be a list"),
    ],
)
def test_build_input_errors(item_ids, sequences, error, match):
    with pytest.raises(error, match=match):
        ItemIndex.build(IdConfig(), item_ids, sequences)


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.json: no item index file"):
        ItemIndex.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"bad\.json: not a valid item index file"):
        ItemIndex.load(bad)
    users = tmp_path / "users.json"
    UserIndex.build(["u1"]).save(users)
    with pytest.raises(ValueError, match=r"users\.json: expected a item index, found kind 'user'"):
        ItemIndex.load(users)
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({**build("random").to_dict(), "format_version": 99}))
    with pytest.raises(ValueError, match=r"newer\.json: index format 99 is newer"):
        ItemIndex.load(newer)
    dup = tmp_path / "dup.json"
    dup.write_text(json.dumps({**build("random").to_dict(), "codes": [[1]] * len(toy()[0])}))
    with pytest.raises(ValueError, match=r"dup\.json: duplicate item ID string 'item_1'"):
        ItemIndex.load(dup)


# ----------------------------------------------------------------------- users
def test_user_index_sequential_random_and_tokens(tmp_path):
    seq = UserIndex.build(["bob", "ann", "bob", "cy"])
    assert seq.id_strings() == ["user_1", "user_2", "user_3"] and seq.raw_of("user_2") == "ann"
    rnd = UserIndex.build([f"u{i}" for i in range(50)], scheme="random", seed=3)
    assert sorted(int(s.split("_")[1]) for s in rnd.id_strings()) == list(range(1, 51))
    assert rnd.id_strings() == UserIndex.build([f"u{i}" for i in range(50)], scheme="random", seed=3).id_strings()
    assert rnd.id_strings() != UserIndex.build([f"u{i}" for i in range(50)], scheme="random", seed=4).id_strings()
    tok = UserIndex.build(["bob", "ann"], representation="tokens")
    assert tok.id_strings() == ["<user_1>", "<user_2>"] and tok.new_tokens() == ["<user_1>", "<user_2>"]
    tok.save(tmp_path / "users.json")
    assert UserIndex.load(tmp_path / "users.json").id_strings() == tok.id_strings()


def test_user_index_rejects_hierarchical_schemes():
    with pytest.raises(ValueError, match=r"`scheme` \('collaborative'\) for users must be one of"):
        UserIndex.build(["a"], scheme="collaborative")
    with pytest.raises(TypeError, match=r"`user_ids` must be an iterable"):
        UserIndex.build("ann")


# ------------------------------------------------------------------- building blocks
def test_kmeans_separates_blobs_deterministically():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, (20, 2)), rng.normal(5, 0.1, (20, 2))])
    labels = kmeans(x, 2, seed=1)
    assert labels.tolist() == [0] * 20 + [1] * 20  # numbered by first member
    assert kmeans(np.ones((5, 2)), 3).tolist() == [0] * 5  # identical points: one cluster


def test_build_paths_falls_back_to_chunks_and_respects_leaf_size():
    paths = build_paths(50, lambda members, path: None, num_clusters=3, max_leaf_size=4, max_depth=6)
    assert len(set(paths)) == 50 and max(p[-1] for p in paths) < 4
    deep = build_paths(50, lambda members, path: None, num_clusters=2, max_leaf_size=1, max_depth=2)
    assert len(set(deep)) == 50 and {len(p) for p in deep} == {3}  # depth cap: larger leaves


def test_the_index_owns_positions_and_the_one_unknown_item_error():
    index = build("sequential")
    raws = index.raw_ids()
    assert [index.position(r) for r in raws] == list(range(len(raws)))
    assert index.positions(raws[::-1], "history") == list(range(len(raws)))[::-1]
    assert [index.raw_at(i) for i in range(len(raws))] == raws
    assert [index.id_at(i) for i in range(len(raws))] == index.id_strings()
    with pytest.raises(KeyError, match=r"^\"unknown item 'nope' in `history` \(not in the catalog of \d+ items\)\"$"):
        index.positions([raws[0], "nope"], "history")
    with pytest.raises(KeyError, match=r"unknown items \['x', 'y'\] in `candidates`"):
        index.check(["x", raws[0], "y", "x"], "candidates")
    with pytest.raises(TypeError, match=r"`history` must be a list of item IDs, got 'a'"):
        index.check("a", "history")
    with pytest.raises(TypeError, match=r"`history` must hold item IDs as strings, got 3 \(int\)"):
        index.check([3], "history")
    users = UserIndex.build(["ann", "bob"])
    with pytest.raises(KeyError, match=r"unknown user 'eve' in `user` \(not among the 2 users .* `history`"):
        users.id_of("eve", "user")


def test_token_sequences_are_the_id_strings_as_the_tokenizer_spells_them():
    class Chars:  # a stand-in tokenizer: one token per character
        def __call__(self, texts, add_special_tokens=True):
            assert add_special_tokens is False  # the trie and the targets carry no special tokens
            return {"input_ids": [[ord(c) for c in t] for t in texts]}

    index = build("sequential")
    assert index.token_sequences(Chars()) == [[ord(c) for c in s] for s in index.id_strings()]


def test_indexes_compare_by_content(tmp_path):
    index = build("sequential")
    index.save(tmp_path / "items.json")
    assert ItemIndex.load(tmp_path / "items.json") == index
    assert build("random") != index and index != UserIndex.build(index.raw_ids())
