"""Which fused attention kernels p5rec lets PyTorch pick on a GPU.

PyTorch may route `scaled_dot_product_attention` with an additive mask (T5's position bias) to
cuDNN attention, which spends about 15-20 ms of CPU per call building an execution plan for the
shape at hand. Length-grouped batches and growing decoder caches change the shape at nearly every
call, so on an H100 a mini T5 trained at 4.7 steps/s, bound by that planning, not by the GPU
(`torch.profiler`: `_cudnn_attention_forward/backward` ~45% of CPU time, ~1% of GPU time). The
memory-efficient and flash kernels have no such per-shape cost. On CPU this is a no-op.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def attention_kernels(device: torch.device | str) -> Iterator[None]:
    """Within the block, SDPA on `device` uses flash, memory-efficient or math kernels (no cuDNN)."""
    if torch.device(device).type != "cuda":
        yield
        return
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backends = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
    with sdpa_kernel(backends):
        yield


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a parameterless module)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))
