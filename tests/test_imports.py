"""The package's shape: what `import p5rec...` costs, the public names, and imports that point forward only."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys

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
    assert isinstance(module.__all__, list) and module.__all__ == sorted(module.__all__)
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        module.nope  # noqa: B018 - the lookup itself is the test
