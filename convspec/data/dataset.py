"""What a loaded dataset is: three splits of NHWC float32 images and int64 labels."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DataError
from .preprocess import ImageArray, Preprocessing

if TYPE_CHECKING:
    from ..specification import Spec


@dataclass(frozen=True, eq=False)
class Split:
    """One split: (N, H, W, C) float32 images and (N,) int64 labels.

    ``images`` is an array, or an ``ImageArray`` that converts stored uint8 images (possibly
    memory-mapped) to float32 when indexed; both index the same way.
    """

    images: np.ndarray | ImageArray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True, eq=False)
class Dataset:
    """A dataset ready for training, plus where it came from (so reports can say so)."""

    name: str
    train: Split
    validation: Split
    test: Split
    class_names: tuple[str, ...]
    source: str
    is_sample: bool
    # pixels -> network input, as recorded in a run (see convspec.data.preprocess)
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    # how the data was read and split (content keys, split, skipped files), for the run record
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, ...]:
        """(H, W, C) of every image."""
        return tuple(self.train.images.shape[1:])

    def check_fits(self, spec: Spec) -> None:
        """Raise ``DataError`` unless ``spec``'s network takes these images and labels: its
        ``input`` must be the images' (H, W, C) and its ``classes`` must cover every label."""
        want = (spec.input.height, spec.input.width, spec.input.channels)
        if self.image_shape != want:
            raise DataError(
                f"spec {spec.name!r} takes {_hwc(want)} images (input: height {want[0]}, width "
                f"{want[1]}, channels {want[2]}), but {self.name} has {_hwc(self.image_shape)} "
                f"images ({self.source}); change the spec's input or train.dataset")
        if spec.classes < self.num_classes:
            raise DataError(
                f"spec {spec.name!r} has {spec.classes} classes, but {self.name} has "
                f"{self.num_classes} ({', '.join(self.class_names)}); set classes: "
                f"{self.num_classes} or choose another train.dataset")


def _hwc(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def to_split(images: np.ndarray, labels: np.ndarray) -> Split:
    """uint8 (N, H, W) images to float32 / 255 with a channel axis, in one fresh contiguous
    array; labels to int64."""
    out = np.empty((*images.shape, 1), np.float32)
    np.divide(images[..., None], np.float32(255), out=out)
    return Split(out, labels.astype(np.int64))
