"""The baseline: `model.generate` with `prefix_allowed_tokens_fn` over a nested-dict trie.

This is how constrained item decoding is usually written (P5, TIGER reproductions): a Python
callback per beam per step walks a dict-of-dicts. It is kept as the reference that tests and
``benchmarks/bench_decoding.py`` compare :func:`p5rec.decoding.recommend_items` against, not as
a code path to use. Exclusions and candidate lists are exact here too: each row gets a trie of
only its allowed items.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

__all__ = ["build_dict_trie", "reference_recommend_items"]


def build_dict_trie(sequences: Sequence[Sequence[int]], eos_token_id: int) -> dict:
    """Nested dicts ``{token: {token: ...}}`` over ``sequence + [eos]``; a leaf maps eos to ``{}``."""
    root: dict = {}
    for seq in sequences:
        node = root
        for token in [*seq, eos_token_id]:
            node = node.setdefault(int(token), {})
    return root


def reference_recommend_items(
    model: torch.nn.Module,
    batch: Mapping[str, torch.Tensor],
    sequences: Sequence[Sequence[int]],
    eos_token_id: int,
    k: int,
    num_beams: int = 20,
    exclude: Sequence[Sequence[int]] | None = None,
    candidates: Sequence[Sequence[int]] | None = None,
    max_new_tokens: int | None = None,
) -> list[list[tuple[int, float]]]:
    """Same contract as :func:`p5rec.decoding.recommend_items`, through `model.generate`.

    Uses ``length_penalty=0`` (scores are sequence log-probabilities) and
    ``early_stopping=False`` (stop once no running beam can beat the finished ones).
    """
    input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
    n_rows = input_ids.shape[0]
    everything = list(range(len(sequences)))
    tries = []
    for r in range(n_rows):
        allowed = set(candidates[r]) if candidates is not None else set(everything)
        allowed -= set(exclude[r]) if exclude is not None else set()
        tries.append(build_dict_trie([sequences[i] for i in sorted(allowed)], eos_token_id))
    index = {(*map(int, seq), eos_token_id): i for i, seq in enumerate(sequences)}
    start = 1 if model.config.is_encoder_decoder else input_ids.shape[1]

    def allowed_tokens(row: int, sent: torch.Tensor) -> list[int]:
        node = tries[row]
        for token in sent[start:].tolist():
            node = node.get(token)
            if node is None:  # a padding beam that left the trie
                return [eos_token_id]
        return list(node) or [eos_token_id]

    if max_new_tokens is None:
        max_new_tokens = max(len(s) for s in sequences) + 1
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                num_beams=num_beams,
                num_return_sequences=num_beams,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                **({"length_penalty": 0.0, "early_stopping": False} if num_beams > 1 else {}),
                prefix_allowed_tokens_fn=allowed_tokens,
                eos_token_id=eos_token_id,
                pad_token_id=eos_token_id,
                output_scores=True,
                output_logits=num_beams == 1,
                return_dict_in_generate=True,
            )
    finally:
        model.train(was_training)
    seqs = out.sequences[:, start:].tolist()
    if num_beams > 1:
        scores = out.sequences_scores.tolist()
    else:  # greedy search reports no sequence score: sum the raw log-probabilities up to eos
        logp = torch.stack(out.logits, 1).float().log_softmax(-1)  # (B, steps, V)
        generated = out.sequences[:, start:]
        token_logp = logp.gather(2, generated[:, :, None])[:, :, 0]
        before_eos = (generated == eos_token_id).long().cumsum(1) - (generated == eos_token_id).long() == 0
        scores = (token_logp * before_eos).sum(1).tolist()
    results = []
    for r in range(n_rows):
        found: dict[int, float] = {}
        beams = slice(r * num_beams, (r + 1) * num_beams)
        for seq, score in zip(seqs[beams], scores[beams], strict=True):
            if eos_token_id not in seq or score < -1e8:  # truncated or a -1e9 placeholder beam
                continue
            item = index.get(tuple(seq[: seq.index(eos_token_id) + 1]))
            if item is not None and item not in found:
                found[item] = score
        results.append(sorted(found.items(), key=lambda kv: -kv[1])[:k])
    return results
