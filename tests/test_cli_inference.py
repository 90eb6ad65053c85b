"""`p5rec recommend / rate / explain / summarize / serve`, run in-process through `main([...])`."""

from __future__ import annotations

import csv
import json
import re

import pytest
from conftest import untrained_recommender

from p5rec.api import Recommender
from p5rec.cli.main import main

NUM_USERS, NUM_ITEMS = 12, 20


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    # An untrained tiny model saved the normal way: the commands are about I/O, not quality.
    rec = untrained_recommender(NUM_USERS, NUM_ITEMS)
    path = tmp_path_factory.mktemp("cli") / "model"
    rec.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def rec(model_dir) -> Recommender:
    return Recommender.from_pretrained(model_dir, device="cpu")


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_recommend_one_user_text_and_json(capsys, model_dir, rec):
    user = rec.users.raw_ids()[0]
    code, out, _ = _run(capsys, "recommend", "--model", str(model_dir), "--user", user, "--k", "3")
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 4 and lines[0].lstrip().startswith("1.") and "We recommend" in lines[-1]
    code, out, _ = _run(capsys, "recommend", "--model", str(model_dir), "--user", user, "--k", "3", "--json")
    body = json.loads(out)
    assert [i["item_id"] for i in body["items"]] == [i.item_id for i in rec.recommend(user=user, k=3)]


def test_recommend_history_and_candidates(capsys, model_dir, rec):
    items = rec.items.raw_ids()
    code, out, _ = _run(
        capsys, "recommend", "--model", str(model_dir), "--history", f"{items[0]},{items[1]}", "--k", "2", "--json"
    )
    body = json.loads(out)
    assert code == 0 and body["user"] is None and len(body["items"]) == 2
    assert not {i["item_id"] for i in body["items"]} & {items[0], items[1]}
    code, out, _ = _run(
        capsys, "recommend", "--model", str(model_dir), "--history", items[0], "--candidates",
        ",".join(items[5:9]), "--k", "2", "--json",
    )  # fmt: skip
    assert code == 0 and {i["item_id"] for i in json.loads(out)["items"]} <= set(items[5:9])


@pytest.mark.parametrize("ext", ["parquet", "jsonl", "csv"])
def test_recommend_all_users_to_file(capsys, model_dir, rec, tmp_path, ext):
    out_file = tmp_path / f"recs.{ext}"
    code, _, err = _run(
        capsys, "recommend", "--model", str(model_dir), "--users", "all", "--k", "3", "--out", str(out_file),
        "--batch-size", "5",
    )  # fmt: skip
    assert code == 0 and f"wrote {NUM_USERS * 3} recommendations for {NUM_USERS} users" in err
    if ext == "parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(out_file).to_pylist()
    elif ext == "jsonl":
        rows = [json.loads(line) for line in out_file.read_text().splitlines()]
    else:
        with open(out_file, newline="") as f:
            rows = list(csv.DictReader(f))
    assert len(rows) == NUM_USERS * 3
    assert set(rows[0]) == {"user", "rank", "item_id", "id_string", "title", "score"}
    assert {r["user"] for r in rows} == set(rec.users.raw_ids())
    # Batched scoring gives what the single-user call gives.
    first = rec.users.raw_ids()[0]
    assert [r["item_id"] for r in rows if r["user"] == first] == [i.item_id for i in rec.recommend(user=first, k=3)]
    assert [p.name for p in tmp_path.iterdir()] == [out_file.name]  # no temporary file left behind


def test_rate_explain_summarize(capsys, model_dir, rec, tmp_path):
    user, item = rec.users.raw_ids()[0], rec.items.raw_ids()[0]
    code, out, _ = _run(capsys, "rate", "--model", str(model_dir), "--user", user, "--item", item)
    assert code == 0 and 1.0 <= float(out) <= 5.0
    code, out, _ = _run(capsys, "explain", "--model", str(model_dir), "--user", user, "--item", item,
                        "--feature", "sound", "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["feature"] == "sound" and "explanation" in json.loads(out)
    review = tmp_path / "review.txt"
    review.write_text("Warm sound, the strings stay in tune.", encoding="utf-8")
    code, out, _ = _run(capsys, "summarize", "--model", str(model_dir), "--file", str(review), "--json")
    assert code == 0 and isinstance(json.loads(out)["summary"], str)
    code, _, _ = _run(capsys, "summarize", "--model", str(model_dir), "--text", "Great strings.")
    assert code == 0
    code, out, _ = _run(capsys, "summarize", "--model", str(model_dir), "--text", "Great strings.", "--item", item)
    assert code == 0 and out.strip() == rec.summarize("Great strings.", item=item)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["recommend", "--user", "nobody"], "unknown user 'nobody'"),
        (["recommend", "--history", "no-such-item"], r"unknown item 'no-such-item' in `history` \(not in"),
        (["recommend", "--user", "{user}", "--k", "500"], r"`k` \(500\) must be an integer between 1"),
        (["recommend", "--users", "all"], "`--users` needs `--out FILE`"),
        (["recommend", "--users", "all", "--out", "recs.xlsx"], r"must end in one of \.parquet"),
        (["recommend"], "give `--user U`"),
        (["rate", "--user", "{user}", "--item", "no-such-item"], "unknown item"),
        (["explain", "--user", "nobody", "--item", "{item}"], "unknown user"),
        (["summarize", "--file", "/no/such/review.txt"], "does not exist"),
        (["summarize", "--text", "   "], "review text is empty"),
        (["serve", "--max-batch", "0"], r"`--max-batch` \(0\) must be >= 1"),
    ],
)
def test_user_errors_exit_1_with_one_line(capsys, model_dir, rec, argv, message):
    argv = [a.format(user=rec.users.raw_ids()[0], item=rec.items.raw_ids()[0]) for a in argv]
    code, _, err = _run(capsys, argv[0], "--model", str(model_dir), *argv[1:])
    assert code == 1
    assert err.startswith(f"p5rec {argv[0]}: error:") and len(err.strip().splitlines()) == 1
    assert re.search(message, err), err


def test_missing_model_dir_exits_1(capsys, tmp_path):
    code, _, err = _run(capsys, "recommend", "--model", str(tmp_path / "nothing"), "--user", "u1")
    assert code == 1 and "does not exist" in err


def test_serve_builds_the_app_and_runs_uvicorn(capsys, model_dir, monkeypatch):
    uvicorn = pytest.importorskip("uvicorn")
    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    code, _, _ = _run(
        capsys, "serve", "--model", str(model_dir), "--port", "8123", "--max-batch", "4", "--batch-wait-ms", "2"
    )
    assert code == 0 and (seen["host"], seen["port"]) == ("127.0.0.1", 8123)
    batcher = seen["app"].state.batcher
    assert (batcher.max_batch, batcher.batch_wait) == (4, 0.002)


def test_k_beams_and_candidates_follow_one_rule_in_the_api_cli_and_server(capsys, model_dir, rec):
    """A `k` the candidates cannot fill, a beam below `k`, a `k` above the catalog: the same error everywhere."""
    httpx = pytest.importorskip("httpx")
    from p5rec.server import create_app, serve_in_thread

    user, items = rec.users.raw_ids()[0], rec.items.raw_ids()
    cases = [
        {"k": 3, "candidates": items[:2]},  # the API used to return 2 items, the server to refuse
        {"k": 5, "num_beams": 4},  # the API and the Predictor used to raise the beam to 5 silently
        {"k": NUM_ITEMS + 1},
    ]
    with serve_in_thread(create_app(rec, max_batch=1)) as url:
        for case in cases:
            with pytest.raises(ValueError) as raised:
                rec.recommend(user=user, **case)
            message = str(raised.value)
            argv = ["recommend", "--model", str(model_dir), "--user", user, "--k", str(case["k"])]
            argv += ["--num-beams", str(case["num_beams"])] if "num_beams" in case else []
            argv += ["--candidates", ",".join(case["candidates"])] if "candidates" in case else []
            code, _, err = _run(capsys, *argv)
            assert code == 1 and err.strip() == f"p5rec recommend: error: {message}"
            response = httpx.post(f"{url}/recommend", json={"user": user, **case}, timeout=60)
            assert response.status_code == 422 and response.json()["error"]["message"] == message


def test_num_beams_reaches_the_decoder_from_the_cli(capsys, model_dir, rec, monkeypatch):
    import p5rec.decoding.predictor as predictor

    seen, decode = [], predictor.recommend_items
    monkeypatch.setattr(predictor, "recommend_items", lambda *a, **kw: seen.append(kw["num_beams"]) or decode(*a, **kw))
    user = rec.users.raw_ids()[1]
    for flags in (["--num-beams", "7"], []):
        code, _, _ = _run(capsys, "recommend", "--model", str(model_dir), "--user", user, "--k", "4", *flags)
        assert code == 0
    assert seen == [7, None]  # None: the decoder's own default, max(20, k)
