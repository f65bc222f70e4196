"""The top-level spec: input, layers, initialisation and training setup.

Defaults and semantics are the TensorFlow 1 tutorial's (Adam with epsilon 1e-8 added to
sqrt(v) *after* the bias-corrected step size, truncated normal resampled beyond two standard
deviations), so a spec means the same run whichever backend trains it.
"""

import hashlib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .layers import Layer
from .types import MAX_SIZE, Count, FiniteFloat, Seed, Size


class _Strict(BaseModel):
    # Every part is built once, inside Spec's schema, when this module is imported (one schema
    # and one validator instead of one per class); a part used on its own builds itself then.
    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)


class Input(_Strict):
    """Shape of one input image (NHWC without N)."""

    height: Size = Field(description="Image height in pixels.")
    width: Size = Field(description="Image width in pixels.")
    channels: Size = Field(description="1 for grayscale, 3 for RGB.")


class TruncatedNormal(_Strict):
    kind: Literal["truncated_normal"] = Field(
        description="Normal, values beyond 2 stddev resampled (tf.random.truncated_normal).")
    mean: FiniteFloat = Field(0.0, description="Mean.")
    stddev: FiniteFloat = Field(0.05, gt=0, description="Standard deviation before truncation.")


class Normal(_Strict):
    kind: Literal["normal"] = Field(description="Normal distribution.")
    mean: FiniteFloat = Field(0.0, description="Mean.")
    stddev: FiniteFloat = Field(0.05, gt=0, description="Standard deviation.")


class GlorotUniform(_Strict):
    kind: Literal["glorot_uniform"] = Field(
        description="Uniform in +-sqrt(6 / (fan_in + fan_out)) (Keras default).")


class HeNormal(_Strict):
    kind: Literal["he_normal"] = Field(
        description="Truncated normal with stddev sqrt(2 / fan_in) / 0.8796 (Keras he_normal).")


class Constant(_Strict):
    kind: Literal["constant"] = Field(description="Every bias set to `value`.")
    value: FiniteFloat = Field(0.05, description="The constant (the tutorial uses 0.05).")


class Zeros(_Strict):
    kind: Literal["zeros"] = Field(description="Every bias set to 0.")


WeightInit = Annotated[TruncatedNormal | Normal | GlorotUniform | HeNormal,
                       Field(discriminator="kind")]
BiasInit = Annotated[Constant | Zeros, Field(discriminator="kind")]


class Init(_Strict):
    """How weights are initialised, once, in NumPy, from the training seed."""

    # Defaults are plain data validated like given values, so they need no model of their own.
    weights: WeightInit = Field(default_factory=lambda: {"kind": "truncated_normal"},
                                validate_default=True, description="Conv and dense kernels.")
    biases: BiasInit = Field(default_factory=lambda: {"kind": "constant"},
                             validate_default=True, description="Conv and dense biases.")


class Adam(_Strict):
    kind: Literal["adam"] = Field(description="Adam, TensorFlow 1 update (epsilon-hat form).")
    learning_rate: FiniteFloat = Field(1e-4, gt=0, description="Step size.")
    beta1: FiniteFloat = Field(0.9, ge=0, lt=1, description="First-moment decay.")
    beta2: FiniteFloat = Field(0.999, ge=0, lt=1, description="Second-moment decay.")
    epsilon: FiniteFloat = Field(1e-8, gt=0, description="Added to sqrt(v) (TF1 default 1e-8).")


class SGD(_Strict):
    kind: Literal["sgd"] = Field(description="Plain gradient descent.")
    learning_rate: FiniteFloat = Field(0.01, gt=0, description="Step size.")


class Momentum(_Strict):
    kind: Literal["momentum"] = Field(
        description="Heavy-ball momentum: acc = m * acc + grad; w -= lr * acc.")
    learning_rate: FiniteFloat = Field(0.01, gt=0, description="Step size.")
    momentum: FiniteFloat = Field(0.9, ge=0, lt=1, description="Momentum coefficient.")
    nesterov: bool = Field(False, description="Use Nesterov momentum.")


Optimizer = Annotated[Adam | SGD | Momentum, Field(discriminator="kind")]


class Train(_Strict):
    """Training setup; every field can be overridden from the CLI."""

    dataset: Literal["mnist", "fashion-mnist"] = Field("mnist", description="Dataset name.")
    optimizer: Optimizer = Field(default_factory=lambda: {"kind": "adam"}, validate_default=True,
                                 description="Optimizer and its hyper-parameters.")
    batch_size: Size = Field(64, description="Training minibatch size.")
    iterations: Size | None = Field(None, description="Optimizer steps (tutorial: 10000).")
    epochs: Size | None = Field(None, description="Passes over the training set.")
    eval_batch_size: Size = Field(256, description="Batch size for evaluation.")
    validation_size: Count = Field(5000, description="Images carved from the training set.")
    seed: Seed = Field(0, description="Seed for initialisation, shuffling and dropout.")
    log_every: Size = Field(100, description="Print training accuracy every N iterations.")
    validate_every: Size = Field(1000, description="Validation accuracy every N iterations.")

    @model_validator(mode="after")
    def _one_budget(self) -> "Train":
        if self.iterations is not None and self.epochs is not None:
            raise ValueError("give either 'iterations' or 'epochs', not both")
        if self.iterations is None and self.epochs is None:
            self.iterations = 10_000
        return self


class Spec(_Strict):
    """A convolutional network and how to train it."""

    model_config = ConfigDict(defer_build=False)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Spec name (used for run dirs).")
    description: str = Field("", description="Free text.")
    input: Input = Field(description="Input image shape.")
    classes: Annotated[int, Field(gt=1, le=MAX_SIZE)] = Field(
        description="Number of classes: the last layer's output size.")
    layers: list[Layer] = Field(min_length=1, description="Layers, in order.")
    init: Init = Field(default_factory=dict, validate_default=True,
                       description="Weight initialisation.")
    train: Train = Field(default_factory=dict, validate_default=True,
                         description="Training setup.")

    def to_dict(self) -> dict[str, Any]:
        """Plain data that validates back into an equal spec (names resolved)."""
        return self.model_dump(mode="json", exclude_none=True)

    def architecture(self) -> dict[str, Any]:
        """The parts that determine the weights' names and shapes."""
        d = self.to_dict()
        return {"input": d["input"], "classes": d["classes"], "layers": d["layers"]}

    def architecture_hash(self) -> str:
        """Stable short hash of the architecture; stored with every weights file."""
        import json  # not at the top: the CLI's spec-only commands never need it

        blob = json.dumps(self.architecture(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def layer(self, name: str) -> Any:
        """The layer called ``name`` (names are resolved by the checks pass)."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)
