"""Top-k item recommendation by trie-constrained beam search, and the exact full-ranking scorer.

`recommend_items` is its own batched beam search rather than `model.generate` plus processors,
because the tricks that make it fast need control of the loop:

* the forced ID prefix ("▁item", "_") is fed in the same forward pass as the prompt and scored
  once per input row, not generated one step at a time by every beam;
* the prompt step runs on ``B`` rows, not ``B * num_beams`` copies of them;
* a step scores only the ``(rows, width)`` block of trie children, gathered from the log-softmax
  (in cache-sized row blocks on the CPU), instead of masking a ``(rows, vocab)`` tensor;
* beams move only within their input row, so the encoder states and the cross-attention cache are
  expanded once and never reordered;
* the search stops as soon as no running beam can still enter any row's top k (one scalar sync
  per step; the number of steps is bounded by the trie depth).

Its selection rule is the one `model.generate` uses with ``length_penalty=0`` and
``early_stopping=False`` (keep the best ``2 * num_beams`` continuations, finish those among the
best ``num_beams`` that end in eos, continue the best ``num_beams`` others), so the top k equals
the `prefix_allowed_tokens_fn` reference in :mod:`p5rec.decoding.reference`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from p5rec.decoding._decoder import Decoder, check_batch, eval_mode
from p5rec.decoding.beams import beam_width
from p5rec.decoding.trie import ItemTrie, RowItemCounts

__all__ = ["recommend_items", "score_continuations", "score_items", "score_targets"]

CONTINUATION_ROWS = 256  # candidate rows scored per forward pass: bounds the (rows, width, vocab) log-softmax


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` ({value!r}) must be a positive int.")
    return int(value)


def _per_row(name: str, lists: object, num_rows: int) -> None:
    if isinstance(lists, (str, bytes)) or not isinstance(lists, Sequence):
        raise TypeError(f"`{name}` must be a list with one list of item indices per input row, got {lists!r}.")
    if len(lists) != num_rows:
        raise ValueError(f"`{name}` has {len(lists)} lists but the batch has {num_rows} rows; pass one per row.")


def _token_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """``log_softmax(logits)`` at `tokens`: `logits` `(R, V)`, `tokens` `(R, W)` -> `(R, W)`.

    This normalisation over the whole vocabulary is, after the LM head, the largest cost of a
    decoding step on the CPU. There the rows go through in blocks of about 4 MB, so each block's
    log-softmax stays in cache: for the mini benchmark's 320 beam rows x 32k vocabulary on one
    shared CPU thread, 7 ms a step against 40 ms for `logsumexp` over the whole tensor (which
    makes four passes through memory). A GPU gets one fused kernel.
    """
    if logits.device.type != "cpu":
        return logits.log_softmax(-1).gather(1, tokens)
    rows = max(1, (1 << 20) // logits.shape[-1])
    return torch.cat([x.log_softmax(-1).gather(1, t) for x, t in zip(logits.split(rows), tokens.split(rows))])


def _row_filter(
    trie: ItemTrie,
    num_rows: int,
    exclude: Sequence[Sequence[int]] | None,
    candidates: Sequence[Sequence[int]] | None,
) -> tuple[RowItemCounts | None, bool]:
    """Counts of allowed items per (row, state), and whether they are candidate (vs excluded) counts."""
    if exclude is not None:
        _per_row("exclude", exclude, num_rows)
        counts = trie.count_under(exclude, name="exclude")  # validates the indices
    if candidates is None:
        return (counts, False) if exclude is not None else (None, False)
    _per_row("candidates", candidates, num_rows)
    trie.count_under(candidates, name="candidates")  # validates before the set difference
    if exclude is not None:  # one exact table: candidates minus exclusions
        candidates = [sorted(set(map(int, c)) - set(map(int, e))) for c, e in zip(candidates, exclude, strict=True)]
    return trie.count_under(candidates, name="candidates"), True


def recommend_items(
    model: torch.nn.Module,
    batch: Mapping[str, torch.Tensor],
    trie: ItemTrie,
    k: int,
    num_beams: int | None = None,
    exclude: Sequence[Sequence[int]] | None = None,
    candidates: Sequence[Sequence[int]] | None = None,
    max_new_tokens: int | None = None,
) -> list[list[tuple[int, float]]]:
    """Top-k distinct items per input row by constrained beam search, best first.

    Args:
        model: a HF encoder-decoder (T5, BART) or decoder-only (GPT-2, Llama) LM. Run in eval
            mode without gradients; its mode is restored afterwards.
        batch (`dict`): `input_ids` and `attention_mask` `(B, T)`; decoder-only prompts left-padded.
        trie (`ItemTrie`): the catalog; returned indices index the sequences it was built from.
        k (`int`): items per row, at most the catalog and every candidate list (`p5rec.decoding.beams`).
            Fewer come back only when exclusions leave fewer allowed items, or longer IDs are cut off.
        num_beams (`int`, *optional*): beam width, >= `k`; defaults to ``max(DEFAULT_NUM_BEAMS, k)`` (20).
        exclude (`list[list[int]]`, *optional*): per row, item indices never to return.
        candidates (`list[list[int]]`, *optional*): per row, the only item indices to return.
        max_new_tokens (`int`, *optional*): cap on generated tokens (ID + eos); longer IDs are
            never returned. Defaults to the longest ID.

    Returns:
        Per row, ``(item_index, log_probability)`` pairs sorted best first, where the score is
        the sequence log-probability of the item's tokens including eos.
    """
    k = _check_positive_int("k", k)
    if max_new_tokens is not None:
        max_new_tokens = _check_positive_int("max_new_tokens", max_new_tokens)
    if not isinstance(trie, ItemTrie):
        raise TypeError(f"`trie` must be an ItemTrie, got {type(trie).__name__}.")
    input_ids, attention_mask = check_batch(batch)
    if candidates is not None:
        _per_row("candidates", candidates, input_ids.shape[0])
    num_beams = beam_width(k, num_beams, num_items=trie.num_items, candidates=candidates)
    counts, is_candidates = _row_filter(trie, input_ids.shape[0], exclude, candidates)
    with eval_mode(model):
        decoder = Decoder(model, input_ids, attention_mask)
        trie = trie.to(decoder.device)
        counts = counts.to(decoder.device) if counts is not None else None
        return _beam_search(decoder, trie, k, num_beams, counts, is_candidates, max_new_tokens)


def _beam_search(
    dec: Decoder,
    trie: ItemTrie,
    k: int,
    num_beams: int,
    counts: RowItemCounts | None,
    is_candidates: bool,
    max_new_tokens: int | None,
) -> list[list[tuple[int, float]]]:
    b, dev = dec.input_ids.shape[0], dec.device
    prefix = torch.tensor(trie.forced_prefix, dtype=torch.long, device=dev)
    n_prefix = len(prefix)
    steps = trie.max_length - n_prefix
    if max_new_tokens is not None:
        steps = min(steps, max_new_tokens - n_prefix)
    if steps <= 0:
        return [[] for _ in range(b)]

    logits = dec.start(prefix)  # (B, P + 1, V)
    scores = torch.zeros(b, device=dev)  # running log-probability per beam row
    if n_prefix:
        prefix_logp = logits[:, :n_prefix].log_softmax(-1).gather(2, prefix.expand(b, -1)[:, :, None])[:, :, 0]
        for j in range(n_prefix):  # accumulate in generation order, as `generate` does
            scores = scores + prefix_logp[:, j]
    logits = logits[:, n_prefix]  # (R, V), R = B rows now, B * num_beams after the first step
    states = torch.full((b,), trie.state_of(trie.forced_prefix), dtype=torch.long, device=dev)
    input_row = torch.arange(b, device=dev)
    pool_scores = torch.full((b, k), -float("inf"), device=dev)  # finished items, best first
    pool_items = torch.full((b, k), -1, dtype=torch.long, device=dev)
    n_keep = 2 * num_beams  # as in `generate`: enough that num_beams unfinished ones survive
    beams = 1
    tokens = prefix  # the tokens fed at step t > 0 are set by step t - 1
    for t in range(steps):
        if t > 0:
            logits = dec.step(tokens[:, None])[:, -1]
        tok, nxt, valid = trie.children(states, n_prefix + t)  # (R, W) each
        if counts is not None:
            rows = input_row[:, None].expand_as(nxt)
            allowed = counts.lookup(rows, nxt)
            if not is_candidates:
                allowed = trie.items_under[nxt.clamp(min=0)] - allowed
            valid = valid & (allowed > 0)
        logp = _token_logprobs(logits, tok)  # (R, W)
        cand = torch.where(valid, scores[:, None] + logp, -float("inf"))
        width = cand.shape[1]
        cand = cand.view(b, beams * width)
        if cand.shape[1] < n_keep:
            cand = torch.nn.functional.pad(cand, (0, n_keep - cand.shape[1]), value=-float("inf"))
        top_scores, top_idx = cand.topk(n_keep, dim=1)  # (B, 2 * num_beams), sorted
        top_idx = top_idx.clamp(max=beams * width - 1)  # padding slots hold -inf anyway
        src = torch.arange(b, device=dev)[:, None] * beams + top_idx // width  # beam row of each
        top_tok = tok[src, top_idx % width]
        top_next = nxt[src, top_idx % width]
        alive = torch.isfinite(top_scores)
        finished = top_tok == trie.eos_token_id

        # Finished items among the best num_beams join the pool; it keeps the best k.
        new = finished & alive & (torch.arange(n_keep, device=dev) < num_beams)
        merged_scores = torch.cat([pool_scores, torch.where(new, top_scores, -float("inf"))], dim=1)
        merged_items = torch.cat([pool_items, torch.where(new, trie.leaf_item[top_next.clamp(min=0)], -1)], dim=1)
        pool_scores, order = merged_scores.topk(k, dim=1)
        pool_items = merged_items.gather(1, order)

        run_scores, keep = torch.where(finished, -float("inf"), top_scores).topk(num_beams, dim=1)
        src = src.gather(1, keep).view(-1)
        tokens = top_tok.gather(1, keep).view(-1)
        states = torch.where(torch.isfinite(run_scores), top_next.gather(1, keep), -1).view(-1)
        scores = run_scores.view(-1)
        if t == steps - 1:
            break
        # Log-probabilities only fall, so a row is done once its best running beam cannot beat its
        # k-th finished item (or no beam runs). This is the one host sync of a step.
        if bool((run_scores[:, 0] <= pool_scores[:, k - 1]).all()):
            break
        dec.reorder(src, within_input_rows=beams > 1)
        input_row = torch.arange(b, device=dev).repeat_interleave(num_beams)  # beams stay in their row
        beams = num_beams

    items, values = pool_items.tolist(), pool_scores.tolist()
    return [
        [(i, s) for i, s in zip(row_i, row_s, strict=True) if i >= 0]
        for row_i, row_s in zip(items, values, strict=True)
    ]


def score_items(
    model: torch.nn.Module,
    batch: Mapping[str, torch.Tensor],
    trie: ItemTrie,
    item_batch_size: int = 256,
) -> torch.Tensor:
    """Exact log-probability of every item for every row, by teacher forcing each item's ID.

    The prompt and forced prefix run once per row; the remaining ID tokens of ``item_batch_size``
    (row, item) pairs run per forward pass on a copy of that row's cache. Cost grows with
    ``rows x items``: meant for small catalogs and faithful full-ranking evaluation.

    Args:
        model: a HF encoder-decoder or decoder-only LM (run in eval mode, restored afterwards).
        batch (`dict`): `input_ids` and `attention_mask` `(B, T)`.
        trie (`ItemTrie`): the catalog.
        item_batch_size (`int`, defaults to 256): (row, item) pairs per forward pass.

    Returns:
        `(B, trie.num_items)` float32 tensor on the CPU: log p(item tokens + eos | prompt).
    """
    item_batch_size = _check_positive_int("item_batch_size", item_batch_size)
    if not isinstance(trie, ItemTrie):
        raise TypeError(f"`trie` must be an ItemTrie, got {type(trie).__name__}.")
    input_ids, attention_mask = check_batch(batch)
    b = input_ids.shape[0]
    lengths = trie.item_lengths.cpu()
    with eval_mode(model):
        dec = Decoder(model, input_ids, attention_mask)
        trie = trie.to(dec.device)
        n_prefix = len(trie.forced_prefix)
        prefix = torch.tensor(trie.forced_prefix, dtype=torch.long, device=dec.device)
        logp = dec.start(prefix).log_softmax(-1)  # (B, P + 1, V)
        suffix = trie.item_tokens[:, n_prefix:]  # (n, L) tokens after the forced prefix, eos padded
        total = logp[:, n_prefix].gather(1, suffix[:, 0].expand(b, -1))  # first free token
        if n_prefix:
            total = total + logp[:, :n_prefix].gather(2, prefix.expand(b, -1)[:, :, None]).sum(1)
        # Remaining tokens, grouped by ID length so a forward pass carries no padding.
        suffix_len = lengths - n_prefix
        for length in sorted(set(suffix_len.tolist()) - {1}):
            items = torch.nonzero(suffix_len == length).flatten()
            pairs = torch.cartesian_prod(torch.arange(b), items)  # (rows * items, 2): row-major
            for chunk in pairs.split(item_batch_size):
                rows, its = chunk[:, 0].to(dec.device), chunk[:, 1].to(dec.device)
                seq = suffix[its, :length]
                step_logits = dec.fork(rows).step(seq[:, :-1])  # (C, length - 1, V)
                gathered = _token_logprobs(step_logits.flatten(0, 1), seq[:, 1:].reshape(-1, 1)).view(len(chunk), -1)
                total[rows, its] += gathered.sum(1)
    return total.cpu()


def score_targets(
    model: torch.nn.Module, batch: Mapping[str, torch.Tensor], targets: Sequence[Sequence[int]]
) -> torch.Tensor:
    """Exact log-probability of one given token sequence per row (e.g. the held-out item + eos).

    One teacher-forced pass: the prompt, then the target tokens. Validation reads it as the
    likelihood of the true answer, which moves smoothly while ranking metrics on a few thousand
    users are still flat or noisy.

    Args:
        model: a HF encoder-decoder or decoder-only LM (run in eval mode, restored afterwards).
        batch (`dict`): `input_ids` and `attention_mask` `(B, T)`; decoder-only prompts left-padded.
        targets (`list[list[int]]`): per row, the token ids to score (include eos to score the end).

    Returns:
        `(B,)` float32 tensor on the CPU: sum of the targets' token log-probabilities.
    """
    input_ids, attention_mask = check_batch(batch)
    _per_row("targets", targets, input_ids.shape[0])
    if any(len(t) == 0 for t in targets):
        raise ValueError("`targets` holds an empty sequence; give at least one token per row.")
    b, width = input_ids.shape[0], max(len(t) for t in targets)
    with eval_mode(model):
        dec = Decoder(model, input_ids, attention_mask)
        pad = 0
        tokens = torch.full((b, width), pad, dtype=torch.long, device=dec.device)
        real = torch.zeros((b, width), dtype=torch.bool, device=dec.device)
        for r, t in enumerate(targets):
            tokens[r, : len(t)] = torch.tensor(list(t), device=dec.device)
            real[r, : len(t)] = True
        logits = dec.start(tokens[:, :0])  # (B, 1, V): the first target token's distribution
        if width > 1:
            logits = torch.cat([logits, dec.step(tokens[:, :-1])], dim=1)  # (B, width, V)
        logp = logits.log_softmax(-1).gather(2, tokens[:, :, None])[:, :, 0]
        return (logp * real).sum(1).cpu()


def score_continuations(
    model: torch.nn.Module, batch: Mapping[str, torch.Tensor], targets: Sequence[Sequence[Sequence[int]]]
) -> list[torch.Tensor]:
    """Exact log-probability of each of several token sequences per row, the prompt run once.

    What :func:`score_targets` gives for one sequence per row, for many: the prompt's KV cache is
    computed once per row and shared by all of its sequences (the candidates of a chosen answer:
    100 titles after a 200-token review cost one review, not 100), in blocks of at most
    `CONTINUATION_ROWS` sequences.

    Args:
        model: a HF encoder-decoder or decoder-only LM (run in eval mode, restored afterwards).
        batch (`dict`): `input_ids` and `attention_mask` `(B, T)`; decoder-only prompts left-padded.
        targets: per row, a non-empty list of non-empty token-id sequences (include eos to score the end).

    Returns:
        per row, a float32 tensor on the CPU: the sum of each sequence's token log-probabilities.
    """
    input_ids, attention_mask = check_batch(batch)
    _per_row("targets", targets, input_ids.shape[0])
    if any(not seqs or any(len(t) == 0 for t in seqs) for seqs in targets):
        raise ValueError("`targets` holds a row without sequences or an empty sequence; give at least one token each.")
    rows = [r for r, seqs in enumerate(targets) for _ in seqs]
    flat = [list(t) for seqs in targets for t in seqs]
    # Blocks of similar lengths: a block is padded to its longest sequence, and every padded position
    # costs a row of output logits (the bulk of the work on a small model with a large vocabulary).
    order = sorted(range(len(flat)), key=lambda k: len(flat[k]))
    sums = torch.empty(len(flat))
    with eval_mode(model):
        dec = Decoder(model, input_ids, attention_mask)
        first = dec.start(input_ids.new_zeros((input_ids.shape[0], 0)))  # (B, 1, V): each first token
        for lo in range(0, len(flat), CONTINUATION_ROWS):
            picked = order[lo : lo + CONTINUATION_ROWS]
            block, at = [flat[k] for k in picked], torch.tensor([rows[k] for k in picked])
            width = max(map(len, block))
            tokens = torch.zeros((len(block), width), dtype=torch.long, device=dec.device)
            real = torch.zeros((len(block), width), dtype=torch.bool, device=dec.device)
            for k, t in enumerate(block):
                tokens[k, : len(t)] = torch.tensor(t, device=dec.device)
                real[k, : len(t)] = True
            logits = first[at.to(first.device)]
            if width > 1:
                logits = torch.cat([logits, dec.fork(at.to(dec.device)).step(tokens[:, :-1])], dim=1)
            logp = logits.log_softmax(-1).gather(2, tokens[:, :, None])[:, :, 0]
            sums[torch.tensor(picked)] = (logp * real).sum(1).cpu()
    return list(sums.split([len(seqs) for seqs in targets]))
