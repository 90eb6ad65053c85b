"""RecBole export: files read back (by csv and by pandas, as RecBole reads them) to what was meant."""

from __future__ import annotations

import csv

import pandas as pd
import pytest

from p5rec.data.export import INTER_HEADER, ITEM_HEADER, export_recbole
from p5rec.data.tables import RecData


def _data(item_id: str = "i2") -> RecData:
    items = [
        {"item_id": "i1", "title": 'The "Best"\tStrings\nEver', "category": "Guitars  Strings"},
        {"item_id": item_id, "title": '"Quoted" start', "category": ""},
        {"item_id": "i3", "title": "", "category": "Drums"},
    ]
    interactions = [
        {"user_id": "u2", "item_id": "i1", "rating": 4.5, "timestamp": 1393545600},
        {"user_id": "u1", "item_id": "i3", "rating": 3.0, "timestamp": 20},
        {"user_id": "u1", "item_id": item_id, "rating": 5.0, "timestamp": 10},
    ]
    return RecData.from_rows("tiny", items, interactions)


def _read(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f, delimiter="\t"))


def test_inter_file_has_recbole_header_and_rows_in_user_time_order(tmp_path):
    paths = export_recbole(_data(), tmp_path, "tiny")
    assert paths == {"inter": tmp_path / "tiny.inter", "item": tmp_path / "tiny.item"}
    header = "user_id:token\titem_id:token\trating:float\ttimestamp:float"
    assert paths["inter"].read_text().splitlines()[0] == header
    rows = _read(paths["inter"])
    assert tuple(rows[0]) == INTER_HEADER
    assert rows[1:] == [
        ["u1", "i2", "5", "10"],
        ["u1", "i3", "3", "20"],
        ["u2", "i1", "4.5", "1393545600"],
    ]


def test_item_file_escapes_tabs_newlines_and_quotes(tmp_path):
    paths = export_recbole(_data(), tmp_path, "tiny")
    text = paths["item"].read_text()
    assert len(text.splitlines()) == 4  # header + 3 items: no raw newline from the title leaked
    rows = _read(paths["item"])
    assert tuple(rows[0]) == ITEM_HEADER == ("item_id:token", "title:token_seq", "categories:token_seq")
    assert rows[1:] == [
        ["i1", 'The "Best" Strings Ever', "Guitars Strings"],
        ["i2", '"Quoted" start', ""],
        ["i3", "", "Drums"],
    ]
    assert all(len(r) == 3 for r in rows)


def test_pandas_reads_the_files_the_way_recbole_does(tmp_path):
    paths = export_recbole(_data(), tmp_path, "tiny")
    # RecBole: pd.read_csv(path, delimiter="\t", engine="python"), then token_seq split on " ".
    items = pd.read_csv(paths["item"], delimiter="\t", engine="python", keep_default_na=False)
    assert list(items.columns) == list(ITEM_HEADER)
    assert items["title:token_seq"].str.split(" ").tolist()[:2] == [
        ["The", '"Best"', "Strings", "Ever"],
        ['"Quoted"', "start"],
    ]
    inter = pd.read_csv(paths["inter"], delimiter="\t", engine="python")
    assert inter["rating:float"].tolist() == [5.0, 3.0, 4.5]
    assert inter["timestamp:float"].tolist() == [10.0, 20.0, 1393545600.0]


def test_export_replaces_files_atomically_and_leaves_no_temp_files(tmp_path):
    export_recbole(_data(), tmp_path, "tiny")
    (tmp_path / "tiny.inter").write_text("stale")
    export_recbole(_data(), tmp_path, "tiny")
    assert _read(tmp_path / "tiny.inter")[1] == ["u1", "i2", "5", "10"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.inter", "tiny.item"]


def test_bad_id_is_an_error_and_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match=r"interactions row 0: item_id 'i\\t2' contains a tab or line break"):
        export_recbole(_data(item_id="i\t2"), tmp_path / "out", "tiny")
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("name", ["", "a/b", ".."])
def test_bad_name_is_rejected(tmp_path, name):
    with pytest.raises(ValueError, match=r"`name` .* must be a non-empty file stem"):
        export_recbole(_data(), tmp_path, name)


def test_data_must_be_recdata(tmp_path):
    with pytest.raises(TypeError, match="`data` must be a RecData, got dict"):
        export_recbole({}, tmp_path, "tiny")
