"""The HTTP server, run for real on 127.0.0.1: endpoints, error shapes, and request batching."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from conftest import untrained_recommender  # noqa: E402

from p5rec.api import Recommender  # noqa: E402
from p5rec.server import RecommendBatcher, RecommendRequest, create_app, serve_in_thread  # noqa: E402

NUM_ITEMS = 24


@pytest.fixture(scope="module")
def rec() -> Recommender:
    # An untrained tiny model: serving is about plumbing, and training would cost a minute here.
    return untrained_recommender(30, NUM_ITEMS)


@pytest.fixture(scope="module")
def client(rec):
    with serve_in_thread(create_app(rec, max_batch=8, batch_wait_ms=5)) as url:
        with httpx.Client(base_url=url, timeout=60) as c:
            yield c


def _user(rec: Recommender, n: int = 0) -> str:
    return rec.users.raw_ids()[n]


def _item(rec: Recommender, n: int = 0) -> str:
    return rec.items.raw_ids()[n]


# ---------------------------------------------------------------------------------- endpoints
def test_health_and_openapi(client):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["items"] == NUM_ITEMS and health["max_batch"] == 8
    schema = client.get("/openapi.json").json()
    paths = {"/health", "/recommend", "/rate", "/will_like", "/explain", "/summarize", "/generate"}
    assert paths <= set(schema["paths"])
    k = schema["components"]["schemas"]["RecommendRequest"]["properties"]["k"]
    assert (k["minimum"], k["maximum"]) == (1, 100)


def test_recommend_matches_python_api(client, rec):
    user = _user(rec)
    body = client.post("/recommend", json={"user": user, "k": 5}).json()
    expected = rec.recommend(user=user, k=5)
    assert [i["item_id"] for i in body["items"]] == [i.item_id for i in expected]
    assert [i["rank"] for i in body["items"]] == [1, 2, 3, 4, 5]
    assert not {i["item_id"] for i in body["items"]} & set(rec.histories[user])  # seen items excluded
    assert body["user"] == user and body["sentence"]


def test_unknown_ids_get_the_same_message_from_the_api_and_the_server(client, rec):
    for request in [
        {"history": [_item(rec), "no-such-item"]},
        {"user": "nobody"},
        {"user": _user(rec), "candidates": ["x", "y"], "k": 1},
    ]:
        with pytest.raises(KeyError) as raised:
            rec.recommend(**request)
        response = client.post("/recommend", json=request)
        assert response.status_code == 404 and response.json()["error"]["message"] == raised.value.args[0]


def test_num_beams_reaches_the_decoder(client, rec, monkeypatch):
    import p5rec.decoding.predictor as predictor

    seen, decode = [], predictor.recommend_items
    monkeypatch.setattr(predictor, "recommend_items", lambda *a, **kw: seen.append(kw["num_beams"]) or decode(*a, **kw))
    user = _user(rec, 2)
    body = client.post("/recommend", json={"user": user, "k": 4, "num_beams": 7}).json()
    assert [i["item_id"] for i in body["items"]] == [i.item_id for i in rec.recommend(user=user, k=4, num_beams=7)]
    assert seen == [7, 7]
    response = client.post("/recommend", json={"user": user, "num_beams": 201})
    assert response.status_code == 422 and "num_beams" in response.json()["error"]["message"]


def test_recommend_cold_start_and_candidates(client, rec):
    history = [_item(rec, 0), _item(rec, 1)]
    body = client.post("/recommend", json={"history": history, "k": 3}).json()
    assert len(body["items"]) == 3 and not {i["item_id"] for i in body["items"]} & set(history)
    user = _user(rec)
    candidates = [i for i in rec.items.raw_ids() if i not in rec.histories[user]][:4]
    body = client.post("/recommend", json={"user": user, "k": 2, "candidates": candidates}).json()
    assert len(body["items"]) == 2 and {i["item_id"] for i in body["items"]} <= set(candidates)


def test_rate_explain_summarize_generate(client, rec):
    user, item = _user(rec), _item(rec)
    rating = client.post("/rate", json={"user": user, "item": item}).json()
    assert rating["rating"] == pytest.approx(rec.predict_rating(user, item), abs=1e-4)
    assert 1.0 <= rating["rating"] <= 5.0
    liked = client.post("/will_like", json={"user": user, "item": item}).json()
    assert liked == {"user": user, "item": item, "score": pytest.approx(rec.will_like(user, item), abs=1e-6)}
    r = client.post("/explain", json={"user": user, "item": item, "feature": "sound"})
    assert r.status_code == 200 and set(r.json()) == {"user", "item", "feature", "explanation"}
    r = client.post("/summarize", json={"text": "The strings sound warm and stay in tune."})
    assert r.status_code == 200 and isinstance(r.json()["summary"], str)
    text = "The strings sound warm and stay in tune."
    r = client.post("/summarize", json={"text": text, "item": item})
    assert r.status_code == 200 and r.json()["summary"] == rec.summarize(text, item=item)
    r = client.post("/generate", json={"prompt": "hello", "max_new_tokens": 4})
    assert r.status_code == 200 and isinstance(r.json()["text"], str)


# ---------------------------------------------------------------------------------- bad input
def _bad_json_cases(rec):
    user, item = _user(rec), _item(rec)
    return [
        ("/recommend", {"user": user, "k": 101}, 422, "less than or equal to 100"),
        ("/recommend", {"user": user, "k": NUM_ITEMS + 1}, 422, "catalog size"),
        ("/recommend", {"user": user, "k": 0}, 422, "greater than or equal to 1"),
        ("/recommend", {"user": "nobody"}, 404, "unknown user 'nobody'"),
        ("/recommend", {"history": []}, 422, "history: List should have at least 1 item"),
        ("/recommend", {"history": [item] * 201}, 422, "history: List should have at most 200 items"),
        ("/recommend", {"history": [item, "no-such-item"]}, 404, r"unknown item 'no-such-item' in `history` \(not in"),
        ("/recommend", {"k": 3}, 422, "give a `user` or a `history`"),
        ("/recommend", {"user": user, "exclude_seem": False}, 422, "exclude_seem: Extra inputs"),
        ("/recommend", {"user": user, "k": 5, "candidates": [item]}, 422, "number of `candidates`"),
        ("/rate", {"user": user, "item": "no-such-item"}, 404, "unknown item"),
        ("/rate", {"user": user}, 422, "item: Field required"),
        ("/will_like", {"user": user, "item": "no-such-item"}, 404, "unknown item"),
        ("/explain", {"user": "nobody", "item": item}, 404, "unknown user"),
        ("/summarize", {"text": "x" * 5001}, 422, "at most 5000 characters"),
        ("/summarize", {"text": ""}, 422, "text: String should have at least 1 character"),
        ("/summarize", {"text": "   "}, 422, "non-empty"),
        ("/summarize", {"text": "Fine.", "item": "no-such-item"}, 404, "unknown item 'no-such-item'"),
        ("/generate", {"prompt": "hi", "num_beams": 9}, 422, "num_beams"),
    ]


def test_bad_json_input_gets_a_clear_error_and_the_server_lives(client, rec):
    for path, body, status, match in _bad_json_cases(rec):
        r = client.post(path, json=body)
        assert r.status_code == status, (path, body, r.text)
        error = r.json()["error"]
        assert set(error) == {"type", "message"}
        assert re.search(match, error["message"]), (match, error)
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize(
    "raw, status, kind",
    [
        (b'{"user": ', 400, "malformed_json"),
        (b'{"text": "caf\xe9 \xff"}', 400, "bad_request"),  # not UTF-8
        (b'{"text": "\\ud800"}', 422, "invalid_request"),  # a lone surrogate escape
        (b"[1, 2]", 422, "invalid_request"),
        (b"", 422, "invalid_request"),
        (b'{"text": NaN}', 422, "invalid_request"),
    ],
)
def test_malformed_bodies(client, raw, status, kind):
    r = client.post("/summarize", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert r.json()["error"]["type"] == kind
    assert client.get("/health").json()["status"] == "ok"


def test_unknown_route_and_method_use_the_error_shape(client):
    assert client.get("/nowhere").json()["error"]["type"] == "not_found"
    r = client.get("/recommend")
    assert r.status_code == 405 and r.json()["error"]["type"] == "method_not_allowed"


# ---------------------------------------------------------------------------------- batching
def _spy(monkeypatch, rec) -> list[int]:
    sizes: list[int] = []
    real = rec.recommend_batch
    lock = threading.Lock()

    def counting(users, *args, **kwargs):
        with lock:
            sizes.append(len(users))
        return real(users, *args, **kwargs)

    monkeypatch.setattr(rec, "recommend_batch", counting)
    return sizes


def test_concurrent_requests_are_batched_and_match_unbatched(rec, monkeypatch):
    users = [_user(rec, n) for n in range(6)]
    expected = {u: rec.recommend(user=u, k=4) for u in users}
    sizes = _spy(monkeypatch, rec)
    # A long wait makes the batch deterministic: all six requests arrive well within it.
    with serve_in_thread(create_app(rec, max_batch=8, batch_wait_ms=1000)) as url:
        with httpx.Client(base_url=url, timeout=60) as c, ThreadPoolExecutor(len(users)) as pool:
            bodies = list(pool.map(lambda u: c.post("/recommend", json={"user": u, "k": 4}).json(), users))
            health = c.get("/health").json()
    assert sum(sizes) == len(users) and len(sizes) < len(users) and max(sizes) > 1
    assert health["batches"] == len(sizes) and health["batched_requests"] == len(users)
    for user, body in zip(users, bodies):
        assert body["user"] == user
        assert [i["item_id"] for i in body["items"]] == [i.item_id for i in expected[user]]
        assert [i["score"] for i in body["items"]] == pytest.approx([i.score for i in expected[user]], abs=1e-3)


def test_requests_with_different_k_are_answered_separately(rec):
    user = _user(rec)
    with serve_in_thread(create_app(rec, max_batch=8, batch_wait_ms=500)) as url:
        with httpx.Client(base_url=url, timeout=60) as c, ThreadPoolExecutor(3) as pool:
            bodies = list(pool.map(lambda k: c.post("/recommend", json={"user": user, "k": k}).json(), [1, 3, 3]))
    assert [len(b["items"]) for b in bodies] == [1, 3, 3]
    assert bodies[0]["items"][0]["item_id"] == bodies[1]["items"][0]["item_id"]


def test_max_batch_1_turns_batching_off(rec, monkeypatch):
    sizes = _spy(monkeypatch, rec)
    with serve_in_thread(create_app(rec, max_batch=1)) as url:
        with httpx.Client(base_url=url, timeout=60) as c, ThreadPoolExecutor(3) as pool:
            codes = list(pool.map(lambda n: c.post("/recommend", json={"user": _user(rec, n)}).status_code, range(3)))
            assert c.get("/health").json()["batches"] == 0
    assert codes == [200] * 3 and sizes == [1, 1, 1]


def test_a_bad_request_fails_alone_inside_a_batch(rec):
    batcher = RecommendBatcher(rec, max_batch=8, batch_wait_ms=500)
    batcher.start()
    try:
        # "nobody" skips the server's ID check here, so the whole batch fails and is retried one by one.
        futures = [batcher.submit(RecommendRequest(user=u, k=2)) for u in (_user(rec, 0), "nobody", _user(rec, 1))]
        assert len(futures[0].result(timeout=60)) == 2 and len(futures[2].result(timeout=60)) == 2
        with pytest.raises(KeyError, match="unknown user 'nobody'"):
            futures[1].result(timeout=60)
    finally:
        batcher.stop()


def test_a_request_cancelled_while_waiting_is_dropped(rec):
    batcher = RecommendBatcher(rec, max_batch=8, batch_wait_ms=500)
    batcher.start()
    try:
        kept = batcher.submit(RecommendRequest(user=_user(rec, 0), k=2))
        dropped = batcher.submit(RecommendRequest(user=_user(rec, 1), k=2))
        assert dropped.cancel()  # the client went away during the batching wait
        assert len(kept.result(timeout=60)) == 2 and dropped.cancelled()
        assert (batcher.batches, batcher.requests) == (1, 1)
    finally:
        batcher.stop()


def test_invalid_batching_settings(rec):
    with pytest.raises(ValueError, match=r"`max_batch` \(0\) must be an integer >= 1"):
        create_app(rec, max_batch=0)
    with pytest.raises(ValueError, match=r"`batch_wait_ms` \(-1\) must be >= 0"):
        create_app(rec, max_batch=1, batch_wait_ms=-1)
    with pytest.raises(RuntimeError, match="not running"):
        RecommendBatcher(rec).submit(RecommendRequest(user=_user(rec)))


# ---------------------------------------------------------------------------------- strict types (#17)
@pytest.mark.parametrize(
    "path, field, value",
    [
        ("/recommend", "k", True),
        ("/recommend", "k", "5"),
        ("/recommend", "k", 5.0),
        ("/recommend", "exclude_seen", "false"),
        ("/recommend", "exclude_seen", 0),
        ("/generate", "num_beams", "2"),
        ("/explain", "feature", 123),
    ],
)
def test_values_of_the_wrong_json_type_are_rejected_not_converted(client, rec, path, field, value):
    body = {
        "/recommend": {"user": _user(rec)},
        "/generate": {"prompt": "hi"},
        "/explain": {"user": _user(rec), "item": _item(rec)},
    }[path] | {field: value}
    r = client.post(path, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["message"].startswith(f"{field}: "), r.json()


def test_deeply_nested_json_is_named_as_such(client):
    raw = b'{"text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    r = client.post("/summarize", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    message = r.json()["error"]["message"]
    assert "nested too deeply" in message and "UTF-8" not in message
    r = client.post("/summarize", content=b'{"text": "caf\xe9"}', headers={"content-type": "application/json"})
    assert "not UTF-8" in r.json()["error"]["message"]
    assert client.get("/health").json()["status"] == "ok"
