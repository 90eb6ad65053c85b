"""Helpers for the small torch baselines."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with `n` torch intra-op threads, restoring the previous count afterwards.

    The baselines run many tiny kernels: on a shared or busy CPU, extra threads spin-wait for
    each other and one thread is often several times faster. ``None`` leaves torch's setting.
    """
    if n is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def check_threads(n: int | None) -> None:
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"`num_threads` ({n!r}) must be a positive integer or None")


def check_counts(config: Any, names: tuple[str, ...], optional: tuple[str, ...] = ("patience",)) -> None:
    """Refuse a baseline setting in `names` that is not a positive integer, and one in `optional`
    that is neither that nor None (no early stopping), naming the setting; then `num_threads`."""
    for name in names + optional:
        value = getattr(config, name)
        if name in optional and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            none = " or None" if name in optional else ""
            raise ValueError(f"`{name}` ({value!r}) must be a positive integer{none}")
    check_threads(config.num_threads)
