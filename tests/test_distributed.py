"""Data-parallel training: the layout read from launchers, torchrun + DDP (gloo) and
TensorFlow's MirroredStrategy / MultiWorkerMirroredStrategy, each checked against the same
run on one process with the same global batch."""

from __future__ import annotations

import gzip
import json
import os
import socket
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SPECS, require_backend

from convspec.backends import parallel_layout
from convspec.backends.tensorflow import TensorFlowBackend
from convspec.backends.torch import TorchBackend
from convspec.distributed import (
    Parallel,
    describe,
    from_tf_config,
    from_torchrun,
    torchrun_argv,
)
from convspec.errors import UsageError

# -- the layout ---------------------------------------------------------------------------


def test_torchrun_environment_is_read():
    got = from_torchrun({"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "0"})
    assert got == Parallel(processes=4, rank=2, local_rank=0, launcher="torchrun")
    assert not got.is_primary and got.replicas == 4 and got.enabled
    assert from_torchrun({}) is None


@pytest.mark.parametrize("env", [{"WORLD_SIZE": "2", "RANK": "2"},
                                 {"WORLD_SIZE": "two", "RANK": "0"},
                                 {"WORLD_SIZE": "2", "RANK": "-1"}])
def test_inconsistent_torchrun_environment_is_a_usage_error(env):
    with pytest.raises(UsageError):
        from_torchrun(env)


def _tf_config(kind: str, index: int, workers: int = 2, chief: bool = False) -> dict[str, str]:
    cluster: dict[str, list[str]] = {"worker": [f"h{i}:1" for i in range(workers)]}
    if chief:
        cluster["chief"] = ["c:1"]
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}})}


def test_tf_config_is_read_with_the_chief_as_rank_zero():
    assert from_tf_config(_tf_config("worker", 1)) == Parallel(processes=2, rank=1,
                                                               launcher="tf_config")
    assert from_tf_config(_tf_config("chief", 0, chief=True)).rank == 0
    assert from_tf_config(_tf_config("worker", 0, chief=True)).rank == 1
    assert from_tf_config(_tf_config("worker", 0, chief=True)).processes == 3
    assert from_tf_config({}) is None


@pytest.mark.parametrize("env", [{"TF_CONFIG": "{not json"}, _tf_config("ps", 0),
                                 _tf_config("worker", 5), {"TF_CONFIG": '{"task": {}}'}])
def test_bad_tf_config_is_a_usage_error(env):
    with pytest.raises(UsageError, match="TF_CONFIG"):
        from_tf_config(env)


def test_each_process_takes_a_contiguous_equal_shard_of_the_global_batch():
    shards = [Parallel(processes=4, rank=r).shard(64) for r in range(4)]
    assert [(s.start, s.stop) for s in shards] == [(0, 16), (16, 32), (32, 48), (48, 64)]
    assert "global batch 64 = 4 x 16 per replica" in describe(Parallel(processes=4), 64)
    Parallel(processes=2, local_devices=2).check_batch(64)
    with pytest.raises(UsageError, match="multiple of 3"):
        Parallel(processes=3).check_batch(64)


def test_nproc_means_torchrun_for_torch_and_local_devices_for_tensorflow():
    torch, tensorflow = TorchBackend(), TensorFlowBackend()  # no framework import needed
    with pytest.raises(UsageError, match="torchrun"):
        parallel_layout(torch, 2, {})
    assert parallel_layout(torch, 1, {}) == Parallel()
    assert parallel_layout(tensorflow, 2, {}) == Parallel(local_devices=2, launcher="local")
    under_torchrun = {"WORLD_SIZE": "2", "RANK": "1"}
    assert parallel_layout(torch, 1, under_torchrun).rank == 1
    with pytest.raises(UsageError, match="does not train under torchrun"):
        parallel_layout(tensorflow, 1, under_torchrun)
    assert parallel_layout(tensorflow, 2, _tf_config("worker", 1)) == Parallel(
        processes=2, rank=1, local_devices=2, launcher="tf_config")
    assert tensorflow.launch(2, ["train"]) is None  # one process drives the local replicas


def test_the_torchrun_command_repeats_the_given_options_without_nproc():
    from convspec.cli._launch import command_args
    from convspec.cli.train_cmd import command

    ctx = command.make_context("train", ["specs/mnist.yaml", "--nproc", "2", "--iterations",
                                         "5", "--no-progress", "--plots"])
    args = command_args(ctx, {"nproc"})
    assert args == ["specs/mnist.yaml", "--iterations", "5", "--no-progress", "--plots"]
    argv = torchrun_argv(2, ["train", *args])
    assert argv[:5] == [sys.executable, "-m", "torch.distributed.run", "--standalone",
                        "--nproc-per-node=2"]
    assert argv[5:8] == ["-m", "convspec", "train"]


# -- real runs (subprocesses: torchrun workers, or TensorFlow with fresh devices) ---------

ITERATIONS = 20


@pytest.fixture(scope="module")
def mnist_like(tmp_path_factory) -> tuple[Path, Path]:
    """(spec, data dir): the tutorial network with a small validation split, on a learnable
    synthetic dataset in MNIST's IDX files."""
    folder = tmp_path_factory.mktemp("idx")
    rng = np.random.default_rng(0)

    def images_labels(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(labels):
            images[i, 2 * c + 4:2 * c + 6, :] = 230
        return images, labels

    def write(name: str, array: np.ndarray) -> None:
        code = 8
        header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
        (folder / f"{name}.gz").write_bytes(gzip.compress(header + array.tobytes()))

    for prefix, n in (("train", 1024), ("t10k", 128)):
        images, labels = images_labels(n)
        write(f"{prefix}-images-idx3-ubyte", images)
        write(f"{prefix}-labels-idx1-ubyte", labels)
    text = (SPECS / "mnist.yaml").read_text()
    assert "validation_size: 5000" in text and "validate_every: epoch" in text
    spec = folder / "mnist_small.yaml"
    spec.write_text(text.replace("validation_size: 5000", "validation_size: 128")
                    .replace("validate_every: epoch", "validate_every: 10")
                    .replace("log_every: 100", "log_every: 5"))
    return spec, folder


def _convspec(*args: str, env: dict[str, str] | None = None,
              timeout: int = 300) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run([sys.executable, "-m", "convspec", *args], capture_output=True,
                          text=True, cwd=ROOT, env=full, timeout=timeout)


def _train(spec: Path, data: Path, out: Path, *extra: str,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = _convspec("train", str(spec), "--data-dir", str(data), "--out", str(out),
                       "--no-progress", *extra, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _weights(run: Path) -> dict[str, np.ndarray]:
    from convspec.weights import read_weights

    return read_weights(run / "weights.safetensors")[0]


def _max_diff(a: Path, b: Path) -> float:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    return max(float(np.abs(wa[k] - wb[k]).max()) for k in wa)


def _file_kinds(run: Path) -> list[str]:
    """The run directory's file names, TensorBoard's (named by time, host and pid) as one."""
    return sorted({"events" if p.name.startswith("events.out.tfevents.") else p.name
                   for p in run.iterdir()})


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _same_metrics(a: Path, b: Path) -> None:
    ma, mb = _metrics(a), _metrics(b)
    assert [r["iteration"] for r in ma] == [r["iteration"] for r in mb]
    for ra, rb in zip(ma, mb):
        assert ra["loss"] == pytest.approx(rb["loss"], abs=1e-5)
        assert ra["train_accuracy"] == pytest.approx(rb["train_accuracy"], abs=1e-6)
        assert ra["val_accuracy"] == rb["val_accuracy"]


@pytest.fixture(scope="module")
def torch_runs(mnist_like, tmp_path_factory) -> dict[str, Path]:
    """One run on one process and one on two DDP processes (2 x 32 per rank)."""
    require_backend("torch")
    spec, data = mnist_like
    root = tmp_path_factory.mktemp("torch-runs")
    single, ddp = root / "single", root / "ddp"
    _train(spec, data, single, "--iterations", str(ITERATIONS))
    result = _train(spec, data, ddp, "--iterations", str(ITERATIONS), "--nproc", "2")
    return {"single": single, "ddp": ddp, "log": result.stdout, "err": result.stderr}


@pytest.mark.slow
def test_ddp_on_two_processes_equals_one_process_with_the_global_batch(torch_runs):
    assert _max_diff(torch_runs["single"], torch_runs["ddp"]) <= 1e-5
    _same_metrics(torch_runs["single"], torch_runs["ddp"])
    config = json.loads((torch_runs["ddp"] / "config.json").read_text())
    assert config["parallel"] == {"processes": 2, "devices_per_process": 1,
                                  "launcher": "torchrun"}


@pytest.mark.slow
def test_only_rank_zero_logs_and_writes(torch_runs):
    log = torch_runs["log"]
    assert "Starting 2 processes with torchrun" in torch_runs["err"]
    assert log.count("Optimization Iteration:      1,") == 1
    assert log.count("Accuracy on Test-Set:") == 1
    assert "global batch 64 = 2 x 32 per replica" in log
    assert len(_metrics(torch_runs["ddp"])) == len(_metrics(torch_runs["single"]))
    from convspec.run_directory import RunDirectory

    run = RunDirectory.open(torch_runs["ddp"])
    ckpt = run.load_checkpoint(run.load_spec())
    assert ckpt.iteration == ITERATIONS
    assert _file_kinds(torch_runs["ddp"]) == _file_kinds(torch_runs["single"])


@pytest.mark.slow
def test_a_ddp_run_resumes_like_a_single_process_run(torch_runs, tmp_path):
    import shutil

    runs = {}
    for name in ("single", "ddp"):
        runs[name] = tmp_path / name
        shutil.copytree(torch_runs[name], runs[name])
    extra = {"ddp": ("--nproc", "2"), "single": ()}
    for name, run in runs.items():
        result = _convspec("train", "--resume", str(run), "--iterations", "30",
                           "--no-progress", *extra[name])
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"Resuming {run} at iteration {ITERATIONS} of 30" in result.stdout
    assert _max_diff(runs["single"], runs["ddp"]) <= 1e-5
    _same_metrics(runs["single"], runs["ddp"])


def test_batch_that_does_not_split_evenly_is_refused_before_starting(mnist_like, tmp_path):
    require_backend("tensorflow")
    spec, data = mnist_like
    result = _convspec("train", str(spec), "--data-dir", str(data), "--backend", "tensorflow",
                       "--nproc", "3", "--iterations", "2", "--out", str(tmp_path / "x"))
    assert result.returncode == 2
    assert "does not divide evenly over 3 replicas" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_tensorflow_mirrored_on_two_cpu_devices_equals_one_device(mnist_like, tmp_path):
    require_backend("tensorflow")
    spec, data = mnist_like
    single, mirrored = tmp_path / "single", tmp_path / "mirrored"
    _train(spec, data, single, "--backend", "tensorflow", "--iterations", str(ITERATIONS))
    result = _train(spec, data, mirrored, "--backend", "tensorflow", "--iterations",
                    str(ITERATIONS), "--nproc", "2")
    assert "1 process(es) x 2 device(s) = 2 replicas" in result.stdout
    assert _max_diff(single, mirrored) <= 1e-5
    _same_metrics(single, mirrored)


REPLICA_SCRIPT = """
import sys, numpy as np
from convspec.backends import get_backend
from convspec.distributed import Parallel
from convspec.specification import loads_spec
spec = loads_spec(sys.stdin.read())
rng = np.random.default_rng(1)
x = rng.random((8 * 6, 6, 6, 1), dtype=np.float32)
y = rng.integers(0, 3, 8 * 6)
backend = get_backend("tensorflow")
two = backend.compile(spec, parallel=Parallel(local_devices=2))  # before TF starts
one = backend.compile(spec)
for i in range(6):
    batch = slice(8 * i, 8 * i + 8)
    a, b = one.train_step(x[batch], y[batch], True), two.train_step(x[batch], y[batch], True)
    assert abs(a.loss - b.loss) < 1e-5, (i, a, b)
w1, w2 = one.get_weights(), two.get_weights()
print(max(float(np.abs(w1[k] - w2[k]).max()) for k in w1), two.tracing_count)
"""

DROPOUT_SPEC = """
name: dropout_replicas
input: {height: 6, width: 6, channels: 1}
classes: 3
layers:
  - {kind: conv2d, filters: 4, kernel: 3, padding: same}
  - {kind: relu}
  - {kind: dropout, rate: 0.5}
  - {kind: flatten}
  - {kind: dense, units: 3}
train: {optimizer: {kind: adam, learning_rate: 0.01}, batch_size: 8, seed: 3}
"""
# A graph: a residual join, a concat with the image, one flatten taken by two layers,
# dropout on feature maps and on a concat of flat vectors (torch: its own flat order).
GRAPH_DROPOUT_SPEC = """
name: graph_dropout_replicas
input: {height: 6, width: 6, channels: 1}
classes: 3
layers:
  - {kind: conv2d, name: stem, filters: 4, kernel: 3, padding: same, activation: relu}
  - {kind: depthwise_conv2d, name: dw, kernel: 3, padding: same, activation: relu6}
  - {kind: add, name: join, inputs: [dw, stem]}
  - {kind: concat, name: cat, inputs: [join, input]}
  - {kind: dropout, rate: 0.5}
  - {kind: flatten, name: flat}
  - {kind: dense, name: fc, units: 6, activation: tanh}
  - {kind: concat, name: both, inputs: [flat, fc]}
  - {kind: dropout, rate: 0.3}
  - {kind: dense, units: 3}
train: {optimizer: {kind: adam, learning_rate: 0.01}, batch_size: 8, seed: 3}
"""
REPLICA_SPECS = {"stack": DROPOUT_SPEC, "graph": GRAPH_DROPOUT_SPEC}
REPLICA_CASES = ["stack", pytest.param("graph", marks=pytest.mark.slow)]  # a subprocess each


@pytest.mark.parametrize("spec", REPLICA_CASES)
@pytest.mark.slow
def test_tensorflow_replicas_draw_the_single_device_dropout_masks(spec):
    """Each replica hashes its rows' global positions, so the masks (and so the updates) are
    those of one device with the whole batch."""
    require_backend("tensorflow")
    result = subprocess.run([sys.executable, "-c", REPLICA_SCRIPT], input=REPLICA_SPECS[spec],
                            capture_output=True, text=True, cwd=ROOT, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr
    diff, traces = result.stdout.split()
    assert float(diff) <= 1e-5 and traces == "1"


DDP_SCRIPT = """
import sys, numpy as np
from convspec.backends import get_backend
from convspec.distributed import from_torchrun
from convspec.specification import loads_spec
spec = loads_spec(open(sys.argv[1]).read())
parallel = from_torchrun()
rng = np.random.default_rng(1)
x = rng.random((8 * 6, 6, 6, 1), dtype=np.float32)
y = rng.integers(0, 3, 8 * 6)
backend = get_backend("torch")
one = backend.compile(spec)  # this process alone, the whole global batch
ddp = backend.compile(spec, parallel=parallel)  # its shard: rows 4 * rank ... 4 * rank + 3
shard = parallel.shard(8)
for i in range(6):
    batch = slice(8 * i, 8 * i + 8)
    a = one.train_step(x[batch], y[batch], True)
    b = ddp.train_step(x[batch][shard], y[batch][shard], True)
    assert abs(a.loss - b.loss) < 1e-5, (i, a, b)
w1, w2 = one.get_weights(), ddp.get_weights()
if parallel.rank == 0:
    print(max(float(np.abs(w1[k] - w2[k]).max()) for k in w1))
ddp.close()
"""


@pytest.mark.parametrize("spec_text", REPLICA_CASES)
@pytest.mark.slow
def test_torch_ranks_draw_the_single_process_dropout_masks(tmp_path, spec_text):
    """Each DDP rank hashes its rows' global positions, so two ranks with half the batch each
    train like one process with the whole batch, dropout included."""
    require_backend("torch")
    script, spec = tmp_path / "ddp.py", tmp_path / "spec.yaml"
    script.write_text(DDP_SCRIPT)
    spec.write_text(REPLICA_SPECS[spec_text])
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc-per-node=2", str(script), str(spec)]
    result = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert float(result.stdout.split()[-1]) <= 1e-5


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_tensorflow_multi_worker_on_two_local_processes_equals_one_process(mnist_like,
                                                                           tmp_path):
    """MultiWorkerMirroredStrategy across two processes on 127.0.0.1 (TF_CONFIG)."""
    require_backend("tensorflow")
    spec, data = mnist_like
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    procs = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_CONFIG": json.dumps(config)}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "convspec", "train", str(spec), "--data-dir", str(data),
             "--backend", "tensorflow", "--iterations", str(ITERATIONS), "--out",
             str(tmp_path / f"worker{index}"), "--no-progress"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, out + err
    assert "2 process(es) x 1 device(s) = 2 replicas" in outputs[0][0]
    assert "Optimization Iteration" not in outputs[1][0]
    assert not (tmp_path / "worker1").exists()  # only the chief (rank 0) writes
    single = tmp_path / "single"
    _train(spec, data, single, "--backend", "tensorflow", "--iterations", str(ITERATIONS))
    assert _max_diff(single, tmp_path / "worker0") <= 1e-5
    _same_metrics(single, tmp_path / "worker0")


# -- every rank follows the primary's validation: plateau schedules, regularisation -------

SCHEDULED_SPEC = """
name: plateau_ranks
input: {height: 8, width: 8, channels: 1}
classes: 4
layers:
  - {kind: conv2d, filters: 4, kernel: 3, padding: same, activation: relu}
  - {kind: maxpool, size: 2}
  - {kind: flatten}
  - {kind: dense, units: 4}
train:
  optimizer: {kind: momentum, learning_rate: 0.05, weight_decay: 0.01}
  batch_size: 8
  iterations: 30
  validate_every: 5
  l2: 0.001
  clip_norm: 0.5
  schedule: {kind: reduce_on_plateau, patience: 0, factor: 0.5, min_delta: 10.0}
"""
# min_delta 10: no validation after the first improves enough, so each halves the rate

RANKS_SCRIPT = """
import hashlib, sys
sys.path.insert(0, "tests")
from conftest import tiny_dataset
from convspec.backends import get_backend, parallel_layout
from convspec.specification import loads_spec
from convspec.train import Trainer
backend = get_backend(sys.argv[1])
spec = loads_spec(open(sys.argv[2]).read())
parallel = parallel_layout(backend, 1)
model = backend.compile(spec, parallel=parallel)
shared = model.broadcast([parallel.rank + 0.5, -2.25])
data = tiny_dataset(n_train=64, n_val=16, n_test=8, size=8, classes=4)
trainer = Trainer(spec, model, data, log=lambda m: None)
trainer.fit()
w = model.get_weights()
digest = hashlib.sha256(b"".join(w[k].tobytes() for k in sorted(w))).hexdigest()[:16]
# one write: torchrun's workers run unbuffered and share the pipe, so print's pieces interleave
line = " ".join(map(str, ["RESULT", parallel.rank, *shared, trainer.lr, digest]))
sys.stdout.write(line + chr(10))
sys.stdout.flush()
model.close()
"""


def _rank_results(outputs: list[str]) -> dict[int, list[str]]:
    rows = [line.split()[1:] for out in outputs for line in out.splitlines()
            if line.startswith("RESULT ")]
    return {int(row[0]): row[1:] for row in rows}


def _check_ranks_agree(results: dict[int, list[str]]) -> None:
    """Every rank got rank 0's broadcast values, ended on the same (reduced) learning rate,
    and holds the same weights (a rank on another rate would drift away)."""
    assert sorted(results) == [0, 1]
    for shared_0, shared_1, lr, _ in results.values():
        assert (float(shared_0), float(shared_1)) == (0.5, -2.25)
        # the last step's rate: the validations at 10, 15, 20 and 25 each halved it (the one at
        # 5 set the best)
        assert float(lr) == 0.05 * 0.5 ** 4
    assert results[0][3] == results[1][3]


@pytest.mark.slow
def test_torch_ranks_follow_the_primarys_plateau_schedule(tmp_path):
    require_backend("torch")
    script, spec = tmp_path / "ranks.py", tmp_path / "spec.yaml"
    script.write_text(RANKS_SCRIPT)
    spec.write_text(SCHEDULED_SPEC)
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc-per-node=2", str(script), "torch", str(spec)]
    result = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    results = _rank_results([result.stdout])
    assert sorted(results) == [0, 1], result.stdout + result.stderr
    _check_ranks_agree(results)


@pytest.mark.slow
def test_tensorflow_workers_follow_the_chiefs_plateau_schedule(tmp_path):
    require_backend("tensorflow")
    script, spec = tmp_path / "ranks.py", tmp_path / "spec.yaml"
    script.write_text(RANKS_SCRIPT)
    spec.write_text(SCHEDULED_SPEC)
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    procs = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_CONFIG": json.dumps(config)}
        procs.append(subprocess.Popen([sys.executable, str(script), "tensorflow", str(spec)],
                                      cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, out + err
    _check_ranks_agree(_rank_results([out for out, _ in outputs]))


@pytest.mark.slow
def test_tensorflow_replicas_train_a_plateau_schedule_like_one_device(mnist_like, tmp_path):
    require_backend("tensorflow")
    spec, data = mnist_like
    extra = ("--backend", "tensorflow", "--iterations", str(ITERATIONS), "--validate-every",
             "5", "--set", "train.schedule={kind: reduce_on_plateau, patience: 0, "
             "min_delta: 10.0}", "--set", "train.l2=0.001", "--set", "train.clip_norm=1.0",
             "--set", "train.optimizer.weight_decay=0.01")
    single, mirrored = tmp_path / "single", tmp_path / "mirrored"
    _train(spec, data, single, *extra)
    _train(spec, data, mirrored, *extra, "--nproc", "2")
    assert _max_diff(single, mirrored) <= 1e-5
    _same_metrics(single, mirrored)
    rates = [r["lr"] for r in _metrics(mirrored)]
    assert rates == [r["lr"] for r in _metrics(single)] and len(set(rates)) > 1
