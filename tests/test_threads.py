"""torch's CPU threads per command: --threads, then OMP_NUM_THREADS, then the CPUs not busy elsewhere (#17 item 11)."""

from __future__ import annotations

import os

import pytest
import torch

from p5rec.cli import _threads
from p5rec.cli.main import THREADED, build_parser, main


@pytest.fixture
def machine(monkeypatch):
    """A fake machine: `machine(cpus, load, host_cpus=cpus, quota=None)`; OMP_NUM_THREADS unset."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)

    def make(cpus: int, load: float, host_cpus: int | None = None, quota: int | None = None) -> None:
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)))
        monkeypatch.setattr(os, "cpu_count", lambda: host_cpus or cpus)
        monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
        monkeypatch.setattr(_threads, "_cgroup_quota", lambda: quota)

    return make


@pytest.fixture(autouse=True)
def _one_thread_afterwards():
    yield
    torch.set_num_threads(1)  # what conftest set for every other test


def test_idle_cpus_are_all_used(machine):
    machine(cpus=2, load=0.1)
    assert _threads.choose_threads() == (2, "2 CPUs")


def test_a_busy_machine_gets_fewer_threads_never_zero(machine):
    machine(cpus=2, load=1.9)  # another torch process on one of the two cores
    assert _threads.choose_threads()[0] == 1
    machine(cpus=8, load=5.2)
    assert _threads.choose_threads()[0] == 3
    machine(cpus=2, load=12.0)
    assert _threads.choose_threads()[0] == 1


def test_the_load_of_a_bigger_host_does_not_count_for_pinned_cpus(machine):
    machine(cpus=2, load=30.0, host_cpus=64)  # a container pinned to 2 of 64 cores
    assert _threads.choose_threads() == (2, "2 CPUs")
    machine(cpus=64, load=1.0, quota=2)  # a container limited by a CPU quota
    assert _threads.choose_threads()[0] == 2


def test_flag_then_environment_win(machine, monkeypatch):
    machine(cpus=4, load=3.0)
    assert _threads.choose_threads(3) == (3, "--threads")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert _threads.choose_threads() == (2, "OMP_NUM_THREADS")
    assert _threads.choose_threads(1) == (1, "--threads")
    for bad in (0, -1, True):
        with pytest.raises(ValueError, match=r"`--threads` .* must be an integer >= 1"):
            _threads.choose_threads(bad)
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")
    with pytest.raises(ValueError, match=r"OMP_NUM_THREADS \('lots'\) must be an integer >= 1"):
        _threads.choose_threads()


def test_set_torch_threads_sets_and_says_why_when_busy(machine, capsys):
    machine(cpus=2, load=1.9)
    assert _threads.set_torch_threads() == 1 and torch.get_num_threads() == 1
    assert "using 1 torch thread (2 CPUs, about 2 busy with other processes)" in capsys.readouterr().err
    machine(cpus=2, load=0.0)
    assert _threads.set_torch_threads() == 2 and torch.get_num_threads() == 2
    assert capsys.readouterr().err == ""


def test_cgroup_quota_is_read_in_whole_cpus(tmp_path):
    f = tmp_path / "cpu.max"
    f.write_text("150000 100000\n")
    assert _threads._cgroup_quota(f) == 2
    f.write_text("max 100000\n")
    assert _threads._cgroup_quota(f) is None
    assert _threads._cgroup_quota(tmp_path / "none") is None


def test_every_model_command_takes_threads_and_sets_them(monkeypatch, tmp_path, capsys):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name in THREADED:
        assert any("--threads" in a.option_strings for a in commands[name]._actions), name
    assert not any("--threads" in a.option_strings for a in commands["prompts"]._actions)

    calls = []
    monkeypatch.setattr("p5rec.cli.main.set_torch_threads", lambda n: calls.append(n))
    missing = str(tmp_path / "no-model")
    assert main(["rate", "--model", missing, "--user", "u", "--item", "i", "--threads", "2"]) == 1
    assert main(["evaluate", "--model", missing]) == 1
    assert calls == [2, None]
    monkeypatch.undo()
    assert main(["serve", "--model", missing, "--threads", "0"]) == 1
    assert "`--threads` (0) must be an integer >= 1" in capsys.readouterr().err
