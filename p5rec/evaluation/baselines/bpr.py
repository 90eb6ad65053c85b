"""BPR-MF (Rendle et al., UAI 2009): matrix factorization ranked by the Bayesian personalized ranking loss.

The classic collaborative top-N baseline: one vector per user and per item, trained so that an
item the user interacted with scores above a random item they did not,

.. math::
    \\mathcal{L} = -\\sum_{(u, i, j)} \\log \\sigma(p_u^\\top q_i - p_u^\\top q_j) + \\lambda \\lVert \\Theta \\rVert^2,

with one sampled negative ``j`` per training interaction and epoch. It ignores order: it says
which items a user likes, not which comes next. A history from an unknown user (a new user) is
folded in as the mean of its items' vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from p5rec.evaluation.baselines._ranking import CatalogRanker
from p5rec.evaluation.baselines._torch import check_counts, torch_threads
from p5rec.evaluation.metrics import ndcg_at_k


@dataclass
class BPRConfig:
    """Size and schedule of :class:`BPRMF`.

    Args:
        factors: vector size (default 64).
        epochs: most epochs (default 200).
        batch_size: (user, positive, negative) triples per step (default 1024).
        lr: Adam learning rate (default 1e-3).
        weight_decay: L2 penalty on the vectors of a batch (default 1e-5 per example).
        patience: with validation data, epochs without a better NDCG@10 before stopping; the best
            weights are kept (default 20; None trains every epoch).
        seed: seeds initialization and sampling (default 0).
        num_threads: torch threads while fitting and scoring (default 1; None keeps torch's).
    """

    factors: int = 64
    epochs: int = 200
    batch_size: int = 1024
    lr: float = 1e-3
    weight_decay: float = 1e-5
    patience: int | None = 20
    seed: int = 0
    num_threads: int | None = 1

    def __post_init__(self) -> None:
        check_counts(self, ("factors", "epochs", "batch_size"))
        if not self.lr > 0 or not self.weight_decay >= 0:
            raise ValueError(f"`lr` ({self.lr!r}) must be > 0 and `weight_decay` ({self.weight_decay!r}) >= 0")


class BPRMF(CatalogRanker):
    """BPR-MF as a ranking baseline: scores ``p_u . q_i`` for the user of each history.

    >>> seqs = {"u1": ["a", "b"], "u2": ["a", "b"], "u3": ["c", "d"]}
    >>> m = BPRMF(BPRConfig(epochs=50, batch_size=8, lr=0.05, patience=None)).fit(seqs, ["a", "b", "c", "d"])
    >>> m.recommend([["a"]], k=1, users=["u1"])[0]
    ['b']
    """

    def __init__(self, config: BPRConfig | None = None) -> None:
        self.config = config or BPRConfig()
        if not isinstance(self.config, BPRConfig):
            raise TypeError(f"`config` must be a BPRConfig, got {type(self.config).__name__}")
        self._users: dict[str, int] = {}
        self.user_vectors: torch.Tensor | None = None
        self.item_vectors: torch.Tensor | None = None
        self.history: list[dict[str, float]] = []

    def fit(
        self,
        train_sequences: dict[str, list[str]],
        items: Sequence[str],
        valid: tuple[list[str], list[list[str]], list[str]] | None = None,
    ) -> BPRMF:
        """Train on every (user, item) of `train_sequences`.

        Args:
            train_sequences: user ID -> train items (order is ignored).
            items: the full catalog.
            valid: optional ``(users, histories, targets)`` for early stopping on NDCG@10 (full
                ranking, history excluded); the best epoch's vectors are kept.
        """
        cfg = self.config
        encoded = self._fit_catalog(train_sequences, items)
        self._users = {u: k for k, u in enumerate(encoded)}
        pairs = [(self._users[u], i) for u, seq in encoded.items() for i in set(seq.tolist())]
        if not pairs:
            raise ValueError("`train_sequences` holds no interaction: nothing to learn from")
        users = torch.tensor([u for u, _ in pairs])
        positives = torch.tensor([i for _, i in pairs])
        seen = [set(encoded[u].tolist()) for u in encoded]
        rng = np.random.default_rng(cfg.seed)
        n_items = len(self._index)
        self.history = []
        with torch_threads(cfg.num_threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            p = torch.nn.Parameter(torch.randn(len(self._users), cfg.factors) * 0.1)
            q = torch.nn.Parameter(torch.randn(n_items, cfg.factors) * 0.1)
            optimizer = torch.optim.Adam([p, q], lr=cfg.lr)
            best, best_state, stale = -1.0, None, 0
            for epoch in range(1, cfg.epochs + 1):
                negatives = _sample_negatives(users.numpy(), seen, n_items, rng)
                order = torch.from_numpy(rng.permutation(len(pairs)))
                total = 0.0
                for start in range(0, len(order), cfg.batch_size):
                    b = order[start : start + cfg.batch_size]
                    pu, qi, qj = p[users[b]], q[positives[b]], q[negatives[b]]
                    margin = (pu * (qi - qj)).sum(1)
                    reg = cfg.weight_decay * (pu.pow(2).sum() + qi.pow(2).sum() + qj.pow(2).sum())
                    loss = -F.logsigmoid(margin).mean() + reg / len(b)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    total += float(loss.detach()) * len(b)
                record = {"epoch": float(epoch), "loss": total / len(pairs)}
                self.user_vectors, self.item_vectors = p.detach(), q.detach()
                if valid is not None:
                    ranked = self.recommend(valid[1], k=10, users=valid[0])
                    record["valid_ndcg@10"] = ndcg_at_k(ranked, valid[2], 10)
                    if record["valid_ndcg@10"] > best:
                        best, best_state, stale = record["valid_ndcg@10"], (p.detach().clone(), q.detach().clone()), 0
                    else:
                        stale += 1
                self.history.append(record)
                if valid is not None and cfg.patience is not None and stale >= cfg.patience:
                    break
            if best_state is not None:
                self.user_vectors, self.item_vectors = best_state
        return self

    def _score(self, histories: list[np.ndarray]) -> np.ndarray:
        return self._score_users(histories, None)

    def _score_users(self, histories: list[np.ndarray], users: Sequence[str] | None) -> np.ndarray:
        if self.item_vectors is None:
            raise ValueError("BPRMF is not fitted: call fit(train_sequences, items) first")
        q = self.item_vectors
        rows = []
        for k, history in enumerate(histories):
            u = self._users.get(users[k]) if users is not None else None
            if u is not None:
                rows.append(self.user_vectors[u])
            elif len(history):  # a new user: the mean of their items' vectors
                rows.append(q[torch.from_numpy(history)].mean(0))
            else:
                rows.append(torch.zeros(q.shape[1]))
        with torch_threads(self.config.num_threads):
            return (torch.stack(rows) @ q.T).double().numpy()


def _sample_negatives(users: np.ndarray, seen: list[set[int]], n_items: int, rng: np.random.Generator) -> torch.Tensor:
    """One item per pair that its user never interacted with (uniform, by rejection)."""
    out = rng.integers(0, n_items, size=len(users))
    for k, u in enumerate(users):
        if len(seen[u]) >= n_items:
            continue
        while out[k] in seen[u]:
            out[k] = rng.integers(0, n_items)
    return torch.from_numpy(out)
