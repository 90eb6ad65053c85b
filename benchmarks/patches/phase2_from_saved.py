"""Beauty: the every-task phase only, from a saved first phase's kept weights (one-off ablation).

Patches p5rec.pipeline.train so that its first call (the first phase) loads FIRST (a best_model.pt of
the objective wrapper) instead of training, and reports FIRST_SECONDS of training time; the every-task
phase then runs as the recipe runs it; DROP=task,task leaves tasks out of it (the tokenizer, built
from every task, unchanged). Usage, the same data and seed as the saved run:

    FIRST=runs/exp/beauty-et/model-train/sequential_first/best_model.pt FIRST_SECONDS=1824 \
        python benchmarks/patches/phase2_from_saved.py --data data/beauty --output OUT --set train.max_minutes=33.4
"""

import os
import sys

import torch

import p5rec.pipeline as pipeline
from p5rec.cli.main import main
from p5rec.training.objective import CausalLMObjective
from p5rec.training.trainer import TrainResult

real, calls = pipeline.train, []


def train(model, tokenizer, builder, settings, model_config, **hooks):
    calls.append(1)
    if len(calls) == 1:
        state = torch.load(os.environ["FIRST"], map_location="cpu", weights_only=True)
        CausalLMObjective(model).load_state_dict(state)
        return TrainResult(seconds=float(os.environ["FIRST_SECONDS"]), best_metric=float("nan"))
    drop = set(filter(None, os.environ.get("DROP", "").split(",")))
    if drop:  # the every-task phase without these tasks (the tokenizer, built from every task, unchanged)
        from p5rec.templates.tasks import TASKS
        from p5rec.training.phases import only_tasks

        builder = only_tasks(builder, set(TASKS) - drop)
    return real(model, tokenizer, builder, settings, model_config, **hooks)


pipeline.train = train
sys.exit(main(["train", *sys.argv[1:]]))
