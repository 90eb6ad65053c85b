"""Training checkpoints that survive a SIGKILL: accelerate state + loop position, written atomically.

A checkpoint is `accelerator.save_state` (model, optimizer, scheduler, grad scaler, registered
objects such as learned task weights, and every process's RNG states) plus `trainer_state.json`
(epoch, batches done in that epoch, optimizer step, running loss sums, log, best metric). It is
written into `step_XXXXXXXX.tmp/` and renamed into place only when complete, so a kill during a
save leaves the previous checkpoint as the latest one. Resuming regenerates the interrupted
epoch's examples from the epoch seed and skips the batches already done.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from p5rec._atomic import replace_dir, write_text

STATE_FILE = "trainer_state.json"
BEST_FILE = "best_model.pt"
CHECKPOINTS = "checkpoints"


def checkpoint_path(output_dir: str | os.PathLike, step: int) -> Path:
    """Where the checkpoint of optimizer step `step` lives."""
    return Path(output_dir) / CHECKPOINTS / f"step_{step:08d}"


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints under `output_dir`, oldest first (unfinished `.tmp` folders are ignored)."""
    root = Path(output_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    done = [p for p in root.iterdir() if p.is_dir() and not p.name.endswith(".tmp") and (p / STATE_FILE).is_file()]
    return sorted(done, key=lambda p: p.name)


def resolve_resume(resume_from: str, output_dir: str | None) -> Path:
    """The checkpoint folder `resume_from` names: "latest" (newest under `output_dir`) or a path.

    Raises FileNotFoundError naming `resume_from` when there is nothing to resume from, so a typo
    fails before the data and the model are built.
    """
    if resume_from == "latest":
        if not output_dir:
            raise ValueError("`resume_from` is 'latest' but `train.output_dir` is not set: set it to the run's folder")
        found = list_checkpoints(output_dir)
        if not found:
            raise FileNotFoundError(
                f"`resume_from` is 'latest' but {Path(output_dir) / CHECKPOINTS} holds no complete checkpoint; "
                "drop --resume to start a new run"
            )
        return found[-1]
    path = Path(resume_from)
    if not (path / STATE_FILE).is_file():
        raise FileNotFoundError(
            f"`resume_from` ({resume_from!r}) is not a training checkpoint: {path / STATE_FILE} is missing; "
            f"pass a folder under <train.output_dir>/{CHECKPOINTS}/ or 'latest'"
        )
    return path


def save_checkpoint(accelerator, output_dir: str | os.PathLike, state: dict[str, Any], keep: int) -> Path:
    """Write a checkpoint for `state["step"]` on every process; keep only the newest `keep`.

    Every process must call this (each saves its own RNG states); the main process writes the
    loop state last and renames the folder into place.
    """
    final = checkpoint_path(output_dir, state["step"])
    tmp = final.with_name(final.name + ".tmp")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp), safe_serialization=False)  # T5 ties weights; safetensors would warn
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        write_text(tmp / STATE_FILE, json.dumps(state))
        replace_dir(tmp, final)
        for old in list_checkpoints(output_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator, path: str | os.PathLike) -> dict[str, Any]:
    """Restore model, optimizer, scheduler, registered objects and RNG states; return the loop state."""
    path = Path(path)
    accelerator.load_state(str(path))
    return json.loads((path / STATE_FILE).read_text())
