"""`p5rec demo`: generate data, train, evaluate and recommend, offline, in a few minutes on a CPU.

Every stage of the library runs for real on the built-in synthetic data (or on a dataset prepared
with `p5rec data prepare`, via `--data DIR`): the point is a complete, honest run a new user can
watch end to end, with the popularity baseline printed beside the model.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from p5rec.cli.main import add_override_argument

DEMO_SETTINGS = {
    # About 6 minutes on 2 idle CPU cores. The sequential task gets twice the examples: it is the one a
    # scratch model learns slowest (item-to-item transitions must be memorized, text tasks are patterns).
    "model": {"backbone": "tiny", "vocab_size": 1000, "max_input_length": 192},
    "train": {"epochs": 14, "batch_size": 64, "learning_rate": 3e-3, "log_every": 25},
    "examples": {
        "max_history": 10,
        "task_weights": {
            "sequential": 2.0,
            "direct_choice": 0.5,
            "direct_yesno": 0.25,
            "rating": 0.25,
            "explanation": 0.25,
            "review": 0.15,
        },
    },
    "eval": {"max_users": 500, "num_beams": 20, "max_templates": 1},
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="train and evaluate on built-in data, then recommend (offline, CPU, minutes)",
        description="Generate the built-in dataset, train a small model on every task, evaluate it next to a "
        "popularity baseline, save it, reload it and print recommendations.",
    )
    p.add_argument("--config", help="YAML run config layered over the demo settings")
    add_override_argument(p)
    p.add_argument("--data", help="a dataset prepared by `p5rec data prepare` instead of the built-in one")
    p.add_argument("--users", type=int, help="built-in data: number of users (default 1000)")
    p.add_argument("--items", type=int, help="built-in data: number of items (default 300)")
    p.add_argument("--epochs", type=int, help="training epochs (default 14)")
    p.add_argument(
        "--output", default="runs/demo-model", help="where the trained model is saved (default runs/demo-model)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed for data, model and training (default 0)")
    p.add_argument("--quick", action="store_true", help="a tiny run (1-2 minutes) to check the install")
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
        synthetic.update({"num_users": 200, "num_items": 60, "num_categories": 6})
        values["train"]["epochs"] = 3
        values["eval"]["max_users"] = 50
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

    from p5rec.api import Recommender
    from p5rec.evaluation.baselines import MostPop
    from p5rec.evaluation.evaluate import EvalConfig, evaluate, evaluate_ranker
    from p5rec.pipeline import build_model, make_recommender, prepare
    from p5rec.training.trainer import train

    transformers.utils.logging.disable_progress_bar()  # per-file weight bars drown the demo's own output
    console = Console()
    config = demo_config(args)
    progress = not args.no_progress
    t_all = time.perf_counter()

    console.rule("[bold]1. Data")
    prepared = prepare(config)
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
    model, tokenizer = build_model(config, prepared)
    n_params = sum(p.numel() for p in model.parameters())
    console.print(
        f"backbone: {config.model.backbone} {config.model.architecture} ({n_params / 1e6:.2f}M parameters), "
        f"tokenizer: SentencePiece with {len(tokenizer)} pieces, fine-tuning: {config.finetune}"
    )
    result = train(model, tokenizer, prepared.builder, config.train, config.model, progress=progress)
    console.print(
        f"trained {result.steps} steps on {result.examples} examples in {result.seconds:.0f}s; "
        f"final loss {result.final_loss:.3f}"
    )

    rec = make_recommender(config, prepared, model, tokenizer)
    catalog = rec.catalog

    console.rule("[bold]3. Evaluation (test split)")
    eval_cfg = EvalConfig(**{**config.eval.__dict__, "split": "test"})
    results = evaluate(rec.predictor, prepared.builder, eval_cfg, progress=progress)
    pop = MostPop().fit(prepared.splits.train_sequences(), prepared.data.item_ids)
    pop_metrics = evaluate_ranker(pop, prepared.builder, eval_cfg)
    _print_table(console, results, pop_metrics)

    console.rule("[bold]4. Save, reload, recommend")
    out = Path(config.output_dir)
    rec.save_pretrained(out)
    (out / "eval_results.json").write_text(json.dumps({"model": results.to_dict(), "mostpop": pop_metrics}, indent=2))
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
    review = prepared.data.interactions[0]["review"]
    console.print(f'summary of "{review}": {reloaded.summarize(review)}')
    console.rule(f"done in {time.perf_counter() - t_all:.0f}s")
    return 0


def _print_table(console, results, pop_metrics: dict[str, float]) -> None:
    from rich.table import Table

    table = Table(title="metrics per task (mean over templates; seen = trained prompts, unseen = held out)")
    for col in ("task", "metric", "seen", "unseen", "MostPop"):
        table.add_column(col, justify="right" if col not in ("task", "metric") else "left")
    shown = {
        "sequential": ["hr@5", "ndcg@5", "hr@10", "ndcg@10"],
        "direct_choice": ["hr@1", "hr@5", "ndcg@5"],
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
            base = f"{pop_metrics[m]:.4f}" if task == "sequential" and m in pop_metrics else ""
            table.add_row(task, m, _fmt(seen.get(m)), _fmt(unseen.get(m)), base)
    console.print(table)


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.4f}"


def _merge(base: dict, extra: dict) -> None:
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v
