"""`p5rec evaluate`: score a saved model on every task with P5's protocol, baselines side by side.

The model directory holds its run config; the same splits are rebuilt from the same data (the
synthetic generator's settings, or the prepared dataset it names, or `--data`), and prompts are
rendered with the model's own item/user ID indexes and templates. Writes report.json, report.md
and PNG plots into `--out`.

P5's full protocol scores every template on every test user: hours for a real dataset on a CPU.
`--max-templates 1 --max-users 500` gives the seen/unseen comparison in minutes; a line per
template shows how far the run is and about how long the rest will take.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from p5rec.decoding.beams import DEFAULT_NUM_BEAMS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a saved model on every task, with baselines, into JSON/Markdown/PNG reports",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, help="a model directory written by training (save_pretrained)")
    p.add_argument("--data", help="a dataset prepared by `p5rec data prepare` (default: the model's own data)")
    p.add_argument("--split", choices=("test", "valid"), default="test", help="which held-out split (default test)")
    p.add_argument("--tasks", help="comma-separated tasks (default: all), e.g. sequential,rating")
    p.add_argument("--max-users", type=int, help="users (ranking) or reviews (text, rating) per template")
    p.add_argument(
        "--num-beams", type=int, help=f"beam width for ranking (default max({DEFAULT_NUM_BEAMS}, largest k), as P5)"
    )
    p.add_argument("--text-beams", type=int, default=1, help="beams for explanations and summaries (default 1)")
    p.add_argument("--templates", help="comma-separated template ids to score (default: all usable)")
    p.add_argument("--max-templates", type=int, help="score at most N templates per task and seen/unseen split")
    p.add_argument("--no-greedy-rating", action="store_true", help="skip the most-likely-rating metrics (greedy_*)")
    p.add_argument(
        "--samples",
        type=int,
        default=0,
        help="print N prompts, references and answers per template in report.md (default 0: none)",
    )
    p.add_argument(
        "--baselines",
        default="",
        help="comma-separated: mostpop,itemknn,bpr,sasrec,mf,lead,retrieval, or 'all' (default: none)",
    )
    p.add_argument("--sasrec-epochs", type=int, help="SASRec's maximum epochs (default 100, early stopping)")
    p.add_argument("--export-recbole", metavar="DIR", help="also write the data as RecBole atomic files to DIR")
    p.add_argument("--out", help="report folder (default: MODEL/eval-SPLIT)")
    p.add_argument("--batch-size", type=int, default=32, help="prompts per forward pass (default 32)")
    p.add_argument("--device", default="auto", help="cpu, cuda, or auto (default)")
    p.add_argument("--seed", type=int, default=2022, help="seeds users, negatives and subsamples (default 2022)")
    p.add_argument("--no-plots", action="store_true", help="write JSON and Markdown only (no matplotlib)")
    p.add_argument("--no-progress", action="store_true", help="no per-template progress lines")
    p.set_defaults(func=run)


def _names(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def eval_config(args: argparse.Namespace):
    """The EvalConfig the flags describe; bad values are errors naming the flag."""
    from p5rec.evaluation.config import DEFAULT_TASKS, EvalConfig

    for flag in ("max_users", "max_templates", "batch_size", "sasrec_epochs"):
        value = getattr(args, flag, None)
        if value is not None and value < 1:
            raise ValueError(f"`--{flag.replace('_', '-')}` ({value}) must be >= 1")
    if getattr(args, "samples", 0) < 0:
        raise ValueError(f"`--samples` ({args.samples}) must be >= 0")
    tasks = _names(args.tasks) or list(DEFAULT_TASKS)
    return EvalConfig(
        tasks=tasks,
        split=args.split,
        max_users=args.max_users,
        num_beams=args.num_beams,
        text_beams=args.text_beams,
        seed=args.seed,
        max_templates=args.max_templates,
        templates=_names(args.templates),
        greedy_rating=not args.no_greedy_rating,
        samples=getattr(args, "samples", 0),
    )


def rebuild_builder(rec, data_dir: str | None = None):
    """The model's splits and examples: `p5rec.pipeline.prepare` with the model's own ID indexes and templates.

    Returns:
        ``(builder, data)``.
    """
    from p5rec.data.tables import RecData
    from p5rec.pipeline import load_data, prepare

    config = rec.config
    if data_dir is not None:
        if not Path(data_dir).is_dir():
            raise FileNotFoundError(f"`--data` {data_dir} is not a folder written by `p5rec data prepare`")
        data = RecData.load_from_disk(data_dir)
    else:
        source = config.data.source
        if source != "synthetic" and not Path(source).is_dir():
            raise FileNotFoundError(
                f"the model was trained on {source}, which does not exist here: pass `--data DIR` "
                "(the same dataset, prepared the same way)"
            )
        data = load_data(config)
    prepared = prepare(config, data, items=rec.items, users=rec.users, templates=rec.templates)
    return prepared.builder, data


def evaluate_with_progress(predictor, builder, cfg, progress: bool = True):
    """`evaluate` one template at a time, printing [k/N], the time taken and an estimate of the time left.

    Each template draws its users and negatives from the same seed either way, so the result equals
    one `evaluate` call over all of them.
    """
    from p5rec.evaluation.evaluate import EvalResult, evaluate

    plan = [(task, tpl) for task in cfg.tasks for tpl in cfg.select_templates(builder, task)]
    if progress:
        per = f"up to {cfg.max_users} users or reviews each" if cfg.max_users else "every test user or review"
        print(
            f"evaluating {len(plan)} templates of {len({t for t, _ in plan})} tasks, {per} "
            "(narrow with --tasks, --max-templates, --max-users)",
            flush=True,
        )
    result = EvalResult()
    seconds: dict[str, list[float]] = {}
    for k, (task, tpl) in enumerate(plan, start=1):
        one = dataclasses.replace(cfg, tasks=(task,), templates=(tpl.id,), max_templates=None)
        start = time.perf_counter()
        rows = evaluate(predictor, builder, one, progress=False).rows
        seconds.setdefault(task, []).append(time.perf_counter() - start)
        result.rows += rows
        if progress:
            every = [s for times in seconds.values() for s in times]
            left = sum(_mean(seconds.get(t) or every) for t, _ in plan[k:])
            shown = {m: round(v, 4) for m, v in list(rows[0]["metrics"].items())[:4]} if rows else "no examples"
            n = rows[0]["n"] if rows else 0
            print(
                f"  [{k}/{len(plan)}] {task}/{tpl.id} ({tpl.split}, n={n}) {seconds[task][-1]:.0f}s: {shown}"
                + (f"; about {_duration(left)} left" if k < len(plan) else ""),
                flush=True,
            )
    return result


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds < 90 else f"{seconds / 60:.0f} min"


def find_train_log(model_dir: Path, config) -> Path | None:
    """``train_log.jsonl`` in the model folder, its parent, or the run's `train.output_dir` (`config`: a RunConfig)."""
    candidates = [model_dir / "train_log.jsonl", model_dir.parent / "train_log.jsonl"]
    output_dir = config.train.output_dir
    if output_dir:
        candidates.insert(1, Path(output_dir) / "train_log.jsonl")
    return next((c for c in candidates if c.is_file()), None)


def run(args: argparse.Namespace) -> int:
    from p5rec.api import Recommender
    from p5rec.evaluation.baselines import SASRecConfig
    from p5rec.evaluation.protocol import BaselineConfig, evaluate_baselines, parse_baselines
    from p5rec.evaluation.report import build_report, markdown_table, write_report

    cfg = eval_config(args)
    baselines = parse_baselines(args.baselines)
    model_dir = Path(args.model)
    out = Path(args.out) if args.out else model_dir / f"eval-{cfg.split}"
    progress = not args.no_progress

    rec = Recommender.from_pretrained(model_dir, device=args.device, batch_size=args.batch_size)
    builder, data = rebuild_builder(rec, args.data)
    if args.export_recbole:
        from p5rec.data.export import export_recbole

        target = Path(args.export_recbole)
        paths = export_recbole(data, target, target.name)
        print(f"wrote RecBole atomic files {paths['inter']} and {paths['item']}")

    timings: dict[str, float] = {}
    start = time.perf_counter()
    result = evaluate_with_progress(rec.predictor, builder, cfg, progress=progress)
    timings["model_s"] = time.perf_counter() - start
    if not result.rows:
        raise ValueError(f"nothing was evaluated: no usable template for tasks {list(cfg.tasks)} on this data")
    start = time.perf_counter()
    sasrec = SASRecConfig(epochs=args.sasrec_epochs) if args.sasrec_epochs else None
    scores = evaluate_baselines(builder, cfg, baselines, BaselineConfig(sasrec=sasrec), progress=progress)
    timings["baselines_s"] = time.perf_counter() - start

    meta = {
        "model": str(model_dir),
        "data": args.data or rec.config.data.source,
        "dataset": data.name,
        "split": cfg.split,
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(cfg).items()},
        "timings": timings,
    }
    report = build_report(result, scores, meta)
    train_log = find_train_log(model_dir, rec.config)
    paths = write_report(report, out, train_log=train_log, plots=not args.no_plots)
    print(markdown_table(report).split("\nPer template:")[0])
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    if progress:
        print(json.dumps({"timings_s": {k: round(v, 1) for k, v in timings.items()}}))
    return 0
