"""The checkpoint format: the full training state as safetensors arrays and metadata.

One file holds the weights (``weights/<name>``), the optimizer state (``optimizer/<name>``),
the sampler's order (``sampler/order``), the arrays of the training loop's own state
(``state/<owner>/<name>``: the best weights) and, as metadata, the format tag, the
architecture hash of the spec, the iteration, the elapsed seconds, the rest of the sampler
state and the rest of the loop's state (``state``: JSON, e.g. the early-stopping counters). This
module only converts between ``Checkpoint`` and (arrays, metadata); reading and writing the
file is ``convspec.run_directory.RunDirectory``'s job.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .precision import GOOD_STEPS_KEY

CHECKPOINT_FORMAT = "convspec-checkpoint/1"


@dataclass
class Checkpoint:
    """The full training state at the end of step ``iteration`` (``elapsed`` in seconds).

    ``state`` holds the training loop's own state by owner (the metrics window, the schedule,
    each stateful callback): JSON values, and NumPy arrays at an owner's top level.
    """

    iteration: int
    weights: dict[str, np.ndarray]
    optimizer: dict[str, np.ndarray]
    sampler: dict[str, Any]
    elapsed: float
    state: dict[str, dict[str, Any]] = field(default_factory=dict)


def encode(ckpt: Checkpoint, architecture: Mapping[str, str]) -> tuple[dict[str, np.ndarray],
                                                                       dict[str, str]]:
    """(arrays, metadata) for ``safetensors`` of a checkpoint; ``architecture`` is the
    metadata that ties it to its network (``convspec.architecture.architecture_metadata``)."""
    # np.array(..., order="C") keeps 0-d arrays 0-d (ascontiguousarray would make them 1-d)
    arrays = {f"weights/{k}": np.array(v, np.float32, order="C")
              for k, v in ckpt.weights.items()}
    arrays |= {f"optimizer/{k}": np.array(v, _INTEGERS.get(k, np.float32), order="C")
               for k, v in ckpt.optimizer.items()}
    arrays["sampler/order"] = np.ascontiguousarray(ckpt.sampler["order"], dtype=np.int64)
    state: dict[str, dict[str, Any]] = {}
    for owner, values in ckpt.state.items():
        state[owner] = {}
        for key, value in values.items():
            if isinstance(value, np.ndarray):
                arrays[f"state/{owner}/{key}"] = np.array(value, order="C")
            else:
                state[owner][key] = value
    meta = {
        "format": CHECKPOINT_FORMAT,
        **architecture,
        "iteration": str(ckpt.iteration),
        "elapsed": repr(ckpt.elapsed),
        "sampler": json.dumps({k: v for k, v in ckpt.sampler.items() if k != "order"}),
        "state": json.dumps(state),
    }
    return arrays, meta


# optimizer entries that are integers (int64); every other one is float32
_INTEGERS = {"step": np.int64, GOOD_STEPS_KEY: np.int64}


def _count(text: Any, what: str) -> int:
    """A non-negative integer from metadata text or JSON (ValueError naming ``what``)."""
    if isinstance(text, str) and text.isdigit() and len(text) < 19:
        return int(text)
    if isinstance(text, int) and not isinstance(text, bool) and 0 <= text < 2**63:
        return text
    raise ValueError(f"its {what} is {str(text)[:40]!r}, not a non-negative integer")


def _check_array(name: str, value: np.ndarray, dtype: Any) -> None:
    if value.dtype != dtype:
        raise ValueError(f"{name} is {value.dtype}, not {np.dtype(dtype)}")
    if value.dtype.kind == "f" and not np.isfinite(value).all():
        raise ValueError(f"{name} holds NaN or infinite values")


def _loop_state(meta: Mapping[str, str], arrays: dict[str, np.ndarray]
                ) -> dict[str, dict[str, Any]]:
    """The training loop's state (``Checkpoint.state``): JSON values in the metadata, arrays
    under ``state/<owner>/<key>``; empty in checkpoints of older versions. ValueError when it
    is not a mapping of owners to mappings."""
    try:
        state = json.loads(meta.get("state", "{}"))
    except ValueError:
        raise ValueError("its loop state is not JSON") from None
    if not isinstance(state, dict) or not all(isinstance(v, dict) for v in state.values()):
        raise ValueError("its loop state is not a JSON object of objects")
    for name in [k for k in arrays if k.startswith("state/")]:
        owner, _, key = name[len("state/"):].partition("/")
        if not key:
            raise ValueError(f"{name} is not named state/<owner>/<key>")
        state.setdefault(owner, {})[key] = arrays.pop(name)
    return state


def decode(arrays: dict[str, np.ndarray], meta: Mapping[str, str]) -> Checkpoint:
    """The checkpoint in (arrays, metadata), every field checked: ``ValueError`` naming the
    first bad one (not a convspec checkpoint; iteration or elapsed seconds not in range; a
    weight or optimizer slot not finite float32; the step, the loss scale's count or the
    sampler order not int64). Whether it fits a network is ``check_architecture``'s question;
    whether the sampler state (order, position, epoch, random state) fits the data is the
    sampler's (``BatchSampler.restore``)."""
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError("not a convspec checkpoint")
    for key in ("iteration", "sampler"):
        if key not in meta:
            raise ValueError(f"its metadata has no {key!r}")
    arrays = dict(arrays)
    try:
        sampler = json.loads(meta["sampler"])
    except ValueError:
        raise ValueError("its sampler state is not JSON") from None
    if not isinstance(sampler, dict):  # its fields are the sampler's to check (restore)
        raise ValueError("its sampler state is not a JSON object")
    if "sampler/order" not in arrays:
        raise ValueError("it has no sampler/order")
    order = sampler["order"] = arrays.pop("sampler/order")
    if order.dtype != np.int64 or order.ndim != 1:
        raise ValueError(f"sampler/order is {order.dtype} of shape {order.shape}, not a 1-D "
                         f"int64 array")
    elapsed = float(meta.get("elapsed", "0"))
    if not (np.isfinite(elapsed) and elapsed >= 0):
        raise ValueError(f"its elapsed time is {meta.get('elapsed')!r}")
    ckpt = Checkpoint(
        iteration=_count(meta["iteration"], "iteration"),
        weights={k[8:]: v for k, v in arrays.items() if k.startswith("weights/")},
        optimizer={k[10:]: v for k, v in arrays.items() if k.startswith("optimizer/")},
        sampler=sampler,
        elapsed=elapsed,
        state=_loop_state(meta, arrays),
    )
    for name, value in ckpt.weights.items():
        _check_array(f"weights/{name}", value, np.float32)
    for name, value in ckpt.optimizer.items():
        _check_array(f"optimizer/{name}", value, _INTEGERS.get(name, np.float32))
    return ckpt
