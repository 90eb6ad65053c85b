"""`p5rec demo --quick`, the README's first command in its smoke form, run in-process."""

from __future__ import annotations

import json
import re

from p5rec.api import Recommender
from p5rec.cli.main import main


def test_demo_quick_trains_evaluates_saves_and_recommends(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps a table to the terminal: keep the columns whole
    monkeypatch.chdir(tmp_path)  # anything written beside the model stays in the test's folder
    out = tmp_path / "demo-model"
    code = main(["demo", "--quick", "--output", str(out), "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0, printed

    # The metrics table, with the baselines beside the model's seen/unseen columns.
    rows = [_cells(line) for line in printed.splitlines() if len(_cells(line)) > 2]
    head = ["task", "metric", "seen", "unseen", "MostPop", "ItemKNN", "SASRec", "BiasedMF", "Lead", "Retrieval"]
    assert head in rows, printed
    rmse = next(r for r in rows if r[:2] == ["rating", "rmse"])
    assert rmse[7] and float(rmse[7]) > 0, rmse  # the rating's own baseline beside the model
    hr10 = next(r for r in rows if r[:2] == ["sequential", "hr@10"])
    assert all(0.0 <= float(value) <= 1.0 for value in hr10[2:7]), hr10  # the model and every ranker scored
    assert hr10[7:] == ["", "", ""]  # the task baselines do not rank items

    # The saved model reloads and recommends real catalog items; the report it wrote is readable.
    rec = Recommender.from_pretrained(out, device="cpu")
    user = rec.users.raw_ids()[0]
    recs = rec.recommend(user=user, k=5)
    assert len(recs) == 5 and {i.item_id for i in recs} <= set(rec.catalog)
    assert not {i.item_id for i in recs} & set(rec.histories[user])
    report = json.loads((out / "eval_results.json").read_text())
    assert set(report["baselines"]) == {"mostpop", "itemknn", "sasrec", "mf", "lead", "retrieval"}
    assert report["model"]["rows"]
    assert f"saved to {out}/ and reloaded" in printed and printed.count("We recommend") == 3


def _cells(line: str) -> list[str]:
    """The cells of a table row as rich draws it (box characters, or ASCII on a plain terminal)."""
    return [c.strip() for c in re.split(r"[┃│|]", line)[1:-1]]
