"""TensorFlow's start-up lines, kept out of convspec's commands unless the user asks for them.

Importing TensorFlow (2.16 and later) writes absl log records straight to file descriptor 2
before absl's logging is initialised, where ``TF_CPP_MIN_LOG_LEVEL`` does not reach them:
"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR" and
"I0000 ... port.cc:153] oneDNN custom operations are on ...", twice (two of TensorFlow's
libraries log), plus the CPU-instructions note. ``install()`` (called by the ``convspec``
program, not by the library) makes the one import of TensorFlow run with descriptor 2 in a
temporary file, then replays what was written there minus the absl records below the log
level: ``TF_CPP_MIN_LOG_LEVEL`` as the user set it (``0`` shows everything), else ``2``
(errors only), which is then also set for TensorFlow's later messages.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

# patterns, compiled (and cached by re) only when TensorFlow is imported
_RECORD = r"^([IWEF])\d{4} \d+:\d+:\d+\.\d+\s+\d+ \S+:\d+\] "
_PREAMBLE = ("WARNING: All log messages before absl::InitializeLog() is called are written to "
             "STDERR")
_PYTHON_WARNING = r"^\S.*:\d+: \w*Warning: "
_SEVERITIES = "IWEF"  # TF_CPP_MIN_LOG_LEVEL 1 hides I, 2 also W, 3 also E


def filter_startup(text: str, level: int) -> str:
    """The lines of ``text`` that a user at ``TF_CPP_MIN_LOG_LEVEL=level`` should see: absl
    records below that severity are dropped with their continuation lines, and absl's preamble
    unless a record after it is kept; every other line is kept."""
    kept: list[str] = []
    preamble = dropping = False
    for line in text.splitlines(keepends=True):
        if line.rstrip("\r\n") == _PREAMBLE:
            preamble, dropping = True, False
            continue
        record = re.match(_RECORD, line)
        if record:
            dropping = _SEVERITIES.index(record.group(1)) < level
            if dropping:
                continue
            if preamble:
                kept.append(_PREAMBLE + "\n")
                preamble = False
        elif dropping and not re.match(_PYTHON_WARNING, line):
            continue  # the rest of a dropped multi-line record
        else:
            dropping = False
        kept.append(line)
    return "".join(kept)


@contextlib.contextmanager
def _descriptor_2_filtered(level: int) -> Iterator[None]:
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = filter_startup(captured.read().decode("utf-8", "replace"), level)
            if text:
                os.write(2, text.encode("utf-8"))


# Plain classes, not importlib.abc subclasses: importing importlib.abc (and tempfile) costs every
# command ~15 ms at start-up, and the import system needs only these methods.
class _FilteredLoader:
    """TensorFlow's own loader, its ``exec_module`` run with descriptor 2 filtered; the
    finder leaves ``sys.meta_path`` once TensorFlow is imported."""

    def __init__(self, loader: Any, finder: _TensorFlowFinder):
        self.loader, self.finder = loader, finder

    def create_module(self, spec: Any) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self.finder)
        with _descriptor_2_filtered(self.finder.level):
            self.loader.exec_module(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)


class _TensorFlowFinder:
    """Finds ``tensorflow`` through the other finders and wraps its loader (a look-up such
    as ``importlib.util.find_spec`` imports nothing, so the finder stays until an import)."""

    def __init__(self, level: int):
        self.level = level
        self.finding = False

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != "tensorflow" or self.finding:
            return None
        import importlib.util

        self.finding = True
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self.finding = False
        if spec is not None and spec.loader is not None:
            spec.loader = _FilteredLoader(spec.loader, self)
        return spec


def install(env: dict[str, str] | None = None) -> None:
    """Filter TensorFlow's start-up lines when this process imports it (no-op once it is
    imported). ``env`` (default ``os.environ``) is read for the user's level, and given
    ``TF_CPP_MIN_LOG_LEVEL=2`` when it has none."""
    env = os.environ if env is None else env  # type: ignore[assignment]
    if "tensorflow" in sys.modules:
        return
    chosen = env.get("TF_CPP_MIN_LOG_LEVEL", "")
    level = int(chosen) if chosen.strip().isdigit() else 2
    if not chosen:
        env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if not any(isinstance(f, _TensorFlowFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _TensorFlowFinder(level))
