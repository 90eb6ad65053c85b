"""`p5rec recommend`, `rate`, `explain`, `summarize`: ask a saved model from the shell.

One module registers the four commands because they share everything but the call: load a model
directory, validate IDs (unknown ones exit 1 with one line), print plain text or `--json`.
`recommend --users all --out FILE` scores every user in batches and writes the file atomically,
so an interrupted run never leaves a half-written table behind. Launched as several processes
(`accelerate launch --num_processes N -m p5rec.cli.main recommend ...`, or torchrun), each process
scores a contiguous run of whole batches and writes a part file; the main process merges the parts
in user order, so the table is the one a single process writes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from p5rec._atomic import atomic_path
from p5rec.decoding.beams import DEFAULT_NUM_BEAMS

OUT_FORMATS = (".parquet", ".jsonl", ".csv")
ROW_COLUMNS = ("user", "rank", "item_id", "id_string", "title", "score")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "recommend",
        help="top-k items for a user, a new user's history, or every user (--users all --out FILE)",
        description="Recommend items with a saved model: for one known user (--user), a new user described by "
        "their history (--history), or many users at once (--users all or a comma list) written to --out. "
        "Batch scoring shards the users across processes when launched with `accelerate launch --num_processes N "
        "-m p5rec.cli.main recommend --users all --out FILE` (GPUs) or `torchrun --nproc_per_node N -m "
        "p5rec.cli.main recommend ...` (CPU processes); the file holds each user once, in the single-process order.",
    )
    _common(p)
    who = p.add_mutually_exclusive_group()
    who.add_argument("--user", help="a raw user ID from the training data")
    who.add_argument("--users", help='"all" or a comma-separated list of user IDs (batch scoring; needs --out)')
    p.add_argument("--history", help="comma-separated item IDs, oldest first (cold start, or overrides --user's)")
    p.add_argument("--candidates", help="comma-separated item IDs: rank only these (direct recommendation)")
    p.add_argument(
        "--k", type=int, default=10, help="how many items (default 10; at most the catalog and the candidates)"
    )
    p.add_argument(
        "--num-beams",
        type=int,
        help=f"beam width, >= --k (default max({DEFAULT_NUM_BEAMS}, k)); wider is slower and finds more likely items."
        " A model trained with the history loss and model.prompt_eos ranks a user with a history exactly,"
        " without beams",
    )
    p.add_argument("--include-seen", action="store_true", help="allow items the user already has")
    p.add_argument("--out", help=f"batch output file; format from the extension: {', '.join(OUT_FORMATS)}")
    p.add_argument("--batch-size", type=int, default=32, help="users per forward pass (default 32)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run_recommend)

    p = subparsers.add_parser(
        "rate", help="predict the star rating a user would give an item", description="Predict a star rating (1-5)."
    )
    _common(p)
    p.add_argument("--user", required=True, help="a raw user ID")
    p.add_argument("--item", required=True, help="a raw item ID")
    p.set_defaults(func=run_rate)

    p = subparsers.add_parser(
        "explain",
        help="a sentence on why a user would like an item",
        description="Generate an explanation of why a user would like an item, optionally about one feature.",
    )
    _common(p)
    p.add_argument("--user", required=True, help="a raw user ID")
    p.add_argument("--item", required=True, help="a raw item ID")
    p.add_argument("--feature", help='the aspect to talk about, e.g. "sound"')
    p.set_defaults(func=run_explain)

    p = subparsers.add_parser(
        "summarize", help="a short title for a review text", description="Summarize a review into a short title."
    )
    _common(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="the review text")
    src.add_argument("--file", help="a UTF-8 file holding the review text")
    p.add_argument("--user", help="the reviewer, if known (a raw user ID)")
    p.add_argument("--item", help="the reviewed item, if known (a raw item ID): its own training titles come first")
    p.set_defaults(func=run_summarize)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="a model directory written by `p5rec train` or `p5rec demo`")
    p.add_argument("--device", default="auto", help='"auto" (GPU when available), "cpu", "cuda", ... (default auto)')
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def _load(args: argparse.Namespace, batch_size: int = 32):
    return load_recommender(args.model, args.device, batch_size)


def load_recommender(model: str, device: str = "auto", batch_size: int = 32):
    """`Recommender.from_pretrained` without transformers' per-weight progress bar on stderr.

    A command's stderr carries its one-line errors; a bar there buries them.
    """
    from transformers.utils import logging as hf_logging

    from p5rec.api import Recommender

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return Recommender.from_pretrained(model, device=device, batch_size=batch_size)
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def _ids(value: str | None, flag: str) -> list[str] | None:
    if value is None:
        return None
    ids = [v.strip() for v in value.split(",") if v.strip()]
    if not ids:
        raise ValueError(f"`{flag}` ({value!r}) holds no item ID; give comma-separated IDs such as I1,I2")
    return ids


# ---------------------------------------------------------------------------------- recommend
def run_recommend(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise ValueError(f"`--batch-size` ({args.batch_size}) must be >= 1")
    history, candidates = _ids(args.history, "--history"), _ids(args.candidates, "--candidates")
    if args.users is not None:
        if not args.out:
            raise ValueError("`--users` needs `--out FILE` (.parquet, .jsonl or .csv) for the results")
        if history is not None:
            raise ValueError("`--history` describes one user; use it with `--user` (or alone), not `--users`")
        out = Path(args.out)
        if out.suffix.lower() not in OUT_FORMATS:
            raise ValueError(f"`--out` ({args.out}) must end in one of {', '.join(OUT_FORMATS)}")
        return _recommend_to_file(args, out, candidates)
    if args.user is None and history is None:
        raise ValueError("give `--user U`, `--history I1,I2` (new user) or `--users all --out FILE`")
    rec = _load(args)
    result = rec.recommend(
        user=args.user,
        history=history,
        k=args.k,
        exclude_seen=not args.include_seen,
        candidates=candidates,
        num_beams=args.num_beams,
    )
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
        return 0
    for item in result:
        label = f"{item.title} ({item.item_id})" if item.title else item.item_id
        print(f"{item.rank:>3}. {label}  score {item.score:.3f}")
    print(result.sentence)
    return 0


def _score_users(
    rec, users, k, exclude_seen, candidates, batch_size, no_progress, num_beams=None
) -> list[dict[str, Any]]:
    from tqdm.auto import tqdm

    rows: list[dict[str, Any]] = []
    cands = None if candidates is None else [candidates] * batch_size
    with tqdm(total=len(users), desc="recommending", unit="user", disable=no_progress, file=sys.stderr) as bar:
        for start in range(0, len(users), batch_size):
            chunk = users[start : start + batch_size]
            results = rec.recommend_batch(
                chunk,
                k=k,
                exclude_seen=exclude_seen,
                candidates=None if cands is None else cands[: len(chunk)],
                num_beams=num_beams,
            )
            for user, result in zip(chunk, results):
                rows += [
                    {
                        "user": user,
                        "rank": i.rank,
                        "item_id": i.item_id,
                        "id_string": i.id_string,
                        "title": i.title,
                        "score": i.score,
                    }
                    for i in result
                ]
            bar.update(len(chunk))
    return rows


class Processes(NamedTuple):
    """This process's place in a launch: rank, process count, torch device and the accelerate state (None alone)."""

    rank: int
    world: int
    device: str
    state: Any = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wait(self) -> None:
        if self.state is not None:
            self.state.wait_for_everyone()


def current_processes(device: str = "auto") -> Processes:
    """Rank, process count and device of this process under `accelerate launch` or torchrun.

    accelerate's `PartialState` is created only when several processes were launched: it is a
    process-wide singleton, and one made here in a plain run would pin the device a later
    `Accelerator` in the same process (a test, a notebook) may need to choose. Without a GPU (or
    with `--device cpu`, or `accelerate launch --cpu`) the processes talk over gloo on the CPU.
    """
    from accelerate.utils import get_int_from_env, parse_flag_from_env

    if get_int_from_env(["WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"], 1) <= 1:
        return Processes(0, 1, device)
    import torch
    from accelerate import PartialState

    cpu = device == "cpu" or parse_flag_from_env("ACCELERATE_USE_CPU") or not torch.cuda.is_available()
    state = PartialState(cpu=cpu)
    # One device per process: "auto" and a bare "cuda" mean this process's GPU, not cuda:0 for all.
    dev = str(state.device) if device in ("auto", "cuda") else device
    return Processes(state.process_index, state.num_processes, dev, state)


def shard_bounds(num_users: int, batch_size: int, rank: int, world: int) -> tuple[int, int]:
    """The users `[start, stop)` that process `rank` of `world` scores: a contiguous run of whole batches.

    Whole batches, so every process pads and scores exactly the batches one process would, and the
    merged table equals the single-process one bit for bit; contiguous, so concatenating the parts
    in rank order restores the user order. Processes past the last batch get an empty range.

    >>> [shard_bounds(13, 4, r, 2) for r in range(2)]
    [(0, 8), (8, 13)]
    """
    num_batches = -(-num_users // batch_size)
    start = min(rank * num_batches // world * batch_size, num_users)
    stop = min((rank + 1) * num_batches // world * batch_size, num_users)
    return start, stop


def _recommend_to_file(args: argparse.Namespace, out: Path, candidates: list[str] | None) -> int:
    procs = current_processes(args.device)
    rec = load_recommender(args.model, procs.device, args.batch_size)
    users = rec.users.raw_ids() if args.users.strip() == "all" else _ids(args.users, "--users")
    users = list(dict.fromkeys(users))  # a user listed twice is scored (and written) once
    # Every process checks every user, so a bad ID stops all of them with the same error, before any
    # work, instead of one process failing while the others wait for it.
    rec.users.check(users, "--users")
    start, stop = shard_bounds(len(users), args.batch_size, procs.rank, procs.world)
    rows = _score_users(
        rec, users[start:stop], args.k, not args.include_seen, candidates, args.batch_size,
        args.no_progress or not procs.is_main, args.num_beams,
    )  # fmt: skip
    written = len(rows)
    if procs.world == 1:
        write_rows(rows, out)
    else:
        parts = _parts_dir(out)
        write_rows(rows, parts / _part_name(procs.rank, procs.world))
        procs.wait()  # every part is complete (each written atomically) past this point
        if procs.is_main:
            written = merge_parts([parts / _part_name(r, procs.world) for r in range(procs.world)], out)
            shutil.rmtree(parts, ignore_errors=True)
        procs.wait()  # no process exits before the file is there
    if procs.is_main:
        where = f" ({procs.world} processes)" if procs.world > 1 else ""
        print(f"wrote {written} recommendations for {len(users)} users to {out}{where}", file=sys.stderr)
    return 0


def _parts_dir(out: Path) -> Path:
    """Hidden folder beside `out` for the per-process parts (same file system, so the merge can rename)."""
    parts = out.parent / f".{out.name}.parts"
    parts.mkdir(parents=True, exist_ok=True)
    return parts


def _part_name(rank: int, world: int) -> str:
    # The process count in the name: parts left by a crashed run with another count are never merged.
    return f"part-{rank:05d}-of-{world:05d}.jsonl"


def merge_parts(parts: Sequence[Path], out: Path) -> int:
    """Concatenate JSON-lines part files, in the given order, into `out` (any format), atomically.

    JSON keeps floats exact (shortest round-trip repr), so merged scores equal the scored ones.
    A missing part raises `FileNotFoundError` and leaves `out` untouched. Returns the row count.
    """
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"cannot merge {out}: part file(s) {missing} are missing (did a process fail?)")
    rows: list[dict[str, Any]] = []
    for part in parts:
        with open(part, encoding="utf-8") as f:
            rows += [json.loads(line) for line in f]
    write_rows(rows, out)
    return len(rows)


def write_rows(rows: list[dict[str, Any]], path: str | os.PathLike) -> None:
    """Write recommendation rows (one per user and rank) as parquet, JSON lines or CSV, atomically.

    The table goes to a temporary file in the target folder, then replaces `path` in one rename
    (`p5rec._atomic`, readable as a plainly written file would be).

    Args:
        rows: dicts with the keys of `ROW_COLUMNS`.
        path: output file; the extension picks the format.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in OUT_FORMATS:
        raise ValueError(f"`path` ({path}) must end in one of {', '.join(OUT_FORMATS)}")
    with atomic_path(path) as tmp:
        if suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            columns = {c: [r[c] for r in rows] for c in ROW_COLUMNS}
            schema = pa.schema(
                [
                    ("user", pa.string()),
                    ("rank", pa.int32()),
                    ("item_id", pa.string()),
                    ("id_string", pa.string()),
                    ("title", pa.string()),
                    ("score", pa.float64()),
                ]
            )
            pq.write_table(pa.table(columns, schema=schema), tmp)
        elif suffix == ".jsonl":
            with open(tmp, "w", encoding="utf-8") as f:
                for r in rows:
                    f.write(json.dumps({c: r[c] for c in ROW_COLUMNS}, ensure_ascii=False) + "\n")
        else:
            import csv

            with open(tmp, "w", encoding="utf-8", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=ROW_COLUMNS, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)


# ---------------------------------------------------------------------------------- other tasks
def run_rate(args: argparse.Namespace) -> int:
    rating = _load(args).predict_rating(args.user, args.item)
    print(json.dumps({"user": args.user, "item": args.item, "rating": rating}) if args.json else f"{rating:.2f}")
    return 0


def run_explain(args: argparse.Namespace) -> int:
    text = _load(args).explain(args.user, args.item, feature=args.feature)
    if args.json:
        print(
            json.dumps(
                {"user": args.user, "item": args.item, "feature": args.feature, "explanation": text}, ensure_ascii=False
            )
        )
    else:
        print(text)
    return 0


def run_summarize(args: argparse.Namespace) -> int:
    if args.file is not None:
        path = Path(args.file)
        if not path.is_file():
            raise FileNotFoundError(f"`--file` {path} does not exist")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"`--file` {path} is not UTF-8 text (byte {e.start}); convert it first") from None
    else:
        text = args.text
    if not text.strip():
        raise ValueError("the review text is empty: give some text with `--text` or `--file`")
    summary = _load(args).summarize(text, user=args.user, item=args.item)
    print(json.dumps({"summary": summary}, ensure_ascii=False) if args.json else summary)
    return 0
