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
    arrays = {f"weights/{k}": np.array(v, order="C") for k, v in ckpt.weights.items()}
    arrays |= {f"optimizer/{k}": np.array(v, order="C") for k, v in ckpt.optimizer.items()}
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


def decode(arrays: dict[str, np.ndarray], meta: Mapping[str, str]) -> Checkpoint:
    """The checkpoint in (arrays, metadata); ``ValueError`` / ``KeyError`` when it is not a
    convspec checkpoint. Whether it fits a network is ``check_architecture``'s question."""
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError("not a convspec checkpoint")
    arrays = dict(arrays)
    sampler = json.loads(meta["sampler"])
    sampler["order"] = arrays.pop("sampler/order")
    state = json.loads(meta.get("state", "{}"))  # absent in checkpoints of older versions
    for name in [k for k in arrays if k.startswith("state/")]:
        owner, key = name[len("state/"):].split("/", 1)
        state.setdefault(owner, {})[key] = arrays.pop(name)
    return Checkpoint(
        iteration=int(meta["iteration"]),
        weights={k[8:]: v for k, v in arrays.items() if k.startswith("weights/")},
        optimizer={k[10:]: v for k, v in arrays.items() if k.startswith("optimizer/")},
        sampler=sampler,
        elapsed=float(meta.get("elapsed", "0")),
        state=state,
    )
