"""Helpers for the small torch baselines."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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
