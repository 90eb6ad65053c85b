"""How many CPU threads torch may use, decided once per command that trains, evaluates or serves.

torch starts one thread per core and spins them while it waits. Two such processes on two cores do
not share: each step waits on threads the other process holds, and a 0.2 s step of a tiny model
takes 2 s. So a command asks for no more threads than there are CPUs it may run on and that are
not already busy:

1. ``--threads N`` when given;
2. else ``OMP_NUM_THREADS`` when set (torchrun and accelerate set it per process);
3. else the CPUs this process may use (its affinity mask, capped by a cgroup CPU quota), minus
   those the 1-minute load average says other processes keep busy, and at least one. The load
   average counts the whole machine, so it is used only when the process may run on all of it.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """The `--threads N` flag of every command that runs a model."""
    parser.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="CPU threads for torch (default: $OMP_NUM_THREADS, else the CPUs this process may use that other "
        "processes do not keep busy); 1 is often fastest for small models on shared machines",
    )


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup v2 CPU quota (containers)."""
    cpus = _affinity()
    quota = _cgroup_quota()
    return max(1, min(cpus, quota) if quota else cpus)


def _affinity() -> int:
    """CPUs in this process's affinity mask (all of the machine's where the OS has no such mask)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _cgroup_quota(path: Path = Path("/sys/fs/cgroup/cpu.max")) -> int | None:
    """Whole CPUs granted by a cgroup v2 quota ("200000 100000" -> 2); None when unlimited or unknown."""
    try:
        quota, period = path.read_text().split()[:2]
        return max(1, math.ceil(int(quota) / int(period))) if quota != "max" else None
    except (OSError, ValueError):
        return None


def _busy_cpus() -> int:
    """CPUs other processes keep busy, from the 1-minute load average; 0 when it says nothing about ours."""
    if not hasattr(os, "getloadavg") or _affinity() < (os.cpu_count() or 1):
        return 0  # pinned to a subset of the machine: the machine-wide load is not about these CPUs
    try:
        return round(os.getloadavg()[0])
    except OSError:
        return 0


def choose_threads(requested: int | None = None) -> tuple[int, str]:
    """(threads, why): see the module docstring for the order of the rules."""
    if requested is not None:
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise ValueError(f"`--threads` ({requested!r}) must be an integer >= 1")
        return requested, "--threads"
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"OMP_NUM_THREADS ({env!r}) must be an integer >= 1; fix or unset it, or pass --threads")
        return n, "OMP_NUM_THREADS"
    cpus, busy = available_cpus(), _busy_cpus()
    idle = _affinity() - busy  # the load is machine-wide, so it is set against the whole machine's CPUs
    n = max(1, min(cpus, idle)) if busy else cpus
    return n, f"{cpus} CPUs" + (f", about {busy} busy with other processes" if busy else "")


def set_torch_threads(requested: int | None = None, quiet: bool = False) -> int:
    """Set torch's intra-op threads by :func:`choose_threads`; returns the number set.

    A command calls this once, before its model work. When other processes make it use fewer threads
    than CPUs, it says so on stderr (unless `quiet`): a run on a busy machine is slower, not broken.
    """
    import torch

    n, why = choose_threads(requested)
    torch.set_num_threads(n)
    if not quiet and "busy" in why:
        print(f"p5rec: using {n} torch thread{'s' * (n > 1)} ({why}); --threads N overrides", file=sys.stderr)
    return n
