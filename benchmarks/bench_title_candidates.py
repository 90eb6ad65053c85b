"""Which titles a review summary should be chosen from: the most frequent ones, the item's own, or both (shipped).

Reloads a saved model's data (not the model: every rule here has temperature 0) and chooses each
summary among three candidate sets of `ExampleBuilder.review_titles`: the 100 most frequent
training titles, the training titles of the review's item (its `OWN_TITLES` most frequent; the
frequent ones when it has none), and the item's own followed by the frequent ones
(`RetrievedTitles.candidates`, what p5rec ships since 71832e8). Per set, the
rule (relevance x frequency x brevity of `CHOICE_GRID`, temperature 0) is picked on up to
`CHOICE_VALID_EXAMPLES` valid reviews of the first seen template by BLEU-2 + ROUGE-1 + ROUGE-L, as
the choice after training picks, and scored on every test review of that template.

    OMP_NUM_THREADS=1 python benchmarks/bench_title_candidates.py MODEL_DIR
"""

from __future__ import annotations

import itertools

import numpy as np
from _saved_model import model_parser, parse_and_load

from p5rec.decoding.consensus import ChoiceRule, consensus
from p5rec.evaluation.config import EvalConfig
from p5rec.evaluation.metrics import text_metrics
from p5rec.pipeline import CHOICE_GRID, CHOICE_VALID_EXAMPLES

SETS = ("the most frequent", "the item's own", "the item's own, then the most frequent (shipped)")


def main() -> None:
    parser = model_parser(__doc__)
    args, _, prepared = parse_and_load(parser)
    builder = prepared.builder
    table = builder.review_titles()  # what the choice after training and the API choose from

    def candidates(name: str, item: str) -> list[tuple[str, int]]:
        if name == SETS[0]:
            return table.candidates()
        if name == SETS[1]:
            return table.items.get(item) or table.candidates()
        return table.candidates(item)  # shipped since 71832e8

    axes = (CHOICE_GRID[f] for f in ("relevance", "frequency", "brevity"))
    rules = [ChoiceRule(0.0, *values) for values in itertools.product(*axes)]
    first = builder.usable_templates("review_summary", "seen")[0].id
    splits = {
        split: builder.eval_examples("review_summary", split, np.random.default_rng(EvalConfig().seed), [first], cap)
        for split, cap in (("valid", CHOICE_VALID_EXAMPLES), ("test", None))
    }

    def score(name: str, rule: ChoiceRule, split: str) -> tuple[dict[str, float], float]:
        examples, hyps = splits[split], []
        for e in examples:
            cands = candidates(name, e.item)
            texts, counts = [t for t, _ in cands], [n for _, n in cands]
            hyps.append(texts[consensus(texts, None, rule, builder.answer_source(e), counts)])
        return text_metrics([e.target for e in examples], hyps, max_n=2), len(set(hyps)) / len(hyps)

    def cell(m: dict[str, float]) -> str:
        return f"{m['bleu_2']:.2f} / {m['rouge_1']:.2f} / {m['rouge_l']:.2f}"

    print(f"review summaries, {first}: valid n={len(splits['valid'])}, test n={len(splits['test'])}")
    print("BLEU-2 / ROUGE-1 / ROUGE-L\n")
    print("| candidates | rule kept on valid (relevance, frequency, brevity) | valid | test | distinct test answers |")
    print("|---|---|---|---|---|")
    for name in SETS:
        scored = {rule: score(name, rule, "valid")[0] for rule in rules}
        best = max(rules, key=lambda r: scored[r]["bleu_2"] + scored[r]["rouge_1"] + scored[r]["rouge_l"])
        test, distinct = score(name, best, "test")
        kept = f"{best.relevance:g}, {best.frequency:g}, {best.brevity:g}"
        print(f"| {name} | {kept} | {cell(scored[best])} | {cell(test)} | {distinct:.2f} |")


if __name__ == "__main__":
    main()
