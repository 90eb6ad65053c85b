"""Step one HF model token by token with a KV cache, hiding encoder-decoder vs decoder-only.

Shared by the beam search and the exact scorers. The prompt (encoder input, or the left-padded
decoder-only prompt) is run once per input row together with the forced ID prefix; the cache is
then gathered to as many rows as needed (beams, or (row, item) pairs).

transformers 5.24 renamed the forward argument and output field ``past_key_values`` to ``cache``
(the old name warns, and goes in 5.40); :func:`cache_keyword` picks the name the model's own
``forward`` declares, so the same code runs without warnings on both sides of the rename.
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
from transformers import DynamicCache, EncoderDecoderCache
from transformers.modeling_outputs import BaseModelOutput

from p5rec.modeling.attention import attention_kernels, model_device


def check_batch(batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """`(input_ids, attention_mask)` of `batch`, validated."""
    if not isinstance(batch, Mapping) or "input_ids" not in batch:
        raise ValueError("`batch` must be a dict with `input_ids` and `attention_mask` tensors.")
    input_ids = batch["input_ids"]
    mask = batch.get("attention_mask")
    if not isinstance(input_ids, torch.Tensor) or input_ids.ndim != 2 or input_ids.shape[0] == 0:
        raise ValueError(f"`batch['input_ids']` must be a non-empty 2-D tensor, got {_shape(input_ids)}.")
    if mask is None:
        mask = torch.ones_like(input_ids)
    if not isinstance(mask, torch.Tensor) or mask.shape != input_ids.shape:
        raise ValueError(
            f"`batch['attention_mask']` shape {_shape(mask)} must equal `batch['input_ids']` shape "
            f"{tuple(input_ids.shape)}."
        )
    return input_ids, mask


def _shape(x: object) -> str:
    return str(tuple(x.shape)) if isinstance(x, torch.Tensor) else type(x).__name__


@contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Run in eval mode (no dropout), without gradients and with shape-agnostic attention kernels; restore the mode."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), attention_kernels(model_device(model)):
            yield
    finally:
        model.train(was_training)


def cache_keyword(model: torch.nn.Module) -> str:
    """The name under which `model`'s forward takes and returns the KV cache.

    ``"cache"`` for transformers >= 5.24, ``"past_key_values"`` for earlier releases (and for a model
    whose forward declares neither, as it then passes keywords through to one that predates the
    rename). A peft wrapper passes keywords through, so its base model decides.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return _forward_cache_keyword(type(base))


@functools.cache
def _forward_cache_keyword(cls: type) -> str:
    try:
        params = inspect.signature(cls.forward).parameters  # follows the deprecation wrapper to the real forward
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in params else "past_key_values"


class Decoder:
    """A batch of decoding rows over one model and a growing KV cache."""

    def __init__(self, model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        self.model = model
        self.cache_keyword = cache_keyword(model)
        self.device = next(model.parameters()).device
        self.enc_dec = bool(getattr(model.config, "is_encoder_decoder", False))
        self.input_ids = input_ids.to(self.device)
        self.attention_mask = attention_mask.to(self.device)
        self.cache = None
        self.encoder_hidden = None  # (rows, src_len, d) encoder-decoder only
        self.next_pos = None  # (rows,) next position id, decoder-only only

    def start(self, prefix: torch.Tensor) -> torch.Tensor:
        """Run the prompt plus `prefix` `(P,)` for each input row; logits `(B, P + 1, V)`.

        Position ``j`` holds the next-token logits after ``prefix[:j]``: the forced prefix is
        scored and consumed in the same forward pass, not one step per token.
        """
        b = self.input_ids.shape[0]
        prefix = prefix.to(self.device).expand(b, -1)
        if self.enc_dec:
            start_id = self.model.config.decoder_start_token_id
            if start_id is None:
                raise ValueError("`model.config.decoder_start_token_id` is None; set it to decode.")
            enc = self.model.get_encoder()(input_ids=self.input_ids, attention_mask=self.attention_mask)
            self.encoder_hidden = enc.last_hidden_state
            dec_in = torch.cat([torch.full((b, 1), start_id, device=self.device), prefix], dim=1)
            config = self.model.config
            cache = EncoderDecoderCache(DynamicCache(config=config), DynamicCache(config=config))
            out = self.model(
                encoder_outputs=BaseModelOutput(last_hidden_state=self.encoder_hidden),
                attention_mask=self.attention_mask,
                decoder_input_ids=dec_in,
                use_cache=True,
                **{self.cache_keyword: cache},
            )
        else:
            ids = torch.cat([self.input_ids, prefix], dim=1)
            self.attention_mask = torch.cat([self.attention_mask, torch.ones_like(prefix)], dim=1)
            # Same positions as `generate` gives left-padded prompts: count real tokens only.
            pos = (self.attention_mask.long().cumsum(-1) - 1).masked_fill(self.attention_mask == 0, 0)
            self.next_pos = pos[:, -1] + 1
            out = self.model(
                input_ids=ids,
                attention_mask=self.attention_mask,
                position_ids=pos,
                use_cache=True,
                logits_to_keep=prefix.shape[1] + 1,
                **{self.cache_keyword: DynamicCache(config=self.model.config)},
            )
        self.cache = getattr(out, self.cache_keyword)
        return out.logits[:, -(prefix.shape[1] + 1) :].float()

    def reorder(self, rows: torch.Tensor, within_input_rows: bool = False) -> None:
        """Keep cache row ``rows[i]`` as new row ``i`` (may grow the batch, e.g. to beams).

        With `within_input_rows` (a beam reorder that never moves a row to another input row)
        the cross-attention cache and encoder states are identical across the moved rows, so
        only the self-attention cache is gathered.
        """
        if self.enc_dec:
            if within_input_rows:
                self.cache.self_attention_cache.reorder_cache(rows)
                return
            self.cache.reorder_cache(rows)
            self.encoder_hidden = self.encoder_hidden[rows]
            self.attention_mask = self.attention_mask[rows]
        else:
            self.cache.reorder_cache(rows)
            self.attention_mask = self.attention_mask[rows]
            self.next_pos = self.next_pos[rows]

    def fork(self, rows: torch.Tensor) -> Decoder:
        """A copy whose row ``i`` is this decoder's row ``rows[i]``; this one is unchanged."""
        other = copy.copy(self)
        other.cache = copy.deepcopy(self.cache)
        other.reorder(rows)
        return other

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Feed `tokens` `(rows, L)` after the cached ones; logits `(rows, L, V)` as float32."""
        if self.enc_dec:
            out = self.model(
                encoder_outputs=BaseModelOutput(last_hidden_state=self.encoder_hidden),
                attention_mask=self.attention_mask,
                decoder_input_ids=tokens,
                use_cache=True,
                **{self.cache_keyword: self.cache},
            )
        else:
            n, length = tokens.shape
            self.attention_mask = torch.cat([self.attention_mask, self.attention_mask.new_ones(n, length)], dim=1)
            pos = self.next_pos[:, None] + torch.arange(length, device=self.device)
            self.next_pos = self.next_pos + length
            out = self.model(
                input_ids=tokens,
                attention_mask=self.attention_mask,
                position_ids=pos,
                use_cache=True,
                **{self.cache_keyword: self.cache},
            )
        self.cache = getattr(out, self.cache_keyword)
        return out.logits.float()
