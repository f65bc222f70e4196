"""How a training run stops before its end: Ctrl-C at a step boundary, or a diverged loss."""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import ConvspecError


class TrainingDiverged(ConvspecError):
    """The loss became NaN or infinite."""


def check_finite(loss: float, iteration: int, last_good: int | None,
                 run_dir: Path | None) -> None:
    """``TrainingDiverged`` when ``loss`` is NaN or infinite, saying which checkpoint (the
    last good one, of ``last_good``, in ``run_dir``) is kept."""
    if math.isfinite(loss):
        return
    if run_dir is not None and last_good is not None:
        kept = f"the last good checkpoint (iteration {last_good}) is kept in {run_dir}"
    else:
        kept = "no checkpoint was written yet"
    raise TrainingDiverged(
        f"the loss became {loss} at iteration {iteration}; training stopped and {kept}. Try "
        f"a smaller learning rate (--lr) or check the input data.")


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
