"""SASRec (Kang & McAuley, ICDM 2018) trained with full softmax cross-entropy ("SASRec CE").

The network follows the paper and its reference PyTorch port (pmixer/SASRec.pytorch): item
embeddings scaled by sqrt(d) plus learned positional embeddings, dropout, then blocks of
[layer-normed query -> causal multi-head self-attention -> residual to the normed query ->
layer norm -> point-wise feed-forward with residual], padding positions zeroed after every
block, a final layer norm, and scores as dot products with the same item embedding table.

The one deliberate change is the loss: instead of binary cross-entropy against one sampled
negative, every position is trained with softmax cross-entropy over the whole catalog, which
is much stronger on small datasets (Klenitskiy & Vasilev, RecSys 2023).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from p5rec.evaluation.baselines._ranking import CatalogRanker
from p5rec.evaluation.baselines._torch import check_counts, torch_threads
from p5rec.evaluation.metrics import ndcg_at_k


@dataclass
class SASRecConfig:
    """Size and training schedule of :class:`SASRec`.

    Args:
        hidden_size: embedding and model width d (default 64).
        num_blocks: self-attention blocks (default 2).
        num_heads: attention heads; must divide `hidden_size` (default 1).
        dropout: dropout on embeddings, attention and feed-forward (default 0.5, the paper's value
            for sparse Amazon data; it used 0.2 for the denser MovieLens-1M).
        max_len: sequence window; older items are cut (default 50).
        epochs: maximum training epochs (default 100).
        batch_size: users per step (default 128).
        lr: Adam learning rate, betas (0.9, 0.98) as in the paper (default 1e-3).
        weight_decay: Adam L2 penalty (default 0.0).
        patience: with validation data, stop after this many evaluations without a better
            NDCG@10 and keep the best weights; ``None`` trains all epochs (default 20).
        eval_every: epochs between validation evaluations (default 1).
        seed: seeds weight init, dropout and batch order (default 0).
        num_threads: torch threads while fitting and scoring, restored afterwards; ``None``
            keeps torch's setting (default 1: fastest for these small kernels on a busy CPU).
        device: "auto" (a GPU when there is one, else the CPU), "cpu" or "cuda" (default "auto"):
            on Beauty's 22k users it trains in ~30 min on one CPU core.
    """

    hidden_size: int = 64
    num_blocks: int = 2
    num_heads: int = 1
    dropout: float = 0.5
    max_len: int = 50
    epochs: int = 100
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int | None = 20
    eval_every: int = 1
    seed: int = 0
    num_threads: int | None = 1
    device: str = "auto"

    def __post_init__(self) -> None:
        check_counts(self, ("hidden_size", "num_blocks", "num_heads", "max_len", "epochs", "batch_size", "eval_every"))
        if self.hidden_size % self.num_heads:
            raise ValueError(f"`hidden_size` ({self.hidden_size}) must be divisible by `num_heads` ({self.num_heads})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"`dropout` ({self.dropout!r}) must be in [0, 1)")
        if not self.lr > 0:
            raise ValueError(f"`lr` ({self.lr!r}) must be > 0")
        if not self.weight_decay >= 0:
            raise ValueError(f"`weight_decay` ({self.weight_decay!r}) must be >= 0")
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            raise ValueError(f"`device` ({self.device!r}) must be 'auto', 'cpu' or 'cuda[:N]'")

    def resolved_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)


class _PointWiseFeedForward(nn.Module):
    """Two position-wise linear layers with ReLU and a residual (the paper's FFN, Eq. 4)."""

    def __init__(self, d: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, d), nn.Dropout(dropout), nn.ReLU(), nn.Linear(d, d), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class SASRecModel(nn.Module):
    """The SASRec network; item index 0 is padding, real items are 1..n_items."""

    def __init__(self, n_items: int, config: SASRecConfig) -> None:
        super().__init__()
        d, p = config.hidden_size, config.dropout
        self.item_emb = nn.Embedding(n_items + 1, d, padding_idx=0)
        self.pos_emb = nn.Embedding(config.max_len + 1, d, padding_idx=0)
        self.emb_dropout = nn.Dropout(p)
        self.attention_norms = nn.ModuleList(nn.LayerNorm(d, eps=1e-8) for _ in range(config.num_blocks))
        self.attentions = nn.ModuleList(
            nn.MultiheadAttention(d, config.num_heads, dropout=p, batch_first=True) for _ in range(config.num_blocks)
        )
        self.ffn_norms = nn.ModuleList(nn.LayerNorm(d, eps=1e-8) for _ in range(config.num_blocks))
        self.ffns = nn.ModuleList(_PointWiseFeedForward(d, p) for _ in range(config.num_blocks))
        self.last_norm = nn.LayerNorm(d, eps=1e-8)
        for name, param in self.named_parameters():  # Xavier init, as the reference port
            if param.dim() > 1 and "norm" not in name:
                nn.init.xavier_normal_(param)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()
            self.pos_emb.weight[0].zero_()

    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        """Hidden state after each position of left-padded sequences.

        Args:
            seqs: ``(B, L)`` item indices, 0 for padding on the left.

        Returns:
            ``(B, L, d)``; position t has seen items up to t only (causal attention).
        """
        batch, length = seqs.shape
        present = seqs != 0  # (B, L)
        x = self.item_emb(seqs) * math.sqrt(self.item_emb.embedding_dim)
        positions = torch.arange(1, length + 1, device=seqs.device).expand(batch, length) * present
        x = self.emb_dropout(x + self.pos_emb(positions))
        keep = present.unsqueeze(-1)  # (B, L, 1)
        x = x * keep
        future = torch.triu(torch.ones(length, length, dtype=torch.bool, device=seqs.device), diagonal=1)
        for norm, attention, ffn_norm, ffn in zip(
            self.attention_norms, self.attentions, self.ffn_norms, self.ffns, strict=True
        ):
            query = norm(x)
            attended, _ = attention(query, x, x, attn_mask=future, need_weights=False)
            x = ffn(ffn_norm(query + attended)) * keep
        return self.last_norm(x)

    def item_scores(self, hidden: torch.Tensor) -> torch.Tensor:
        """Dot products of hidden states ``(..., d)`` with every real item: ``(..., n_items)``."""
        return hidden @ self.item_emb.weight[1:].T


class SASRec(CatalogRanker):
    """Self-attentive sequential recommender as a ranking baseline.

    Trains on each user's train sequence (next item at every position), optionally early-stopping
    on validation NDCG@10; scores the catalog from the hidden state after a history's last item.
    Runs on CPU; training is seeded and does not change the global torch random state.

    Args:
        config: a :class:`SASRecConfig` (default sizes when omitted).

    >>> model = SASRec(SASRecConfig(epochs=1, patience=None))
    >>> model.fit({"u": ["a", "b", "c"]}, ["a", "b", "c"]).recommend([["a"]], k=1)[0][0] in {"b", "c"}
    True
    """

    def __init__(self, config: SASRecConfig | None = None) -> None:
        self.config = config or SASRecConfig()
        if not isinstance(self.config, SASRecConfig):
            raise TypeError(f"`config` must be a SASRecConfig, got {type(self.config).__name__}")
        self.model: SASRecModel | None = None
        self.history: list[dict[str, float]] = []

    def fit(
        self,
        train_sequences: dict[str, list[str]],
        items: Sequence[str],
        valid: tuple[list[list[str]], list[str]] | None = None,
    ) -> SASRec:
        """Train the network.

        Args:
            train_sequences: user ID -> time-ordered train items (users with < 2 items add nothing).
            items: the full catalog.
            valid: optional ``(histories, targets)`` for early stopping on NDCG@10 (full ranking,
                history excluded); the best epoch's weights are kept.
        """
        cfg = self.config
        encoded = self._fit_catalog(train_sequences, items)
        if valid is not None:
            if len(valid) != 2 or len(valid[0]) != len(valid[1]):
                raise ValueError("`valid` must be (histories, targets) with one target per history")
            self._encode_histories(valid[0])  # fail now, not after the first epoch
            unknown = [t for t in valid[1] if t not in self._index]
            if unknown:
                raise ValueError(f"`valid` targets include {unknown[0]!r}, which is not in `items`")
        inputs, targets = self._training_windows(list(encoded.values()))
        if len(inputs) == 0:
            raise ValueError("`train_sequences` has no user with 2 or more items: nothing to learn from")
        rng = np.random.default_rng(cfg.seed)
        self.history = []
        device = cfg.resolved_device()
        inputs, targets = inputs.to(device), targets.to(device)
        with torch_threads(cfg.num_threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.model = SASRecModel(len(self._index), cfg).to(device)
            optimizer = torch.optim.Adam(
                self.model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), weight_decay=cfg.weight_decay
            )
            best, best_state, stale = -1.0, None, 0
            for epoch in range(1, cfg.epochs + 1):
                loss = self._train_epoch(inputs, targets, optimizer, rng)
                record = {"epoch": float(epoch), "loss": loss}
                if valid is not None and epoch % cfg.eval_every == 0:
                    ranked = self.recommend(valid[0], k=10)
                    record["valid_ndcg@10"] = ndcg_at_k(ranked, valid[1], 10)
                    if record["valid_ndcg@10"] > best:
                        best, best_state, stale = (
                            record["valid_ndcg@10"],
                            copy.deepcopy(self.model.state_dict()),
                            0,
                        )
                    else:
                        stale += 1
                self.history.append(record)
                if cfg.patience is not None and valid is not None and stale >= cfg.patience:
                    break
            if best_state is not None:
                self.model.load_state_dict(best_state)
        self.model.eval()
        return self

    def _training_windows(self, sequences: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded (input, next-item) windows of the last `max_len` steps; 0 = padding."""
        L = self.config.max_len
        rows = [s[-(L + 1) :] + 1 for s in sequences if len(s) >= 2]  # +1: index 0 is padding
        inputs = torch.zeros(len(rows), L, dtype=torch.long)
        targets = torch.zeros(len(rows), L, dtype=torch.long)
        for r, seq in enumerate(rows):
            n = len(seq) - 1
            inputs[r, L - n :] = torch.from_numpy(seq[:-1])
            targets[r, L - n :] = torch.from_numpy(seq[1:])
        return inputs, targets

    def _train_epoch(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        optimizer: torch.optim.Optimizer,
        rng: np.random.Generator,
    ) -> float:
        model = self.model
        model.train()
        order = torch.from_numpy(rng.permutation(len(inputs))).to(inputs.device)
        total, count = 0.0, 0
        for start in range(0, len(order), self.config.batch_size):
            batch = order[start : start + self.config.batch_size]
            seqs, nxt = inputs[batch], targets[batch]
            hidden = model(seqs)  # (B, L, d)
            mask = nxt != 0
            # Score only real positions: (M, d) @ (d, n_items) instead of (B, L, n_items).
            logits = model.item_scores(hidden[mask])
            loss = F.cross_entropy(logits, nxt[mask] - 1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            n = mask.sum()
            total, count = total + loss.detach() * n, count + n  # summed on the device: no sync per step
        return float(total / max(int(count), 1))

    def _score(self, histories: list[np.ndarray]) -> np.ndarray:
        if self.model is None:
            raise ValueError("SASRec is not fitted: call fit(train_sequences, items) first")
        L = self.config.max_len
        seqs = torch.zeros(len(histories), L, dtype=torch.long)
        for r, h in enumerate(histories):
            h = h[-L:] + 1
            if len(h):
                seqs[r, L - len(h) :] = torch.from_numpy(h)
        was_training = self.model.training
        self.model.eval()
        device = next(self.model.parameters()).device
        with torch_threads(self.config.num_threads), torch.no_grad():
            scores = self.model.item_scores(self.model(seqs.to(device))[:, -1, :])
        self.model.train(was_training)
        return scores.double().cpu().numpy()
