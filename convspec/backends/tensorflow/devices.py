"""Devices and data parallelism in TensorFlow: one process per host, its local devices
replicated with ``MirroredStrategy``, hosts joined by ``MultiWorkerMirroredStrategy``
(``TF_CONFIG``)."""

from __future__ import annotations

import contextlib

import tensorflow as tf

from ...distributed import Parallel
from ...errors import BackendError
from .. import check_device


def resolve_device(device: str) -> tuple[str, str]:
    """(protocol name, TF device string): 'auto' takes a GPU when TensorFlow sees one."""
    check_device(device)
    gpus = tf.config.list_physical_devices("GPU")
    if device == "cuda" and not gpus:
        raise BackendError("device 'cuda' was requested but TensorFlow sees no GPU (is the "
                           "CUDA build of TensorFlow installed?); use device 'cpu' or 'auto'")
    if device == "cuda" or (device == "auto" and gpus):
        return "cuda", "/GPU:0"
    return "cpu", "/CPU:0"


def free_memory(device: str) -> tuple[int, str] | None:
    """None: TensorFlow reports a GPU's memory only once its allocator has reserved it
    (``get_memory_info`` gives what it uses, not what is free), so it cannot be asked before
    a model is built; the CPU is ``convspec.memory``'s."""
    resolve_device(device)  # a missing GPU is still reported here, before any work
    return None


def local_devices(count: int, device: str) -> list[str]:
    """``count`` devices of this process for MirroredStrategy: GPUs, or on CPU that many
    logical CPU devices (which must be configured before TensorFlow initialises)."""
    if device == "cuda":
        gpus = tf.config.list_physical_devices("GPU")
        if len(gpus) < count:
            raise BackendError(f"{count} replicas need {count} GPUs; TensorFlow sees "
                               f"{len(gpus)}")
        return [f"/GPU:{i}" for i in range(count)]
    cpus = tf.config.list_physical_devices("CPU")
    with contextlib.suppress(RuntimeError):  # already initialised: use what exists
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
    logical = tf.config.list_logical_devices("CPU")
    if len(logical) < count:
        raise BackendError(f"TensorFlow was initialised with {len(logical)} CPU device(s) "
                           f"before {count} replicas were asked for; train in a new process")
    return [d.name for d in logical[:count]]


def data_parallel(parallel: Parallel, device: str) -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy for a TF_CONFIG cluster, else MirroredStrategy."""
    if parallel.launcher == "tf_config":
        if device != "cuda" and parallel.local_devices > 1:
            raise BackendError("with TF_CONFIG each CPU worker trains one replica; start more "
                               "workers instead of --nproc")
        collective = tf.distribute.experimental.CommunicationImplementation
        impl = collective.NCCL if device == "cuda" else collective.RING
        return tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=tf.distribute.experimental.CommunicationOptions(
                implementation=impl))
    devices = local_devices(parallel.local_devices, device)
    return tf.distribute.MirroredStrategy(devices=devices)
