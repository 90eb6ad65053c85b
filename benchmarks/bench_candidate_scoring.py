"""Candidates scored after one shared prompt pass (`score_continuations`) against one pass per pair.

Reloads a saved model and scores the candidates of up to `--prompts` valid prompts of a text task
(a summary's 100 most frequent training titles, an explanation's retrieved ones) two ways in one
run: `Predictor.candidate_scores` (each prompt's KV cache shared by its candidates) and the naive
loop (every prompt repeated once per candidate, `score_targets` on the flattened pairs, the same
batch size). Prints both times, the ratio, and the largest difference of the mean log-probabilities.

    OMP_NUM_THREADS=1 python benchmarks/bench_candidate_scoring.py MODEL_DIR --task review_summary
"""

from __future__ import annotations

import time

import numpy as np
import torch
from _saved_model import model_parser, parse_and_load

from p5rec.api import predictor_for
from p5rec.decoding.generate import score_targets
from p5rec.modeling.inputs import encode_prompts, tokenize
from p5rec.pipeline import CHOICE_TASKS


def naive(predictor, prompts: list[str], candidates: list[list[str]]) -> list[list[float]]:
    """Every (prompt, candidate) pair as its own row: the prompt runs once per candidate."""
    tok, cut = predictor.tokenizer, predictor.max_target_length - 1
    pairs = [(p, t) for p, texts in zip(prompts, candidates) for t in texts]
    seqs = [ids[:cut] + [tok.eos_token_id] for ids in tokenize(tok, [t for _, t in pairs])]
    flat: list[float] = []
    with torch.inference_mode():
        for lo in range(0, len(pairs), predictor.batch_size):
            rows = [p for p, _ in pairs[lo : lo + predictor.batch_size]]
            batch = encode_prompts(tok, rows, predictor.max_input_length, predictor.encoder_decoder, predictor.device)
            part = seqs[lo : lo + predictor.batch_size]
            flat += (score_targets(predictor.model, batch, part) / torch.tensor([len(s) for s in part])).tolist()
    out, at = [], 0
    for texts in candidates:
        out.append(flat[at : at + len(texts)])
        at += len(texts)
    return out


def main() -> None:
    parser = model_parser(__doc__)
    parser.add_argument("--task", choices=CHOICE_TASKS, default="review_summary")
    parser.add_argument("--prompts", type=int, default=64)
    args, files, prepared = parse_and_load(parser)
    builder = prepared.builder
    predictor = predictor_for(files.model, files.tokenizer, files.items, files.config)
    seen = builder.usable_templates(args.task, "seen")[0].id
    examples = builder.eval_examples(args.task, "valid", np.random.default_rng(0), [seen], args.prompts)
    prompts, candidates = [e.input for e in examples], [[t for t, _ in builder.answer_candidates(e)] for e in examples]
    pairs = sum(map(len, candidates))
    times, results = {}, {}
    for name, fn in (("shared", predictor.candidate_scores), ("naive", lambda p, c: naive(predictor, p, c))):
        start = time.perf_counter()
        results[name] = fn(prompts, candidates)
        times[name] = time.perf_counter() - start
    diff = max(abs(a - b) for x, y in zip(results["shared"], results["naive"]) for a, b in zip(x, y))
    print(f"{args.task}: {len(prompts)} prompts, {pairs} candidates")
    print(f"shared prompt pass {times['shared']:.1f} s, one pass per pair {times['naive']:.1f} s: "
          f"{times['naive'] / times['shared']:.2f}x; largest difference {diff:.2e}")  # fmt: skip


if __name__ == "__main__":
    main()
