"""Evaluation reports: one JSON document, a Markdown table and PNG plots, written atomically.

The report is a plain dict (``build_report``) so it can be diffed, loaded by other tools and
rendered without the objects that produced it:

* ``rows``: one entry per (task, template) with its metrics;
* ``summary``: task -> seen/unseen/all -> metric means over templates;
* ``baselines``: name -> ``{"tasks": {task: metrics}, "fit_s": ...}``;
* ``meta``: what was evaluated (model, data, split, settings, timings).

Plots need matplotlib (``pip install p5rec[plot]``); it is imported only when plotting.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from p5rec._atomic import atomic_path
from p5rec.evaluation.evaluate import EvalResult

REPORT_JSON, REPORT_MD = "report.json", "report.md"
METRICS_PNG, TRAINING_PNG = "metrics.png", "training.png"
# Metrics shown in the Markdown table and plots per task, in order (the JSON keeps everything).
SHOWN: dict[str, tuple[str, ...]] = {
    "sequential": ("hr@1", "hr@5", "ndcg@5", "hr@10", "ndcg@10", "hr@20", "ndcg@20", "mrr"),
    "direct_choice": ("hr@1", "hr@5", "ndcg@5", "hr@10", "ndcg@10", "mrr"),
    "direct_yesno": ("accuracy", "auc"),
    "rating": ("rmse", "mae", "invalid", "greedy_rmse", "greedy_mae"),
    "review_rating": ("rmse", "mae", "invalid", "greedy_rmse", "greedy_mae"),
    "explanation": ("bleu_4", "rouge_1", "rouge_2", "rouge_l", "usr"),
    "review_summary": ("bleu_2", "rouge_1", "rouge_2", "rouge_l", "usr"),
}
SAMPLE_WIDTH = 160  # characters of a prompt shown in the report's sample answers
LOWER_IS_BETTER = frozenset({"rmse", "mae", "invalid", "greedy_rmse", "greedy_mae", "greedy_invalid"})
BASELINE_LABELS = {
    "mostpop": "MostPop",
    "itemknn": "ItemKNN",
    "bpr": "BPR-MF",
    "sasrec": "SASRec",
    "mf": "BiasedMF",
    "lead": "Lead",
    "retrieval": "Retrieval",
}


def build_report(
    result: EvalResult, baselines: dict[str, dict[str, Any]] | None = None, meta: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Combine the model's per-template results, the baselines and run metadata into one dict.

    Args:
        result: what :func:`~p5rec.evaluation.evaluate.evaluate` returned.
        baselines: what :func:`~p5rec.evaluation.protocol.evaluate_baselines` returned.
        meta: free-form provenance (model path, data, split, settings, timings).
    """
    if not isinstance(result, EvalResult):
        raise TypeError(f"`result` must be an EvalResult, got {type(result).__name__}")
    return {**result.to_dict(), "baselines": baselines or {}, "meta": meta or {}}


def markdown_table(report: dict[str, Any]) -> str:
    """Per task and metric: the model on seen and unseen templates, then each baseline.

    A baseline column is empty where it does not answer the task; the best value of a row
    (model seen/unseen vs baselines) is in bold, so wins and losses read at a glance.
    """
    names = list(report.get("baselines", {}))
    head = ["task", "metric", "p5rec seen", "p5rec unseen", *(BASELINE_LABELS.get(n, n) for n in names)]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    for task, splits in report.get("summary", {}).items():
        for metric in SHOWN.get(task, ()):
            values = [splits.get("seen", {}).get(metric), splits.get("unseen", {}).get(metric)]
            values += [report["baselines"][n]["tasks"].get(task, {}).get(metric) for n in names]
            if all(v is None for v in values[:2]):
                continue
            lines.append("| " + " | ".join([task, metric, *_bold_best(values, metric)]) + " |")
    per_template = ["", "Per template:", "", "| task | template | split | n | metrics |", "|---|---|---|---:|---|"]
    for row in report.get("rows", []):
        shown = ", ".join(f"{m} {_fmt(row['metrics'][m])}" for m in SHOWN.get(row["task"], ()) if m in row["metrics"])
        per_template.append(f"| {row['task']} | {row['template']} | {row['template_split']} | {row['n']} | {shown} |")
    return "\n".join(lines + per_template + _samples(report.get("rows", []))) + "\n"


def _samples(rows: list[dict[str, Any]], width: int = SAMPLE_WIDTH) -> list[str]:
    """Each template's sample prompts, references and answers (`EvalConfig.samples`), prompts cut
    to their last `width` characters (where the history ends and the question is)."""
    out: list[str] = []
    for row in rows:
        if not row.get("samples"):
            continue
        if not out:
            out = ["", "Sample answers (the first examples of each template):"]
        out += ["", f"{row['task']} / {row['template']} ({row['template_split']}):", ""]
        out += ["| prompt | reference | answer |", "|---|---|---|"]
        for sample in row["samples"]:
            prompt = sample["input"] if len(sample["input"]) <= width else "..." + sample["input"][-width:]
            cells = [prompt, sample["target"], sample["answer"]]
            out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return out


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _bold_best(values: list[float | None], metric: str) -> list[str]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if metric in ("invalid", "greedy_invalid") or len(finite) < 2:
        return [_fmt(v) for v in values]
    best = min(finite) if metric in LOWER_IS_BETTER else max(finite)
    return [f"**{_fmt(v)}**" if v is not None and v == best else _fmt(v) for v in values]


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1):
        return str(int(value))
    return f"{value:.4f}"


def read_train_log(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Entries of a ``train_log.jsonl``; a damaged line is an error naming the file and line."""
    entries = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}, line {n}: not valid JSON ({e.msg})") from None
    return entries


def plot_metrics(report: dict[str, Any], path: str | os.PathLike) -> Path:
    """One bar chart per task: the headline metric per template, seen and unseen told apart by colour."""
    figure_cls = _figure_class()
    tasks = [t for t in SHOWN if any(r["task"] == t for r in report.get("rows", []))]
    if not tasks:
        raise ValueError("the report has no rows to plot: evaluate at least one task first")
    cols = min(3, len(tasks))
    rows_n = math.ceil(len(tasks) / cols)
    fig = figure_cls(figsize=(5 * cols, 3.2 * rows_n))
    axes = fig.subplots(rows_n, cols, squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        metric = _headline(task, report)
        rows = [r for r in report["rows"] if r["task"] == task and metric in r["metrics"]]
        colors = ["tab:blue" if r["template_split"] == "seen" else "tab:orange" for r in rows]
        ax.bar([r["template"] for r in rows], [r["metrics"][metric] for r in rows], color=colors)
        for name, entry in report.get("baselines", {}).items():
            value = entry["tasks"].get(task, {}).get(metric)
            if value is not None and math.isfinite(value):
                ax.axhline(value, linestyle="--", linewidth=1, color="gray")
                ax.annotate(BASELINE_LABELS.get(name, name), (0, value), fontsize=7, color="gray")
        ax.set_title(f"{task}: {metric} (blue seen, orange unseen)", fontsize=9)
        ax.tick_params(axis="x", labelrotation=60, labelsize=7)
    for ax in list(axes.flat)[len(tasks) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(Path(path), format="png", dpi=110)
    return Path(path)


def plot_training(entries: list[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Training loss per step, with any per-epoch evaluation metrics on a second axis."""
    figure_cls = _figure_class()
    losses = [(e["step"], e["loss"]) for e in entries if "loss" in e and "step" in e]
    if not losses:
        raise ValueError("the training log has no entry with `step` and `loss`: nothing to plot")
    fig = figure_cls(figsize=(6, 3.5))
    ax = fig.subplots()
    ax.plot(*zip(*losses), label="train loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    extra = sorted({k for e in entries if "loss" not in e for k, v in e.items() if isinstance(v, (int, float))})
    extra = [k for k in extra if k not in ("step", "epoch")]
    if extra:
        ax2 = ax.twinx()
        for key in extra:
            points = [(e["step"], e[key]) for e in entries if key in e and "step" in e]
            ax2.plot(*zip(*points), marker="o", linestyle="--", label=key)
        ax2.legend(loc="upper right", fontsize=7)
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    fig.savefig(Path(path), format="png", dpi=110)
    return Path(path)


def _headline(task: str, report: dict[str, Any]) -> str:
    keys = {k for r in report["rows"] if r["task"] == task for k in r["metrics"]}
    for metric in ("ndcg@10", "hr@5", "accuracy", "rmse", "bleu_4", "bleu_2", "rouge_l"):
        if metric in keys:
            return metric
    return sorted(keys)[0]


def write_report(
    report: dict[str, Any],
    out_dir: str | os.PathLike,
    train_log: str | os.PathLike | None = None,
    plots: bool = True,
) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and (with `plots`) ``metrics.png`` / ``training.png``.

    Each file goes to a temporary name in `out_dir` first and is renamed over the target, so a
    reader (or a crash) never sees half a report.

    Args:
        report: a dict from :func:`build_report`.
        out_dir: folder to write into (created if missing).
        train_log: a ``train_log.jsonl`` to plot as training curves (skipped when None).
        plots: write the PNG plots (needs matplotlib).

    Returns:
        file kind -> path written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": _atomic(out / REPORT_JSON, lambda p: p.write_text(json.dumps(_jsonable(report), indent=2))),
        "markdown": _atomic(out / REPORT_MD, lambda p: p.write_text(markdown_table(report))),
    }
    if plots:
        paths["metrics_plot"] = _atomic(out / METRICS_PNG, lambda p: plot_metrics(report, p))
        if train_log is not None:
            entries = read_train_log(train_log)
            paths["training_plot"] = _atomic(out / TRAINING_PNG, lambda p: plot_training(entries, p))
    return paths


def _atomic(path: Path, write: Callable[[Path], Any]) -> Path:
    with atomic_path(path) as tmp:
        write(tmp)  # the plots name their format, so the temporary name needs no suffix
    return path


def _jsonable(obj: Any) -> Any:
    """NaN/inf become None: JSON has no NaN, and a strict reader would reject the file."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _jsonable(obj.item())
    return obj


def _figure_class():
    """matplotlib's Figure, used without pyplot: no global backend switch, no window, no display."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'p5rec[plot]' (or pass --no-plots)") from None
    return Figure
