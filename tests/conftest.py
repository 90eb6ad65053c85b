"""Shared fixtures: tiny data and a tiny trained model, built offline in seconds."""

from __future__ import annotations

import os

import pytest
import torch

# Tiny models gain nothing from threads, and on a shared 2-core machine threads only contend. The
# environment variable keeps it so for CLI commands run in-process (they set torch's threads from it)
# and for subprocesses.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

TINY_RUN = {
    "data": {"synthetic": {"num_users": 40, "num_items": 24, "num_categories": 3, "seed": 3}},
    "model": {"backbone": "tiny", "vocab_size": 200, "max_input_length": 128},
    "train": {"epochs": 1, "batch_size": 32, "log_every": 5},
    "examples": {"max_history": 5},
    "validation": None,  # tests that validate say so; the default validates after every epoch
}


def tiny_config(**sections):
    """A RunConfig for a seconds-long run; `sections` override TINY_RUN's top-level keys."""
    from p5rec.config import RunConfig, from_dict

    values = {**TINY_RUN, **sections}
    return from_dict(RunConfig, values, "tiny test config")


def untrained_recommender(num_users: int, num_items: int):
    """A Recommender over an untrained tiny model: for tests of plumbing (CLI, server), not quality."""
    from p5rec.pipeline import build_model, make_recommender, prepare

    config = tiny_config(
        data={"synthetic": {"num_users": num_users, "num_items": num_items, "num_categories": 3}},
        model={"backbone": "tiny", "vocab_size": 200},
    )
    prepared = prepare(config)
    model, tokenizer = build_model(config, prepared)
    return make_recommender(config, prepared, model.eval(), tokenizer)


@pytest.fixture(scope="session")
def tiny_fit():
    """A FitResult from a one-epoch run on 40 users x 24 items."""
    from p5rec.pipeline import fit

    return fit(tiny_config(), progress=False)


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_fit, tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "tiny"
    tiny_fit.recommender.save_pretrained(path)
    return path
