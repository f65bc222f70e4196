"""convspec.threads: the intra-op thread count from affinity, cgroup quota, load and overrides,
and the hooks that apply it (backends' compile, --threads on the CLI, the torchrun launcher)."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
from conftest import ROOT, SPECS, require_backend

from convspec import threads
from convspec.errors import UsageError


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch):
    """No request, no cached measurement, no OMP_NUM_THREADS, before and after each test."""
    monkeypatch.setattr(threads, "_requested", None)
    monkeypatch.setattr(threads, "_measured", None)
    monkeypatch.delenv(threads.ENV, raising=False)


def _measure(monkeypatch: pytest.MonkeyPatch, cpus: set[int], quota: float | None,
             others: float) -> list[float]:
    """Patch the three measurements; returns a list that counts load samples."""
    samples: list[float] = []

    def busy(c: set[int]) -> float:
        samples.append(others)
        return others

    monkeypatch.setattr(threads, "affinity_cpus", lambda: set(cpus))
    monkeypatch.setattr(threads, "cgroup_quota", lambda: quota)
    monkeypatch.setattr(threads, "busy_elsewhere", busy)
    return samples


# -- the rule -------------------------------------------------------------------------------

@pytest.mark.parametrize(("allowed", "quota", "others", "want"), [
    (2, None, 0.0, 2),    # idle
    (2, None, 0.2, 2),    # a little background load keeps every core
    (2, None, 0.3, 1),    # past BUSY_THRESHOLD of a core: that core is given up
    (2, None, 1.0, 1),    # one core busy elsewhere (the case)
    (2, None, 2.0, 1),    # never fewer than one
    (4, None, 1.9, 2),
    (8, 2.5, 0.0, 2),     # quota rounded down (automaxprocs)
    (8, 0.5, 0.0, 1),     # a fraction of a core still runs one thread
    (2, 4.0, 0.0, 2),     # a quota above the CPUs allowed does not add threads
    (16, 6.0, 12.0, 4),   # load elsewhere can bind tighter than the quota
])
def test_free_cores(allowed, quota, others, want):
    assert threads.free_cores(allowed, quota, others) == want
    assert threads.usable_cores(allowed, quota) == threads.free_cores(allowed, quota, 0.0)


def test_automatic_choice_names_its_inputs_and_is_measured_once(monkeypatch):
    samples = _measure(monkeypatch, {0, 1, 2, 3}, 3.0, 2.0)
    choice = threads.choose_threads()
    assert choice == threads.ThreadChoice(2, 3, "4 CPUs allowed, cgroup quota 3 cores, "
                                                "2.00 cores busy elsewhere")
    assert threads.choose_threads() is choice and len(samples) == 1
    threads.choose_threads(refresh=True)
    assert len(samples) == 2


def test_explicit_request_beats_the_environment_which_beats_measuring(monkeypatch):
    samples = _measure(monkeypatch, {0, 1}, None, 0.0)
    monkeypatch.setenv(threads.ENV, "3")
    assert threads.choose_threads() == threads.ThreadChoice(3, 3, "OMP_NUM_THREADS=3")
    threads.request_threads(5)
    assert threads.requested_threads() == 5
    assert threads.choose_threads() == threads.ThreadChoice(5, 5, "--threads 5")
    assert threads.choose_threads(explicit=7).threads == 7
    threads.request_threads(None)
    assert threads.choose_threads().threads == 3
    assert samples == []  # an override never pays for a load sample


@pytest.mark.parametrize(("value", "want"), [
    ("4", 4), (" 2 ", 2), ("3,1", 3),  # OpenMP's nested list: the outer level
    ("0", None), ("", None), ("many", None), ("-1", None),
])
def test_omp_num_threads_is_read_like_openmp(value, want):
    assert threads._from_env({threads.ENV: value}) == want


def test_a_bad_environment_value_falls_back_to_measuring(monkeypatch):
    _measure(monkeypatch, {0, 1}, None, 0.0)
    monkeypatch.setenv(threads.ENV, "lots")
    assert threads.choose_threads().threads == 2


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2"])
def test_a_request_must_be_a_positive_integer(bad):
    with pytest.raises(UsageError, match="positive integer"):
        threads.request_threads(bad)


# -- affinity -----------------------------------------------------------------------------

@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no affinity API here")
def test_affinity_is_that_of_this_process():
    first = min(os.sched_getaffinity(0))
    probe = (f"import os; os.sched_setaffinity(0, {{{first}}}); "
             "from convspec.threads import affinity_cpus, choose_threads; "
             "print(sorted(affinity_cpus()), choose_threads().threads)")
    env = {k: v for k, v in os.environ.items() if k != threads.ENV}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         env=env, check=True).stdout.split()
    assert out == [f"[{first}]", "1"]


# -- cgroup quota, from fake trees ------------------------------------------------------------

def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


@pytest.mark.parametrize(("proc", "files", "want"), [
    ("0::/user.slice/job\n", {"user.slice/job/cpu.max": "150000 100000\n",
                              "user.slice/cpu.max": "max 100000\n"}, 1.5),
    ("0::/user.slice/job\n", {"user.slice/job/cpu.max": "max 100000\n",
                              "user.slice/cpu.max": "50000 100000\n"}, 0.5),  # a parent's
    ("0::/\n", {"cpu.max": "200000 100000\n"}, 2.0),
    ("0::/not/here\n", {"cpu.max": "300000 100000\n"}, 3.0),  # namespaced: root is ours
    ("0::/a\n", {"a/cpu.max": "max 100000\n"}, None),
    ("0::/a\n", {}, None),
    ("4:cpu,cpuacct:/docker/abc\n2:memory:/docker/abc\n",
     {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "200000\n",
      "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n"}, 2.0),
    ("4:cpu,cpuacct:/docker/abc\n",
     {"cpu/docker/abc/cpu.cfs_quota_us": "-1\n", "cpu/docker/abc/cpu.cfs_period_us": "100000\n",
      "cpu/cpu.cfs_quota_us": "250000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.5),
    ("4:cpu,cpuacct:/x\n", {"cpu,cpuacct/x/cpu.cfs_quota_us": "-1\n",
                            "cpu,cpuacct/x/cpu.cfs_period_us": "100000\n"}, None),
    ("0::/a\n", {"a/cpu.max": "garbage\n"}, None),
], ids=["v2", "v2-parent", "v2-root", "v2-namespace", "v2-max", "v2-none", "v1", "v1-cpu-mount",
        "v1-unlimited", "v2-unreadable"])
def test_cgroup_quota_from_a_fake_tree(tmp_path, proc, files, want):
    root = tmp_path / "sys" / "fs" / "cgroup"
    root.mkdir(parents=True)
    _write(root, files)
    (tmp_path / "cgroup").write_text(proc)
    assert threads.cgroup_quota(tmp_path / "cgroup", root) == want


def test_no_cgroup_file_means_no_quota(tmp_path):
    assert threads.cgroup_quota(tmp_path / "missing", tmp_path) is None


# -- load from /proc/stat -----------------------------------------------------------------------

def _stat(rows: dict[int, tuple[int, ...]]) -> str:
    total = [sum(col) for col in zip(*rows.values())]
    lines = ["cpu  " + " ".join(map(str, total))]
    lines += [f"cpu{i} " + " ".join(map(str, r)) for i, r in rows.items()]
    return "\n".join([*lines, "intr 12345", "ctxt 99"]) + "\n"


def test_busy_elsewhere_counts_other_processes_on_our_cpus_only(tmp_path, monkeypatch):
    # user nice system idle iowait irq softirq steal
    stat = tmp_path / "stat"
    stat.write_text(_stat({0: (100, 0, 0, 900, 0, 0, 0, 0), 1: (50, 0, 0, 950, 0, 0, 0, 0),
                           2: (0, 0, 0, 1000, 0, 0, 0, 0)}))
    after = _stat({0: (160, 5, 10, 920, 0, 3, 2, 0),   # 80 of 100 jiffies busy
                   1: (60, 0, 0, 1000, 30, 0, 0, 10),  # iowait is idle, steal busy: 20 / 100
                   2: (100, 0, 0, 1000, 0, 0, 0, 0)})  # busy, but not one of ours
    clock = {"wall": 0.0, "own": 0.0}

    def sleep(seconds: float) -> None:
        stat.write_text(after)
        clock["wall"] += seconds
        clock["own"] += 0.3 * seconds  # this process itself used 0.3 of a core meanwhile

    monkeypatch.setattr(threads, "time", types.SimpleNamespace(
        sleep=sleep, monotonic=lambda: clock["wall"]))
    monkeypatch.setattr(threads, "_own_cpu", lambda: clock["own"])
    assert threads.busy_elsewhere({0, 1}, 0.5, stat) == pytest.approx(0.8 + 0.2 - 0.3)


def test_busy_elsewhere_is_zero_without_proc_stat(tmp_path):
    assert threads.busy_elsewhere({0}, 0.0, tmp_path / "missing") == 0.0


@pytest.mark.skipif(not Path("/proc/stat").is_file(), reason="Linux only")
def test_a_busy_loop_pinned_to_one_of_our_cpus_is_seen():
    cpu = min(os.sched_getaffinity(0))
    spin = subprocess.Popen([sys.executable, "-c", f"import os, time\n"
                             f"os.sched_setaffinity(0, {{{cpu}}})\n"
                             f"end = time.time() + 3\nwhile time.time() < end: pass\n"])
    try:
        import time

        time.sleep(0.3)  # started and spinning
        assert threads.busy_elsewhere({cpu}, 0.5) > 0.7
    finally:
        spin.kill()
        spin.wait()


# -- the hooks ----------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["torch", pytest.param("tensorflow", marks=pytest.mark.slow)])
def test_compile_applies_the_choice_to_the_framework(backend):
    require_backend(backend)
    probe = {
        "torch": "import torch; print(torch.get_num_threads(), torch.get_num_interop_threads())",
        "tensorflow": "import tensorflow as tf; t = tf.config.threading; "
                      "print(t.get_intra_op_parallelism_threads(), "
                      "t.get_inter_op_parallelism_threads())",
    }[backend]
    spec = str(SPECS / "mnist.yaml")
    code = ("import convspec; from convspec.threads import request_threads; request_threads(1); "
            f"convspec.compile(convspec.load_spec({spec!r}), backend={backend!r}); {probe}")
    env = {k: v for k, v in os.environ.items() if k != threads.ENV}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=ROOT, check=True).stdout.split()
    assert out[-2:] == ["1", "1"]


@pytest.mark.parametrize(("backend", "want"), [
    ("torch", "1"), pytest.param("tensorflow", "2", marks=pytest.mark.slow)])
def test_torch_leaves_busy_cores_alone_tensorflow_only_the_unusable_ones(backend, want):
    """With 2 CPUs allowed and one busy elsewhere: torch takes 1 thread, TensorFlow 2 (its
    pool lost less to the busy core than one thread did; benchmarks/README.md)."""
    require_backend(backend)
    probe = {"torch": "import torch; print(torch.get_num_threads())",
             "tensorflow": "import tensorflow as tf; "
                           "print(tf.config.threading.get_intra_op_parallelism_threads())"}
    code = ("import convspec, convspec.threads as t; t.affinity_cpus = lambda: {0, 1}; "
            "t.cgroup_quota = lambda: None; t.busy_elsewhere = lambda cpus: 1.0; "
            f"convspec.compile(convspec.load_spec({str(SPECS / 'mnist.yaml')!r}), "
            f"backend={backend!r}); {probe[backend]}")
    env = {k: v for k, v in os.environ.items() if k != threads.ENV}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=ROOT, check=True).stdout.split()
    assert out[-1] == want


@pytest.mark.parametrize("command", ["train", "evaluate", "predict"])
def test_the_threads_option(command):
    from importlib import import_module

    cmd = import_module(f"convspec.cli.{command}_cmd").command
    assert "--threads" in cmd.get_help(cmd.make_context(command, ["--help"],
                                                         resilient_parsing=True))
    from convspec.cli import main

    assert main([command, "specs/mnist.yaml", "--threads", "0"]) == 2


def test_threads_reach_torchrun_workers_through_the_environment(monkeypatch):
    from convspec import distributed
    from convspec.cli._launch import command_args
    from convspec.cli.train_cmd import command
    from convspec.distributed import launch_torchrun

    ctx = command.make_context("train", ["specs/mnist.yaml", "--nproc", "2", "--threads", "3"])
    assert threads.requested_threads() == 3  # the option's callback
    assert command_args(ctx, {"nproc"}) == ["specs/mnist.yaml"]
    seen: dict[str, str] = {}
    monkeypatch.setattr(distributed.subprocess, "call", lambda argv, env: seen.update(env) or 0)
    monkeypatch.setattr("importlib.util.find_spec", lambda name: object())
    assert launch_torchrun(2, ["train"]) == 0
    assert seen[threads.ENV] == "3"  # per process, as asked
    threads.request_threads(None)
    _measure(monkeypatch, {0, 1, 2, 3}, None, 0.0)
    seen.clear()
    launch_torchrun(2, ["train"])
    assert seen[threads.ENV] == "2"  # else the free cores shared out
