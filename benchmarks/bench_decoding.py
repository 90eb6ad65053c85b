"""Benchmark constrained item decoding against unconstrained beam search and the usual baseline.

For each model shape (random weights, same inputs) it measures users/s of
(a) unconstrained `model.generate` beam search for as many steps as the longest item ID,
(b) `model.generate` + `prefix_allowed_tokens_fn` over a nested-dict trie (the baseline),
(c) `p5rec.decoding.recommend_items`,
checks that (b) and (c) return identical top-k lists, and times the exact scorer
`score_items`. Item IDs follow P5's sequential scheme tokenized as by a SentencePiece model
with split digits: "item_123" -> ["▁item", "_", "1", "2", "3"] (`--id-scheme added-tokens`
gives every item one new token instead: a root with `--items` children).

    python benchmarks/bench_decoding.py                      # CPU, a few minutes
    python benchmarks/bench_decoding.py --device cuda --batches 10
"""

from __future__ import annotations

import argparse
import time

import torch
from transformers import T5Config, T5ForConditionalGeneration

from p5rec.decoding import ItemTrie, recommend_items, reference_recommend_items, score_items

SHAPES = {
    "mini": dict(d_model=256, d_ff=1024, num_layers=4, num_decoder_layers=4, num_heads=4, d_kv=64),
    "t5-small": dict(d_model=512, d_ff=2048, num_layers=6, num_decoder_layers=6, num_heads=8, d_kv=64),
}
ITEM, UNDERSCORE, DIGIT0 = 100, 101, 110  # token ids of "▁item", "_" and "0".."9"


def item_sequences(n_items: int, scheme: str, vocab_size: int) -> list[list[int]]:
    if scheme == "added-tokens":
        return [[vocab_size + i] for i in range(n_items)]
    return [[ITEM, UNDERSCORE] + [DIGIT0 + int(c) for c in str(i + 1)] for i in range(n_items)]


def make_batches(args: argparse.Namespace, vocab_size: int) -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(args.seed)
    batches = []
    for _ in range(args.batches):
        ids = torch.randint(200, vocab_size, (args.batch_size, args.prompt_len), generator=gen)
        lengths = torch.randint(args.prompt_len // 2, args.prompt_len + 1, (args.batch_size,), generator=gen)
        mask = (torch.arange(args.prompt_len)[None, :] < lengths[:, None]).long()
        batches.append({"input_ids": ids * mask, "attention_mask": mask})  # right-padded encoder input
    return batches


def timed(fn, batches, device: str) -> tuple[float, list]:
    """Seconds for `fn` over all batches (after one warm-up call) and its outputs."""
    fn({k: v[:2].to(device) for k, v in batches[0].items()})
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start, outs = time.perf_counter(), []
    for batch in batches:
        outs.append(fn({k: v.to(device) for k, v in batch.items()}))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start, outs


def run_shape(name: str, args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    base_vocab = args.vocab_size
    seqs = item_sequences(args.items, args.id_scheme, base_vocab)
    vocab = base_vocab + (args.items if args.id_scheme == "added-tokens" else 0)
    config = T5Config(vocab_size=vocab, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, **SHAPES[name])
    model = T5ForConditionalGeneration(config).to(args.device).eval()
    t0 = time.perf_counter()
    trie = ItemTrie(seqs, eos_token_id=1).to(args.device)
    build_s = time.perf_counter() - t0
    steps = trie.max_length
    batches = make_batches(args, base_vocab)
    users = args.batches * args.batch_size
    k, beams = args.k, args.num_beams

    def unconstrained(batch):
        return model.generate(
            **batch, num_beams=beams, max_new_tokens=steps, min_new_tokens=steps, length_penalty=0.0,
            early_stopping=False, do_sample=False, eos_token_id=1, pad_token_id=0,
        )  # fmt: skip

    def anchor(batch):
        return reference_recommend_items(model, batch, seqs, 1, k=k, num_beams=beams)

    def ours(batch):
        return recommend_items(model, batch, trie, k=k, num_beams=beams)

    t_a, _ = timed(unconstrained, batches, args.device)
    t_b, out_b = timed(anchor, batches, args.device) if not args.skip_anchor else (float("nan"), None)
    t_c, out_c = timed(ours, batches, args.device)
    print(
        f"\n== {name}: {args.items} items ({args.id_scheme}), beams {beams}, top {k}, batch {args.batch_size}, "
        f"{args.batches} batch(es), prompt {args.prompt_len}, device {args.device}; trie built in {build_s:.2f}s"
    )
    print(f"(a) unconstrained beam search, {steps} steps: {users / t_a:8.2f} users/s")
    print(f"(b) prefix_allowed_tokens_fn + dict trie:   {users / t_b:8.2f} users/s")
    print(f"(c) p5rec recommend_items:                  {users / t_c:8.2f} users/s")
    print(f"speed-up (c)/(b): {t_b / t_c:.2f}x   constraint overhead (c) vs (a): {100 * (t_c / t_a - 1):+.1f}%")
    if out_b is not None:
        rows_b = [row for out in out_b for row in out]
        rows_c = [row for out in out_c for row in out]
        same = sum([i for i, _ in rb] == [i for i, _ in rc] for rb, rc in zip(rows_b, rows_c, strict=True))
        diff = max(abs(sb - sc) for rb, rc in zip(rows_b, rows_c) for (_, sb), (_, sc) in zip(rb, rc))  # noqa: B905
        print(f"identical top-{k} lists (b) vs (c): {same}/{len(rows_c)} rows, max score difference {diff:.2e}")
    if args.scorer_users:
        sub = {key: v[: args.scorer_users].to(args.device) for key, v in batches[0].items()}
        n_scored = min(args.scorer_items, args.items)
        sub_trie = ItemTrie(seqs[:n_scored], eos_token_id=1)
        t0 = time.perf_counter()
        score_items(model, sub, sub_trie, args.item_batch_size)
        t_s = time.perf_counter() - t0
        print(f"exact scorer score_items over {n_scored} items: {args.scorer_users / t_s:8.3f} users/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
    parser.add_argument("--shapes", default="mini,t5-small", help=f"comma-separated, from {sorted(SHAPES)}")
    parser.add_argument("--items", type=int, default=10_000, help="catalog size")
    parser.add_argument("--id-scheme", choices=["digits", "added-tokens"], default="digits", help="item ID tokens")
    parser.add_argument("--vocab-size", type=int, default=32_128, help="base vocabulary (t5-small's)")
    parser.add_argument("--num-beams", type=int, default=20, help="beam width")
    parser.add_argument("--k", type=int, default=20, help="items returned per user")
    parser.add_argument("--batch-size", type=int, default=16, help="users per batch")
    parser.add_argument("--batches", type=int, default=2, help="timed batches per method")
    parser.add_argument("--prompt-len", type=int, default=64, help="encoder input length (with padding)")
    parser.add_argument("--scorer-users", type=int, default=1, help="users for the exact scorer (0 skips it)")
    parser.add_argument("--scorer-items", type=int, default=2_000, help="catalog prefix the scorer ranks")
    parser.add_argument("--item-batch-size", type=int, default=512, help="(user, item) pairs per scorer pass")
    parser.add_argument("--skip-anchor", action="store_true", help="skip the slow baseline (b)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (0: torch default; 1 is steadiest on a busy machine)"
    )
    parser.add_argument("--seed", type=int, default=0, help="weights and inputs seed")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for name in args.shapes.split(","):
        if name not in SHAPES:
            parser.error(f"unknown shape {name!r}; choose from {sorted(SHAPES)}")
        run_shape(name, args)


if __name__ == "__main__":
    main()
