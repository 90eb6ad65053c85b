"""Biased matrix factorization (Koren et al., 2009): the rating-prediction baseline."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from p5rec.evaluation.baselines._torch import check_counts, torch_threads

_OPTIMIZERS = ("adam", "sgd")


@dataclass
class BiasedMFConfig:
    """Size and training schedule of :class:`BiasedMF`.

    Args:
        factors: latent dimension of user and item vectors (default 32).
        epochs: maximum passes over the training ratings (default 50).
        batch_size: ratings per step (default 256).
        lr: learning rate (default 0.005).
        reg: L2 weight on the biases and vectors used in each step (default 0.05).
        optimizer: ``"adam"`` or ``"sgd"`` (default ``"adam"``).
        init_std: standard deviation of the initial user/item vectors (default 0.01).
        patience: with validation data, stop after this many epochs without a lower RMSE and keep
            the best weights; ``None`` trains all epochs (default 5).
        clip: clip predictions to the train rating range, e.g. [1, 5] (default True).
        seed: seeds init and batch order (default 0).
        num_threads: torch threads while fitting, restored afterwards; ``None`` keeps torch's
            setting (default 1).
    """

    factors: int = 32
    epochs: int = 50
    batch_size: int = 256
    lr: float = 0.005
    reg: float = 0.05
    optimizer: str = "adam"
    init_std: float = 0.01
    patience: int | None = 5
    clip: bool = True
    seed: int = 0
    num_threads: int | None = 1

    def __post_init__(self) -> None:
        check_counts(self, ("factors", "epochs", "batch_size"))
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(f"`optimizer` ({self.optimizer!r}) must be one of {_OPTIMIZERS}")
        for name in ("lr", "init_std"):
            if not getattr(self, name) > 0:
                raise ValueError(f"`{name}` ({getattr(self, name)!r}) must be > 0")
        if not self.reg >= 0:
            raise ValueError(f"`reg` ({self.reg!r}) must be >= 0")


class BiasedMF:
    """Predict a rating as global mean + user bias + item bias + user vector . item vector.

    .. math:: \\hat r_{ui} = \\mu + b_u + b_i + p_u^\\top q_i

    ``mu`` is the train mean; the rest is learned by minimizing squared error plus
    ``reg * (b_u^2 + b_i^2 + |p_u|^2 + |q_i|^2)`` over mini-batches. A user or item unseen in
    training has zero bias and vector, so the prediction falls back to ``mu + b_i`` (new user),
    ``mu + b_u`` (new item) or ``mu``.

    Args:
        config: a :class:`BiasedMFConfig` (defaults when omitted).

    >>> mf = BiasedMF(BiasedMFConfig(epochs=5)).fit(["u", "v"], ["a", "a"], [5.0, 3.0])
    >>> round(float(mf.predict(["new"], ["other"])[0]), 2)  # unknown pair -> global mean
    4.0
    """

    def __init__(self, config: BiasedMFConfig | None = None) -> None:
        self.config = config or BiasedMFConfig()
        if not isinstance(self.config, BiasedMFConfig):
            raise TypeError(f"`config` must be a BiasedMFConfig, got {type(self.config).__name__}")
        self.history: list[dict[str, float]] = []
        self._fitted = False

    def fit(
        self,
        users: Sequence[str],
        items: Sequence[str],
        ratings: Sequence[float],
        valid: tuple[Sequence[str], Sequence[str], Sequence[float]] | None = None,
    ) -> BiasedMF:
        """Learn biases and factors from aligned (user, item, rating) triples.

        Args:
            users: user ID of each training rating.
            items: item ID of each training rating.
            ratings: the ratings, finite numbers.
            valid: optional ``(users, items, ratings)`` for early stopping on RMSE.
        """
        cfg = self.config
        r = _check_triples(users, items, ratings, "")
        valid_r = None
        if valid is not None:
            if len(valid) != 3:
                raise ValueError("`valid` must be a (users, items, ratings) triple")
            valid_r = _check_triples(*valid, "valid ")
        self._user_index = {u: i for i, u in enumerate(dict.fromkeys(users))}
        self._item_index = {it: i for i, it in enumerate(dict.fromkeys(items))}
        u_idx = torch.tensor([self._user_index[u] for u in users])
        i_idx = torch.tensor([self._item_index[it] for it in items])
        target = torch.tensor(r, dtype=torch.float32)
        self.global_mean = float(r.mean())
        self._range = (float(r.min()), float(r.max()))
        generator = torch.Generator().manual_seed(cfg.seed)
        params = {
            "user_bias": torch.zeros(len(self._user_index)),
            "item_bias": torch.zeros(len(self._item_index)),
            "user_vec": torch.randn(len(self._user_index), cfg.factors, generator=generator) * cfg.init_std,
            "item_vec": torch.randn(len(self._item_index), cfg.factors, generator=generator) * cfg.init_std,
        }
        for p in params.values():
            p.requires_grad_(True)
        with torch_threads(cfg.num_threads):
            self._train(params, u_idx, i_idx, target, generator, valid, valid_r if valid is not None else None)
        return self

    def _train(
        self,
        params: dict[str, torch.Tensor],
        u_idx: torch.Tensor,
        i_idx: torch.Tensor,
        target: torch.Tensor,
        generator: torch.Generator,
        valid: tuple[Sequence[str], Sequence[str], Sequence[float]] | None,
        valid_r: np.ndarray | None,
    ) -> None:
        """Mini-batch training; keeps the best validation epoch's parameters when `valid` is given."""
        cfg = self.config
        opt_cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.SGD
        optimizer = opt_cls(list(params.values()), lr=cfg.lr)
        self.history = []
        best, best_params, stale = math.inf, None, 0
        for epoch in range(1, cfg.epochs + 1):
            order = torch.randperm(len(target), generator=generator)
            total = 0.0
            for start in range(0, len(order), cfg.batch_size):
                b = order[start : start + cfg.batch_size]
                ub, ib = u_idx[b], i_idx[b]
                pu, qi = params["user_vec"][ub], params["item_vec"][ib]
                bu, bi = params["user_bias"][ub], params["item_bias"][ib]
                pred = self.global_mean + bu + bi + (pu * qi).sum(-1)
                sq_err = (pred - target[b]) ** 2
                penalty = bu**2 + bi**2 + (pu**2).sum(-1) + (qi**2).sum(-1)
                loss = (sq_err + cfg.reg * penalty).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(sq_err.detach().sum())
            self._set_params(params)
            record = {"epoch": float(epoch), "train_rmse": math.sqrt(total / len(target))}
            if valid is not None:
                err = self.predict(valid[0], valid[1]) - valid_r
                record["valid_rmse"] = float(np.sqrt(np.mean(err**2)))
                if record["valid_rmse"] < best:
                    best, best_params, stale = record["valid_rmse"], copy.deepcopy(self._params), 0
                else:
                    stale += 1
            self.history.append(record)
            if valid is not None and cfg.patience is not None and stale >= cfg.patience:
                break
        if best_params is not None:
            self._params = best_params

    def _set_params(self, params: dict[str, torch.Tensor]) -> None:
        self._params = {name: p.detach().numpy().astype(np.float64) for name, p in params.items()}
        self._fitted = True

    def predict(self, users: Sequence[str], items: Sequence[str]) -> np.ndarray:
        """Predicted rating for each aligned (user, item) pair, unknown IDs falling back to biases.

        Args:
            users: user IDs.
            items: item IDs, aligned with `users`.
        """
        if not self._fitted:
            raise ValueError("BiasedMF is not fitted: call fit(users, items, ratings) first")
        if isinstance(users, str) or isinstance(items, str):
            raise TypeError("`users` and `items` must be lists of IDs, not single strings")
        if len(users) != len(items):
            raise ValueError(f"`users` has {len(users)} IDs but `items` has {len(items)}: they must be aligned")
        u = np.array([self._user_index.get(x, -1) for x in users], dtype=np.int64)
        i = np.array([self._item_index.get(x, -1) for x in items], dtype=np.int64)
        p = self._params
        known_u, known_i = u >= 0, i >= 0
        pred = np.full(len(u), self.global_mean)
        pred[known_u] += p["user_bias"][u[known_u]]
        pred[known_i] += p["item_bias"][i[known_i]]
        both = known_u & known_i
        pred[both] += np.einsum("nf,nf->n", p["user_vec"][u[both]], p["item_vec"][i[both]])
        if self.config.clip:
            pred = np.clip(pred, *self._range)
        return pred


def _check_triples(users: Sequence[str], items: Sequence[str], ratings: Sequence[float], what: str) -> np.ndarray:
    if isinstance(users, str) or isinstance(items, str):
        raise TypeError(f"{what}`users` and `items` must be lists of IDs, not single strings")
    if not len(users) == len(items) == len(ratings):
        raise ValueError(
            f"{what}`users`, `items` and `ratings` must be aligned, got lengths "
            f"{len(users)}, {len(items)} and {len(ratings)}"
        )
    if len(ratings) == 0:
        raise ValueError(f"{what}`ratings` is empty: there is nothing to fit")
    r = np.asarray(ratings, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(r))
    if bad.size:
        raise ValueError(f"{what}`ratings`[{bad[0]}] is {r[bad[0]]}; ratings must be finite")
    return r
