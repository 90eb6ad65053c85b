"""The quickstart notebook runs top to bottom on the built-in data and shows what it says it shows."""

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"

# Run in the notebook's kernel after its cells, on the objects a reader has in hand at the end.
CHECKS = """
catalog, seen = set(data.item_ids), set(rec.histories[user])
shown = [i.item_id for i in recs]
assert [i.rank for i in recs] == [1, 2, 3, 4, 5], [i.rank for i in recs]
assert len(set(shown)) == 5 and set(shown) <= catalog and not set(shown) & seen, (shown, seen)
assert recs.sentence.startswith("We recommend") and recs.items[0].title in recs.sentence, recs.sentence
new_user = rec.recommend(history=data.item_ids[:3], k=3)
assert len(new_user) == 3 and not {i.item_id for i in new_user} & set(data.item_ids[:3])
metrics = results.by_task("sequential", "seen")
assert 0.0 <= metrics["hr@10"] <= 1.0 and metrics["ndcg@10"] <= metrics["hr@10"], metrics
assert results.rows and all(r["n"] == 30 for r in results.rows), [r["n"] for r in results.rows]
print("notebook checks passed")
"""


def test_quickstart_notebook_executes(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(CHECKS))
    resources = {"metadata": {"path": str(tmp_path)}}
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources=resources)
    client.execute()  # a failing cell, or a failed check above, raises CellExecutionError with its traceback
    text = {i: "".join(o.get("text", "") for o in c.get("outputs", [])) for i, c in enumerate(nb.cells)}
    printed = "".join(text.values())
    assert printed.count("We recommend") == 2  # the known user's and the new user's sentences
    rec_lines = [line for line in printed.splitlines() if line[:2] in {f"{k} " for k in range(1, 6)}]
    assert [line.split()[0] for line in rec_lines] == ["1", "2", "3", "4", "5"]
    rating = next(line for line in printed.splitlines() if line.startswith("rating:"))
    assert rating.split(":")[1].strip().replace(".", "", 1).isdigit(), rating  # a number, not an error or None
    assert text[len(nb.cells) - 1].strip() == "notebook checks passed"
