"""Reports (JSON, Markdown, PNG) and `p5rec evaluate` run in-process on a tiny saved model."""

from __future__ import annotations

import json
import math

import pytest

from p5rec.cli.main import main
from p5rec.evaluation.evaluate import EvalResult
from p5rec.evaluation.report import build_report, markdown_table, read_train_log, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _report() -> dict:
    rows = [
        {"task": "sequential", "family": "sequential", "template": "s-1", "template_split": "seen", "n": 4,
         "metrics": {"hr@5": 0.5, "ndcg@10": 0.25, "mrr": 0.2}},
        {"task": "sequential", "family": "sequential", "template": "s-9", "template_split": "unseen", "n": 4,
         "metrics": {"hr@5": 0.25, "ndcg@10": 0.125, "mrr": 0.1}},
        {"task": "rating", "family": "rating", "template": "r-1", "template_split": "seen", "n": 4,
         "metrics": {"rmse": 1.1, "mae": 0.9, "invalid": 0, "greedy_rmse": math.nan}},
    ]  # fmt: skip
    baselines = {
        "mostpop": {"tasks": {"sequential": {"hr@5": 0.75, "ndcg@10": 0.1, "mrr": 0.05}}, "fit_s": 0.0},
        "mf": {"tasks": {"rating": {"rmse": 1.3, "mae": 0.8, "invalid": 0}}, "fit_s": 1.0},
    }
    return build_report(EvalResult(rows), baselines, {"split": "test"})


def test_markdown_table_puts_model_and_baselines_side_by_side():
    md = markdown_table(_report())
    lines = md.splitlines()
    assert lines[0] == "| task | metric | p5rec seen | p5rec unseen | MostPop | BiasedMF |"
    assert "| sequential | hr@5 | 0.5000 | 0.2500 | **0.7500** |  |" in lines  # higher is better
    assert "| sequential | ndcg@10 | **0.2500** | 0.1250 | 0.1000 |  |" in lines
    assert "| rating | rmse | **1.1000** |  |  | 1.3000 |" in lines  # lower is better
    assert "| rating | mae | 0.9000 |  |  | **0.8000** |" in lines
    assert "| sequential | s-9 | unseen | 4 | hr@5 0.2500, ndcg@10 0.1250, mrr 0.1000 |" in lines


def test_write_report_files(tmp_path):
    log = tmp_path / "train_log.jsonl"
    entries = [{"step": 1, "loss": 3.0}, {"step": 2, "loss": 2.5}, {"step": 2, "hr@10": 0.1}]
    log.write_text("\n".join(json.dumps(e) for e in entries))
    paths = write_report(_report(), tmp_path / "out", train_log=log)
    assert set(paths) == {"json", "markdown", "metrics_plot", "training_plot"}
    data = json.loads(paths["json"].read_text())
    assert set(data) == {"rows", "summary", "baselines", "meta"}
    assert data["rows"][2]["metrics"]["greedy_rmse"] is None  # NaN is not JSON
    assert data["summary"]["sequential"]["seen"]["hr@5"] == 0.5
    assert data["summary"]["sequential"]["all"]["hr@5"] == pytest.approx(0.375)
    for kind in ("metrics_plot", "training_plot"):
        assert paths[kind].read_bytes()[:8] == PNG_MAGIC
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "metrics.png",
        "report.json",
        "report.md",
        "training.png",
    ]  # fmt: skip  (no temporary file left behind)


def test_read_train_log_names_the_damaged_line(tmp_path):
    log = tmp_path / "train_log.jsonl"
    log.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, loss}\n')
    with pytest.raises(ValueError, match=r"train_log.jsonl, line 2: not valid JSON"):
        read_train_log(log)


def test_build_report_rejects_a_plain_dict():
    with pytest.raises(TypeError, match="`result` must be an EvalResult, got dict"):
        build_report({"rows": []})


def test_cli_evaluate_writes_reports_and_recbole_export(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "eval"
    code = main(
        [
            "evaluate", "--model", str(tiny_model_dir), "--out", str(out), "--max-users", "5",
            "--max-templates", "1", "--baselines", "mostpop,mf,lead", "--no-progress", "--samples", "2",
            "--export-recbole", str(tmp_path / "recbole" / "tiny"),
        ]
    )  # fmt: skip
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert {r["task"] for r in report["rows"]} == {
        "sequential", "direct_choice", "direct_yesno", "rating", "explanation", "review_summary", "review_rating",
    }  # fmt: skip
    assert set(report["baselines"]) == {"mostpop", "mf", "lead"}
    assert report["meta"]["split"] == "test" and report["meta"]["settings"]["max_users"] == 5
    md = (out / "report.md").read_text()
    assert md.startswith("| task | metric | p5rec seen | p5rec unseen | MostPop | BiasedMF | Lead |")
    assert "| review_summary | bleu_2 |" in md
    assert all(len(r["samples"]) == 2 for r in report["rows"])  # --samples 2: in the JSON and the Markdown
    assert "Sample answers" in md and "| prompt | reference | answer |" in md
    assert (out / "metrics.png").read_bytes()[:8] == PNG_MAGIC
    inter = (tmp_path / "recbole" / "tiny" / "tiny.inter").read_text().splitlines()
    assert inter[0] == "user_id:token\titem_id:token\trating:float\ttimestamp:float" and len(inter) > 40
    assert "| sequential | hr@5 |" in capsys.readouterr().out


def test_cli_evaluate_errors_are_one_line(tiny_model_dir, tmp_path, capsys):
    assert main(["evaluate", "--model", str(tmp_path / "nope")]) == 1
    assert "p5rec evaluate: error: model directory" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(tiny_model_dir), "--baselines", "ncf", "--out", str(tmp_path)]) == 1
    assert "unknown name(s) ['ncf']" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(tiny_model_dir), "--max-users", "0"]) == 1
    assert "`--max-users` (0) must be >= 1" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(tiny_model_dir), "--samples", "-1"]) == 1
    assert "`--samples` (-1) must be >= 0" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(tiny_model_dir), "--data", str(tmp_path / "missing")]) == 1
    assert "is not a folder written by `p5rec data prepare`" in capsys.readouterr().err


def test_evaluate_shows_progress_and_an_estimate_and_scores_as_one_call(tiny_fit, capsys):
    """#17 item 10: a long evaluation says how far it is and about how long is left."""
    import re

    from p5rec.cli.evaluate import evaluate_with_progress
    from p5rec.evaluation.evaluate import EvalConfig, evaluate

    rec, builder = tiny_fit.recommender, tiny_fit.prepared.builder
    cfg = EvalConfig(tasks=("sequential", "rating"), max_users=6, max_templates=2, greedy_rating=False)
    stepped = evaluate_with_progress(rec.predictor, builder, cfg)
    out = capsys.readouterr().out.splitlines()
    whole = evaluate(rec.predictor, builder, cfg, progress=False)
    assert [(r["template"], r["n"]) for r in stepped.rows] == [(r["template"], r["n"]) for r in whole.rows]
    for a, b in zip(stepped.rows, whole.rows, strict=True):
        assert a["metrics"].keys() == b["metrics"].keys()
        for m in a["metrics"].keys() - {"examples_per_s"}:
            assert a["metrics"][m] == pytest.approx(b["metrics"][m], nan_ok=True), m
    n = len(whole.rows)
    assert re.match(rf"evaluating {n} templates of 2 tasks, up to 6 users or reviews each", out[0])
    assert re.match(rf"  \[1/{n}\] sequential/\S+ \(seen, n=6\) \d+s: .*; about \d+s left$", out[1])
    assert out[-1].startswith(f"  [{n}/{n}] rating/") and "left" not in out[-1]
