"""How long the copy prior's weight choice takes after training (`p5rec.pipeline.copy_prior`).

Reloads a saved model and its data (the config saved with it) and runs the choice again: the
log-odds over one epoch of text examples, then 5 weights x up to 200 valid prompts per text task.

    OMP_NUM_THREADS=1 python benchmarks/bench_copy_choice.py MODEL_DIR
"""

from __future__ import annotations

import argparse
import time

from p5rec.model_dir import read_model_dir
from p5rec.pipeline import copy_prior, load_data, prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a model directory saved by `p5rec train` (its data must be where it was)")
    args = parser.parse_args()
    files = read_model_dir(args.model, "cpu")
    config = files.config
    prepared = prepare(config, load_data(config), items=files.items, users=files.users, templates=files.templates)
    start = time.perf_counter()
    _, weights = copy_prior(config, files.model, files.tokenizer, prepared.builder, prepared)
    print(f"{args.model}: weights {weights}; {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
