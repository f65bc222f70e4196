"""``convspec.precision`` in torch: the compute type, IEEE float32, fp16 loss scaling.

Float32 stays IEEE float32 (no TF32 on GPUs, no bf16 in oneDNN's float32 matmuls) for
convspec's calls only: the settings are switched for each call and the user's come back. In
bf16 / fp16 the forward pass runs under ``torch.autocast``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from ...precision import INITIAL_SCALE, next_loss_scale

# precision -> the autocast type (None: float32 throughout)
COMPUTE_DTYPES: dict[str, torch.dtype | None] = {
    "fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def ieee_settings(device: torch.device) -> list[tuple[Any, str, Any]]:
    """(object, attribute, value) settings that keep float32 math IEEE (no TF32/bf16)."""
    b = torch.backends
    if device.type == "cuda":
        if hasattr(getattr(b.cudnn, "conv", None), "fp32_precision"):
            return [(b.cudnn.conv, "fp32_precision", "ieee"),
                    (b.cuda.matmul, "fp32_precision", "ieee")]
        return [(b.cudnn, "allow_tf32", False), (b.cuda.matmul, "allow_tf32", False)]
    if hasattr(getattr(b.mkldnn, "matmul", None), "fp32_precision"):
        return [(b.mkldnn.conv, "fp32_precision", "ieee"),
                (b.mkldnn.matmul, "fp32_precision", "ieee")]
    return []


@contextmanager
def ieee(settings: list[tuple[Any, str, Any]]) -> Iterator[None]:
    """Full float32 precision for this block only; the user's global settings come back."""
    saved = [(obj, attr, getattr(obj, attr)) for obj, attr, _ in settings]
    try:
        for obj, attr, value in settings:
            setattr(obj, attr, value)
        yield
    finally:
        for obj, attr, value in saved:
            setattr(obj, attr, value)


class LossScale:
    """fp16 dynamic loss scaling with ``convspec.precision``'s rule, kept on the host."""

    def __init__(self) -> None:
        self.scale, self.good_steps = INITIAL_SCALE, 0

    def unscale(self, grads: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], bool]:
        """The gradients divided by the scale (in place), and whether they are all finite."""
        grads = list(grads)
        with torch.no_grad():
            torch._foreach_mul_(grads, 1.0 / self.scale)
            finite = bool(torch.stack([g.isfinite().all() for g in grads]).all())
        return grads, finite

    def update(self, finite: bool) -> None:
        """The scale after a step whose gradients were ``finite`` or not."""
        self.scale, self.good_steps = next_loss_scale(self.scale, self.good_steps, finite)

    def state(self) -> tuple[float, int]:
        return self.scale, self.good_steps

    def set_state(self, scale: float, good_steps: int) -> None:
        self.scale, self.good_steps = scale, good_steps
