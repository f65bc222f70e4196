"""TensorBoard event files in the run directory, as a Trainer callback.

Written with TensorBoard's own record format and protocol buffers (``tensorboard``'s
``RecordWriter`` and ``Event`` / ``Summary`` messages), into plain files: TensorBoard's
``EventFileWriter`` would do the same through ``tf.io.gfile`` and so import TensorFlow whenever
it is installed, and tensorboardX imports PyTorch; this writer imports neither framework.
Each write is appended and flushed at once, so a run stopped at any point leaves a readable
file. ``tensorboard --logdir runs`` lists every run directory as a run.

Scalars (step = iteration): ``train/loss`` and ``train/accuracy`` (means over the steps since
the previous log line), ``train/learning_rate``, ``val/loss``, ``val/accuracy``; after the test
evaluation ``test/loss``, ``test/accuracy`` and the image ``test/confusion_matrix``. A resumed
run first writes a session start at the step after its checkpoint, so TensorBoard drops what
the interrupted run logged past it (its "orphaned data" purge) and the curves read as one run.
"""

from __future__ import annotations

import itertools
import os
import socket
import struct
import time
from collections.abc import Mapping
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConvspecError
from .callbacks import Callback

if TYPE_CHECKING:
    from ..evaluation import Evaluation
    from .trainer import Trainer

_files = itertools.count()  # two writers of one process never share a file name


class EventFile:
    """One ``events.out.tfevents.<time>.<host>.<pid>.<n>`` file in ``logdir`` (created if
    needed), starting with the ``brain.Event:2`` version record that TensorBoard expects."""

    def __init__(self, logdir: str | os.PathLike[str]):
        from tensorboard.compat.proto import event_pb2

        self._event = event_pb2.Event
        folder = Path(logdir)
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / (f"events.out.tfevents.{int(time.time()):010d}."
                              f"{socket.gethostname()}.{os.getpid()}.{next(_files)}")
        self.write([self._event(wall_time=time.time(), file_version="brain.Event:2")])

    def write(self, events: list[Any]) -> None:
        """Append ``Event`` messages (TFRecord framing with masked CRC-32C) and flush."""
        from tensorboard.summary.writer.record_writer import RecordWriter

        with open(self.path, "ab") as f:
            writer = RecordWriter(f)
            for event in events:
                writer.write(event.SerializeToString())

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        """One event holding a scalar per tag (stored as float32, as TensorBoard does)."""
        from tensorboard.compat.proto import summary_pb2

        summary = summary_pb2.Summary(value=[
            summary_pb2.Summary.Value(tag=tag, simple_value=float(value))
            for tag, value in values.items()])
        self.write([self._event(wall_time=time.time(), step=step, summary=summary)])

    def image(self, tag: str, png: bytes, step: int) -> None:
        """A PNG image (its size read from the PNG header)."""
        from tensorboard.compat.proto import summary_pb2

        width, height = struct.unpack(">II", png[16:24])
        image = summary_pb2.Summary.Image(height=height, width=width, colorspace=4,
                                          encoded_image_string=png)
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, image=image)])
        self.write([self._event(wall_time=time.time(), step=step, summary=summary)])

    def session_start(self, step: int) -> None:
        """A session start at ``step``: TensorBoard discards events of earlier files with a
        step at or after it."""
        from tensorboard.compat.proto import event_pb2

        log = event_pb2.SessionLog(status=event_pb2.SessionLog.START)
        self.write([self._event(wall_time=time.time(), step=step, session_log=log)])


class TensorBoard(Callback):
    """Logs the run's metrics records and test results to TensorBoard event files in
    ``logdir`` (default: the trainer's run directory; ``ConvspecError`` when it has none).
    Needs the ``tensorboard`` package (a convspec dependency), not TensorFlow."""

    def __init__(self, logdir: str | os.PathLike[str] | None = None):
        self.logdir = logdir
        self.file: EventFile | None = None

    def on_train_begin(self, trainer: Trainer) -> None:
        if self.file is not None:
            return
        logdir = self.logdir or trainer.run_dir
        if logdir is None:
            raise ConvspecError("TensorBoard needs a folder: TensorBoard(logdir=...) or a "
                                "Trainer with run_dir=...")
        self.file = EventFile(logdir)
        if trainer.resumed_from is not None:
            self.file.session_start(trainer.resumed_from + 1)

    def on_metrics(self, trainer: Trainer, record: Mapping[str, Any]) -> None:
        assert self.file is not None
        values = {"train/loss": record["loss"], "train/accuracy": record["train_accuracy"],
                  "train/learning_rate": record["lr"]}
        if record.get("val_loss") is not None:
            values |= {"val/loss": record["val_loss"], "val/accuracy": record["val_accuracy"]}
        self.file.scalars(values, record["iteration"])

    def on_test_end(self, trainer: Trainer, evaluation: Evaluation) -> None:
        """The test loss and accuracy, the confusion matrix and the tutorial's filter figures
        (``filters/<layer>_in<channel>``) as images."""
        from ..viz import plot_confusion_matrix, plot_conv_weights
        from ..viz.filters import tutorial_input_channels
        from ..viz.run_figures import conv_layers

        if self.file is None:
            return
        step = trainer.iteration
        self.file.scalars({"test/loss": evaluation.loss, "test/accuracy": evaluation.accuracy},
                          step)
        figures = {"test/confusion_matrix": plot_confusion_matrix(
            evaluation.confusion, class_names=trainer.data.class_names)}
        weights = trainer.model.get_weights()
        for layer in conv_layers(trainer.spec):
            for channel in tutorial_input_channels(weights, layer):
                figures[f"filters/{layer}_in{channel}"] = plot_conv_weights(
                    weights, layer, input_channel=channel)
        for tag, figure in figures.items():
            png = BytesIO()
            figure.savefig(png, format="png")
            self.file.image(tag, png.getvalue(), step)
