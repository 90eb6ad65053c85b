"""Ablations of the default recipe on one prepared dataset: what each ingredient is worth.

Each variant is the default recipe with a few `--set` overrides, trained on the sequential task
alone (`p5rec train --data DATA --set ...`) and scored on the test split with `p5rec evaluate
--tasks sequential` (every user; the first seen and first held-out template unless
`--max-templates 0`). One line per variant, next to SASRec from the same splits:

    python benchmarks/bench_ablations.py --data data/musical_instruments --out runs/ablations/mi
    python benchmarks/bench_ablations.py --data data/musical_instruments --only recipe,no_history_loss
    python benchmarks/bench_ablations.py --data data/gift_cards --set train.max_minutes=10

Variants (names for --only):
    recipe              the default recipe
    no_history_loss     only the answer is trained (one target per prompt, as P5)
    history_first       the previous templates: words between the history and the answer
    history_first_attn  the same, with attention dropout 0.1 (what made them workable)
    attention_0.1       attention dropout 0.1 instead of the dropout (0.5 on sparse data)
    text_ids            item IDs as digit text ("item_12"), as P5; no single item token to train
    t5_tiny             the previous default: encoder-decoder T5 "tiny", text IDs, every prefix
                        (at most 30 epochs: every prefix is an example, so an epoch is ~5x longer)
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEQUENTIAL_ONLY = [
    f"examples.task_weights.{t}=0" for t in ("direct_yesno", "direct_choice", "rating", "explanation", "review")
]
VARIANTS: dict[str, list[str]] = {
    "recipe": [],
    "no_history_loss": ["train.history_loss=false"],
    "history_first": [f"prompts=[{HERE / 'ablation_prompts' / 'history_first'}]"],
    "history_first_attn": [f"prompts=[{HERE / 'ablation_prompts' / 'history_first'}]", "model.attention_dropout=0.1"],
    "attention_0.1": ["model.attention_dropout=0.1"],
    "text_ids": ["ids.representation=text"],
    "t5_tiny": ["model.backbone=tiny", "model.architecture=t5", "ids.representation=text", "train.epochs=30"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a dataset folder written by `p5rec data prepare`")
    parser.add_argument("--out", default="runs/ablations/run", help="one folder per variant goes here")
    parser.add_argument("--only", help=f"comma-separated variants (default all: {','.join(VARIANTS)})")
    parser.add_argument("--max-templates", type=int, default=1, help="templates per split scored (0: all)")
    parser.add_argument("--seed", type=int, default=0, help="train.seed of every variant")
    parser.add_argument("--threads", type=int, help="torch threads (default: p5rec's choice)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="override for every variant")
    args = parser.parse_args()

    from p5rec.cli.main import main as p5rec

    names = args.only.split(",") if args.only else list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    threads = ["--threads", str(args.threads)] if args.threads else []
    rows = []
    for k, name in enumerate(names):
        out = Path(args.out) / name
        sets = [*SEQUENTIAL_ONLY, f"train.seed={args.seed}", *args.overrides, *VARIANTS[name]]
        train = ["train", "--data", args.data, "--output", str(out / "model"), "--no-progress", *threads]
        train += [x for s in sets for x in ("--set", s)]
        evaluate = ["evaluate", "--model", str(out / "model"), "--out", str(out / "eval"), "--tasks", "sequential"]
        evaluate += ["--no-plots", "--no-progress", "--baselines", "sasrec" if k == 0 else "", *threads]
        if args.max_templates:
            evaluate += ["--max-templates", str(args.max_templates)]
        start = time.perf_counter()
        for command in (train, evaluate):
            print("$ p5rec " + shlex.join(command), flush=True)
            if p5rec(command) != 0:
                raise SystemExit(f"{name}: `p5rec {command[0]}` failed")
        report = json.loads((out / "eval" / "report.json").read_text())
        summary = report["summary"]["sequential"]
        row = {"variant": name, "minutes": round((time.perf_counter() - start) / 60, 1)}
        for split in ("seen", "unseen"):
            for metric in ("hr@10", "ndcg@10"):
                row[f"{split} {metric}"] = summary.get(split, {}).get(metric)
        if k == 0 and "sasrec" in report["baselines"]:
            sasrec = report["baselines"]["sasrec"]["tasks"]["sequential"]
            rows.append(
                {"variant": "SASRec (same splits)", "seen hr@10": sasrec["hr@10"], "seen ndcg@10": sasrec["ndcg@10"]}
            )
        rows.append(row)
        print(json.dumps(row), flush=True)
    (Path(args.out) / "ablations.json").write_text(json.dumps(rows, indent=2))
    head = ["variant", "seen hr@10", "seen ndcg@10", "unseen hr@10", "unseen ndcg@10", "minutes"]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(_fmt(r.get(h)) for h in head) + " |")


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) and v < 1 else ("" if v is None else str(v))


if __name__ == "__main__":
    main()
