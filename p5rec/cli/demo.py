"""`p5rec demo`: generate data, train, evaluate and recommend, offline, in a few minutes on a CPU.

Every stage of the library runs for real on the built-in synthetic data (or on a dataset prepared
with `p5rec data prepare`, via `--data DIR`), with the default recipe (`p5rec.recipe`): the point
is a complete, honest run a new user can watch end to end, with the baselines a user would compare
against (most popular items, item-to-item neighbours, SASRec) printed beside the model.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from p5rec.cli._args import add_override_argument

DEMO_SETTINGS = {
    # The default recipe trains; the demo only bounds the evaluation: 500 users, one seen and one
    # held-out template per task.
    "eval": {"max_users": 500, "max_templates": 1},
}
QUICK = {  # --quick: a smoke run of every stage, minutes at most even on a real dataset
    "train": {"epochs": 2},
    "validation": {"max_users": 100},
    "eval": {"max_users": 50, "max_templates": 1},
}
DEMO_BASELINES = ("mostpop", "itemknn", "sasrec")
# The simple baseline of each other task, shown when the data trains it: a rating, summary or
# explanation from p5rec is only worth reading next to what a user would try first.
TASK_BASELINES = (("mf", "rating"), ("lead", "review_summary"), ("retrieval", "explanation"))


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="train and evaluate on built-in data, then recommend (offline, CPU, minutes)",
        description="Generate the built-in dataset, train a small model on every task, evaluate it next to "
        "MostPop, ItemKNN and SASRec on the same users, save it, reload it and print recommendations.",
    )
    p.add_argument("--config", help="YAML run config layered over the demo settings")
    add_override_argument(p)
    p.add_argument("--data", help="a dataset prepared by `p5rec data prepare` instead of the built-in one")
    p.add_argument("--users", type=int, help="built-in data: number of users (default 1000)")
    p.add_argument("--items", type=int, help="built-in data: number of items (default 300)")
    p.add_argument("--epochs", type=int, help="most training epochs (default: the recipe's 200, early stopping)")
    p.add_argument(
        "--output", default="runs/demo-model", help="where the trained model is saved (default runs/demo-model)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed for data, model and training (default 0)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run (2 epochs, 50 users; tiny data unless --data) to check the install",
    )
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run)


def demo_config(args: argparse.Namespace):
    """Demo defaults < --config file < flags < --set overrides."""
    import copy

    from p5rec.config import RunConfig, apply_overrides, from_dict, read_yaml_mapping

    values = copy.deepcopy(DEMO_SETTINGS)
    if args.config:
        _merge(values, read_yaml_mapping(args.config))
    synthetic = values.setdefault("data", {}).setdefault("synthetic", {})
    synthetic["seed"] = args.seed
    values.setdefault("train", {})["seed"] = args.seed
    if args.quick:
        _merge(values, copy.deepcopy(QUICK))
        if not args.data:
            synthetic.update({"num_users": 200, "num_items": 60, "num_categories": 6})
    if args.users:
        synthetic["num_users"] = args.users
    if args.items:
        synthetic["num_items"] = args.items
    if args.epochs:
        values["train"]["epochs"] = args.epochs
    if args.data:
        values["data"]["source"] = args.data
    values["output_dir"] = args.output
    apply_overrides(values, args.overrides)
    return from_dict(RunConfig, values, args.config or "demo settings")


def run(args: argparse.Namespace) -> int:
    import transformers
    from rich.console import Console

    from p5rec.api import Recommender, check_model_dir
    from p5rec.evaluation.baselines import SASRecConfig
    from p5rec.evaluation.evaluate import EvalConfig, evaluate
    from p5rec.evaluation.protocol import BaselineConfig, evaluate_baselines
    from p5rec.pipeline import (
        build_model,
        item_token_ids,
        make_recommender,
        make_validator,
        read_out,
        resolve_and_prepare,
        train_phases,
    )
    from p5rec.recipe import describe
    from p5rec.training.phases import describe_first

    transformers.utils.logging.disable_progress_bar()  # per-file weight bars drown the demo's own output
    console = Console()
    config = demo_config(args)
    check_model_dir(config.output_dir, "--output")
    progress = not args.no_progress
    t_all = time.perf_counter()

    console.rule("[bold]1. Data")
    config, (prepared,) = resolve_and_prepare(config)
    stats = prepared.data.stats()
    console.print(
        f"dataset [bold]{prepared.data.name}[/]: {stats['users']} users, {stats['items']} items, "
        f"{stats['interactions']} interactions (density {stats['density']:.4f}), "
        f"mean sequence length {stats['seq_len_mean']:.1f}"
    )
    console.print(
        f"item IDs: {config.ids.scheme} scheme, e.g. {prepared.items.id_strings()[:3]}; "
        f"{len(prepared.templates)} prompt templates"
    )
    sample = prepared.builder.eval_examples(
        "sequential", "test", __import__("numpy").random.default_rng(0), max_contexts=1
    )[0]
    console.print(f"example prompt: [italic]{sample.input}[/] -> [green]{sample.target}[/]")

    console.rule("[bold]2. Model and training")
    console.print(f"recipe: {describe(config)}")
    model, tokenizer = build_model(config, prepared)
    n_params = sum(p.numel() for p in model.parameters())
    console.print(
        f"backbone: {config.model.backbone} {config.model.architecture} ({n_params / 1e6:.2f}M parameters), "
        f"tokenizer: SentencePiece with {len(tokenizer)} pieces, fine-tuning: {config.finetune}"
    )
    validate = make_validator(config, [prepared], tokenizer)
    result, first = train_phases(
        config,
        model,
        tokenizer,
        prepared.builder,
        validate,
        progress,
        item_tokens=item_token_ids(tokenizer, [prepared]),
    )
    if first is not None:
        console.print(describe_first(first))
    console.print(result.describe(config.train.early_stopping_metric))

    # The answers are read as `p5rec train`'s are: text with the copy prior (or chosen), ratings centred.
    read = read_out(config, model, tokenizer, prepared.builder, prepared)
    rec = make_recommender(config, prepared, model, tokenizer, read)
    for line in read.describe(config):
        console.print(line)
    catalog = rec.catalog

    console.rule("[bold]3. Evaluation (test split)")
    eval_cfg = EvalConfig(**{**config.eval.__dict__, "split": "test"})
    results = evaluate(rec.predictor, prepared.builder, eval_cfg, progress=progress)
    console.print("fitting the baselines on the same training split (SASRec with early stopping on valid) ...")
    budget = BaselineConfig(sasrec=SASRecConfig(epochs=5)) if args.quick else None
    names = [*DEMO_BASELINES, *(b for b, task in TASK_BASELINES if prepared.builder.trains(task))]
    baselines = evaluate_baselines(prepared.builder, eval_cfg, names, budget, progress=False)
    _print_table(console, results, baselines)

    console.rule("[bold]4. Save, reload, recommend")
    out = Path(config.output_dir)
    rec.save_pretrained(out)
    report = {"model": results.to_dict(), "baselines": {k: v["tasks"] for k, v in baselines.items()}}
    (out / "eval_results.json").write_text(json.dumps(report, indent=2))
    reloaded = Recommender.from_pretrained(out)
    console.print(f"saved to {out}/ and reloaded")
    users = prepared.data.user_ids[:3]
    for user in users:
        recs = reloaded.recommend(user=user, k=5)
        hist = [catalog[i]["title"] for i in prepared.splits.sequences[user][-3:]]
        console.print(f"\n[bold]{user}[/] recently bought: {', '.join(hist)}")
        for r in recs:
            console.print(f"  {r.rank}. {r.title} [dim]({r.item_id}, {r.id_string}, score {r.score:.2f})[/]")
        console.print(f"  [green]{recs.sentence}[/]")
    user, item = users[0], prepared.splits.sequences[users[0]][-1]
    console.print(
        f"\npredicted rating of {catalog[item]['title']} by {user}: {reloaded.predict_rating(user, item):.2f}"
    )
    console.print(f"explanation: {reloaded.explain(user, item, feature='sound')}")
    first = prepared.data.interactions[0]  # a review of a known item: its own titles are candidates
    review = first["review"]
    console.print(f'summary of "{review}": {reloaded.summarize(review, item=first["item_id"])}')
    console.rule(f"done in {time.perf_counter() - t_all:.0f}s")
    return 0


def _print_table(console, results, baselines: dict) -> None:
    from rich.table import Table

    names = {
        "mostpop": "MostPop",
        "itemknn": "ItemKNN",
        "sasrec": "SASRec",
        "mf": "BiasedMF",
        "lead": "Lead",
        "retrieval": "Retrieval",
    }
    shown_baselines = [b for b in names if b in baselines]
    table = Table(title="metrics per task (mean over templates; seen = trained prompts, unseen = held out)")
    for col in ("task", "metric", "seen", "unseen", *(names[b] for b in shown_baselines)):
        table.add_column(col, justify="right" if col not in ("task", "metric") else "left")
    shown = {
        "sequential": ["hr@5", "ndcg@5", "hr@10", "ndcg@10"],
        "direct_choice": ["hr@1", "hr@5", "ndcg@5", "hr@10"],
        "direct_yesno": ["accuracy", "auc"],
        "rating": ["rmse", "mae"],
        "review_rating": ["rmse", "mae"],
        "explanation": ["bleu_4", "rouge_1", "rouge_l"],
        "review_summary": ["bleu_2", "rouge_1", "rouge_l"],
    }
    for task, metrics in shown.items():
        seen, unseen = results.by_task(task, "seen"), results.by_task(task, "unseen")
        if not seen and not unseen:
            continue
        for m in metrics:
            base = [_fmt(baselines[b]["tasks"].get(task, {}).get(m)) for b in shown_baselines]
            table.add_row(task, m, _fmt(seen.get(m)), _fmt(unseen.get(m)), *base)
    console.print(table)


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.4f}"


def _merge(base: dict, extra: dict) -> None:
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v
