"""Setup before the first training step of the default recipe on a prepared dataset, by stage.

Prints the seconds of each stage `p5rec train --data DATA` goes through before its first step:
imports and config, loading the tables and resolving the recipe, the tokenizer and model, and
the first epoch's examples (rendered, tokenized, history labels). The target of #15 is < 10 s
on Beauty.

    p5rec data prepare --source p5 --out data/beauty \
        --sequences ../shared/data/p5_beauty/sequential_data.txt --datamaps ../shared/data/p5_beauty/datamaps.json
    OMP_NUM_THREADS=1 python benchmarks/bench_setup.py --data data/beauty
"""

from __future__ import annotations

import argparse
import time

START = time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a dataset folder written by `p5rec data prepare`")
    args = parser.parse_args()

    from p5rec.config import RunConfig
    from p5rec.pipeline import build_model, resolve_and_prepare
    from p5rec.training.collate import encode, history_labels
    from p5rec.training.epochs import epoch_rng

    config = RunConfig.from_dict({"data": {"source": args.data}})
    times = {"imports and config": time.perf_counter() - START}
    mark = time.perf_counter()
    config, domains = resolve_and_prepare(config)
    times["load and resolve the recipe"] = time.perf_counter() - mark
    mark = time.perf_counter()
    _, tokenizer = build_model(config, domains)
    times["tokenizer and model"] = time.perf_counter() - mark
    mark = time.perf_counter()
    examples = [e for d in domains for e in d.builder.train_examples(epoch_rng(config.train.seed, 0))]
    times[f"render the first epoch ({len(examples):,} examples)"] = time.perf_counter() - mark
    mark = time.perf_counter()
    m = config.model
    enc = encode(
        tokenizer, [e.input for e in examples], [e.target for e in examples], m.max_input_length, m.max_target_length
    )
    times["tokenize it"] = time.perf_counter() - mark
    mark = time.perf_counter()
    history_labels(
        tokenizer,
        enc.input_ids,
        [e.meta.get("history_ids") for e in examples],
        [e.meta.get("next_id") for e in examples],
    )
    times["history labels"] = time.perf_counter() - mark
    for name, seconds in times.items():
        print(f"{name:<45} {seconds:6.1f} s")
    print(f"{'before the first step':<45} {sum(times.values()):6.1f} s")


if __name__ == "__main__":
    main()
