"""The package's shape: what `import p5rec...` costs, the public names, and imports that point forward only."""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import p5rec

HEAVY = ("torch", "transformers", "datasets", "pyarrow", "accelerate", "peft", "numpy", "jinja2")
PACKAGES = sorted(
    m.name for m in pkgutil.walk_packages(p5rec.__path__, "p5rec.") if m.ispkg and m.name != "p5rec.prompts"
)


def _loaded_after(statement: str) -> list[str]:
    """The heavy modules a fresh interpreter holds after running `statement`."""
    code = f"import sys, json\n{statement}\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize(
    "statement",
    [
        "import p5rec",
        "import p5rec.config",
        "from p5rec.config import RunConfig; RunConfig.from_dict({'train': {'epochs': 3}})",
        "from p5rec import RunConfig, TrainConfig, ModelConfig, EvalConfig, ExampleConfig, IdConfig, SyntheticConfig",
    ],
)
def test_configs_import_without_the_heavy_stack(statement):
    # `p5rec train --config` and `--help` read configs before any work: that must not cost torch's
    # seconds of import time (it took ~4 s when the configs lived beside the code that uses them).
    assert _loaded_after(statement) == []


def test_the_public_api_is_importable_from_the_top():
    from p5rec import Recommender, RunConfig, fit
    from p5rec.api import Recommender as api_recommender
    from p5rec.config import RunConfig as config_run_config
    from p5rec.pipeline import fit as pipeline_fit

    assert (Recommender, RunConfig, fit) == (api_recommender, config_run_config, pipeline_fit)
    assert {"Recommender", "RunConfig", "fit"} <= set(p5rec.__all__)


@pytest.mark.parametrize("package", ["p5rec", *PACKAGES])
def test_every_package_lists_its_api_and_each_name_resolves(package):
    module = importlib.import_module(package)
    assert isinstance(module.__all__, list) and len(set(module.__all__)) == len(module.__all__)
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        module.nope  # noqa: B018 - the lookup itself is the test


# ------------------------------------------------------------------------------------- layering
README = Path(__file__).resolve().parents[1] / "README.md"
ROOT = Path(p5rec.__file__).resolve().parent


def _stages() -> list[list[str]]:
    """The packages of each row of README's pipeline table, in order (data first)."""
    section = README.read_text(encoding="utf-8").split("## The pipeline", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "`p5rec." in line]
    return [re.findall(r"`(p5rec\.[a-z_.]+)`", row.split("|")[2]) for row in rows]


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def _target(module: str, name: str) -> str:
    """The p5rec module `from module import name` depends on: a submodule, or where a re-exported name lives."""
    if f"{module}.{name}" in MODULES:
        return f"{module}.{name}"
    defined_in = getattr(getattr(importlib.import_module(module), name, None), "__module__", None)
    return defined_in if defined_in in MODULES else module


def _imports(module: str) -> set[str]:
    """Every p5rec module `module` imports, at the top, inside functions or for type checking."""
    out = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "p5rec"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "p5rec":
            out |= {_target(node.module, a.name) for a in node.names}
    if module == "p5rec.cli.main":  # the dispatcher imports its subcommands by name
        from p5rec.cli.main import COMMANDS

        out |= {f"p5rec.cli.{name}" for name in COMMANDS}
    return out - {module}


def _stage_of(module: str, stages: list[list[str]]) -> int | None:
    """Row of README's table that holds `module`; None for p5rec itself and shared helpers (p5rec._*)."""
    for row, packages in enumerate(stages):
        if any(module == p or module.startswith(p + ".") for p in packages):
            return row
    return None


def test_the_pipeline_table_names_every_module():
    stages = _stages()
    assert [p for row in stages for p in row][:3] == ["p5rec.data", "p5rec.ids", "p5rec.templates"]
    unplaced = [m for m in MODULES if _stage_of(m, stages) is None and m != "p5rec" and not m.startswith("p5rec._")]
    assert unplaced == [], "add these modules to a row of README's pipeline table"


def test_no_module_imports_a_later_stage():
    """Imports point forward only: `data` knows nothing of `templates`, `decoding` nothing of `training`."""
    stages = _stages()
    backward = []
    for module in sorted(MODULES):
        mine = _stage_of(module, stages)
        for target in sorted(_imports(module)):
            theirs = _stage_of(target, stages)
            if mine is not None and theirs is not None and theirs > mine:
                backward.append(f"{module} -> {target} ({stages[theirs][0]} comes after {stages[mine][0]})")
            elif mine is not None and theirs is None and target != "p5rec" and not target.startswith("p5rec._"):
                backward.append(f"{module} -> {target} (not in the table)")
    assert backward == []


def test_no_import_cycles():
    graph = {m: _imports(m) & set(MODULES) for m in MODULES}
    cycles, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(path[path.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_layering_check_sees_a_backward_import(tmp_path, monkeypatch):
    """The check itself: a data module that imports the trainer is reported."""
    fake = tmp_path / "leak.py"
    fake.write_text("def f():\n    from p5rec.training.trainer import train\n")
    monkeypatch.setitem(MODULES, "p5rec.data.leak", fake)
    with pytest.raises(AssertionError, match=r"p5rec.data.leak -> p5rec.training.trainer"):
        test_no_module_imports_a_later_stage()
