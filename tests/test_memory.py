"""convspec.memory: what a run needs, what the machine has, and the refusal before anything
is allocated (``convspec train`` on a network that cannot fit)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SPECS, tiny_dataset
from test_train_run import NumpyBackend, _train

import convspec.memory
import convspec.train.run
from convspec import backends
from convspec.memory import (
    MemoryEstimate,
    MemoryLimitError,
    Part,
    available_memory,
    check_memory,
    data_values,
    estimate_memory,
    format_bytes,
)
from convspec.specification import load_spec, loads_spec

CASES = Path(__file__).parent / "cases"
MNIST = load_spec(SPECS / "mnist.yaml")

# filters: 2,000,000,000 validates (sizes are bounded at 2**31 - 1) and needs petabytes
HUGE = (CASES / "huge-filters.yaml").read_text().replace("100000000000", "2000000000")


def test_the_tutorial_network_needs_what_its_shape_table_says():
    params = 242_062  # every one trainable: weights, gradients, Adam's m and v
    weights = 4 * 4 * params
    # evaluation batch (256) of the largest two consecutive layers, conv1 and pool1, is more
    # than a training batch (64) of every output kept for backward plus 2 x the largest
    outputs = [784, 12544, 3136, 3136, 7056, 1764, 1764, 128, 10]  # flatten is a view
    training = 64 * sum(outputs) * 4 + 2 * 64 * 12544 * 4
    evaluation = 256 * (12544 + 3136) * 4
    assert evaluation > training
    estimate = estimate_memory(MNIST)
    assert estimate.total() == weights + evaluation == 19_929_312
    assert estimate.parts[0].what == "evaluation batch (256 images, conv1 and pool1)"
    assert format_bytes(estimate.total()) == "19.9 MB"
    sgd = estimate_memory(MNIST.override({"train.optimizer": {"kind": "sgd",
                                                               "learning_rate": 0.1}}))
    assert estimate.total() - sgd.total() == 2 * 4 * params
    big_batch = estimate_memory(MNIST, batch_size=1024)
    assert big_batch.total() == weights + 1024 * sum(outputs) * 4 + 2 * 1024 * 12544 * 4
    assert estimate_memory(MNIST, precision="bf16", batch_size=1024).total() < \
        big_batch.total()


def test_data_in_memory_counts_only_what_is_held_as_arrays():
    from convspec.data.probe import DataSummary

    builtin = DataSummary("builtin", "mnist", "MNIST", tuple("0123456789"), {},
                          shape=(28, 28, 1))
    assert data_values(builtin) == (70_000 * 784, 70_000)
    npz = DataSummary("npz", "x", "x", ("a", "b"), {"train": 90, "test": 10}, shape=(4, 4, 3))
    assert data_values(npz) == (100 * 48, 100)
    folder = DataSummary("folder", "f", "f", ("a",), {"train": 5})
    assert data_values(folder) == (0, 5)  # decoded into the memory-mapped cache
    estimate = estimate_memory(MNIST, data_values=70_000 * 784)
    assert [p for p in estimate.parts if p.host] == [
        Part("data in memory (float32)", 70_000 * 784 * 4, host=True)]


def test_available_memory_reads_meminfo_and_the_cgroup_limit(tmp_path, monkeypatch):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 100 kB\nMemAvailable:    2048 kB\n")
    assert convspec.memory._mem_available(meminfo) == (2048 * 1024,
                                                       f"MemAvailable in {meminfo}")
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    (cgroup / "memory.max").write_text("1000000\n")
    (cgroup / "memory.current").write_text("400000\n")
    assert convspec.memory._cgroup_room(cgroup) == (600_000,
                                                    f"cgroup limit {cgroup / 'memory.max'}")
    (cgroup / "memory.max").write_text("max\n")  # no limit
    assert convspec.memory._cgroup_room(cgroup) is None
    monkeypatch.setattr(convspec.memory, "_mem_available", lambda: (5_000, "meminfo"))
    monkeypatch.setattr(convspec.memory, "_cgroup_room", lambda: (3_000, "cgroup"))
    assert available_memory() == (3_000, "cgroup")  # whichever leaves less
    monkeypatch.setattr(convspec.memory, "_cgroup_room", lambda: None)
    assert available_memory() == (5_000, "meminfo")


def test_a_run_that_does_not_fit_is_refused_with_both_figures_and_the_biggest_parts():
    estimate = MemoryEstimate([Part("fc1/kernel", 9_000), Part("conv1 activations", 2_000),
                               Part("data in memory (float32)", 500, host=True)])
    check_memory(MNIST, estimate, host=(20_000, "meminfo"))
    with pytest.raises(MemoryLimitError) as caught:
        check_memory(MNIST, estimate, host=(10_000, "MemAvailable in /proc/meminfo"))
    message = str(caught.value)
    assert "needs at least 11.5 kB of memory on this machine, which has 10.0 kB available " \
           "(MemAvailable in /proc/meminfo)" in message
    assert "fc1/kernel 9.0 kB, conv1 activations 2.0 kB, data in memory (float32) 500 B" \
        in message
    assert "\n" not in message
    # on a GPU the data stays in main memory; the rest must fit the GPU's free memory
    check_memory(MNIST, estimate, host=(600, "meminfo"), device=(11_000, "cuda"))
    with pytest.raises(MemoryLimitError, match="11.0 kB of memory on the GPU, which has "
                                               "10.0 kB available"):
        check_memory(MNIST, estimate, host=(600, "meminfo"), device=(10_000, "cuda"))
    with pytest.raises(MemoryLimitError, match="on this machine"):
        check_memory(MNIST, estimate, host=(400, "meminfo"), device=(11_000, "cuda"))
    check_memory(MNIST, estimate, host=None)  # the system says nothing: nothing refused


def test_train_refuses_a_network_too_big_for_the_machine_before_loading_or_compiling(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(backends.BUILTIN, NumpyBackend.name,
                        "test_train_run:NumpyBackend")
    loads, compiles = [], []
    monkeypatch.setattr(convspec.train.run, "load_data",
                        lambda *a, **k: loads.append(1) or tiny_dataset())
    monkeypatch.setattr(NumpyBackend, "compile", lambda *a, **k: compiles.append(1))
    spec = tmp_path / "huge.yaml"
    spec.write_text(HUGE)
    out = tmp_path / "run"
    assert _train(str(spec), "--out", str(out), "--iterations", "5") == 1
    err = capsys.readouterr().err
    assert "error: training spec 'bigf' needs at least" in err and "PB of memory" in err
    assert "The biggest parts: " in err and "Traceback" not in err
    assert not out.exists() and loads == [] and compiles == []


@pytest.mark.parametrize(("change", "biggest"), [
    (("filters: 100000000000", "filters: 2000000000"), "conv1"),  # the case's family
    (("units: 10}", "units: 10}\n  - {kind: dense, units: 2000000000}\n  - "
                    "{kind: dense, units: 10}"), "fc2/kernel"),
    (("validation_size: 500", "validation_size: 500, eval_batch_size: 2000000000"),
     "evaluation batch"),
])
def test_every_kind_of_huge_run_is_refused(tmp_path, monkeypatch, capsys, linear, change,
                                           biggest):
    text = (CASES / "huge-filters.yaml").read_text().replace(*change)
    if change[0] != "filters: 100000000000":
        text = text.replace("filters: 100000000000", "filters: 4")
    spec = tmp_path / "member.yaml"
    spec.write_text(text)
    out = tmp_path / "run"
    assert _train(str(spec), "--out", str(out)) == 1
    err = capsys.readouterr().err
    assert "of memory on this machine" in err and biggest in err.split("biggest parts:")[1]
    assert "Traceback" not in err and not out.exists()


def test_a_huge_input_is_refused_by_its_activations():
    spec = loads_spec((CASES / "huge-filters.yaml").read_text().replace(
        "filters: 100000000000", "filters: 4").replace("height: 28, width: 28",
                                                       "height: 1000000, width: 100000"))
    estimate = estimate_memory(spec)
    assert estimate.parts[0].what.startswith("evaluation batch (256 images, input and conv1")
    with pytest.raises(MemoryLimitError, match="needs at least 576.0 TB"):
        check_memory(spec, estimate, host=(64 * 10**9, "MemAvailable"))


def test_a_network_that_fits_only_a_smaller_machine_is_refused_there(tmp_path, monkeypatch,
                                                                     capsys, linear):
    monkeypatch.setattr(convspec.train.run, "available_memory", lambda: (1_000, "a test"))
    out = tmp_path / "run"
    assert _train(str(linear), "--out", str(out)) == 1
    err = capsys.readouterr().err
    assert "which has 1.0 kB available (a test)" in err and not out.exists()
    monkeypatch.setattr(convspec.train.run, "available_memory", lambda: (10**9, "a test"))
    assert _train(str(linear), "--out", str(out)) == 0


def test_huge_filters_case_is_refused_before_anything_is_allocated(tmp_path):
    """The shared case (filters: 100,000,000,000) through the real command: refused in one
    paragraph, by the spec's size bound or the memory estimate, with nothing written."""
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "convspec", "train",
                           str(CASES / "huge-filters.yaml"), "--iterations", "5", "--out",
                           str(out)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "filters" in proc.stderr or "of memory" in proc.stderr
    assert not out.exists()


def test_shapes_prints_the_estimate_without_any_framework():
    proc = subprocess.run([sys.executable, "-c", (
        "import sys; from convspec.cli import main; code = main(['shapes', sys.argv[1]]); "
        "assert not {'torch', 'tensorflow', 'numpy'} & set(sys.modules), sorted(sys.modules); "
        "sys.exit(code)"), str(SPECS / "mnist.yaml")], capture_output=True, text=True,
        cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "training needs at least 19.9 MB of memory (batch 64, adam; without the data): " \
           "evaluation batch (256 images, conv1 and pool1) 16.1 MB" in proc.stdout


def test_shapes_json_holds_the_estimate(tmp_path):
    import json

    spec = tmp_path / "huge.yaml"
    spec.write_text(HUGE)
    proc = subprocess.run([sys.executable, "-m", "convspec", "shapes", "--json", str(spec)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    data = json.loads(proc.stdout)["training_memory"]
    assert data["total_bytes"] > 10**15
    assert data["parts"][0]["bytes"] == max(p["bytes"] for p in data["parts"])
    assert estimate_memory(loads_spec(HUGE)).total() == data["total_bytes"]


def test_on_a_gpu_the_backend_is_asked_for_its_free_memory(tmp_path, monkeypatch, capsys,
                                                           linear):
    asked = []

    def device_memory(self, device):
        asked.append(device)
        return 1_000, "a test GPU"

    monkeypatch.setattr(NumpyBackend, "device_memory", device_memory, raising=False)
    out = tmp_path / "run"
    assert _train(str(linear), "--out", str(out), "--device", "cuda") == 1
    err = capsys.readouterr().err
    assert "of memory on the GPU, which has 1.0 kB available (a test GPU)" in err
    assert asked == ["cuda"] and not out.exists()
    assert _train(str(linear), "--out", str(out)) == 0  # the CPU: the hook is not asked
    assert asked == ["cuda"]


def test_torch_reports_no_gpu_memory_for_the_cpu():
    from conftest import require_backend

    require_backend("torch")
    from convspec.backends import device_memory, get_backend

    assert device_memory(get_backend("torch"), "cpu") is None
    import torch

    if not torch.cuda.is_available():
        from convspec.errors import BackendError

        with pytest.raises(BackendError, match="device 'cuda' was requested"):
            device_memory(get_backend("torch"), "cuda")
        assert device_memory(get_backend("torch"), "auto") is None
    else:
        free, where = device_memory(get_backend("torch"), "cuda")
        assert free > 0 and "mem_get_info" in where
