"""TorchScript export: the PyTorch backend's network traced behind an NHWC wrapper.

``torch.jit`` (trace, save, load) is deprecated upstream in favour of ``torch.export``, but
TorchScript is still the format people ask for: it loads with ``torch.jit.load`` alone, in
Python or C++ (libtorch), without convspec. Its deprecation warnings are silenced around the
calls made here only.

The traced module takes NHWC float32 images (any batch size) and returns the logits in
evaluation mode; the spec's name, architecture hash and convspec version travel in the
archive as the extra file ``convspec.json``.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..specification import Spec

METADATA_FILE = "convspec.json"


@contextlib.contextmanager
def _quiet_jit() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit")
        warnings.filterwarnings("ignore", message=r".*torch\.jit.*", category=DeprecationWarning)
        yield


def metadata(spec: Spec) -> dict[str, str]:
    return {"spec_name": spec.name, "architecture_hash": spec.architecture_hash(),
            "convspec_version": __version__, "input_layout": "NHWC",
            "output": f"logits (N, {spec.classes})"}


def module(spec: Spec, weights: Mapping[str, np.ndarray]) -> Any:
    """An eval-mode ``nn.Module``: NHWC images -> logits, with the canonical weights loaded."""
    import torch
    from torch import nn

    from ..backends.torch.network import Network

    class NHWC(nn.Module):
        """Images arrive NHWC (convspec's layout); the network runs NCHW inside."""

        def __init__(self, net: nn.Module):
            super().__init__()
            self.net = net

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return self.net(images.permute(0, 3, 1, 2).contiguous())

    net = Network(spec)
    with torch.no_grad():
        for name, tensor in net.weights.items():
            array = net.layouts[name].from_canonical(np.asarray(weights[name], dtype=np.float32))
            tensor.copy_(torch.from_numpy(np.ascontiguousarray(array)))
    wrapper = NHWC(net).eval()
    for parameter in wrapper.parameters():
        parameter.requires_grad_(False)
    return wrapper


def write(spec: Spec, weights: Mapping[str, np.ndarray], path: Path,
          extra: Mapping[str, str] | None = None) -> None:
    import torch

    wrapper = module(spec, weights)
    example = torch.zeros(2, spec.input.height, spec.input.width, spec.input.channels)
    with _quiet_jit(), torch.no_grad():
        traced = torch.jit.trace(wrapper, example, check_trace=False)
        torch.jit.save(traced, str(path),
                       _extra_files={METADATA_FILE: json.dumps({**metadata(spec), **(extra or {})},
                                                              sort_keys=True)})


def run(path: Path, images: np.ndarray) -> np.ndarray:
    import torch

    with _quiet_jit():
        loaded = torch.jit.load(str(path), map_location="cpu")
    loaded.eval()
    with torch.no_grad():
        return loaded(torch.from_numpy(np.array(images, dtype=np.float32))).numpy()
