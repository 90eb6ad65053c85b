"""Setup before the first training step of the default recipe on a prepared dataset, by stage.

Prints the seconds of each stage `p5rec train --data DATA` goes through before its first step:
imports and config, loading the tables and resolving the recipe, the tokenizer and model, and
the first epoch (examples chosen, then rendered, tokenized and given history labels by one process
per free core, up to 8; `EpochLoader.prepare`). The target of #15 is < 10 s on Beauty.

    p5rec data prepare --source p5 --out data/beauty \
        --sequences ../shared/data/p5_beauty/sequential_data.txt --datamaps ../shared/data/p5_beauty/datamaps.json
    OMP_NUM_THREADS=1 python benchmarks/bench_setup.py --data data/beauty
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time

START = time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a dataset folder written by `p5rec data prepare`")
    args = parser.parse_args()

    from accelerate import Accelerator

    from p5rec.config import RunConfig
    from p5rec.modeling.backbone import is_encoder_decoder
    from p5rec.pipeline import build_model, resolve_and_prepare
    from p5rec.training import epochs

    config = RunConfig.from_dict({"data": {"source": args.data}})
    times = {"imports and config": time.perf_counter() - START}
    mark = time.perf_counter()
    config, domains = resolve_and_prepare(config)
    times["load and resolve the recipe"] = time.perf_counter() - mark
    mark = time.perf_counter()
    model, tokenizer = build_model(config, domains)
    times["tokenizer and model"] = time.perf_counter() - mark
    mark = time.perf_counter()
    builder = domains[0].builder
    loader = epochs.EpochLoader(
        builder, tokenizer, config.train, config.model, Accelerator(cpu=True), is_encoder_decoder(model)
    )
    first = loader.prepare(0)
    workers = epochs._workers(first.num_examples)
    times[f"first epoch: {first.num_examples:,} examples, {workers} process(es)"] = time.perf_counter() - mark
    for name, seconds in times.items():
        print(f"{name:<45} {seconds:6.1f} s")
    print(f"{'before the first step':<45} {sum(times.values()):6.1f} s")
    # The stages above leave out what `fit` adds (accelerator, optimizer, validator, the loader): the
    # real path, in a fresh process, from its start until the first optimizer step is done.
    with tempfile.TemporaryDirectory() as out:
        run = subprocess.run(
            [sys.executable, "-c", _FIRST_STEP, args.data, out], capture_output=True, text=True, check=True
        )
    print(f"{'fit(): process start -> first step done':<45} {float(run.stdout.split()[-1]):6.1f} s")


_FIRST_STEP = """
import time
START = time.perf_counter()
import sys
from p5rec.config import RunConfig
from p5rec.pipeline import fit

class First(Exception):
    pass

def stop(step, state):
    if step == 1:
        raise First

config = RunConfig.from_dict({"data": {"source": sys.argv[1]}, "train": {"output_dir": sys.argv[2], "plot": False}})
try:
    fit(config, progress=False, on_step=stop)
except First:
    print(time.perf_counter() - START)
"""


if __name__ == "__main__":
    main()
