"""How long the copy prior's weight choice takes after training (`p5rec.pipeline.copy_prior`).

Reloads a saved model and its data (the config saved with it) and runs the choice again: the
log-odds over one epoch of text examples, then 5 weights x up to 200 valid prompts per text task.

    OMP_NUM_THREADS=1 python benchmarks/bench_copy_choice.py MODEL_DIR
"""

from __future__ import annotations

import time

from _saved_model import model_parser, parse_and_load

from p5rec.pipeline import copy_prior


def main() -> None:
    parser = model_parser(__doc__)
    args, files, prepared = parse_and_load(parser)
    config = files.config
    start = time.perf_counter()
    _, weights = copy_prior(config, files.model, files.tokenizer, prepared.builder, prepared)
    print(f"{args.model}: weights {weights}; {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
