"""Yes/no and candidate answers read from the model's next-item distribution inside the prompt.

A decoder-only model trained with the history loss predicts, at every item token of a prompt, the
item that comes next (SASRec's objective inside the prompt). A yes/no question ("after A, B, C,
will the user pick D?") is then answered by where D stands in that prediction after the last
history item: the share of the catalog the model finds less likely than D. On Musical Instruments
this reads the same trained model at AUC .66 (SASRec's level) where the learned "yes" token gives
.57: the answer token has to learn the comparison from one example per user, the item
distribution is trained on every history position. A choice among candidates is read the same way:
the candidates ordered by that distribution (Musical Instruments HR@10 .3025 against .2925 from the
decoded answer, SASRec .3079; docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from p5rec.decoding._decoder import check_batch, eval_mode


def next_item_scores(
    model: torch.nn.Module,
    batch: Mapping[str, torch.Tensor],
    item_tokens: torch.Tensor,
    skip: Sequence[Sequence[int]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the next-item scores over the catalog after the prompt's last item that is not in `skip`.

    Args:
        model: a decoder-only HF LM whose items are one token each.
        batch (`dict`): left-padded `input_ids` and `attention_mask` `(B, T)` of prompts.
        item_tokens (`torch.LongTensor` of shape `(n,)`): the token of each catalog item, by position.
        skip (`Sequence[Sequence[int]]`): per row, catalog positions of the items the question is
            about (the asked item, the candidates): they are not history.

    Returns:
        `(B, n)` float32 logits on the model's device, and `(B,)` bool: whether the row has a history
        item at all (rows without one get the scores after their last token; do not use them).
    """
    input_ids, attention_mask = check_batch(batch)
    if len(skip) != input_ids.shape[0]:
        raise ValueError(f"`skip` has {len(skip)} rows for {input_ids.shape[0]} prompts: give one per prompt")
    device = next(model.parameters()).device
    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    item_tokens = item_tokens.to(device)
    width = max(1, max(map(len, skip), default=0))
    padded = [list(positions) + [-1] * (width - len(positions)) for positions in skip]
    skipped = torch.tensor(padded, dtype=torch.long, device=device)  # (B, m) catalog positions, -1 pads
    skip_tok = torch.where(skipped >= 0, item_tokens[skipped.clamp(min=0)], -1)  # (B, m) tokens, -1 pads
    # The last item token of each prompt that is not one of its row's skipped items: the newest history item.
    is_item = torch.isin(input_ids, item_tokens) & (attention_mask == 1)
    is_item &= ~(input_ids[:, :, None] == skip_tok[:, None, :]).any(-1)
    found = is_item.any(1)
    steps = torch.arange(input_ids.shape[1], device=device).expand_as(input_ids)
    last = torch.where(found, torch.where(is_item, steps, -1).amax(1), input_ids.shape[1] - 1)  # (B,)
    pos = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)  # as generate gives
    keep = torch.unique(last)
    with eval_mode(model):
        logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=pos, logits_to_keep=keep).logits
    column = torch.searchsorted(keep, last)  # where each row's position sits among the kept ones
    rows = torch.arange(input_ids.shape[0], device=device)
    return logits[rows, column][:, item_tokens].float(), found


def next_item_percentile(
    model: torch.nn.Module,
    batch: Mapping[str, torch.Tensor],
    item_tokens: torch.Tensor,
    asked: Sequence[int],
) -> torch.Tensor:
    """Per row, the share of catalog items scored below the asked one after the prompt's last other item.

    Args:
        model: a decoder-only HF LM whose items are one token each.
        batch (`dict`): left-padded `input_ids` and `attention_mask` `(B, T)` of prompts.
        item_tokens (`torch.LongTensor` of shape `(n,)`): the token of each catalog item, by position.
        asked (`Sequence[int]`): per row, the catalog position of the item the question is about.

    Returns:
        `(B,)` float32 in [0, 1) on the CPU: 0 when the item is the least likely, near 1 the most.

    Raises:
        ValueError: a prompt holds no catalog item token besides the asked item's (no history to
            predict from), or `asked` does not give one item per row.
    """
    n_rows = check_batch(batch)[0].shape[0]
    if len(asked) != n_rows:
        raise ValueError(f"`asked` has {len(asked)} items for {n_rows} prompts: give one per prompt")
    scores, found = next_item_scores(model, batch, item_tokens, [[a] for a in asked])
    if not bool(found.all()):
        row = int((~found).nonzero()[0])
        raise ValueError(
            f"prompt {row} holds no item besides the asked one: the next-item read-out needs the user's "
            "history in the prompt (use a template with `history`, or the answer read-out)"
        )
    rows = torch.arange(scores.shape[0], device=scores.device)
    mine = scores[rows, torch.as_tensor(list(asked), dtype=torch.long, device=scores.device)][:, None]
    return ((scores < mine).sum(1).float() / scores.shape[1]).cpu()
