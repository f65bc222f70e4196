"""The spec's training-loop settings: learning-rate schedule, early stopping, best checkpoint.

Each is a validated part of ``train`` in a spec (``convspec.specification.model.Train``); what
they mean at run time is computed in backend-neutral code (``convspec.train.schedules`` and
``convspec.train.monitor``), so a spec means the same run whichever backend trains it.
Semantics are Keras's, with every formula in the field descriptions (and the README).
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator

from .types import MAX_SIZE, Count, FiniteFloat, Size

Metric = Literal["val_loss", "val_accuracy"]
Mode = Literal["auto", "min", "max"]
_MODE = ("'min': lower is better, 'max': higher is better, 'auto': max for val_accuracy, "
         "min for val_loss (Keras).")


class _Part(BaseModel):
    # as convspec.specification.model._Strict: built once, inside Spec's schema
    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)


class ConstantSchedule(_Part):
    kind: Literal["constant"] = Field(
        description="lr(t) = learning_rate for every step t (the default).")


class StepSchedule(_Part):
    kind: Literal["step"] = Field(
        description="lr(t) = learning_rate * gamma ** floor(t / step_size), t = optimizer steps "
                    "already taken (PyTorch StepLR stepped per iteration; Keras "
                    "ExponentialDecay(staircase=True)).")
    step_size: Size = Field(description="Steps between two decays.")
    gamma: FiniteFloat = Field(0.1, gt=0, le=1, description="Factor applied at each decay.")


class ExponentialSchedule(_Part):
    kind: Literal["exponential"] = Field(
        description="lr(t) = learning_rate * decay_rate ** (t / decay_steps) (Keras "
                    "ExponentialDecay; PyTorch ExponentialLR with gamma = "
                    "decay_rate ** (1 / decay_steps), stepped per iteration).")
    decay_steps: Size = Field(description="Steps over which the rate is multiplied by "
                                          "decay_rate.")
    decay_rate: FiniteFloat = Field(gt=0, le=1, description="Factor per decay_steps steps.")


class CosineSchedule(_Part):
    kind: Literal["cosine"] = Field(
        description="Linear warmup, then cosine decay (Keras CosineDecay with warmup): for "
                    "t < W, lr = learning_rate * (s + (1 - s) * t / W); after, with "
                    "u = min(t - W, D) / D, lr = learning_rate * ((1 - alpha) * 0.5 * "
                    "(1 + cos(pi * u)) + alpha). W = warmup_steps, D = decay_steps, "
                    "s = warmup_start.")
    warmup_steps: Count = Field(0, description="W: steps of linear warmup (0: none).")
    warmup_start: FiniteFloat = Field(0.0, ge=0, le=1, description=(
        "s: the first warmup step's rate, as a fraction of learning_rate."))
    decay_steps: Size | None = Field(None, description=(
        "D: steps of cosine decay after the warmup (default: the rest of the run)."))
    alpha: FiniteFloat = Field(0.0, ge=0, le=1, description=(
        "The final rate, as a fraction of learning_rate."))


class PlateauSchedule(_Part):
    kind: Literal["reduce_on_plateau"] = Field(
        description="Keras ReduceLROnPlateau, judged at each validation: after `patience` "
                    "validations without an improvement of more than min_delta (none counted "
                    "during `cooldown` validations after a reduction), "
                    "lr = max(lr * factor, min_lr).")
    monitor: Metric = Field("val_loss", description="The validation metric watched.")
    mode: Mode = Field("auto", description=_MODE)
    factor: FiniteFloat = Field(0.1, gt=0, lt=1, description="Factor of each reduction.")
    patience: Count = Field(10, description="Validations without improvement before a "
                                            "reduction.")
    min_delta: FiniteFloat = Field(1e-4, ge=0, description="Smallest change that counts as an "
                                                           "improvement (absolute).")
    cooldown: Count = Field(0, description="Validations after a reduction during which no "
                                           "patience is counted.")
    min_lr: FiniteFloat = Field(0.0, ge=0, description="The rate is never reduced below this.")


Schedule = Annotated[ConstantSchedule | StepSchedule | ExponentialSchedule | CosineSchedule
                     | PlateauSchedule, Field(discriminator="kind")]
SCHEDULE_KINDS = ("constant", "step", "exponential", "cosine", "reduce_on_plateau")


class EarlyStopping(_Part):
    """Keras EarlyStopping, judged at each validation: stop when `monitor` has not improved by
    more than `min_delta` for `patience` validations in a row."""

    monitor: Metric = Field("val_loss", description="The validation metric watched.")
    mode: Mode = Field("auto", description=_MODE)
    patience: Count = Field(3, description="Validations without improvement before stopping "
                                           "(0: at the first one).")
    min_delta: FiniteFloat = Field(0.0, ge=0, description=(
        "Smallest change that counts as an improvement (absolute)."))


class BestCheckpoint(_Part):
    """Which validation result the run's ``best.safetensors`` keeps (Keras ModelCheckpoint
    with save_best_only): the weights whenever `monitor` is strictly better than before."""

    monitor: Metric = Field("val_loss", description="The validation metric that decides.")
    mode: Mode = Field("auto", description=_MODE)


def _interval(value: Any) -> int | str:
    """``epoch`` or a positive number of iterations; one message for both (not one per type)."""
    if value == "epoch" and isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_SIZE:
        return value
    raise ValueError(f"must be a positive number of iterations or 'epoch', got {value!r}")


ValidationInterval = Annotated[int | str, PlainValidator(
    _interval, json_schema_input_type=Size | Literal["epoch"])]
"""How often to validate: every N iterations, or ``epoch``."""
