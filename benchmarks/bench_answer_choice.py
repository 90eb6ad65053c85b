"""Text answers written, or chosen among retrieved training texts: valid and test metrics per read-out.

Reloads a saved model and its data and scores one text task (explanation or review summary) on up
to `CHOICE_VALID_EXAMPLES` valid prompts (the first seen template, as the choice after training
does) and on every test prompt of every template: written by the model (with its copy prior), and
chosen among the candidates (`ExampleBuilder.answer_candidates`) by each rule of `CHOICE_GRID`
(`p5rec.decoding.consensus`; `--fixed frequency=1` keeps one value of a number), next to the task's
baseline (retrieval for explanations, the lead sentence for summaries). It prints which read-out the
choice after training takes.

    OMP_NUM_THREADS=1 python benchmarks/bench_answer_choice.py MODEL_DIR --task review_summary
"""

from __future__ import annotations

import time

import numpy as np
from _saved_model import load_saved, model_parser

from p5rec.api import predictor_for
from p5rec.decoding.consensus import FIELDS
from p5rec.evaluation.baselines.text import lead_sentence
from p5rec.evaluation.config import EvalConfig
from p5rec.evaluation.metrics import text_metrics
from p5rec.pipeline import CHOICE_TASKS, CHOICE_VALID_EXAMPLES, choice_readouts, choice_rules, pick_readout


def cell(m: dict[str, float]) -> str:
    bleu = next(v for k, v in m.items() if k.startswith("bleu_"))
    return f"{bleu:.2f} / {m['rouge_1']:.2f} / {m['rouge_l']:.2f}"


def mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]} if rows else {}


def main() -> None:
    parser = model_parser(__doc__)
    parser.add_argument("--task", choices=CHOICE_TASKS, default="explanation")
    parser.add_argument("--fixed", nargs="*", default=[], help="NAME=VALUE: rules with this value only")
    parser.add_argument("--max-templates", type=int, default=None, help="test only the first N seen and held-out")
    args = parser.parse_args()
    fixed = {k: float(v) for k, v in (f.split("=", 1) for f in args.fixed)}
    if set(fixed) - set(FIELDS):
        parser.error(f"--fixed: the numbers are {list(FIELDS)}")
    files, prepared = load_saved(args.model)
    config, builder, task = files.config, prepared.builder, args.task
    max_n = 4 if task == "explanation" else 2
    predictor = predictor_for(files.model, files.tokenizer, files.items, config, copy_prior=files.copy_prior)
    seen = builder.usable_templates(task, "seen")[0].id
    rng = np.random.default_rng(config.train.seed)
    valid = builder.eval_examples(task, "valid", rng, [seen], CHOICE_VALID_EXAMPLES)
    start = time.perf_counter()
    rules = [r for r in choice_rules() if all(getattr(r, k) == v for k, v in fixed.items())]
    scored = choice_readouts(predictor, builder, valid, rules)
    took = time.perf_counter() - start
    tests: dict[str, list[dict]] = {"seen": [], "unseen": []}
    baseline: dict[str, list[dict]] = {"seen": [], "unseen": []}
    reviews = builder.data.column("interactions", "review")
    n = args.max_templates
    for tpl in [t for split in ("seen", "unseen") for t in builder.usable_templates(task, split)[:n]]:
        test = builder.eval_examples(task, "test", np.random.default_rng(EvalConfig().seed), [tpl.id])
        refs = [e.target for e in test]
        if task == "explanation":  # the retrieval baseline's own sentence: the first candidate
            base = [builder.answer_candidates(e)[0][0] for e in test]
        else:
            base = [lead_sentence(reviews[e.meta["row"]]) for e in test]
        tests[tpl.split].append(choice_readouts(predictor, builder, test, rules))
        baseline[tpl.split].append(text_metrics(refs, base, max_n=max_n))
        print(f"scored {tpl.id} ({tpl.split}, n={len(test)})", flush=True)
    name = "retrieval" if task == "explanation" else "lead sentence"
    print(f"\n{task}: BLEU-{max_n} / ROUGE-1 / ROUGE-L (test: mean over the templates)\n")
    print(f"| read-out | valid ({seen}, n={len(valid)}) | test seen | test held-out |")
    print("|---|---|---|---|")
    for key, m in scored.items():
        label = "written" if key is None else "chosen, " + ", ".join(f"{f} {getattr(key, f):g}" for f in FIELDS)
        cells = [cell(mean([t[key].metrics() for t in tests[s]])) if tests[s] else "" for s in ("seen", "unseen")]
        print(f"| {label} | {cell(m.metrics())} | " + " | ".join(cells) + " |")
    cells = [cell(mean(baseline[s])) if baseline[s] else "" for s in ("seen", "unseen")]
    print(f"| {name} | | " + " | ".join(cells) + " |")
    print(f"\nvalid read-outs scored in {took:.1f} s")

    def total(m: dict[str, float]) -> float:
        return m[f"bleu_{max_n}"] + m["rouge_1"] + m["rouge_l"]

    # The one-standard-error pick against the highest valid sum (ties: writing, then the smaller numbers).
    top = max(scored, key=lambda k: (scored[k].total(), k is None, *(-getattr(k, f) for f in FIELDS if k)))
    for name, key in (("the choice after training takes", pick_readout(scored)), ("the best valid sum is", top)):
        test = [f"{total(mean([t[key].metrics() for t in tests[s]])):.2f}" for s in ("seen", "unseen") if tests[s]]
        label = "written" if key is None else f"chosen ({key})"
        print(f"{name}: {label}; valid sum {scored[key].total():.2f}, test sum (seen, held-out) {', '.join(test)}")


if __name__ == "__main__":
    main()
