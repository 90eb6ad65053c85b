"""Load test of `p5rec serve`: /recommend latency and throughput with and without request batching.

Trains a "mini" model for a few steps on built-in synthetic data (latency does not depend on
quality), or loads one with `--model`, then for each setting starts the real server
(`p5rec serve`, a subprocess on 127.0.0.1), fires `--requests` /recommend requests from
`--concurrency` client threads (bounded by `--time-limit` seconds), and prints p50/p99 latency
and requests per second. Settings: `--max-batch 1` (batching off) and `--max-batch N`.

    python benchmarks/bench_serve.py                                 # CPU, a few minutes
    python benchmarks/bench_serve.py --requests 1000 --concurrency 32 --device cuda
    python benchmarks/bench_serve.py --model runs/demo-model --json results.json
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="a saved model directory (default: train a mini model first)")
    p.add_argument("--users", type=int, default=300, help="synthetic users when training (default 300)")
    p.add_argument("--items", type=int, default=300, help="synthetic items when training (default 300)")
    p.add_argument("--epochs", type=int, default=1, help="training epochs (default 1: a few steps)")
    p.add_argument("--requests", type=int, default=200, help="requests per setting (default 200)")
    p.add_argument("--concurrency", type=int, default=16, help="client threads (default 16)")
    p.add_argument("--k", type=int, default=10, help="items per request (default 10)")
    p.add_argument("--max-batch", type=int, default=16, help="batch limit of the batched setting (default 16)")
    p.add_argument("--batch-wait-ms", type=float, default=5.0, help="batching wait (default 5 ms)")
    p.add_argument("--time-limit", type=float, default=120.0, help="seconds per setting at most (default 120)")
    p.add_argument("--device", default="cpu", help="server device (default cpu)")
    p.add_argument("--threads", type=int, help="server torch CPU threads (default: torch's choice)")
    p.add_argument("--json", dest="json_out", help="also write the results to this JSON file")
    args = p.parse_args(argv)
    for name in ("requests", "concurrency", "k", "max_batch"):
        if getattr(args, name) < 1:
            p.error(f"`--{name.replace('_', '-')}` ({getattr(args, name)}) must be >= 1")
    return args


def train_mini(args: argparse.Namespace, out: Path) -> Path:
    from p5rec.config import RunConfig, from_dict
    from p5rec.pipeline import fit

    # Sequential examples only, one per user: a handful of optimizer steps.
    weights = {"sequential": 1.0, "direct": 0.0, "rating": 0.0, "explanation": 0.0, "review": 0.0}
    cfg = from_dict(
        RunConfig,
        {
            "data": {"synthetic": {"num_users": args.users, "num_items": args.items}},
            "model": {"backbone": "mini", "vocab_size": 1000},
            "examples": {"task_weights": weights, "sequential_positions": "last", "max_history": 20},
            "train": {"epochs": args.epochs, "batch_size": 64, "learning_rate": 3e-3},
        },
        "bench_serve",
    )
    t0 = time.perf_counter()
    result = fit(cfg, progress=False)
    result.recommender.save_pretrained(out)
    print(f"trained mini model: {result.train.steps} steps in {time.perf_counter() - t0:.0f}s -> {out}")
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, max_batch: int, args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "p5rec.cli.main", "serve", "--model", str(model), "--port", str(port)]
    cmd += ["--max-batch", str(max_batch), "--batch-wait-ms", str(args.batch_wait_ms)]
    cmd += ["--device", args.device, "--log-level", "warning"]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.Popen(cmd, env={**os.environ, "TQDM_DISABLE": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}: {' '.join(cmd)}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise RuntimeError("the server did not answer /health within 300 s")


def load(url: str, users: list[str], args: argparse.Namespace) -> dict[str, float]:
    """Fire the requests from `concurrency` threads; latency of each successful one, in ms."""
    latencies: list[float] = []
    errors = [0]
    next_request = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + args.time_limit

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=args.time_limit) as client:
            while time.monotonic() < stop_at:
                with lock:
                    n = next_request[0]
                    if n >= args.requests:
                        return
                    next_request[0] += 1
                t0 = time.perf_counter()
                try:
                    ok = client.post("/recommend", json={"user": users[n % len(users)], "k": args.k}).is_success
                except httpx.HTTPError:
                    ok = False
                ms = (time.perf_counter() - t0) * 1000
                with lock:
                    if ok:
                        latencies.append(ms)
                    else:
                        errors[0] += 1

    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat = np.array(latencies) if latencies else np.array([float("nan")])
    return {
        "requests": len(latencies),
        "errors": errors[0],
        "seconds": wall,
        "req_per_s": len(latencies) / wall,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
    }


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc): robust where wall time is not, on a busy host."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def run_setting(model: Path, max_batch: int, users: list[str], args: argparse.Namespace) -> dict[str, float]:
    proc, url = start_server(model, max_batch, args)
    try:
        for u in users[:3]:  # warm-up: first calls pay for lazy initialization
            httpx.post(f"{url}/recommend", json={"user": u, "k": args.k}, timeout=120).raise_for_status()
        before, cpu0 = httpx.get(f"{url}/health").json(), cpu_seconds(proc.pid)
        stats = load(url, users, args)
        after, cpu1 = httpx.get(f"{url}/health").json(), cpu_seconds(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    calls = after["batches"] - before["batches"]
    stats["mean_batch"] = (after["batched_requests"] - before["batched_requests"]) / calls if calls else 1.0
    stats["max_batch"] = max_batch
    ok = max(stats["requests"], 1)
    stats["server_cpu_ms_per_req"] = (cpu1 - cpu0) * 1000 / ok if cpu0 is not None and cpu1 is not None else None
    return stats


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_serve_") as tmp:
        model = Path(args.model) if args.model else train_mini(args, Path(tmp) / "model")
        users = list(json.loads((model / "histories.json").read_text()))
        print(
            f"{args.requests} /recommend requests (k={args.k}) from {args.concurrency} threads, "
            f"device {args.device}, {os.cpu_count()} CPU cores, server threads {args.threads or 'default'}"
        )
        results = {}
        for name, max_batch in (("unbatched", 1), ("batched", args.max_batch)):
            results[name] = run_setting(model, max_batch, users, args)
            r = results[name]
            print(
                f"{name:>9} (--max-batch {max_batch:>2}): p50 {r['p50_ms']:7.0f} ms  p99 {r['p99_ms']:7.0f} ms  "
                f"{r['req_per_s']:6.2f} req/s  mean batch {r['mean_batch']:.1f}  "
                f"server CPU {r['server_cpu_ms_per_req'] or float('nan'):.0f} ms/req  "
                f"({r['requests']} ok, {r['errors']} errors, {r['seconds']:.0f}s)"
            )
    speedup = results["batched"]["req_per_s"] / max(results["unbatched"]["req_per_s"], 1e-9)
    print(f"throughput with batching: x{speedup:.2f}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
