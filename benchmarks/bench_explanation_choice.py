"""Explanations written, or chosen among retrieved training explanations: valid and test metrics.

Reloads a saved model and its data, and scores its explanations on up to `CHOICE_VALID_EXAMPLES`
valid prompts (the first seen template, as the choice after training does) and on every test
explanation of every template: written by the model (with its copy prior), and chosen among the
item and feature's training explanations at each temperature of `CHOICE_TEMPERATURES`
(`p5rec.decoding.consensus`; 0 does not read the model), next to the retrieval baseline. It prints
which read-out the choice after training takes.

    OMP_NUM_THREADS=1 python benchmarks/bench_explanation_choice.py MODEL_DIR
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _saved_model import add_model_argument, load_saved

from p5rec.api import predictor_for
from p5rec.evaluation.config import EvalConfig
from p5rec.evaluation.metrics import text_metrics
from p5rec.pipeline import CHOICE_VALID_EXAMPLES, explanation_readouts, pick_readout


def row(label: str, n: int, scored: dict, baseline: dict | None = None) -> str:
    cells = [f"{m['bleu_4']:.2f} / {m['rouge_1']:.2f} / {m['rouge_l']:.2f}" for m in scored.values()]
    base = f" | {baseline['bleu_4']:.2f} / {baseline['rouge_1']:.2f} / {baseline['rouge_l']:.2f}" if baseline else " |"
    return f"| {label} | {n} | " + " | ".join(cells) + base + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_argument(parser)
    args = parser.parse_args()
    files, prepared = load_saved(args.model)
    config, builder = files.config, prepared.builder
    predictor = predictor_for(files.model, files.tokenizer, files.items, config, copy_prior=files.copy_prior)
    seen = builder.usable_templates("explanation", "seen")[0].id
    valid = builder.eval_examples(
        "explanation", "valid", np.random.default_rng(config.train.seed), [seen], CHOICE_VALID_EXAMPLES
    )
    start = time.perf_counter()
    scored = explanation_readouts(predictor, builder, valid)
    took = time.perf_counter() - start
    heads = ["written" if t is None else f"chosen, t={t:g}" for t in scored]
    print("BLEU-4 / ROUGE-1 / ROUGE-L per read-out\n")
    print("| split (template) | n | " + " | ".join(heads) + " | retrieval |")
    print("|" + "---|" * (3 + len(heads)))
    print(row(f"valid ({seen})", len(valid), scored), flush=True)
    for tpl in builder.usable_templates("explanation"):
        test = builder.eval_examples("explanation", "test", np.random.default_rng(EvalConfig().seed), [tpl.id])
        refs = [e.target for e in test]
        base = [builder.explanation_candidates(e)[0] for e in test]  # the retrieval baseline's own sentence
        print(row(f"test {tpl.split} ({tpl.id})", len(test), explanation_readouts(predictor, builder, test),
                  text_metrics(refs, base, max_n=4)), flush=True)  # fmt: skip
    best = pick_readout(scored)
    chosen = "written" if best is None else f"chosen at temperature {best:g}"
    print(f"\nvalid read-outs scored in {took:.1f} s; the choice after training takes: {chosen}")


if __name__ == "__main__":
    main()
