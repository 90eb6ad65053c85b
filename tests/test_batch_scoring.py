"""`p5rec recommend --users all --out FILE` sharded across processes: shards, merge, and a real 2-process run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import untrained_recommender

from p5rec.cli.main import main
from p5rec.cli.recommend import merge_parts, shard_bounds, write_rows

ROOT = Path(__file__).resolve().parents[1]
NUM_USERS, NUM_ITEMS, BATCH, K = 13, 20, 4, 3  # 13 users in batches of 4: the shards are uneven


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("batch") / "model"
    untrained_recommender(NUM_USERS, NUM_ITEMS).save_pretrained(path)
    return path


@pytest.mark.parametrize("num_users, batch_size", [(0, 4), (1, 4), (13, 4), (13, 1), (16, 4), (100, 7)])
@pytest.mark.parametrize("world", [1, 2, 3, 8])
def test_shards_cover_every_user_once_in_whole_batches(num_users, batch_size, world):
    bounds = [shard_bounds(num_users, batch_size, r, world) for r in range(world)]
    covered = [u for start, stop in bounds for u in range(start, stop)]
    assert covered == list(range(num_users))  # in order, none lost, none twice
    assert all(start % batch_size == 0 for start, stop in bounds if stop > start)


def _row(user: str, rank: int) -> dict:
    return {"user": user, "rank": rank, "item_id": f"I{rank}", "id_string": f"item_{rank}", "title": "", "score": -0.1}


def test_merge_keeps_part_order_and_a_missing_part_leaves_no_output(tmp_path):
    a, b = tmp_path / "p0.jsonl", tmp_path / "p1.jsonl"
    write_rows([_row("u1", 1), _row("u1", 2)], a)
    write_rows([_row("u2", 1)], b)
    out = tmp_path / "out" / "recs.parquet"
    assert merge_parts([a, b], out) == 3
    assert [(r["user"], r["rank"]) for r in pq.read_table(out).to_pylist()] == [("u1", 1), ("u1", 2), ("u2", 1)]
    out.unlink()
    with pytest.raises(FileNotFoundError, match=r"part file\(s\) .*p2\.jsonl.* are missing"):
        merge_parts([a, tmp_path / "p2.jsonl"], out)
    assert list(out.parent.iterdir()) == []


# Under torchrun, RANK says which process this is; the patch makes process 1 fail while scoring.
CRASHING_MAIN = """
import os, sys
import p5rec.cli.recommend as recommend
score = recommend._score_users
def fail_in_process_1(*args, **kwargs):
    if os.environ["RANK"] == "1":
        raise RuntimeError("injected failure in process 1")
    return score(*args, **kwargs)
recommend._score_users = fail_in_process_1
from p5rec.cli.main import main
sys.exit(main())
"""


def _launch_two(target: list[str], argv: list[str]) -> subprocess.CompletedProcess:
    # `accelerate launch --cpu` starts one process unless mpirun is installed; on GPUs it wraps torchrun.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    return subprocess.run([*launch, *target, *argv], env=env, capture_output=True, text=True, timeout=240)


def _argv(model_dir: Path, out: Path) -> list[str]:
    return ["recommend", "--model", str(model_dir), "--users", "all", "--k", str(K), "--batch-size", str(BATCH),
            "--out", str(out), "--no-progress"]  # fmt: skip


def test_two_cpu_processes_write_what_one_process_writes(model_dir, tmp_path, capsys):
    """torchrun (gloo, CPU) with 2 processes: every user exactly once, the same table as one process."""
    sharded, single = tmp_path / "sharded" / "recs.parquet", tmp_path / "single" / "recs.parquet"
    stale = tmp_path / "sharded" / ".recs.parquet.parts" / "part-00001-of-00002.jsonl"
    stale.parent.mkdir(parents=True)
    stale.write_text('{"user": "left by a crashed run"}\n')  # overwritten before anything is merged
    proc = _launch_two(["-m", "p5rec.cli.main"], _argv(model_dir, sharded))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"wrote {NUM_USERS * K} recommendations for {NUM_USERS} users to {sharded} (2 processes)" in proc.stderr
    assert [p.name for p in sharded.parent.iterdir()] == ["recs.parquet"]  # parts merged and removed

    assert main([*_argv(model_dir, single), "--device", "cpu"]) == 0
    capsys.readouterr()
    rows = pq.read_table(sharded).to_pylist()
    users = [r["user"] for r in rows if r["rank"] == 1]
    assert len(users) == len(set(users)) == NUM_USERS
    assert all(sum(r["user"] == u for r in rows) == K for u in users)  # every user exactly once, k rows each
    # Whole batches per process: the same padding, so the same lists in the same order. Scores agree to
    # float precision, not bit for bit: the processes may run other thread counts than this one, and
    # a matrix product's sums are ordered by the threads (a last-bit difference on an AVX2 machine).
    expected = pq.read_table(single).to_pylist()
    without_score = [{k: v for k, v in r.items() if k != "score"} for r in rows]
    assert without_score == [{k: v for k, v in r.items() if k != "score"} for r in expected]
    assert [r["score"] for r in rows] == pytest.approx([r["score"] for r in expected], rel=1e-5, abs=1e-5)


def test_a_failed_process_leaves_no_output(model_dir, tmp_path):
    script = tmp_path / "crashing_main.py"
    script.write_text(CRASHING_MAIN)
    out = tmp_path / "out" / "recs.csv"
    proc = _launch_two([str(script)], _argv(model_dir, out))
    assert proc.returncode != 0 and "injected failure in process 1" in proc.stderr
    assert not out.exists()  # only the hidden parts folder, which the next run overwrites and removes
