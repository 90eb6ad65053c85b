"""Yes/no answers read from the model's next-item distribution inside the prompt.

A decoder-only model trained with the history loss predicts, at every item token of a prompt, the
item that comes next (SASRec's objective inside the prompt). A yes/no question ("after A, B, C,
will the user pick D?") is then answered by where D stands in that prediction after the last
history item: the share of the catalog the model finds less likely than D. On Musical Instruments
this reads the same trained model at AUC .66 (SASRec's level) where the learned "yes" token gives
.57: the answer token has to learn the comparison from one example per user, the item
distribution is trained on every history position.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from p5rec.decoding._decoder import check_batch, eval_mode


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
    input_ids, attention_mask = check_batch(batch)
    if len(asked) != input_ids.shape[0]:
        raise ValueError(f"`asked` has {len(asked)} items for {input_ids.shape[0]} prompts: give one per prompt")
    device = next(model.parameters()).device
    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    item_tokens = item_tokens.to(device)
    asked_pos = torch.as_tensor(list(asked), dtype=torch.long, device=device)
    asked_tok = item_tokens[asked_pos]
    # The last item token of each prompt that is not the asked item: the newest history item.
    is_item = torch.isin(input_ids, item_tokens) & (input_ids != asked_tok[:, None]) & (attention_mask == 1)
    if not bool(is_item.any(1).all()):
        row = int((~is_item.any(1)).nonzero()[0])
        raise ValueError(
            f"prompt {row} holds no item besides the asked one: the next-item read-out needs the user's "
            "history in the prompt (use a template with `history`, or the answer read-out)"
        )
    steps = torch.arange(input_ids.shape[1], device=device).expand_as(input_ids)
    last = torch.where(is_item, steps, -1).amax(1)  # (B,)
    pos = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)  # as generate gives
    keep = torch.unique(last)
    with eval_mode(model):
        logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=pos, logits_to_keep=keep).logits
    column = torch.searchsorted(keep, last)  # where each row's position sits among the kept ones
    rows = torch.arange(input_ids.shape[0], device=device)
    scores = logits[rows, column][:, item_tokens].float()  # (B, n): the next-item scores over the catalog
    mine = scores[rows, asked_pos][:, None]
    return ((scores < mine).sum(1).float() / len(item_tokens)).cpu()
