"""Training curves as a PNG: loss (and learned task weights) per step, validation metrics per evaluation.

matplotlib is optional (`pip install p5rec[plot]`) and imported here only; the figure is drawn
with the Agg canvas directly, so no global pyplot state or display is touched.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def plot_curves(log: Sequence[dict[str, Any]], path: str | os.PathLike, title: str = "p5rec training") -> Path:
    """Draw the entries of a training log (`TrainResult.log`) into a PNG at `path`.

    Entries with a `loss` are training points; entries with `valid/...` keys are validation points;
    `weight/<group>` keys (uncertainty weighting) get their own panel.

    Args:
        log: dicts with at least `step`, as written to `train_log.jsonl`.
        path: the PNG file to write (parent folders are created).
        title: the figure title.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("plotting training curves needs matplotlib: pip install 'p5rec[plot]'") from e

    train = [e for e in log if "loss" in e]
    valid = [e for e in log if any(k.startswith("valid/") for k in e)]
    weight_keys = sorted({k for e in train for k in e if k.startswith("weight/")})
    panels = 1 + bool(valid) + bool(weight_keys)
    fig = Figure(figsize=(6 * panels, 4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, panels, squeeze=False)[0]
    ax = axes[0]
    ax.plot([e["step"] for e in train], [e["loss"] for e in train], label="train loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title("training loss")
    ax.legend()
    k = 1
    if valid:
        ax = axes[k]
        for key in sorted({key for e in valid for key in e if key.startswith("valid/")}):
            points = [(e["step"], e[key]) for e in valid if key in e]
            ax.plot(*zip(*points), marker="o", label=key.removeprefix("valid/"))
        ax.set_xlabel("optimizer step")
        ax.set_title("validation")
        ax.legend()
        k += 1
    if weight_keys:
        ax = axes[k]
        for key in weight_keys:
            points = [(e["step"], e[key]) for e in train if key in e]
            ax.plot(*zip(*points), label=key.removeprefix("weight/"))
        ax.set_xlabel("optimizer step")
        ax.set_title("learned task weights exp(-s)")
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
