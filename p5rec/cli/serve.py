"""`p5rec serve`: answer recommendation requests over HTTP (FastAPI + uvicorn).

The endpoints, limits and error shapes are documented in `p5rec.server` and at /docs once the
server runs. FastAPI and uvicorn are optional dependencies, imported only here.
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve a model over HTTP (needs `pip install p5rec[serve]`)",
        description="Serve a saved model over HTTP: GET /health, POST /recommend, /rate, /explain, /summarize, "
        "/generate; OpenAPI schema at /openapi.json, interactive docs at /docs. Concurrent /recommend requests "
        "are batched into one model call.",
    )
    p.add_argument("--model", required=True, help="a model directory written by `p5rec train` or `p5rec demo`")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument(
        "--max-batch", type=int, default=16, help="most /recommend requests per model call; 1 turns batching off"
    )
    p.add_argument(
        "--batch-wait-ms",
        type=float,
        default=5.0,
        help="longest wait (ms) for more /recommend requests to join a batch (default 5)",
    )
    p.add_argument("--device", default="auto", help='"auto" (GPU when available), "cpu", "cuda", ... (default auto)')
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.max_batch < 1:
        raise ValueError(f"`--max-batch` ({args.max_batch}) must be >= 1 (1 turns batching off)")
    if args.batch_wait_ms < 0:
        raise ValueError(f"`--batch-wait-ms` ({args.batch_wait_ms}) must be >= 0")
    if not 0 <= args.port <= 65535:
        raise ValueError(f"`--port` ({args.port}) must be between 0 and 65535")
    try:
        import uvicorn

        from p5rec.server import create_app
    except ImportError as e:
        print(f"p5rec serve: error: {e.name or e} is not installed; run `pip install p5rec[serve]`", file=sys.stderr)
        return 1
    from p5rec.cli.recommend import load_recommender

    recommender = load_recommender(args.model, args.device, batch_size=max(32, args.max_batch))
    app = create_app(recommender, max_batch=args.max_batch, batch_wait_ms=args.batch_wait_ms)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
