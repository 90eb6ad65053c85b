"""Copy prior weights beyond the chosen one: valid ROUGE by weight, and test ROUGE per template.

Reloads a saved model and its data, counts the copy prior's log-odds as training does
(`p5rec.training.copy_prior`), and writes the review summaries of up to 200 valid prompts (the first
seen template, as the choice does) and of every test review (each summary template) with each
weight given. It answers whether the grid the choice picks from is wide enough.

    OMP_NUM_THREADS=1 python benchmarks/bench_copy_weights.py MODEL_DIR --weights 4 8 16 32
"""

from __future__ import annotations

import numpy as np
from _saved_model import model_parser, parse_and_load

from p5rec.api import predictor_for
from p5rec.evaluation.metrics import rouge
from p5rec.pipeline import COPY_VALID_EXAMPLES
from p5rec.training.copy_prior import fit_copy_priors


def main() -> None:
    parser = model_parser(__doc__)
    parser.add_argument("--weights", type=float, nargs="+", default=[4.0, 8.0, 16.0, 32.0])
    parser.add_argument("--task", default="review_summary", help="the text task (default review_summary)")
    parser.add_argument("--no-test", action="store_true", help="valid only")
    args, files, prepared = parse_and_load(parser)
    config = files.config
    builder = prepared.builder
    log_odds = fit_copy_priors(builder, files.tokenizer, config.train.seed)[args.task]
    predictor = predictor_for(files.model, files.tokenizer, files.items, config)

    def scores(examples, w: float) -> str:
        r = rouge([e.target for e in examples], predictor.write([e.input for e in examples], copy_prior=w * log_odds))
        return f"{r['rouge_1']:.2f} / {r['rouge_l']:.2f}"

    seen = builder.usable_templates(args.task, "seen")[0].id
    rng = np.random.default_rng(config.train.seed)
    valid = builder.eval_examples(args.task, "valid", rng, [seen], COPY_VALID_EXAMPLES)
    print("| split | template | n | " + " | ".join(f"w={w:g} ROUGE-1 / L" for w in args.weights) + " |")
    print("|" + "---|" * (3 + len(args.weights)))
    print(f"| valid | {seen} | {len(valid)} | " + " | ".join(scores(valid, w) for w in args.weights) + " |", flush=True)
    for tpl in [] if args.no_test else builder.usable_templates(args.task):
        test = builder.eval_examples(args.task, "test", np.random.default_rng(2022), [tpl.id])
        cells = " | ".join(scores(test, w) for w in args.weights)
        print(f"| test ({tpl.split}) | {tpl.id} | {len(test)} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
