import pytest

from p5rec.data.tables import RecData


def _data():
    items = [{"item_id": "a", "title": "A"}, {"item_id": "b"}, {"item_id": "c", "title": "C"}]
    inter = [
        {"user_id": "u2", "item_id": "a", "timestamp": 5},
        {"user_id": "u1", "item_id": "b", "timestamp": 9, "rating": 4.0},
        {"user_id": "u1", "item_id": "a", "timestamp": 3},
        {"user_id": "u1", "item_id": "c", "timestamp": 9},  # same time as "b": original order breaks the tie
    ]
    return RecData.from_rows("t", items, inter)


def test_rows_sorted_by_user_then_time_with_stable_ties():
    data = _data()
    assert data.sequences() == {"u1": ["a", "b", "c"], "u2": ["a"]}
    assert data.items["title"] == ["A", "", "C"]  # optional fields default to ""


def test_stats_counts_and_coverage():
    s = _data().stats()
    assert (s["users"], s["items"], s["interactions"]) == (2, 3, 4)
    assert s["density"] == pytest.approx(4 / 6)
    assert s["coverage"]["rating"] == pytest.approx(0.25)
    assert s["coverage"]["item_title"] == pytest.approx(2 / 3)


def test_unknown_item_and_missing_id_are_named():
    with pytest.raises(ValueError, match=r"not in the catalog.*'zz'"):
        RecData.from_rows("t", [{"item_id": "a"}], [{"user_id": "u", "item_id": "zz"}])
    with pytest.raises(ValueError, match=r"row 0 has no `user_id`"):
        RecData.from_rows("t", [{"item_id": "a"}], [{"item_id": "a"}])
    with pytest.raises(ValueError, match="duplicate item_id"):
        RecData.from_rows("t", [{"item_id": "a"}, {"item_id": "a"}], [{"user_id": "u", "item_id": "a"}])


def test_save_and_load_round_trip(tmp_path):
    data = _data()
    data.save_to_disk(tmp_path / "ds")
    back = RecData.load_from_disk(tmp_path / "ds")
    assert back.sequences() == data.sequences()
    assert back.items["item_id"] == data.items["item_id"]


def test_interrupted_save_keeps_previous_dataset(tmp_path, monkeypatch):
    data = _data()
    data.save_to_disk(tmp_path / "ds")

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    other = RecData.from_rows("t2", [{"item_id": "x"}], [{"user_id": "u", "item_id": "x"}])
    monkeypatch.setattr(type(other.interactions), "save_to_disk", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        other.save_to_disk(tmp_path / "ds")
    assert RecData.load_from_disk(tmp_path / "ds").name == "t"
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]  # no temp folder left behind


def test_load_missing_folder_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="p5rec data prepare"):
        RecData.load_from_disk(tmp_path / "nothing")
