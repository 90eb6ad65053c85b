"""`p5rec prompts list | show | render | validate`, run in-process through `main([...])`."""

from __future__ import annotations

import pytest

from p5rec.cli.main import main
from p5rec.data.synthetic import generate
from p5rec.data.tables import RecData
from p5rec.templates.load import TemplateSet

MINE = """family: rating
templates:
  - id: rating-1
    split: seen
    description: My override.
    input: "Mine : {{ user_id }} rates {{ item_id }}"
    target: "{{ rating }}"
"""


@pytest.fixture()
def mine(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "rating.yaml").write_text(MINE)
    return folder


@pytest.fixture(scope="module")
def no_title_data(tmp_path_factory):
    """A dataset prepared on disk, as `p5rec data prepare` writes it, without item titles."""
    data = generate(num_users=30, num_items=24, num_categories=3)
    blank = RecData.from_rows("no-titles", [dict(r, title="") for r in data.items], list(data.interactions))
    path = tmp_path_factory.mktemp("data") / "no-titles"
    blank.save_to_disk(path)
    return path


def test_list_prints_every_template_in_a_table(capsys):
    assert main(["prompts", "list"]) == 0
    out = capsys.readouterr().out
    header, *rows = out.strip().splitlines()
    assert header.split()[:5] == ["ID", "FAMILY", "TASK", "SPLIT", "DESCRIPTION"]
    for t in TemplateSet.load():
        assert any(line.split()[:4] == [t.id, t.family, t.task, t.split] for line in rows)
    assert f"{len(TemplateSet.load())} template(s)" in out


def test_list_filters_and_layers_user_folders(capsys, mine):
    assert main(["prompts", "list", "--prompts", str(mine), "--family", "rating", "--split", "seen"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    first = next(r for r in rows if r.startswith("rating-1 "))
    assert "My override." in first
    assert all(r.split()[1:2] == ["rating"] for r in rows if r.strip() and not r.endswith("template(s)"))
    assert main(["prompts", "list", "--task", "rate"]) == 1
    assert "`--task` 'rate' is not a task" in capsys.readouterr().err


def test_show_prints_source_and_variables(capsys):
    assert main(["prompts", "show", "sequential-8"]) == 0
    out = capsys.readouterr().out
    assert "task:        sequential" in out and "sequential.yaml:" in out
    assert "history_titles[-1]" in out and "requires:    history_titles" in out
    assert "* history " in out and "item_id" in out and "[answer]" in out and "[not allowed in the input]" in out
    assert main(["prompts", "show", "nope"]) == 1
    assert "unknown template id 'nope'" in capsys.readouterr().err


def test_render_fills_a_template_from_builtin_data(capsys, mine):
    assert main(["prompts", "render", "rating-1", "--prompts", str(mine), "--count", "2"]) == 0
    out = capsys.readouterr().out
    inputs = [line for line in out.splitlines() if line.startswith("input:")]
    targets = [line for line in out.splitlines() if line.startswith("target:")]
    assert len(inputs) == 2 and all(line.startswith("input:  Mine : user_") for line in inputs)
    assert all(line.split()[1] in ("1.0", "2.0", "3.0", "4.0", "5.0") for line in targets)
    assert "dataset 'synthetic'" in out


def test_render_from_prepared_data_and_title_requirement(capsys, no_title_data):
    assert main(["prompts", "render", "sequential-1", "--data", str(no_title_data)]) == 0
    out = capsys.readouterr().out
    assert "dataset 'no-titles'" in out and "target: <item_" in out  # the default: one token per item
    assert main(["prompts", "render", "sequential-8", "--data", str(no_title_data)]) == 1
    assert "template 'sequential-8' needs ['history_titles'], which dataset 'no-titles' does not have" in (
        capsys.readouterr().err
    )


def test_validate_defaults_pass(capsys):
    assert main(["prompts", "validate"]) == 0
    assert "OK: " in capsys.readouterr().out


def test_validate_reports_every_error_with_file_line_and_id(capsys, tmp_path, mine):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.yaml").write_text(
        "family: sequential\n"
        "templates:\n"
        "  - id: s-1\n"
        "    split: unseen\n"
        "    input: \"{{ history | join(',') }}\"\n"
        '    target: "{{ item_id }}"\n'
        "  - id: s-2\n"
        "    split: unseen\n"
        '    input: "{{ user_id }} {{ histroy }}"\n'
        '    target: "{{ item_id }}"\n'
    )
    (tmp_path / "bad" / "b.yaml").write_text("templates: [\n")
    assert main(["prompts", "validate", str(mine), str(tmp_path / "bad")]) == 1
    out = capsys.readouterr().out
    assert "a.yaml:5: template 's-1': an item ID touches other text" in out
    assert "a.yaml:9: template 's-2': unknown variable `histroy`" in out
    assert "b.yaml:2: not valid YAML" in out
    assert "warning [spacing]" in out and "2 error(s), 1 warning(s)" in out
    # The folder alone fails the same way.
    assert main(["prompts", "validate", "--no-defaults", str(tmp_path / "bad")]) == 1
    assert "error [yaml]" in capsys.readouterr().out


def test_validate_warnings_keep_exit_code_zero(capsys, mine):
    assert main(["prompts", "validate", "--no-defaults", str(mine)]) == 0
    out = capsys.readouterr().out
    assert "warning [family]" in out and "family 'rating' has no unseen template" in out
    assert "OK: 1 template(s), 1 warning(s)" in out
