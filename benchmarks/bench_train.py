"""Training throughput: p5rec's batching (length-grouped, dynamically padded) vs. a naive loop.

The naive loop is what a first training script does: random batches, every batch padded to the
longest example of the whole epoch. Both loops see the same examples, the same model and the same
optimizer; only batching and padding differ. Prints samples/s per preset on CPU, and, when a GPU
is present, tokens/s and peak memory of a t5-small-shaped model in bf16.

    python benchmarks/bench_train.py                     # tiny + mini, 100 users, 10 steps each
    python benchmarks/bench_train.py --users 1000 --steps 100 --presets tiny mini small
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def _setup(preset: str, users: int, batch_size: int):
    from p5rec.config import RunConfig, from_dict
    from p5rec.pipeline import build_model, prepare
    from p5rec.training.collate import Seq2SeqCollator, encode

    config: RunConfig = from_dict(
        RunConfig,
        {
            "data": {"synthetic": {"num_users": users, "num_items": max(50, users // 3), "seed": 0}},
            "model": {"backbone": preset, "vocab_size": 1000, "max_input_length": 192},
            "examples": {"max_history": 10},
            "train": {"batch_size": batch_size},
        },
        "benchmark",
    )
    prepared = prepare(config)
    model, tokenizer = build_model(config, prepared)
    examples = prepared.builder.train_examples(np.random.default_rng(0))
    enc = encode(tokenizer, [e.input for e in examples], [e.target for e in examples], 192, 64)
    collate = Seq2SeqCollator(enc, tokenizer.pad_token_id, tokenizer.eos_token_id)
    return model, tokenizer, enc, collate


def _pad_to(batch: dict[str, torch.Tensor], width: int, label_width: int, pad: int) -> dict[str, torch.Tensor]:
    """The naive loop's batch: every tensor padded to the epoch-wide maximum length."""
    out = {}
    for key, value in batch.items():
        w = label_width if key == "labels" else width
        fill = -100 if key == "labels" else (0 if key == "attention_mask" else pad)
        out[key] = torch.nn.functional.pad(value, (0, w - value.shape[1]), value=fill)
    return out


def _run(model, batches, steps: int, device: str, dtype=None) -> tuple[float, int, int]:
    """Train `steps` steps over `batches`; returns (seconds, samples, real target+input tokens)."""
    from p5rec.modeling.attention import attention_kernels  # as the trainer does (no cuDNN attention)

    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train().to(device)
    samples = tokens = 0
    batches = [batches[i % len(batches)] for i in range(steps + 1)]
    for k, batch in enumerate(batches):
        if k == 1:  # the first step warms up allocators and kernels
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        batch = {key: v.to(device) for key, v in batch.items()}
        with attention_kernels(device), torch.autocast(device_type=device, dtype=dtype, enabled=dtype is not None):
            loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if k >= 1:
            samples += batch["input_ids"].shape[0]
            tokens += int(batch["attention_mask"].sum()) + int((batch["labels"] != -100).sum())
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, samples, tokens


def compare(preset: str, users: int, batch_size: int, steps: int, device: str = "cpu", dtype=None) -> dict:
    from p5rec.training.collate import length_grouped_batches

    model, tokenizer, enc, collate = _setup(preset, users, batch_size)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    lengths = [len(a) + len(b) for a, b in zip(enc.input_ids, enc.labels)]
    rng = np.random.default_rng(0)
    grouped = [collate(b) for b in length_grouped_batches(lengths, batch_size, rng)[: steps + 1]]
    order = rng.permutation(len(enc))
    naive_idx = [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)][: steps + 1]
    width = max(len(x) for x in enc.input_ids) + 1
    label_width = max(len(x) for x in enc.labels)
    naive = [_pad_to(collate(b), width, label_width, tokenizer.pad_token_id) for b in naive_idx]
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t_fast, n_fast, tok_fast = _run(model, grouped, steps, device, dtype)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
    model.load_state_dict(state)
    t_naive, n_naive, tok_naive = _run(model, naive, steps, device, dtype)
    return {
        "preset": preset,
        "device": device,
        "examples": len(enc),
        "p5rec samples/s": n_fast / t_fast,
        "naive samples/s": n_naive / t_naive,
        "speedup": (n_fast / t_fast) / (n_naive / t_naive),
        "p5rec tokens/s": tok_fast / t_fast,
        "peak GiB": peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--presets", nargs="*", default=["tiny", "mini"], help="CPU presets (default tiny mini; none: GPU row only)"
    )
    parser.add_argument("--users", type=int, default=100, help="synthetic users (default 100)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per loop (default 10)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = [compare(p, args.users, args.batch_size, args.steps) for p in args.presets]
    if torch.cuda.is_available():  # t5-small shape, bf16 autocast
        rows.append(compare("small", args.users, args.batch_size, args.steps, "cuda", torch.bfloat16))
    cols = [
        "preset",
        "device",
        "examples",
        "p5rec samples/s",
        "naive samples/s",
        "speedup",
        "p5rec tokens/s",
        "peak GiB",
    ]
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(f"{r[c]:.2f}" if isinstance(r[c], float) else str(r[c]) for c in cols))


if __name__ == "__main__":
    main()
