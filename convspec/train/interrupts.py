"""How a training run stops before its end: Ctrl-C at a step boundary, or a diverged loss."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from typing import Any

from ..errors import ConvspecError


class TrainingDiverged(ConvspecError):
    """The loss became NaN or infinite."""


class Interrupted(ConvspecError):
    """Ctrl-C during training; a checkpoint was saved."""

    exit_code = 130


@contextlib.contextmanager
def stop_at_step_boundary() -> Any:
    """The first Ctrl-C sets a flag checked between steps (so a checkpoint never holds a
    half-applied update); a second one interrupts at once. Signals within a second of the
    first count as the same press: under torchrun a worker gets the terminal's SIGINT and
    the one torchrun forwards."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    first: list[float] = []

    def handler(signum: int, frame: Any) -> None:
        if flag.is_set():
            if time.monotonic() - first[0] > 1.0:
                raise KeyboardInterrupt
            return
        first.append(time.monotonic())
        flag.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
