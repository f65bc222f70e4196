"""Mixed precision, with one meaning for every backend.

``fp32`` (the default) is IEEE float32 everywhere. ``bf16`` and ``fp16`` are opt-in mixed
precision: weights, optimizer state and updates stay float32 (the canonical weights never
change type); convolutions, dense layers, pooling and activations compute in the 16-bit type;
batch-norm statistics, the logits, the loss and accuracy are float32.

fp16 has too little range for small gradients, so it trains with dynamic loss scaling, the
rule of PyTorch's GradScaler and Keras' LossScaleOptimizer: the loss is multiplied by
``scale`` (initially 2**15) before differentiation and the gradients divided by it; a step
whose gradients are not all finite is skipped (no update, the optimizer step does not
advance) and halves the scale; 2000 finite steps in a row double it. The scale and the count
are part of the optimizer state, so a resumed fp16 run continues exactly.
"""

from __future__ import annotations

from .errors import UsageError

PRECISIONS = ("fp32", "bf16", "fp16")
INITIAL_SCALE = 2.0 ** 15
GROWTH_INTERVAL = 2000
SCALE_KEY, GOOD_STEPS_KEY = "loss_scale/scale", "loss_scale/good_steps"


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}; choose one of "
                         f"{', '.join(PRECISIONS)}")
    return precision


def loss_scale_state(precision: str) -> dict[str, tuple[int, ...]]:
    """Extra optimizer-state entries (name -> shape) that ``precision`` keeps."""
    return {SCALE_KEY: (), GOOD_STEPS_KEY: ()} if precision == "fp16" else {}


def next_loss_scale(scale: float, good_steps: int, finite: bool) -> tuple[float, int]:
    """(scale, good steps) after a step whose gradients were ``finite`` or not."""
    if not finite:
        return scale / 2.0, 0
    good_steps += 1
    if good_steps >= GROWTH_INTERVAL:
        return scale * 2.0, 0
    return scale, good_steps
