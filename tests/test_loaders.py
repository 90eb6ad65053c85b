"""Every source format, parsed from small fixture files written in the real layout (field names and quirks
copied from the published files)."""

from __future__ import annotations

import csv
import gzip
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from p5rec.data.loaders import (
    SOURCES,
    get_source,
    load_amazon2014,
    load_amazon2018,
    load_amazon2023,
    load_movielens,
    load_openp5,
    load_p5,
    load_table,
    load_yelp,
)


def write_lines(path: Path, lines: list[str]) -> Path:
    data = ("\n".join(lines) + "\n").encode("utf-8")
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def rows_of(data) -> list[tuple]:
    t = data.interactions
    return list(zip(t["user_id"], t["item_id"], t["rating"], t["timestamp"], strict=True))


# --------------------------------------------------------------------------- Amazon 2014
def amazon2014_review(user: str, item: str, rating: float, ts: int, text: str = "ok", summary: str = "Fine") -> str:
    return json.dumps(
        {
            "reviewerID": user,
            "asin": item,
            "reviewerName": 'cassandra tu "Yeah, well..."',
            "helpful": [0, 0],
            "reviewText": text,
            "overall": rating,
            "summary": summary,
            "unixReviewTime": ts,
            "reviewTime": "02 28, 2014",
        }
    )


def test_amazon2014_reviews_and_python_literal_meta(tmp_path):
    reviews = write_lines(
        tmp_path / "reviews_Musical_Instruments_5.json.gz",
        [
            amazon2014_review(
                "A2",
                "1384719342",
                5.0,
                1393545600,
                "Great sound! The clamp is sturdy.",
                "It Does The Job Well",
            ),
            amazon2014_review("A1", "1384719342", 4.0, 1363392000),
            amazon2014_review("A1", "B00004Y2UT", 3.0, 1363300000),
        ],
    )
    meta = write_lines(
        tmp_path / "meta_Musical_Instruments.json.gz",
        [
            # Python literals, not JSON: single quotes, and a title with an HTML entity.
            "{'asin': '1384719342', 'title': 'Pop Filter &amp; Stand', 'price': 7.99, "
            "'categories': [['Musical Instruments', 'Microphones & Accessories', 'Pop Filters']], "
            "'related': {'also_bought': ['B0002E1G5C']}, 'description': 'A filter.'}",
            "{'asin': 'B00004Y2UT', 'categories': [['Musical Instruments']], 'salesRank': {'Music': 1}}",
            "{'asin': 'UNREVIEWED', 'title': 'never kept'}",
        ],
    )
    data = load_amazon2014(reviews, meta, k_core=0)
    # Sorted by user, then time: A1's older review comes first.
    assert rows_of(data) == [
        ("A1", "B00004Y2UT", 3.0, 1363300000),
        ("A1", "1384719342", 4.0, 1363392000),
        ("A2", "1384719342", 5.0, 1393545600),
    ]
    titles = data.titles()
    assert titles == {"1384719342": "Pop Filter & Stand", "B00004Y2UT": ""}
    cats = dict(zip(data.items["item_id"], data.items["category"], strict=True))
    assert cats["1384719342"] == "Musical Instruments > Microphones & Accessories > Pop Filters"
    assert data.interactions["summary"][2] == "It Does The Job Well"
    assert data.info["source"] == "amazon2014" and data.info["malformed"]["count"] == 0


def test_amazon2014_review_time_fallback_when_unix_time_missing(tmp_path):
    record = json.loads(amazon2014_review("A1", "X", 5.0, 0))
    del record["unixReviewTime"]
    reviews = write_lines(tmp_path / "reviews_x.json", [json.dumps(record)])
    data = load_amazon2014(reviews, k_core=0)
    assert data.interactions["timestamp"][0] == 1393545600  # "02 28, 2014" at 00:00 UTC


# --------------------------------------------------------------------------- Amazon 2018
def test_amazon2018_reviews_and_json_meta(tmp_path):
    base = {
        "verified": True,
        "reviewTime": "06 17, 2018",
        "reviewerName": "john stoiber",
        "summary": "Five Stars",
    }
    lines = [
        json.dumps(
            base
            | {
                "overall": 5.0,
                "reviewerID": "U1",
                "asin": "B004LLIKVU",
                "unixReviewTime": 1529193600,
                "style": {"Gift Amount:": " 50"},
                "reviewText": "Another great gift.",
            }
        ),
        # No reviewText, and a `vote` string with a thousands separator, as in the real file.
        json.dumps(
            base
            | {
                "overall": 4.0,
                "reviewerID": "U1",
                "asin": "B00ADR2LV6",
                "unixReviewTime": 1528934400,
                "vote": "1,234",
            }
        ),
    ]
    reviews = write_lines(tmp_path / "Gift_Cards_5.json.gz", lines)
    meta = write_lines(
        tmp_path / "meta_Gift_Cards.json.gz",
        [
            json.dumps(
                {
                    "category": ["Gift Cards", "Gift Cards"],
                    "tech1": "",
                    "description": ["Redeemable.", "Never expires."],
                    "title": "Amazon eGift Card",
                    "also_buy": [],
                    "brand": "Amazon",
                    "feature": [],
                    "rank": [],
                    "details": {"ASIN: ": "B004LLIKVU"},
                    "main_cat": "Gift Cards",
                    "price": "",
                    "asin": "B004LLIKVU",
                }
            ),
            json.dumps({"category": [], "title": "Visa Card", "asin": "B00ADR2LV6", "description": []}),
        ],
    )
    data = load_amazon2018(reviews, meta, k_core=0)
    assert rows_of(data) == [("U1", "B00ADR2LV6", 4.0, 1528934400), ("U1", "B004LLIKVU", 5.0, 1529193600)]
    items = {r["item_id"]: r for r in data.items}
    assert items["B004LLIKVU"] == {
        "item_id": "B004LLIKVU",
        "title": "Amazon eGift Card",
        "category": "Gift Cards",  # the repeated level is collapsed
        "description": "Redeemable. Never expires.",
    }
    assert data.interactions["review"][0] == ""
    assert data.interactions["summary"][1] == ""  # "Five Stars" is boilerplate


# --------------------------------------------------------------------------- Amazon 2023
def test_amazon2023_uses_parent_asin_and_millisecond_timestamps(tmp_path):
    review = {
        "rating": 5.0,
        "title": "Such a lovely scent but not overpowering",
        "text": "Smells great.",
        "images": [],
        "asin": "B00YQ6X8EO",
        "parent_asin": "B00YQ6X8EO",
        "user_id": "AGKHLEW2SOWHNMFQIJGBECAF7INQ",
        "timestamp": 1588687728923,
        "helpful_vote": 0,
        "verified_purchase": True,
    }
    variant = review | {
        "asin": "B0VARIANT",
        "parent_asin": "B00YQ6X8EO",
        "user_id": "U2",
        "timestamp": 1600000000000,
    }
    reviews = write_lines(tmp_path / "All_Beauty.jsonl", [json.dumps(review), json.dumps(variant)])
    meta = write_lines(
        tmp_path / "meta_All_Beauty.jsonl",
        [
            json.dumps(
                {
                    "main_category": "All Beauty",
                    "title": "Howard LC0008 Leather Conditioner",
                    "categories": [],
                    "description": [],
                    "parent_asin": "B00YQ6X8EO",
                    "store": "Howard Products",
                }
            )
        ],
    )
    data = load_amazon2023(reviews, meta, k_core=0)
    assert rows_of(data) == [
        ("AGKHLEW2SOWHNMFQIJGBECAF7INQ", "B00YQ6X8EO", 5.0, 1588687728),
        ("U2", "B00YQ6X8EO", 5.0, 1600000000),
    ]
    assert data.items[0] | {} == {
        "item_id": "B00YQ6X8EO",
        "title": "Howard LC0008 Leather Conditioner",
        "category": "All Beauty",
        "description": "",
    }
    assert data.interactions["summary"][0] == "Such a lovely scent but not overpowering"


# --------------------------------------------------------------------------- Yelp
def test_yelp_reviews_and_businesses(tmp_path):
    reviews = write_lines(
        tmp_path / "yelp_academic_dataset_review.json",
        [
            json.dumps(
                {
                    "review_id": "KU_O5udG6zpxOg-VcAEodg",
                    "user_id": "mh_-eMZ6K5RLWhZyISBhwA",
                    "business_id": "XQfwVwDr-v0ZS3_CbbE5Xw",
                    "stars": 3.0,
                    "useful": 0,
                    "funny": 0,
                    "cool": 0,
                    "text": "The service was great.",
                    "date": "2018-07-07 22:09:11",
                }
            ),
        ],
    )
    business = write_lines(
        tmp_path / "yelp_academic_dataset_business.json",
        [
            json.dumps(
                {
                    "business_id": "XQfwVwDr-v0ZS3_CbbE5Xw",
                    "name": "Turning Point of North Wales",
                    "city": "North Wales",
                    "state": "PA",
                    "stars": 3.0,
                    "categories": "Restaurants, Breakfast & Brunch, Food",
                    "attributes": None,
                }
            ),
            json.dumps({"business_id": "other", "name": "x", "categories": None}),
        ],
    )
    data = load_yelp(reviews, business, k_core=0)
    assert rows_of(data) == [("mh_-eMZ6K5RLWhZyISBhwA", "XQfwVwDr-v0ZS3_CbbE5Xw", 3.0, 1531001351)]
    assert data.items[0] == {
        "item_id": "XQfwVwDr-v0ZS3_CbbE5Xw",
        "title": "Turning Point of North Wales",
        "category": "Restaurants, Breakfast & Brunch, Food",
        "description": "North Wales, PA",
    }


# --------------------------------------------------------------------------- MovieLens
def test_movielens_100k_tabs_and_latin1_pipes(tmp_path):
    (tmp_path / "u.data").write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t302\t5\t881250000\n")
    flags = ["0"] * 19
    flags[3] = flags[5] = "1"  # Animation, Comedy
    line = "|".join(["242", "Kolya (1996)", "24-Jan-1997", "", "http://us.imdb.com/M/title-exact?Kolya"] + flags)
    other = "|".join(["302", "L.A. Confidential (1997)", "01-Jan-1997", "", "http://x"] + ["0"] * 19)
    (tmp_path / "u.item").write_bytes(f"{line}\n{other}\n302|Cité (1998)|bad\n".encode("latin-1"))
    data = load_movielens(tmp_path / "u.data", tmp_path / "u.item")
    assert rows_of(data) == [
        ("186", "302", 3.0, 891717742),
        ("196", "302", 5.0, 881250000),
        ("196", "242", 3.0, 881250949),
    ]
    assert data.items[0] == {
        "item_id": "242",
        "title": "Kolya (1996)",
        "category": "Animation, Comedy",
        "description": "",
    }
    assert data.info["malformed"]["count"] == 1
    assert data.info["malformed"]["samples"][0].startswith("u.item:3: expected 24")


def test_movielens_1m_double_colon(tmp_path):
    (tmp_path / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3::978302109\n")
    movies = "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::Señor (1996)::Animation|Children's\n"
    (tmp_path / "movies.dat").write_bytes(movies.encode("latin-1"))
    data = load_movielens(tmp_path / "ratings.dat", tmp_path / "movies.dat")
    assert rows_of(data) == [("1", "1193", 5.0, 978300760), ("1", "661", 3.0, 978302109)]
    assert data.titles()["661"] == "Señor (1996)"
    assert dict(zip(data.items["item_id"], data.items["category"], strict=True))["661"] == "Animation, Children's"


def test_movielens_25m_csv_with_quoted_titles(tmp_path):
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,296,5.0,1147880044\n1,1,3.5,1147868817\n")
    with open(tmp_path / "movies.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerows(
            [
                ["movieId", "title", "genres"],
                ["1", "Toy Story (1995)", "Adventure|Animation"],
                ["296", "Pulp Fiction, The (1994)", "(no genres listed)"],
            ]
        )
    data = load_movielens(tmp_path / "ratings.csv", tmp_path / "movies.csv")
    assert rows_of(data) == [("1", "1", 3.5, 1147868817), ("1", "296", 5.0, 1147880044)]
    assert data.titles() == {"1": "Toy Story (1995)", "296": "Pulp Fiction, The (1994)"}


def test_movielens_csv_without_header_is_an_error_naming_the_file(tmp_path):
    (tmp_path / "ratings.csv").write_text("1,296,5.0,1147880044\n")
    with pytest.raises(ValueError, match=r"ratings.csv:1: expected a header starting with userId,movieId"):
        load_movielens(tmp_path / "ratings.csv")


# --------------------------------------------------------------------------- P5 / OpenP5
def test_p5_sequences_map_back_to_raw_ids_with_synthetic_time(tmp_path):
    (tmp_path / "sequential_data.txt").write_text("1 1 2 3\n2 2 3\n")
    maps = {
        "user2id": {"A1": "1", "A2": "2"},
        "item2id": {"B001": "1", "B002": "2", "B003": "3"},
        "id2user": {"1": "A1", "2": "A2"},
        "id2item": {"1": "B001", "2": "B002", "3": "B003"},
    }
    (tmp_path / "datamaps.json").write_text(json.dumps(maps))
    data = load_p5(tmp_path / "sequential_data.txt", tmp_path / "datamaps.json")
    assert data.sequences() == {"A1": ["B001", "B002", "B003"], "A2": ["B002", "B003"]}
    assert list(data.interactions["timestamp"]) == [1, 2, 3, 1, 2]
    assert "synthetic" in data.info["timestamps"]


def test_p5_datamaps_with_only_forward_maps_are_inverted(tmp_path):
    (tmp_path / "sequential_data.txt").write_text("1 1 2\n")
    (tmp_path / "datamaps.json").write_text(json.dumps({"user2id": {"A1": 1}, "item2id": {"B001": 1, "B002": 2}}))
    data = load_p5(tmp_path / "sequential_data.txt", tmp_path / "datamaps.json")
    assert data.sequences() == {"A1": ["B001", "B002"]}


def test_openp5_user_sequence(tmp_path):
    (tmp_path / "user_sequence.txt").write_text("0 5 6 7\n1 6 7\n\n2\n")
    data = load_openp5(tmp_path / "user_sequence.txt")
    assert data.sequences() == {"0": ["5", "6", "7"], "1": ["6", "7"]}
    assert data.info["malformed"]["samples"] == [
        "user_sequence.txt:4: expected `user_id item_id [item_id ...]`, got no items"
    ]


# --------------------------------------------------------------------------- generic tables
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet", "tsv.gz"])
def test_generic_table_with_column_mapping(tmp_path, fmt):
    events = [
        {"uid": "u1", "sku": "i1", "stars": "4", "when": "2021-03-04T10:00:00", "body": "nice"},
        {"uid": "u1", "sku": "i2", "stars": "2", "when": "1614000000", "body": ""},
        {"uid": "u2", "sku": "i1", "stars": "", "when": "", "body": "x"},
    ]
    path = tmp_path / f"events.{fmt}"
    if fmt == "jsonl":
        write_lines(path, [json.dumps(e) for e in events])
    elif fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(events), path)
    else:
        lines = ["\t".join(events[0])] + ["\t".join(e.values()) for e in events]
        if fmt == "csv":
            lines = [",".join(events[0])] + [",".join(e.values()) for e in events]
        write_lines(path, lines)
    columns = {"user_id": "uid", "item_id": "sku", "rating": "stars", "timestamp": "when", "review": "body"}
    data = load_table(path, columns, explanations=False)
    assert rows_of(data) == [
        ("u1", "i2", 2.0, 1614000000),
        ("u1", "i1", 4.0, 1614852000),
        ("u2", "i1", 0.0, 0),
    ]


def test_generic_table_rejects_unknown_mapping_keys(tmp_path):
    path = write_lines(tmp_path / "e.jsonl", ['{"u": 1, "i": 2}'])
    with pytest.raises(ValueError, match=r"`columns` has unknown key\(s\) \['user'\]"):
        load_table(path, {"user": "u", "item_id": "i"})
    with pytest.raises(ValueError, match=r"`columns` must map \['user_id'\]"):
        load_table(path, {"item_id": "i"})
    with pytest.raises(ValueError, match=r"cannot tell the format of .*e.txt"):
        load_table(tmp_path / "e.txt", {"user_id": "u", "item_id": "i"})


def test_registry_names_every_loader():
    assert {s.name for s in SOURCES} == {
        "amazon2014",
        "amazon2018",
        "amazon2023",
        "yelp",
        "movielens",
        "p5",
        "openp5",
        "table",
    }
    with pytest.raises(ValueError, match=r"`source` \('amazon'\) is not known"):
        get_source("amazon")


def test_missing_input_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope.json.gz"):
        load_amazon2014(tmp_path / "nope.json.gz")


# --------------------------------------------------------------------------- bad ratings (#17)
@pytest.mark.parametrize("bad", [7, -3, 0, float("nan"), 1e9, float("inf")])
def test_amazon_ratings_outside_1_to_5_are_malformed_lines(tmp_path, bad):
    lines = [amazon2014_review("U1", "A", 5.0, 10), amazon2014_review("U1", "B", bad, 20)]
    data = load_amazon2014(write_lines(tmp_path / "reviews_x.json.gz", lines), k_core=0)
    assert rows_of(data) == [("U1", "A", 5.0, 10)]
    assert data.info["malformed"]["count"] == 1
    assert (
        "reviews_x.json.gz:2: field `overall` is not a star rating from 0.5 to 5"
        in data.info["malformed"]["samples"][0]
    )


def test_table_and_movielens_ratings_are_range_checked(tmp_path):
    path = write_lines(tmp_path / "e.csv", ["uid,iid,stars", "u1,a,4", "u1,b,7", "u1,c,NaN", "u1,d,"])
    data = load_table(path, {"user_id": "uid", "item_id": "iid", "rating": "stars"})
    assert [(r[1], r[2]) for r in rows_of(data)] == [("a", 4.0), ("d", 0.0)]  # an empty rating is "none"
    assert data.info["malformed"]["count"] == 2
    ratings = write_lines(tmp_path / "u.data", ["1\t10\t5\t100", "1\t11\t-3\t101", "1\t12\t4.5\t102"])
    data = load_movielens(ratings)
    assert [r[2] for r in rows_of(data)] == [5.0, 4.5]
    assert data.info["malformed"]["samples"] == ["u.data:2: field `rating` is not a star rating from 0.5 to 5 ('-3')"]


# --------------------------------------------------------------------------- damaged gzip files (#17)
def _big_reviews(n: int = 3000) -> bytes:
    lines = [amazon2014_review(f"U{k % 50}", f"I{k % 40}", 1 + k % 5, k, text="x" * 40) for k in range(n)]
    return ("\n".join(lines) + "\n").encode()


def test_a_plain_file_named_gz_is_a_clear_error(tmp_path, capsys):
    from p5rec.cli.main import main

    path = tmp_path / "reviews_x.json.gz"
    path.write_bytes(_big_reviews(5))
    with pytest.raises(ValueError, match=r"reviews_x.json.gz' is named .gz but is not gzip-compressed"):
        load_amazon2014(path)
    (tmp_path / "empty.json.gz").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty.json.gz' is named .gz .*\(it is empty\)"):
        load_amazon2014(tmp_path / "empty.json.gz")
    rc = main(["data", "prepare", "--source", "amazon2014", "--reviews", str(path), "--out", str(tmp_path / "o")])
    assert rc == 1
    assert "reviews_x.json.gz' is named .gz but is not gzip-compressed" in capsys.readouterr().err


def _truncated(tmp_path: Path) -> Path:
    whole = gzip.compress(_big_reviews())
    path = tmp_path / "reviews_x.json.gz"
    path.write_bytes(whole[: len(whole) // 2])
    return path


def _corrupt(tmp_path: Path) -> Path:
    whole = bytearray(gzip.compress(_big_reviews()))
    middle = len(whole) // 2
    whole[middle : middle + 64] = bytes(64)
    path = tmp_path / "reviews_x.json.gz"
    path.write_bytes(bytes(whole))
    return path


@pytest.mark.parametrize(
    "damage, reason, strict_reason",
    [(_truncated, "is truncated here", "is truncated here"), (_corrupt, "gzip data is corrupt", "")],
)
def test_damaged_gzip_keeps_what_was_read_and_names_the_file(tmp_path, damage, reason, strict_reason):
    path = damage(tmp_path)
    data = load_amazon2014(path, k_core=0)
    log = data.info["malformed"]
    assert 0 < data.stats()["interactions"] < 3000, "the rows before the damage are kept"
    assert any(s.startswith("reviews_x.json.gz:") and reason in s for s in log["samples"]), log
    # Strict mode stops at the first bad line: the damage itself, or garbage a corrupt block decoded to.
    with pytest.raises(ValueError, match=rf"reviews_x.json.gz:\d+: .*{strict_reason}.*--strict"):
        load_amazon2014(path, k_core=0, strict=True)


def test_damaged_gzip_in_csv_and_metadata_files(tmp_path):
    events = tmp_path / "e.csv.gz"
    whole = gzip.compress(("uid,iid\n" + "".join(f"u{k % 30},i{k % 20}\n" for k in range(20000))).encode())
    events.write_bytes(whole[: len(whole) // 2])
    data = load_table(events, {"user_id": "uid", "item_id": "iid"})
    assert data.info["malformed"]["count"] == 1 and "truncated" in data.info["malformed"]["samples"][0]
    reviews = write_lines(tmp_path / "reviews_x.json.gz", [amazon2014_review("U1", "I1", 5, 1)])
    meta = tmp_path / "meta_x.json.gz"
    meta.write_bytes(gzip.compress(b"{'asin': 'I1', 'title': 'One'}\n" * 5000)[:200])
    data = load_amazon2014(reviews, meta, k_core=0)
    assert any(s.startswith("meta_x.json.gz:") for s in data.info["malformed"]["samples"])


def test_a_damaged_parquet_file_names_the_file(tmp_path):
    path = tmp_path / "e.parquet"
    path.write_bytes(b"PAR1 this is not parquet PAR1")
    with pytest.raises(ValueError, match=r"e.parquet' is not a readable Parquet file"):
        load_table(path, {"user_id": "u", "item_id": "i"})


# --------------------------------------------------------------------------- markup in titles (#17)
def test_amazon2018_markup_titles_are_cleaned_with_fallbacks(tmp_path):
    reviews = write_lines(
        tmp_path / "Books_5.json.gz",
        [
            json.dumps({"reviewerID": "U1", "asin": a, "overall": 5.0, "unixReviewTime": k})
            for k, a in enumerate(["A", "B", "C", "D", "E"])
        ],
    )
    span = '<span class="a-size-medium a-color-secondary"'
    meta = write_lines(
        tmp_path / "meta_Books.json.gz",
        [
            json.dumps({"asin": "A", "title": span, "brand": "Fender"}),
            json.dumps({"asin": "B", "title": span + ">   </span>"}),
            json.dumps({"asin": "C", "title": "<b>Strings</b> &amp;amp; Picks &lt;i&gt;Set&lt;/i&gt;"}),
            json.dumps({"asin": "D", "title": "Plain Title"}),
            json.dumps({"asin": "E", "title": ""}),
        ],
    )
    data = load_amazon2018(reviews, meta, k_core=0)
    assert data.titles() == {"A": "Fender", "B": "B", "C": "Strings & Picks Set", "D": "Plain Title", "E": ""}
    assert data.info["item_titles"] == {"cleaned": 1, "fallback": 1, "item_id": 1}
    from p5rec.data.prepare import format_stats

    text = format_stats(data.stats(), data.info)
    assert re.search(r"item titles cleaned +1\n", text)
    assert "1 by another field, 1 by the ID" in text
