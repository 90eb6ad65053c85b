"""Preprocessing: dedupe, k-core, malformed lines, strict mode, atomic output, and the `p5rec data` CLI."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import datasets
import numpy as np
import pytest

from p5rec.cli import data as cli_data
from p5rec.cli.main import main
from p5rec.data.build import build_recdata, dedupe_mask, k_core_mask
from p5rec.data.loaders import SOURCES, load_amazon2014
from p5rec.data.prepare import format_stats, prepare_dataset
from p5rec.data.tables import RecData


def review(user: str, item: str, ts: int, rating: float = 5.0, text: str = "", summary: str = "") -> str:
    return json.dumps(
        {
            "reviewerID": user,
            "asin": item,
            "reviewerName": "x",
            "helpful": [0, 0],
            "reviewText": text,
            "overall": rating,
            "summary": summary,
            "unixReviewTime": ts,
            "reviewTime": "01 1, 2014",
        }
    )


def write_gz(path: Path, lines: list[str]) -> Path:
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


def grid(users: int, items: int) -> list[str]:
    """Every user reviews every item: a dense block that survives k-core for k <= min(users, items)."""
    return [review(f"U{u}", f"I{i}", 1000 * u + i) for u in range(users) for i in range(items)]


def event(user: str, item: str, ts: int = 0) -> dict:
    return {"user_id": user, "item_id": item, "timestamp": ts}


# --------------------------------------------------------------------------- dedupe and k-core
def test_dedupe_keeps_the_earliest_event_then_the_first_row():
    users = np.array([0, 0, 0, 1, 0])
    items = np.array([7, 7, 8, 7, 7])
    times = np.array([50, 10, 5, 10, 10])
    # Pair (0, 7) appears at t=50, 10, 10: the first t=10 row (index 1) wins.
    assert dedupe_mask(users, items, times).tolist() == [False, True, True, True, False]


def test_dedupe_in_a_built_dataset_keeps_the_earliest_review():
    rows = [event("u", "a", 30) | {"rating": 1.0}, event("u", "a", 20) | {"rating": 2.0}, event("u", "b", 25)]
    data = build_recdata("t", rows, explanations=False)
    assert list(zip(data.interactions["item_id"], data.interactions["rating"], strict=True)) == [
        ("a", 2.0),
        ("b", 0.0),
    ]
    assert data.info["duplicates_dropped"] == 1


def test_k_core_is_iterative():
    # u0..u1 each review a and b (2 each); u2 reviews a and c; c has 1 review.
    # Round 1 drops c's row -> u2 has 1 -> round 2 drops u2 -> a has 2: a 2-core of u0, u1 x a, b.
    users = np.array([0, 0, 1, 1, 2, 2])
    items = np.array([0, 1, 0, 1, 0, 2])
    keep, rounds = k_core_mask(users, items, 2)
    assert keep.tolist() == [True, True, True, True, False, False]
    assert rounds == 2
    assert k_core_mask(users, items, 0)[0].all()


def test_k_core_on_files_reports_what_it_removed(tmp_path):
    lines = grid(5, 5) + [review("lonely", "I0", 1), review("U0", "rare", 2)]
    data = load_amazon2014(write_gz(tmp_path / "reviews_x.json.gz", lines), k_core=5)
    assert len(data.interactions) == 25 and len(data.items) == 5
    assert data.info["removed_by_k_core"] == 2 and data.info["k_core"] == 5


def test_k_core_that_empties_the_data_is_an_error(tmp_path):
    path = write_gz(tmp_path / "reviews_x.json.gz", grid(3, 3))
    with pytest.raises(
        ValueError, match=r"k-core filtering with `k_core`=5 removed every interaction \(3 users, 3 items"
    ):
        load_amazon2014(path, k_core=5)


def test_rows_without_ids_are_rejected_by_the_builder():
    with pytest.raises(ValueError, match=r"interaction row 1 has no `item_id`"):
        build_recdata("t", [event("u", "a"), {"user_id": "u", "item_id": ""}], explanations=False)


def test_output_is_sorted_by_user_then_time_with_stable_ties():
    rows = [event("b", "x", 5), event("a", "z", 9), event("a", "y", 9), event("a", "x", 1)]
    data = build_recdata("t", rows, explanations=False)
    assert data.sequences() == {"a": ["x", "z", "y"], "b": ["x"]}


def test_max_rows_stops_reading(tmp_path):
    path = write_gz(tmp_path / "reviews_x.json.gz", grid(4, 4))
    data = load_amazon2014(path, k_core=0, max_rows=6)
    assert len(data.interactions) == 6 and data.info["rows_read"] == 6


def test_bucket_sort_across_many_blocks(monkeypatch):
    """Small output blocks exercise the on-disk bucket sort used for large data."""
    import p5rec.data.build as prep

    monkeypatch.setattr(prep, "_BATCH_ROWS", 7)
    rng = np.random.default_rng(0)
    rows = [event(f"u{rng.integers(30)}", f"i{rng.integers(20)}", int(rng.integers(100))) for _ in range(400)]
    monkeypatch.setattr(prep, "_MIN_BLOCK_ROWS", 13)
    data = build_recdata("t", rows, explanations=False)
    expected = RecData.from_rows("t", [{"item_id": i} for i in sorted({r["item_id"] for r in rows})], _dedupe(rows))
    assert data.interactions.to_list() == expected.interactions.to_list()


def _dedupe(rows: list[dict]) -> list[dict]:
    best: dict[tuple, dict] = {}
    for r in rows:
        key = (r["user_id"], r["item_id"])
        if key not in best or r["timestamp"] < best[key]["timestamp"]:
            best[key] = r
    return [r for r in rows if best[(r["user_id"], r["item_id"])] is r]


# --------------------------------------------------------------------------- malformed input
def test_malformed_lines_are_counted_with_file_line_samples(tmp_path):
    lines = grid(2, 2)
    lines.insert(1, "{not json")
    lines.insert(3, json.dumps({"reviewerID": "U9", "overall": 5.0, "unixReviewTime": 1}))
    lines.append("[1, 2]")
    data = load_amazon2014(write_gz(tmp_path / "reviews_x.json.gz", lines), k_core=0)
    assert len(data.interactions) == 4
    assert data.info["malformed"] == {
        "count": 3,
        "samples": [
            "reviews_x.json.gz:2: not a JSON object (JSONDecodeError)",
            "reviews_x.json.gz:4: missing field `asin`",
            "reviews_x.json.gz:7: expected an object, got list",
        ],
    }


def test_strict_mode_fails_on_the_first_bad_line_naming_file_and_line(tmp_path):
    lines = grid(2, 2)
    lines = [*lines[:3], json.dumps({"reviewerID": "U1", "overall": 5.0, "unixReviewTime": 1}), *lines[3:]]
    path = write_gz(tmp_path / "reviews_x.json.gz", lines)
    with pytest.raises(ValueError, match=r"^reviews_x.json.gz:4: missing field `asin`"):
        load_amazon2014(path, k_core=0, strict=True)


def test_bad_field_values_are_named(tmp_path):
    bad = json.loads(review("U1", "I1", 5))
    bad["overall"] = "five"
    path = write_gz(tmp_path / "reviews_x.json.gz", [*grid(1, 1), json.dumps(bad)])
    with pytest.raises(ValueError, match=r"reviews_x.json.gz:2: field `overall` is not a number \('five'\)"):
        load_amazon2014(path, k_core=0, strict=True)


def test_no_rows_at_all_is_an_error(tmp_path):
    path = write_gz(tmp_path / "reviews_x.json.gz", ["{broken"])
    with pytest.raises(ValueError, match=r"no interactions were read"):
        load_amazon2014(path)


# ------------------------------------------------------------------- prepare_dataset and atomic output
def test_prepare_dataset_round_trips_and_removes_scratch_files(tmp_path):
    reviews = write_gz(tmp_path / "reviews_x.json.gz", grid(5, 5))
    out = tmp_path / "out" / "music"
    data = prepare_dataset("amazon2014", out, reviews=reviews, k_core=5)
    assert data.stats()["interactions"] == 25
    again = RecData.load_from_disk(out)
    assert again.interactions.to_list() == data.interactions.to_list()
    assert sorted(p.name for p in out.parent.iterdir()) == ["music"]


def test_prepare_dataset_validates_file_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"source 'movielens' needs `ratings` \(flag --ratings\)"):
        prepare_dataset("movielens", tmp_path / "o", movies="m.dat")
    with pytest.raises(ValueError, match=r"source 'amazon2014' does not take \['business'\]"):
        prepare_dataset("amazon2014", tmp_path / "o", reviews="r.json", business="b.json")


def test_failed_save_leaves_the_previous_dataset_intact(tmp_path, monkeypatch):
    out = tmp_path / "ds"
    prepare_dataset("amazon2014", out, reviews=write_gz(tmp_path / "a.json.gz", grid(5, 5)))
    bigger = write_gz(tmp_path / "b.json.gz", grid(6, 6))
    original = datasets.Dataset.save_to_disk
    calls = []

    def failing(self, path, *args, **kwargs):
        calls.append(path)
        if path.endswith("interactions"):
            raise OSError("disk full")
        return original(self, path, *args, **kwargs)

    monkeypatch.setattr(datasets.Dataset, "save_to_disk", failing)
    with pytest.raises(OSError, match="disk full"):
        prepare_dataset("amazon2014", out, reviews=bigger)
    monkeypatch.undo()
    assert calls, "the save was attempted"
    assert RecData.load_from_disk(out).stats()["interactions"] == 25
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json.gz", "b.json.gz", "ds"]


def test_prepare_refuses_a_folder_of_other_files_and_deletes_nothing(tmp_path, capsys):
    reviews = write_gz(tmp_path / "reviews_x.json.gz", grid(5, 5))
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    (out / "items").mkdir()  # a name p5rec also uses does not make it a dataset
    rc = main(["data", "prepare", "--source", "amazon2014", "--reviews", str(reviews), "--out", str(out)])
    assert rc == 1
    err = capsys.readouterr().err
    assert "`out`" in err and "is not a p5rec dataset and is not empty (thesis.tex)" in err and "--overwrite" in err
    assert (out / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "reviews_x.json.gz"]  # no scratch left
    with pytest.raises(ValueError, match="is a file, not a folder"):
        prepare_dataset("amazon2014", out / "thesis.tex", reviews=reviews)

    # --overwrite writes the dataset into the folder and still keeps the user's files.
    args = ["data", "prepare", "--source", "amazon2014", "--reviews", str(reviews), "--out", str(out)]
    assert main([*args, "--overwrite"]) == 0
    assert (out / "thesis.tex").read_text() == "years of work"
    assert RecData.load_from_disk(out).stats()["interactions"] == 25
    # A dataset folder is replaced without the flag; files the user put in it stay.
    prepare_dataset("amazon2014", out, reviews=write_gz(tmp_path / "b.json.gz", grid(6, 6)))
    assert RecData.load_from_disk(out).stats()["interactions"] == 36
    assert sorted(p.name for p in out.iterdir()) == ["interactions", "items", "p5rec_data.json", "thesis.tex"]


def test_prepare_into_an_empty_folder_is_allowed(tmp_path):
    (tmp_path / "empty").mkdir()
    data = prepare_dataset("amazon2014", tmp_path / "empty", reviews=write_gz(tmp_path / "a.json.gz", grid(5, 5)))
    assert data.stats()["interactions"] == 25


def test_a_killed_prepare_leaves_scratch_that_the_next_run_removes(tmp_path):
    """kill -9 mid-save: the hidden work folders stay behind, and the next prepare beside them cleans them."""
    import os
    import subprocess
    import sys

    reviews = write_gz(tmp_path / "reviews_x.json.gz", grid(5, 5))
    out = tmp_path / "good"
    script = (
        "import os, signal, datasets\n"
        "from p5rec.data.prepare import prepare_dataset\n"
        "datasets.Dataset.save_to_disk = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)\n"
        f"prepare_dataset('amazon2014', {str(out)!r}, reviews={str(reviews)!r})\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)
    assert proc.returncode == -9
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".good.")]
    assert len(left) == 2, "a work folder and a half-saved dataset are left by the killed run"
    (tmp_path / ".good.not-ours").mkdir()  # not named by p5rec: never touched
    prepare_dataset("amazon2014", out, reviews=reviews)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".good.not-ours", "good", "reviews_x.json.gz"]


def test_format_stats_lists_counts_and_malformed_samples():
    data = build_recdata("t", [event("u", "a", 1), event("u", "b", 2)], explanations=False)
    data.info["malformed"] = {"count": 1, "samples": ["f.json:3: missing field `asin`"]}
    text = format_stats(data.stats(), data.info)
    assert "interactions" in text and "coverage: rating" in text
    assert "malformed: f.json:3: missing field `asin`" in text


# --------------------------------------------------------------------------- CLI
def test_cli_prepare_then_stats(tmp_path, capsys):
    reviews = write_gz(tmp_path / "reviews_x.json.gz", [*grid(5, 5), "{oops"])
    out = tmp_path / "ds"
    rc = main(
        [
            "data",
            "prepare",
            "--source",
            "amazon2014",
            "--reviews",
            str(reviews),
            "--out",
            str(out),
            "--k-core",
            "5",
        ]
    )
    printed = capsys.readouterr().out
    assert rc == 0
    assert "interactions" in printed and "25" in printed
    assert "malformed: reviews_x.json.gz:26: not a JSON object" in printed
    assert main(["data", "stats", str(out)]) == 0
    assert "users" in capsys.readouterr().out


def test_cli_strict_reports_file_and_line_and_exits_1(tmp_path, capsys):
    reviews = write_gz(tmp_path / "reviews_x.json.gz", [*grid(2, 2), "{oops"])
    rc = main(
        [
            "data",
            "prepare",
            "--source",
            "amazon2014",
            "--reviews",
            str(reviews),
            "--out",
            str(tmp_path / "o"),
            "--strict",
        ]
    )
    assert rc == 1
    assert "reviews_x.json.gz:5: not a JSON object" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_table_source_takes_json_column_maps(tmp_path, capsys):
    (tmp_path / "e.csv").write_text("uid,iid\nu1,a\nu1,b\n")
    args = [
        "data",
        "prepare",
        "--source",
        "table",
        "--interactions",
        str(tmp_path / "e.csv"),
        "--out",
        str(tmp_path / "o"),
    ]
    assert main([*args, "--columns", '{"user_id": "uid", "item_id": "iid"}']) == 0
    assert main([*args, "--columns", "{bad"]) == 1
    assert "`--columns` is not valid JSON" in capsys.readouterr().err


def test_cli_stats_on_a_missing_dataset_is_a_clear_error(tmp_path, capsys):
    assert main(["data", "stats", str(tmp_path / "none")]) == 1
    assert "run `p5rec data prepare` first" in capsys.readouterr().err


def test_cli_source_names_match_the_registry():
    assert set(cli_data.SOURCE_NAMES) == {s.name for s in SOURCES}
