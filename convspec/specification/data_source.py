"""What ``train.dataset`` and ``train.normalize`` may say: a built-in dataset or your own data.

``train.dataset`` is a built-in name (``mnist``, ``fashion-mnist``; ``convspec.data.catalog``)
or a mapping with a ``kind``:

* ``folder`` - one sub-folder per class (torchvision ``ImageFolder`` / Keras
  ``image_dataset_from_directory``: class names sorted, label = position), optionally split
  into ``train/``, ``val/`` (or ``validation/``) and ``test/`` trees;
* ``csv``    - rows of ``path,label`` (paths relative to the CSV) or the Kaggle
  digit-recognizer layout (``label,pixel0,pixel1,...``);
* ``npz``    - NumPy arrays in the ``keras.datasets`` layout (``x_train``, ``y_train``,
  ``x_test``, ``y_test``, optionally ``x_val`` / ``y_val``), NHWC or NHW, uint8 or float;
* ``idx``    - a folder with the four IDX files of any MNIST-like set (EMNIST, KMNIST ...).

Relative paths are relative to the spec file's folder (``--data PATH``: the current folder).
This module is the spec language only: pydantic and no NumPy, so ``convspec validate`` and
``schema`` stay light. Reading the data is ``convspec.data``'s job.
"""

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ..data.catalog import DatasetName
from .types import Count, FiniteFloat

SOURCE_KINDS = ("folder", "csv", "npz", "idx")
# Pillow's resampling filters, by the names Keras and torchvision users know them.
RESIZE_METHODS = ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming")
BACKGROUND_PATTERN = r"^(black|white|#[0-9A-Fa-f]{6})$"


def _colour(value: str) -> str:
    import re

    if not re.match(BACKGROUND_PATTERN, value):
        raise ValueError(f"must be black, white or #rrggbb (hex), got {value!r}")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)


_Fraction = Annotated[FiniteFloat, Field(ge=0, lt=1)]


class _Source(_Strict):
    """What every source has: where it is, its class names, and how it is split."""

    kind: str = Field(description="The kind of source (each subclass names its own).")
    path: str = Field(min_length=1, description=(
        "Where the data is; relative paths are relative to the spec file's folder."))
    classes: list[str] | None = Field(None, min_length=1, description=(
        "Class names in label order. Folders: the sub-folder names in the order wanted (default "
        "sorted). Integer labels: the name of each label (default '0', '1', ...). Name labels "
        "(CSV): the order of the names (default sorted)."))
    validation_split: _Fraction = Field(0.1, description=(
        "Fraction of the training images held out for validation, stratified by class, when "
        "the source has no validation set of its own."))
    test_split: _Fraction = Field(0.1, description=(
        "Fraction of the training images held out for testing, stratified by class, when the "
        "source has no test set of its own."))
    split_seed: Count = Field(0, description=(
        "Seed of the stratified split (independent of train.seed, so the test set stays the "
        "same across training seeds)."))

    @model_validator(mode="after")
    def _fractions(self) -> "_Source":
        if self.validation_split + self.test_split >= 1:
            raise ValueError(f"validation_split + test_split must be below 1, got "
                             f"{self.validation_split} + {self.test_split}")
        return self


class _ImageFiles(_Source):
    """Options of sources made of image files (decoded by convspec.data.decoder)."""

    resize: Literal[RESIZE_METHODS] | None = Field(None, description=(  # type: ignore[valid-type]
        "Resize images whose size differs from the spec's input with this filter (the aspect "
        "ratio is not kept). Without it, such an image is an error naming the file."))
    background: Annotated[str, AfterValidator(_colour)] = Field("black", description=(
        "Colour that transparent pixels are composited over: black, white or #rrggbb. An "
        "image whose picture is only in its alpha channel (a browser canvas) is read as ink "
        "of the opposite colour."))
    on_error: Literal["error", "skip"] = Field("error", description=(
        "A corrupt or unreadable image: 'error' stops with its name; 'skip' leaves it out "
        "and counts it."))
    test_path: str | None = Field(None, description=(
        "A test set of the same kind (relative to the spec's folder)."))
    validation_path: str | None = Field(None, description=(
        "A validation set of the same kind (relative to the spec's folder)."))


class FolderSource(_ImageFiles):
    """A class-folder tree of images (PNG, JPEG, BMP, GIF, WebP, TIFF)."""

    kind: Literal["folder"] = Field(description=(
        "One sub-folder per class; or train/, val/ (or validation/) and test/ trees of them."))


class CsvSource(_ImageFiles):
    """A CSV of image paths and labels, or of labels and pixel values."""

    kind: Literal["csv"] = Field(description="A CSV file with a header row.")
    layout: Literal["auto", "paths", "pixels"] = Field("auto", description=(
        "'paths': an image path column and a label column; 'pixels': a label column and one "
        "column per pixel value 0-255 in H, W, C order (Kaggle digit-recognizer); 'auto': "
        "pixels when the header has pixel0, else paths."))
    path_column: str | None = Field(None, description=(
        "The column of image paths (default: path, filename, file, image or filepath)."))
    label_column: str | None = Field(None, description=(
        "The column of labels (default: label, class, target or y)."))


class NpzSource(_Source):
    """NumPy arrays in one .npz file, keras.datasets layout."""

    kind: Literal["npz"] = Field(description=(
        "x_train, y_train, x_test, y_test (and optionally x_val, y_val, class_names); images "
        "NHWC or NHW, uint8 (0-255) or float (0-1)."))


class IdxSource(_Source):
    """A folder with the four IDX files of an MNIST-like dataset."""

    kind: Literal["idx"] = Field(description=(
        "*train-images-idx3-ubyte, *train-labels-idx1-ubyte, *t10k- (or *test-) images and "
        "labels, gzipped or not."))
    prefix: str = Field("", description=(
        "Only files whose names start with this, e.g. 'emnist-letters-' in an EMNIST folder."))
    transpose: bool = Field(False, description=(
        "Swap each image's height and width (EMNIST stores its images transposed)."))


DataSource = FolderSource | CsvSource | NpzSource | IdxSource


def _tag(value: Any) -> str | None:
    if isinstance(value, str):
        return "name"
    if isinstance(value, dict):
        return value.get("kind")
    return getattr(value, "kind", None)


def _known_source(value: Any) -> Any:
    """A located sentence for a wrong name or kind, instead of one error per union member."""
    from ..data.catalog import DATASET_NAMES
    from .messages import suggest

    kinds = ", ".join(SOURCE_KINDS)
    if isinstance(value, str):
        if value in DATASET_NAMES:
            return value
        allowed = ", ".join(repr(n) for n in DATASET_NAMES)
        raise PydanticCustomError("value_error", "{error}", {"error": (
            f"must be one of {allowed}, got {value!r}{suggest(value, DATASET_NAMES) or '.'} "
            f"Your own data is a mapping with kind: {kinds}")})
    if isinstance(value, dict):
        kind = value.get("kind")
        if kind is None:
            raise PydanticCustomError("value_error", "{error}", {"error": (
                f"missing 'kind'; choose one of: {kinds}")})
        if kind not in SOURCE_KINDS:
            raise PydanticCustomError("value_error", "{error}", {"error": (
                f"unknown kind {kind!r}{suggest(str(kind), SOURCE_KINDS) or '.'} "
                f"Allowed: {kinds}")})
        return value
    if isinstance(value, BaseModel):
        return value
    raise PydanticCustomError("value_error", "{error}", {"error": (
        f"must be a built-in dataset name ({', '.join(DATASET_NAMES)}) or a mapping with "
        f"kind: {kinds}, got {value!r}")})


DatasetField = Annotated[
    Annotated[DatasetName, Tag("name")]
    | Annotated[FolderSource, Tag("folder")] | Annotated[CsvSource, Tag("csv")]
    | Annotated[NpzSource, Tag("npz")] | Annotated[IdxSource, Tag("idx")],
    Discriminator(_tag), BeforeValidator(_known_source)]
"""The type of ``train.dataset``."""


class PerChannel(_Strict):
    """Mean and standard deviation computed per channel on the training split."""

    kind: Literal["per_channel"] = Field(description=(
        "Mean and std of each channel over the training split, after scaling to [0, 1]; "
        "computed once and recorded in the run directory."))


class MeanStd(_Strict):
    """Given per-channel statistics, applied after scaling to [0, 1]."""

    kind: Literal["mean_std"] = Field(description="Given per-channel mean and std.")
    mean: list[FiniteFloat] = Field(min_length=1, description="Per-channel mean.")
    std: list[Annotated[FiniteFloat, Field(gt=0)]] = Field(
        min_length=1, description="Per-channel standard deviation.")

    @model_validator(mode="after")
    def _same_length(self) -> "MeanStd":
        if len(self.mean) != len(self.std):
            raise ValueError(f"mean has {len(self.mean)} values and std {len(self.std)}; give "
                             "one of each per input channel")
        return self


NormalizeField = Annotated[PerChannel | MeanStd, Field(discriminator="kind")] | None
"""The type of ``train.normalize``: None (scale to [0, 1] only), ``{kind: per_channel}`` (mean
and std computed on the training split) or ``{kind: mean_std, mean: [...], std: [...]}``."""
