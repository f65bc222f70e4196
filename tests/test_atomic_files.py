"""convspec.atomic_files: whole files or none, one-line errors naming the file on a full or
read-only disk, and the temporary files of killed writers removed the next time."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mounts import fill, full_disk, read_only

from convspec.atomic_files import (
    append_text,
    atomic_write,
    atomic_write_text,
    check_writable,
    remove_stale_temporaries,
)
from convspec.errors import FileSystemError


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two" and os.listdir(tmp_path) == ["a.txt"]


def test_a_failed_write_keeps_the_old_file_and_names_it(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.safetensors"
    atomic_write_text(path, "old")

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device", src)

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(FileSystemError) as caught:
        atomic_write_text(path, "new")
    assert str(caught.value) == (f"cannot write {path}: No space left on device (ENOSPC); "
                                 "free some space, or write somewhere else")
    assert path.read_text() == "old" and os.listdir(tmp_path) == [path.name]


def test_a_full_disk_is_one_line_and_the_old_file_survives(tmp_path):
    with full_disk(tmp_path / "disk") as disk:
        path = disk / "metrics.jsonl"
        atomic_write_text(path, "kept\n")
        with pytest.raises(FileSystemError, match=r"cannot write .*metrics\.jsonl: No space "
                                                  r"left on device \(ENOSPC\)"):
            atomic_write_text(path, "x" * 200_000)
        assert path.read_text() == "kept\n"
        assert sorted(os.listdir(disk)) == ["metrics.jsonl"]
        fill(disk)
        with pytest.raises(FileSystemError, match="ENOSPC"):
            append_text(path, "y" * 10_000 + "\n")


def test_a_read_only_folder_is_one_line(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "spec.yaml").write_text("kept")
    with read_only(folder):
        with pytest.raises(FileSystemError, match=r"cannot write .*spec\.yaml: Read-only file "
                                                  r"system \(EROFS\); the file system is "
                                                  r"read-only"):
            atomic_write_text(folder / "spec.yaml", "new")
        with pytest.raises(FileSystemError, match="EROFS"):
            append_text(folder / "spec.yaml", "more")
        with pytest.raises(FileSystemError, match=r"cannot create .*ro/run: Read-only file "
                                                  r"system \(EROFS\)"):
            check_writable(folder, folder / "run", "cannot create")
    assert (folder / "spec.yaml").read_text() == "kept"


def test_a_missing_parent_and_a_file_in_the_way_are_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(FileSystemError, match=r"cannot write .*file/x\.txt: .*"):
        atomic_write_text(tmp_path / "file" / "x.txt", "a")
    with pytest.raises(FileSystemError, match=r"Not a directory"):
        check_writable(tmp_path / "file", tmp_path / "file" / "x")
    with pytest.raises(FileSystemError, match=r"No such file or directory \(ENOENT\)"):
        append_text(tmp_path / "missing" / "metrics.jsonl", "x\n")


def test_temporaries_of_killed_writers_are_removed_and_live_ones_kept(tmp_path):
    dead, alive = _dead_pid(), os.getpid()
    stale = tmp_path / f".checkpoint.safetensors.{dead}.k3j_x9aq.tmp"
    stale.write_bytes(b"\0" * 1000)  # as big as the checkpoint being written
    stale_dir = tmp_path / f".savedmodel.{dead}.export.tmp"
    stale_dir.mkdir()
    (stale_dir / "saved_model.pb").write_bytes(b"x")
    live = tmp_path / f".weights.safetensors.{alive}.abcdefgh.tmp"
    live.write_bytes(b"x")
    legacy = [tmp_path / ".checkpoint.safetensors.ab12cd34.tmp",
              tmp_path / ".weights.safetensors.tmp"]
    for path in legacy:
        path.write_bytes(b"x")
    mine = tmp_path / ".notes.tmp"  # not a convspec name
    mine.write_text("keep")
    assert sorted(remove_stale_temporaries(tmp_path)) == sorted([stale, stale_dir])
    assert live.exists() and all(p.exists() for p in legacy) and mine.exists()
    removed = remove_stale_temporaries(tmp_path, legacy=("checkpoint.safetensors",
                                                         "weights.safetensors"))
    assert sorted(removed) == sorted(legacy)
    assert live.exists() and mine.exists()
    assert remove_stale_temporaries(tmp_path / "missing") == []


def test_a_write_killed_midway_leaves_a_temporary_that_the_next_open_removes(tmp_path):
    """``kill -9`` while a checkpoint is written: the destination is untouched, and the
    temporary file is gone after the next ``remove_stale_temporaries``."""
    path = tmp_path / "checkpoint.safetensors"
    path.write_text("old")
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from convspec.atomic_files import atomic_write\n"
        "def write(tmp):\n"
        "    Path(tmp).write_bytes(b'\\0' * 100_000)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "atomic_write(Path(sys.argv[1]), write)\n")
    proc = subprocess.run([sys.executable, "-c", script, str(path)],
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert proc.returncode == -9
    left = [p for p in tmp_path.iterdir() if p.name != path.name]
    assert len(left) == 1 and left[0].stat().st_size == 100_000
    assert path.read_text() == "old"
    assert remove_stale_temporaries(tmp_path) == left
    assert os.listdir(tmp_path) == [path.name]


def test_atomic_write_passes_other_errors_through(tmp_path):
    def broken(tmp):
        raise ValueError("not an OS error")

    with pytest.raises(ValueError):
        atomic_write(tmp_path / "x", broken)
    assert os.listdir(tmp_path) == []
