"""How far copying words from the review can take a review summary, without any model.

For each test review (the split `p5rec evaluate` uses) the "summary" is the `k` words of the review
that the training reviews most often repeat in their titles (P(word in title | word in review),
smoothed), optionally after the most frequent title word: a bag of copied words, no order, no
grammar. If that beats the lead sentence, a model that can copy (`model.copy_bonus`) has room to;
if a trained model stays far below it, the model, not the data, is the limit.

    python benchmarks/bench_copy_ceiling.py --data data/musical_instruments
"""

from __future__ import annotations

import argparse
from collections import Counter

from p5rec.data.split import Splits
from p5rec.data.tables import RecData
from p5rec.evaluation.baselines.text import lead_sentence
from p5rec.evaluation.metrics import rouge, tokenize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a dataset folder written by `p5rec data prepare`")
    parser.add_argument("--split", default="test", choices=("valid", "test"))
    args = parser.parse_args()

    data = RecData.load_from_disk(args.data)
    splits = Splits.from_data(data)
    reviews, titles = data.column("interactions", "review"), data.column("interactions", "summary")

    def usable(rows):
        return [i for i in rows if reviews[i] and titles[i]]

    train, test = usable(splits.review_rows("train")), usable(splits.review_rows(args.split))
    if not train or not test:
        raise SystemExit(f"{args.data}: no reviews with titles to score (train {len(train)}, {args.split} {len(test)})")
    in_title, in_both, in_review = Counter(), Counter(), Counter()
    for i in train:
        t, r = set(tokenize(titles[i])), set(tokenize(reviews[i]))
        in_title.update(t)
        in_review.update(r)
        in_both.update(t & r)

    def copied(i: int, k: int, lead: list[str]) -> str:
        words = set(tokenize(reviews[i]))
        score = {w: (in_both[w] + 0.1) / (in_review[w] + 5) for w in words}
        return " ".join(lead + sorted(words, key=lambda w: (-score[w], w))[:k])

    refs = [titles[i] for i in test]
    share = sum(
        sum(w in set(tokenize(reviews[i])) for w in tokenize(titles[i])) / max(len(tokenize(titles[i])), 1)
        for i in test
    ) / len(test)
    print(f"{args.data}: {len(test)} {args.split} reviews with a title; {share:.1%} of title words occur in the review")
    print("| summary | ROUGE-1 | ROUGE-2 | ROUGE-L |\n|---|---:|---:|---:|")
    rows = [("lead sentence", [lead_sentence(reviews[i]) for i in test])]
    top = in_title.most_common(1)[0][0]
    for lead in ([], [top]):
        for k in (1, 2, 3):
            name = f"{'`' + top + '` + ' if lead else ''}{k} copied word{'s' if k > 1 else ''}"
            rows.append((name, [copied(i, k, lead) for i in test]))
    for name, hyps in rows:
        r = rouge(refs, hyps)
        print(f"| {name} | {r['rouge_1']:.2f} | {r['rouge_2']:.2f} | {r['rouge_l']:.2f} |")


if __name__ == "__main__":
    main()
