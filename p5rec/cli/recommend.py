"""`p5rec recommend`, `rate`, `explain`, `summarize`: ask a saved model from the shell.

One module registers the four commands because they share everything but the call: load a model
directory, validate IDs (unknown ones exit 1 with one line), print plain text or `--json`.
`recommend --users all --out FILE` scores every user in batches and writes the file atomically,
so an interrupted run never leaves a half-written table behind.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

OUT_FORMATS = (".parquet", ".jsonl", ".csv")
ROW_COLUMNS = ("user", "rank", "item_id", "id_string", "title", "score")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "recommend",
        help="top-k items for a user, a new user's history, or every user (--users all --out FILE)",
        description="Recommend items with a saved model: for one known user (--user), a new user described by "
        "their history (--history), or many users at once (--users all or a comma list) written to --out.",
    )
    _common(p)
    who = p.add_mutually_exclusive_group()
    who.add_argument("--user", help="a raw user ID from the training data")
    who.add_argument("--users", help='"all" or a comma-separated list of user IDs (batch scoring; needs --out)')
    p.add_argument("--history", help="comma-separated item IDs, oldest first (cold start, or overrides --user's)")
    p.add_argument("--candidates", help="comma-separated item IDs: rank only these (direct recommendation)")
    p.add_argument("--k", type=int, default=10, help="how many items (default 10)")
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
        rec = _load(args, args.batch_size)
        users = rec.users.raw_ids() if args.users.strip() == "all" else _ids(args.users, "--users")
        rows = _score_users(rec, users, args.k, not args.include_seen, candidates, args.batch_size, args.no_progress)
        write_rows(rows, out)
        print(f"wrote {len(rows)} recommendations for {len(users)} users to {out}", file=sys.stderr)
        return 0
    if args.user is None and history is None:
        raise ValueError("give `--user U`, `--history I1,I2` (new user) or `--users all --out FILE`")
    rec = _load(args)
    result = rec.recommend(
        user=args.user, history=history, k=args.k, exclude_seen=not args.include_seen, candidates=candidates
    )
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
        return 0
    for item in result:
        label = f"{item.title} ({item.item_id})" if item.title else item.item_id
        print(f"{item.rank:>3}. {label}  score {item.score:.3f}")
    print(result.sentence)
    return 0


def _score_users(rec, users, k, exclude_seen, candidates, batch_size, no_progress) -> list[dict[str, Any]]:
    from tqdm.auto import tqdm

    rows: list[dict[str, Any]] = []
    cands = None if candidates is None else [candidates] * batch_size
    with tqdm(total=len(users), desc="recommending", unit="user", disable=no_progress, file=sys.stderr) as bar:
        for start in range(0, len(users), batch_size):
            chunk = users[start : start + batch_size]
            results = rec.recommend_batch(
                chunk, k=k, exclude_seen=exclude_seen, candidates=None if cands is None else cands[: len(chunk)]
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


def write_rows(rows: list[dict[str, Any]], path: str | os.PathLike) -> None:
    """Write recommendation rows (one per user and rank) as parquet, JSON lines or CSV, atomically.

    The table goes to a temporary file in the target folder, then replaces `path` in one rename.

    Args:
        rows: dicts with the keys of `ROW_COLUMNS`.
        path: output file; the extension picks the format.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in OUT_FORMATS:
        raise ValueError(f"`path` ({path}) must end in one of {', '.join(OUT_FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
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
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    summary = _load(args).summarize(text, user=args.user)
    print(json.dumps({"summary": summary}, ensure_ascii=False) if args.json else summary)
    return 0
