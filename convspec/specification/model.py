"""The top-level spec: input, layers, initialisation and training setup.

Defaults and semantics are the TensorFlow 1 tutorial's (Adam with epsilon 1e-8 added to
sqrt(v) *after* the bias-corrected step size, truncated normal resampled beyond two standard
deviations), so a spec means the same run whichever backend trains it.
"""

import functools
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails

from ..graph import graph_problems
from ..layers import LAYER_CLASSES
from .blocks import Block, BlockCall, Origin, definition_problems
from .checks import Problem, resolve_names, run_checks
from .data_source import DatasetField, NormalizeField
from .expansion import expand
from .training import BestCheckpoint, EarlyStopping, Schedule, ValidationInterval
from .types import MAX_SIZE, Count, FiniteFloat, Seed, Size

if TYPE_CHECKING:
    from ..shapes import ShapeTable


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


def _weight_decay() -> Any:
    return Field(0.0, ge=0, description=(
        "Decoupled weight decay (Loshchilov & Hutter; PyTorch AdamW, Keras 3's weight_decay): "
        "before each update every trainable weight w *= 1 - lr(t) * weight_decay, lr(t) the "
        "step's scheduled rate (as both frameworks scale it); with adam this is AdamW. Not the "
        "gradient: see train.l2 for a penalty in the loss. 0: none."))


class Adam(_Strict):
    kind: Literal["adam"] = Field(description="Adam, TensorFlow 1 update (epsilon-hat form); "
                                              "with weight_decay, AdamW.")
    learning_rate: FiniteFloat = Field(1e-4, gt=0, description="Step size.")
    beta1: FiniteFloat = Field(0.9, ge=0, lt=1, description="First-moment decay.")
    beta2: FiniteFloat = Field(0.999, ge=0, lt=1, description="Second-moment decay.")
    epsilon: FiniteFloat = Field(1e-8, gt=0, description="Added to sqrt(v) (TF1 default 1e-8).")
    weight_decay: FiniteFloat = _weight_decay()


class SGD(_Strict):
    kind: Literal["sgd"] = Field(description="Plain gradient descent.")
    learning_rate: FiniteFloat = Field(0.01, gt=0, description="Step size.")
    weight_decay: FiniteFloat = _weight_decay()


class Momentum(_Strict):
    kind: Literal["momentum"] = Field(
        description="Heavy-ball momentum: acc = m * acc + grad; w -= lr * acc.")
    learning_rate: FiniteFloat = Field(0.01, gt=0, description="Step size.")
    momentum: FiniteFloat = Field(0.9, ge=0, lt=1, description="Momentum coefficient.")
    nesterov: bool = Field(False, description="Use Nesterov momentum.")
    weight_decay: FiniteFloat = _weight_decay()


Optimizer = Annotated[Adam | SGD | Momentum, Field(discriminator="kind")]


class Train(_Strict):
    """Training setup; every field can be overridden from the CLI."""

    dataset: DatasetField = Field("mnist", description="A built-in dataset name, or a mapping "
                                  "with kind folder, csv, npz or idx (your own data).")
    normalize: NormalizeField = Field(None, description="After scaling to [0, 1]: null, "
                                      "{kind: per_channel} or {kind: mean_std, mean, std}.")
    optimizer: Optimizer = Field(default_factory=lambda: {"kind": "adam"}, validate_default=True,
                                 description="Optimizer and its hyper-parameters.")
    batch_size: Size = Field(64, description="Training minibatch size.")
    iterations: Size | None = Field(None, description="Optimizer steps (tutorial: 10000).")
    epochs: Size | None = Field(None, description="Passes over the training set.")
    eval_batch_size: Size = Field(256, description="Batch size for evaluation.")
    validation_size: Count = Field(5000, description="Images carved from the training set.")
    seed: Seed = Field(0, description="Seed for initialisation, shuffling and dropout.")
    log_every: Size = Field(100, description="Print training accuracy every N iterations.")
    validate_every: ValidationInterval = Field(
        "epoch", description="Validation loss and accuracy every N iterations, or 'epoch' (every "
        "ceil(training images / batch_size) iterations); also at the last iteration.")
    schedule: Schedule = Field(default_factory=lambda: {"kind": "constant"},
                               validate_default=True,
                               description="Learning-rate schedule (of optimizer.learning_rate).")
    early_stopping: EarlyStopping | None = Field(
        None, description="Stop when a validation metric stops improving (absent: never).")
    best: BestCheckpoint = Field(default_factory=dict, validate_default=True,
                                 description="Which validation result best.safetensors keeps.")
    l2: FiniteFloat = Field(0.0, ge=0, description=(
        "L2 regularisation: l2 * sum(w ** 2) over every kernel (conv2d, depthwise_conv2d and "
        "dense kernels; not biases or batch norm: Keras kernel_regularizer=L2(l2), no 1/2) "
        "is added to the training objective, i.e. 2 * l2 * w to each kernel's gradient. The "
        "logged losses stay the cross-entropy alone. 0: none."))
    clip_norm: FiniteFloat | None = Field(None, gt=0, description=(
        "Gradient clipping by global norm (tf.clip_by_global_norm, "
        "torch.nn.utils.clip_grad_norm_): every gradient (after the L2 term; under fp16 after "
        "unscaling) is multiplied by clip_norm / max(norm, clip_norm), norm the L2 norm of all "
        "trainable gradients together. null: no clipping."))

    @model_validator(mode="after")
    def _one_budget(self) -> "Train":
        if self.iterations is not None and self.epochs is not None:
            raise ValueError("give either 'iterations' or 'epochs', not both")
        if self.iterations is None and self.epochs is None:
            self.iterations = 10_000
        return self


LayerEntry = Annotated[Union[(*LAYER_CLASSES, BlockCall)], Field(discriminator="kind")]  # noqa: UP007
"""One entry of a spec's ``layers`` as written: a layer, or an instance of a block."""


def _refuse(problems: Iterable[Problem]) -> None:
    """Raise the problems (if any) as one ValidationError, each at its location."""
    unique = list({(loc, message): (loc, message, value)
                   for loc, message, value in problems}.values())
    if unique:
        raise ValidationError.from_exception_data("Spec", [
            InitErrorDetails(type="value_error", loc=loc, input=value, ctx={"error": message})
            for loc, message, value in unique])


class Spec(_Strict):
    """A convolutional network and how to train it."""

    model_config = ConfigDict(defer_build=False)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Spec name (used for run dirs).")
    description: str = Field("", description="Free text.")
    input: Input = Field(description="Input image shape.")
    classes: Annotated[int, Field(gt=1, le=MAX_SIZE)] = Field(
        description="Number of classes: the last layer's output size.")
    layers: list[LayerEntry] = Field(
        min_length=1, description="Layers, in order (each after the layers it takes); "
        "{kind: block, block: NAME, ...} instantiates a block.")
    blocks: dict[str, Block] = Field(
        default_factory=dict, description="Reusable groups of layers with parameters, by "
        "name; a spec's layers instantiate them (expanded while the spec is validated).")
    init: Init = Field(default_factory=dict, validate_default=True,
                       description="Weight initialisation.")
    train: Train = Field(default_factory=dict, validate_default=True,
                         description="Training setup.")

    @model_validator(mode="after")
    def _complete(self) -> "Spec":
        """Block instances expanded into plain layers (expansion.py); cross-field checks
        (checks.py); automatic names for unnamed layers; the graph's rules (convspec.graph).
        Every problem is located where it was written, so every Spec, however it was built,
        is complete and named."""
        problems = list(definition_problems(self.blocks))
        expansion = expand(self.layers, self.blocks, {loc[1] for loc, _, _ in problems})
        _refuse([*problems, *expansion.problems])
        self.layers = expansion.layers
        self.__dict__["origins"] = expansion.origins  # like a computed cached_property
        _refuse(self._located(run_checks(self)))
        resolve_names(self.layers)
        _refuse(self._located(graph_problems(self.layers)))
        return self

    @functools.cached_property
    def origins(self) -> list[Origin]:
        """Where each layer was written: ``('layers', i)``, or a block's layer and the
        instance it was expanded for. Error locations use it."""
        return [Origin(("layers", i)) for i in range(len(self.layers))]

    def _located(self, problems: Iterable[Problem]) -> list[Problem]:
        out = []
        for loc, message, value in problems:
            if len(loc) > 1 and loc[0] == "layers" and isinstance(loc[1], int):
                loc, message = self.origins[loc[1]].locate(loc, message)
            out.append((loc, message, value))
        return out

    @functools.cached_property
    def table(self) -> "ShapeTable":
        """The shape table (convspec.shapes), computed once per spec: a ShapeError (with the
        rows up to the failing layer) when a layer cannot apply. Layers are not meant to be
        edited after validation; ``override`` makes a new spec instead."""
        from ..shapes import compute_table

        return compute_table(self)

    def model_copy(self, *, update: Mapping[str, Any] | None = None,
                   deep: bool = False) -> "Spec":
        """pydantic's copy; with ``update``, the copy's shape table is computed afresh."""
        copy = super().model_copy(update=update, deep=deep)
        if update:
            copy.__dict__.pop("table", None)
            copy.__dict__.pop("origins", None)
        return copy

    def override(self, changes: Mapping[str, Any], *, source: str = "command line") -> "Spec":
        """A new validated spec (shapes included) with ``changes`` applied.

        Keys are paths into the spec: ``train.iterations``, ``train.optimizer.learning_rate``,
        ``layers[0].filters``, ``input.height``; setting ``train.iterations`` drops
        ``train.epochs`` and vice versa. Problems raise a SpecError whose items name the path,
        with ``source`` as the place, and the messages a spec file gets.
        """
        from .overrides import override

        return override(self, changes, source=source)

    def to_dict(self) -> dict[str, Any]:
        """Plain data that validates back into an equal spec (names resolved, blocks
        expanded; the block definitions are kept unless there are none)."""
        data = self.model_dump(mode="json", exclude_none=True)
        if not data["blocks"]:
            del data["blocks"]
        return data

    def architecture(self) -> dict[str, Any]:
        """What the network is, canonically (``convspec.architecture.fingerprint``): weights
        of two specs with equal architectures fit each other."""
        from ..architecture import fingerprint

        return fingerprint(self)

    def architecture_hash(self) -> str:
        """Stable short hash of ``architecture()``; stored with weights and exports."""
        from ..architecture import fingerprint_hash

        return fingerprint_hash(self.architecture())

    def layer(self, name: str) -> Any:
        """The layer called ``name``."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)
