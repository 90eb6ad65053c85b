"""HTTP serving: a FastAPI app over one `Recommender`, with request batching for /recommend.

Needs the optional dependencies (`pip install p5rec[serve]`); nothing else in p5rec imports this
module, so the core library never pulls in FastAPI.

Concurrent /recommend requests are gathered by a `RecommendBatcher` (up to `max_batch` requests,
or whatever arrives within `batch_wait_ms` of the first) and answered by ONE `recommend_batch`
call: a forward pass over 16 prompts costs little more than over one, so under load throughput
grows with the batch while a lone request waits at most `batch_wait_ms` extra.

Every error has the shape ``{"error": {"type": ..., "message": ...}}``: unknown user or item ->
404, invalid input -> 422, unparsable body -> 400. User input never causes a 500.

>>> from p5rec.api import Recommender                      # doctest: +SKIP
>>> app = create_app(Recommender.from_pretrained("runs/demo-model"), max_batch=16)  # doctest: +SKIP
>>> with serve_in_thread(app) as url:                     # doctest: +SKIP
...     httpx.post(f"{url}/recommend", json={"user": "A2IBPI20UZIR0U", "k": 5}).json()
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from p5rec.api import Recommendations, Recommender
from p5rec.decoding.beams import beam_width

MAX_K = 100
MAX_BEAMS = 200  # a beam costs a forward row per step: bounded so one request cannot stall the batch
MAX_HISTORY = 200
MAX_TEXT = 5000
MAX_ID = 200  # characters in one user or item ID


# ---------------------------------------------------------------------------------- schemas
Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
ItemId = Annotated[str, Field(min_length=1, max_length=MAX_ID)]
UserId = Annotated[str, Field(min_length=1, max_length=MAX_ID)]
Feature = Annotated[str, Field(min_length=1, max_length=MAX_ID)]


class _Request(BaseModel):
    # Unknown fields are errors: a typo such as "exclude_seem" must not silently use the default. Types are
    # strict: `"k": true` or `"k": "5"` is a 422, not one item or five.
    model_config = ConfigDict(extra="forbid", strict=True)


class RecommendRequest(_Request):
    """A known `user`, or a new user described by `history` (oldest first), or both."""

    user: UserId | None = None
    history: list[ItemId] | None = Field(None, min_length=1, max_length=MAX_HISTORY)
    k: int = Field(10, ge=1, le=MAX_K, description="how many items; at most 100, the catalog size and the candidates")
    exclude_seen: bool = True
    candidates: list[ItemId] | None = Field(None, min_length=1, max_length=1000)
    num_beams: int | None = Field(
        None,
        ge=1,
        le=MAX_BEAMS,
        description="beam width, >= k; default max(20, k); unused where a history is ranked exactly "
        "(the next-item read-out with model.prompt_eos)",
    )

    @model_validator(mode="after")
    def _user_or_history(self) -> RecommendRequest:
        if self.user is None and self.history is None:
            raise ValueError("give a `user` or a `history`")
        return self


class RateRequest(_Request):
    user: UserId
    item: ItemId


class WillLikeRequest(_Request):
    user: UserId
    item: ItemId


class ExplainRequest(_Request):
    user: UserId
    item: ItemId
    feature: Feature | None = None


class SummarizeRequest(_Request):
    text: Text
    user: UserId | None = None
    item: ItemId | None = None  # the reviewed item, when known: its own training titles come first


class GenerateRequest(_Request):
    prompt: Text
    num_beams: int = Field(1, ge=1, le=8)
    max_new_tokens: int | None = Field(None, ge=1, le=256)


class RecommendedItemOut(BaseModel):
    item_id: str
    id_string: str
    title: str
    score: float
    rank: int


class RecommendResponse(BaseModel):
    user: str | None
    items: list[RecommendedItemOut]
    sentence: str
    template: str


class RateResponse(BaseModel):
    user: str
    item: str
    rating: float


class WillLikeResponse(BaseModel):
    user: str
    item: str
    score: float = Field(description="the yes/no answer as a score in [0, 1] (Recommender.will_like)")


class ExplainResponse(BaseModel):
    user: str
    item: str
    feature: str | None
    explanation: str


class SummarizeResponse(BaseModel):
    summary: str


class GenerateResponse(BaseModel):
    text: str


class HealthResponse(BaseModel):
    status: str
    items: int
    users: int
    max_batch: int
    batches: int = Field(description="recommend_batch calls made so far")
    batched_requests: int = Field(description="/recommend requests answered by those calls")


class ErrorBody(BaseModel):
    type: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


# ---------------------------------------------------------------------------------- batching
@dataclass
class _Job:
    request: RecommendRequest
    future: Future = field(default_factory=Future)


class RecommendBatcher:
    """Gathers concurrent recommend requests and answers each group with one `recommend_batch` call.

    A worker thread takes the first waiting request, then keeps collecting until `max_batch`
    requests are in hand or `batch_wait_ms` has passed. Requests are grouped by what
    `recommend_batch` shares across a batch (`k`, `num_beams`, `exclude_seen`, with or without candidates),
    so each answer is the one an unbatched call would give. If a group fails, its requests are
    retried one by one so a single bad request only fails itself.

    Args:
        recommender: the model to call.
        max_batch: most requests per call (>= 1).
        batch_wait_ms: longest wait for more requests after the first arrives (>= 0).
    """

    def __init__(self, recommender: Recommender, max_batch: int = 16, batch_wait_ms: float = 5.0) -> None:
        if not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"`max_batch` ({max_batch!r}) must be an integer >= 1")
        if batch_wait_ms < 0:
            raise ValueError(f"`batch_wait_ms` ({batch_wait_ms!r}) must be >= 0")
        self.recommender, self.max_batch, self.batch_wait = recommender, max_batch, batch_wait_ms / 1000
        self.batches = 0
        self.requests = 0
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stats_lock = threading.Lock()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="p5rec-batcher", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Finish the requests already queued, then end the worker."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def submit(self, request: RecommendRequest) -> Future:
        """Queue one request; the future resolves to its `Recommendations` or raises its error."""
        if self._thread is None:
            raise RuntimeError("the batcher is not running: call start() first")
        job = _Job(request)
        self._queue.put(job)
        return job.future

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs, stop = [first], False
            deadline = time.monotonic() + self.batch_wait
            while len(jobs) < self.max_batch:
                try:
                    job = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                jobs.append(job)
            # Requests whose client already went away are dropped; the rest can no longer be cancelled.
            jobs = [j for j in jobs if j.future.set_running_or_notify_cancel()]
            groups: dict[tuple, list[_Job]] = {}
            for job in jobs:
                r = job.request
                groups.setdefault((r.k, r.num_beams, r.exclude_seen, r.candidates is not None), []).append(job)
            for group in groups.values():
                self._answer(group)
            if stop:
                return

    def _answer(self, jobs: list[_Job]) -> None:
        try:
            results = self._call(jobs)
        except Exception as e:  # noqa: BLE001 - delivered to the waiting requests
            if len(jobs) == 1:
                jobs[0].future.set_exception(e)
                return
            # Answer each alone, so only the bad request fails.
            for job in jobs:
                try:
                    job.future.set_result(self._call([job])[0])
                except Exception as e1:  # noqa: BLE001 - delivered to the waiting request
                    job.future.set_exception(e1)
            return
        for job, res in zip(jobs, results):
            job.future.set_result(res)

    def _call(self, jobs: list[_Job]) -> list[Recommendations]:
        reqs = [j.request for j in jobs]
        with self._stats_lock:
            self.batches += 1
            self.requests += len(reqs)
        return self.recommender.recommend_batch(
            [r.user for r in reqs],
            [r.history for r in reqs],
            k=reqs[0].k,
            exclude_seen=reqs[0].exclude_seen,
            candidates=[r.candidates for r in reqs] if reqs[0].candidates is not None else None,
            num_beams=reqs[0].num_beams,
        )


# ---------------------------------------------------------------------------------- app
def create_app(recommender: Recommender, max_batch: int = 16, batch_wait_ms: float = 5.0) -> FastAPI:
    """The FastAPI app answering recommend, rate, explain, summarize and generate requests.

    Args:
        recommender: a loaded model.
        max_batch: most /recommend requests answered by one model call; 1 turns batching off.
        batch_wait_ms: longest wait for more /recommend requests to join a batch.
    """
    if not isinstance(max_batch, int) or max_batch < 1:
        raise ValueError(f"`max_batch` ({max_batch!r}) must be an integer >= 1")
    if batch_wait_ms < 0:
        raise ValueError(f"`batch_wait_ms` ({batch_wait_ms!r}) must be >= 0")
    batcher = RecommendBatcher(recommender, max_batch, batch_wait_ms) if max_batch > 1 else None
    n_items = len(recommender.items)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if batcher is not None:
            batcher.start()
        try:
            yield
        finally:
            if batcher is not None:
                await run_in_threadpool(batcher.stop)

    app = FastAPI(
        title="p5rec",
        description="P5-style recommendation: one language model answers every recommendation task.",
        lifespan=lifespan,
        responses={
            404: {"model": ErrorResponse, "description": "unknown user or item"},
            422: {"model": ErrorResponse, "description": "invalid input"},
        },
    )
    app.state.recommender, app.state.batcher = recommender, batcher
    _add_error_handlers(app)

    @app.get("/health", response_model=HealthResponse)
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "items": n_items,
            "users": len(recommender.users),
            "max_batch": max_batch,
            "batches": batcher.batches if batcher else 0,
            "batched_requests": batcher.requests if batcher else 0,
        }

    @app.post("/recommend", response_model=RecommendResponse)
    async def recommend(req: RecommendRequest) -> dict[str, Any]:
        _check_known(recommender, req)
        # The decoding rule for `k`, `num_beams` and candidates, before batching: a bad request fails alone.
        beam_width(req.k, req.num_beams, num_items=n_items, candidates=[_distinct(req.candidates)])
        if batcher is None:
            result = await run_in_threadpool(
                recommender.recommend,
                req.user,
                req.history,
                req.k,
                req.exclude_seen,
                req.candidates,
                None,
                req.num_beams,
            )
        else:
            result = await asyncio.wrap_future(batcher.submit(req))
        return result.to_dict()

    @app.post("/rate", response_model=RateResponse)
    async def rate(req: RateRequest) -> dict[str, Any]:
        rating = await run_in_threadpool(recommender.predict_rating, req.user, req.item)
        return {"user": req.user, "item": req.item, "rating": rating}

    @app.post("/will_like", response_model=WillLikeResponse)
    async def will_like(req: WillLikeRequest) -> dict[str, Any]:
        score = await run_in_threadpool(recommender.will_like, req.user, req.item)
        return {"user": req.user, "item": req.item, "score": score}

    @app.post("/explain", response_model=ExplainResponse)
    async def explain(req: ExplainRequest) -> dict[str, Any]:
        text = await run_in_threadpool(recommender.explain, req.user, req.item, req.feature)
        return {"user": req.user, "item": req.item, "feature": req.feature, "explanation": text}

    @app.post("/summarize", response_model=SummarizeResponse)
    async def summarize(req: SummarizeRequest) -> dict[str, Any]:
        summary = await run_in_threadpool(recommender.summarize, req.text, req.user, None, req.item)
        return {"summary": summary}

    @app.post("/generate", response_model=GenerateResponse)
    async def generate(req: GenerateRequest) -> dict[str, Any]:
        text = await run_in_threadpool(recommender.generate, req.prompt, req.num_beams, req.max_new_tokens)
        return {"text": text}

    return app


def _check_known(recommender: Recommender, req: RecommendRequest) -> None:
    """Unknown IDs fail their own request (404) here, before batching could mix them with others.

    The indexes raise the errors, so the API, the CLI and the server say the same thing.
    """
    if req.history is None:
        recommender.users.id_of(req.user, "user")
    for name, ids in (("history", req.history), ("candidates", req.candidates)):
        if ids is not None:
            recommender.items.check(ids, name)


def _distinct(ids: list[str] | None) -> list[str] | None:
    """The IDs once each, as `Recommender.recommend_batch` counts candidates."""
    return None if ids is None else list(dict.fromkeys(ids))


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"type": kind, "message": message}})


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            where = errors[0].get("ctx", {}).get("error", "")
            return _error(400, "malformed_json", f"the request body is not valid JSON ({where})".replace(" ()", ""))
        if any(e.get("type") == "missing" and tuple(e.get("loc", ())) == ("body",) for e in errors):
            return _error(422, "invalid_request", "the request body is empty: send a JSON object")
        parts = []
        for e in errors[:5]:
            loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            msg = str(e.get("msg", "")).removeprefix("Value error, ")
            parts.append(f"{loc}: {msg}" if loc else msg)
        return _error(422, "invalid_request", "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 400:  # FastAPI's body reader failed; the cause says why
            message = _body_error(exc.__cause__, message)
        return _error(exc.status_code, kind, message)

    @app.exception_handler(KeyError)
    async def not_found(request: Request, exc: KeyError) -> JSONResponse:
        return _error(404, "not_found", str(exc.args[0]) if exc.args else "not found")

    @app.exception_handler(ValueError)
    async def bad_value(request: Request, exc: ValueError) -> JSONResponse:
        return _error(422, "invalid_request", str(exc))

    @app.exception_handler(TypeError)
    async def bad_type(request: Request, exc: TypeError) -> JSONResponse:
        return _error(422, "invalid_request", str(exc))

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        return _error(500, "internal_error", f"{type(exc).__name__}: {exc}")


def _body_error(cause: BaseException | None, message: str) -> str:
    """What was wrong with a body FastAPI could not parse (it raises the same 400 for every cause)."""
    if isinstance(cause, RecursionError):
        return f"{message}: the JSON is nested too deeply; send a flat JSON object"
    if isinstance(cause, UnicodeDecodeError):
        return f"{message}: the bytes are not UTF-8 (byte {cause.start}); send a JSON object encoded as UTF-8"
    if cause is not None:
        return f"{message} ({type(cause).__name__}); send a JSON object"
    return message


# ---------------------------------------------------------------------------------- running
@contextlib.contextmanager
def serve_in_thread(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run `app` with uvicorn in a background thread; yields its base URL, stops on exit.

    `port=0` takes a free port (the socket is bound here, so there is no race for it). Meant for
    notebooks, tests and benchmarks; use `p5rec serve` for a real deployment.
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="p5rec-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server thread did not start (see its log above)")
            time.sleep(0.01)
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
