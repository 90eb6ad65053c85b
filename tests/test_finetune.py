"""`p5rec train` / scripts/finetune.py: configs, early errors, multi-domain, and a 2-process run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import TINY_RUN

from p5rec.cli.main import main
from p5rec.config import RunConfig

ROOT = Path(__file__).resolve().parents[1]
RUN = {
    **TINY_RUN,
    "model": {**TINY_RUN["model"], "dropout": 0.0, "attention_dropout": 0.0},  # processes and runs see the same math
    "examples": {
        "max_history": 5,
        "sequential_positions": "last",
        "task_weights": {"rating": 0.2, "explanation": 0.2, "review": 0.2},
    },
    "train": {"epochs": 1, "batch_size": 16, "log_every": 1, "cpu": True, "plot": False},
}


def _write(tmp_path: Path, values: dict, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(values))
    return path


@pytest.mark.parametrize("name", ["musical_instruments_cpu", "beauty_t5_small", "qwen_lora"])
def test_shipped_configs_load(name):
    config = RunConfig.from_yaml(ROOT / "configs" / f"{name}.yaml")
    assert config.validation is not None and config.validation.tasks == ("sequential",)
    assert config.train.save_every > 0 and config.train.output_dir


def test_train_command_saves_a_model_and_the_log(tmp_path):
    path = _write(tmp_path, {**RUN, "output_dir": str(tmp_path / "model")})
    assert main(["train", "--config", str(path), "--no-progress", "--set", "train.save_every=4"]) == 0
    assert (tmp_path / "model" / "p5rec_config.json").is_file()
    log = (tmp_path / "model-train" / "train_log.jsonl").read_text().splitlines()
    assert len(log) > 4 and "loss" in json.loads(log[-1])
    kept = sorted(p.name for p in (tmp_path / "model-train" / "checkpoints").iterdir())
    assert kept == ["step_00000020", "step_00000024"]  # 24 steps, the newest 2 (save_total_limit) kept


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (["--set", "train.learning_rat=0.1"], r"unknown key\(s\) \['learning_rat'\]"),
        (["--set", "train.epochs=two"], r"`epochs` must be int, got 'two'"),
        (["--set", "data.source=/no/such/dataset"], r"`data.source` \('/no/such/dataset'\) is not a folder"),
        (["--set", "data.sources=[synthetic, /no/where]"], r"`data.sources\[1\]` \('/no/where'\) is not a folder"),
        (["--resume"], r"`resume_from` is 'latest' but .* holds no complete checkpoint"),
        (["--set", "train.early_stopping_patience=2"], r"`train.early_stopping_patience` needs a `validation`"),
    ],
)
def test_bad_configs_fail_before_training_and_name_the_key(tmp_path, capsys, change, match):
    path = _write(tmp_path, {**RUN, "output_dir": str(tmp_path / "model")})
    assert main(["train", "--config", str(path), *change]) == 1
    err = capsys.readouterr().err
    assert err.startswith("p5rec train: error:")
    assert pytest.importorskip("re").search(match, err), err
    assert not (tmp_path / "model").exists()


def test_multi_domain_run_namespaces_ids_and_saves_one_model_per_dataset(tmp_path):
    from p5rec.data.synthetic import SyntheticConfig, generate

    dirs = []
    for k, seed in enumerate((3, 4)):
        d = tmp_path / f"data{k}"
        generate(SyntheticConfig(num_users=30, num_items=15 + 5 * k, num_categories=3, seed=seed)).save_to_disk(d)
        dirs.append(str(d))
    values = {**RUN, "data": {"sources": dirs}, "output_dir": str(tmp_path / "model")}
    values["validation"] = {"tasks": ["sequential"], "max_users": 10, "num_beams": 10, "ks": [10]}
    path = _write(tmp_path, values)
    assert main(["train", "--config", str(path), "--no-progress"]) == 0
    from p5rec.api import Recommender

    a, b = (Recommender.from_pretrained(tmp_path / "model" / tag) for tag in "ab")
    assert a.items.id_strings()[0].startswith("<a_item_") and len(a.items) == 15
    assert b.items.id_strings()[0].startswith("<b_item_") and len(b.items) == 20
    assert all(r.id_string.startswith("<b_item_") for r in b.recommend(user=b.users.raw_ids()[0], k=3))
    log = [json.loads(x) for x in (tmp_path / "model-train" / "train_log.jsonl").read_text().splitlines()]
    assert any("valid/sequential/ndcg@10" in e for e in log)


def test_two_processes_match_one_process_with_gradient_accumulation(tmp_path):
    """2 processes x batch 16 take the same optimizer steps as 1 process x batch 16 x accumulation 2."""
    from p5rec.pipeline import fit

    path = _write(tmp_path, {**RUN, "output_dir": str(tmp_path / "ddp")})
    # On CPU, `accelerate launch --cpu --num_processes 2` needs mpirun; torchrun (gloo) is what it wraps on GPUs.
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT),
        "ACCELERATE_USE_CPU": "1",
        "CUDA_VISIBLE_DEVICES": "",
    }
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    proc = subprocess.run(
        [*launch, str(ROOT / "scripts" / "finetune.py"), "--config", str(path), "--no-progress"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "ddp" / "p5rec_config.json").is_file()
    ddp = [json.loads(x) for x in (tmp_path / "ddp-train" / "train_log.jsonl").read_text().splitlines()]

    values = {**RUN, "train": {**RUN["train"], "grad_accum": 2, "cpu": True}}  # both runs on CPU, also on GPU boxes
    single = fit(RunConfig.from_dict(values), progress=False).train.log
    # An odd batch count ends differently: accelerate evens out the processes' batches, while one process
    # with accumulation takes a last partial step. Every step before the end must match.
    assert abs(len(ddp) - len(single)) <= 1 and min(len(ddp), len(single)) > 3
    for a, b in list(zip(ddp, single))[:-1]:
        assert a["step"] == b["step"] and a["loss"] == pytest.approx(b["loss"], rel=1e-4)
