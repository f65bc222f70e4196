"""convspec.train.tensorboard_log: event files read back with TensorBoard's own reader
(EventAccumulator), a resumed run reading as one, and no framework imported to write them."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import LINEAR, ROOT, tiny_dataset
from test_train import NumpyLinear

from convspec.evaluation import evaluate
from convspec.run_directory import RunDirectory
from convspec.specification import loads_spec
from convspec.train import Interrupted, TensorBoard, Trainer

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
SCALARS = {"train/loss": "loss", "train/accuracy": "train_accuracy",
           "train/learning_rate": "lr", "val/loss": "val_loss", "val/accuracy": "val_accuracy"}


def _read(folder) -> event_accumulator.EventAccumulator:
    events = event_accumulator.EventAccumulator(str(folder), size_guidance={"images": 0})
    events.Reload()
    return events


def _scalars(events) -> dict[str, list[tuple[int, float]]]:
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]}


def test_every_metrics_record_is_a_tensorboard_scalar(tmp_path):
    spec = loads_spec(LINEAR)
    model, data = NumpyLinear(spec), tiny_dataset()
    trainer = Trainer(spec, model, data, run_dir=tmp_path, callbacks=[TensorBoard()],
                      log=lambda m: None)
    trainer.fit()
    test = evaluate(model, data.test)
    trainer.callbacks.call("on_test_end", trainer, test)
    events = _read(tmp_path)
    scalars = _scalars(events)
    records = RunDirectory(tmp_path).read_metrics()
    assert set(scalars) == set(SCALARS) | {"test/loss", "test/accuracy"}
    for tag, column in SCALARS.items():
        expected = [(r["iteration"], r[column]) for r in records if r[column] is not None]
        assert [step for step, _ in scalars[tag]] == [step for step, _ in expected], tag
        assert [v for _, v in scalars[tag]] == pytest.approx([v for _, v in expected],
                                                             rel=1e-6), tag  # float32
    assert scalars["test/accuracy"] == [(12, pytest.approx(test.accuracy))]
    image = events.Images("test/confusion_matrix")
    assert len(image) == 1 and image[0].step == 12
    assert image[0].width > 100 and image[0].height > 100
    assert image[0].encoded_image_string.startswith(b"\x89PNG")


def test_the_filters_are_images_at_the_end(tmp_path):
    """Each conv layer's filter figures, the tutorial's input channels (conv2: 0 and 1)."""
    from types import SimpleNamespace

    import numpy as np
    from conftest import SPECS

    from convspec.evaluation import Evaluation
    from convspec.specification import load_spec
    from convspec.weights import init_weights

    spec = load_spec(SPECS / "mnist.yaml")
    weights = init_weights(spec)
    trainer = SimpleNamespace(iteration=7, spec=spec, data=tiny_dataset(), resumed_from=None,
                              model=SimpleNamespace(get_weights=lambda: weights))
    board = TensorBoard(tmp_path)
    board.on_train_begin(trainer)
    labels = np.arange(10)
    board.on_test_end(trainer, Evaluation(labels, labels, np.eye(10, dtype=np.float32), 10))
    events = _read(tmp_path)
    assert sorted(events.Tags()["images"]) == ["filters/conv1_in0", "filters/conv2_in0",
                                               "filters/conv2_in1", "test/confusion_matrix"]
    assert all(events.Images(tag)[0].step == 7 for tag in events.Tags()["images"])


def test_a_resumed_run_reads_as_one_run(tmp_path):
    spec = loads_spec(LINEAR.replace("iterations: 12", "iterations: 20"))
    data = tiny_dataset()
    Trainer(spec, NumpyLinear(spec), data, run_dir=tmp_path / "full", callbacks=[TensorBoard()],
            log=lambda m: None).fit()
    # Ctrl-C during step 11: the checkpoint holds iteration 11, in the middle of a window
    with pytest.raises(Interrupted):
        Trainer(spec, NumpyLinear(spec, interrupt_at=11), data, run_dir=tmp_path / "resumed",
                callbacks=[TensorBoard()], checkpoint_every=4, log=lambda m: None).fit()
    trainer = Trainer(spec, NumpyLinear(spec), data, run_dir=tmp_path / "resumed",
                      callbacks=[TensorBoard()], checkpoint_every=4, log=lambda m: None)
    trainer.resume()
    trainer.fit()
    assert len(list((tmp_path / "resumed").glob("events.out.tfevents.*"))) == 2
    assert _scalars(_read(tmp_path / "resumed")) == _scalars(_read(tmp_path / "full"))


def test_events_after_the_checkpoint_are_dropped_when_resuming(tmp_path):
    """A crash leaves records past the checkpoint in the first event file; the resumed run's
    session start makes TensorBoard drop them."""
    from convspec.train.tensorboard_log import EventFile

    first = EventFile(tmp_path)
    for step in (1, 4, 7):
        first.scalars({"train/loss": float(step)}, step)
    second = EventFile(tmp_path)
    second.session_start(5)  # resumed from the checkpoint of iteration 4
    second.scalars({"train/loss": 70.0}, 7)
    assert _scalars(_read(tmp_path))["train/loss"] == [(1, 1.0), (4, 4.0), (7, 70.0)]


def test_tensorboard_needs_a_folder():
    spec = loads_spec(LINEAR)
    trainer = Trainer(spec, NumpyLinear(spec), tiny_dataset(), callbacks=[TensorBoard()],
                      log=lambda m: None)
    with pytest.raises(Exception, match="TensorBoard needs a folder"):
        trainer.fit()


def test_writing_event_files_imports_no_framework(tmp_path):
    code = (
        "import sys\n"
        "from convspec.train.tensorboard_log import EventFile\n"
        f"f = EventFile({str(tmp_path)!r})\n"
        "f.scalars({'train/loss': 1.0}, 1)\n"
        "f.image('x', open(sys.argv[1], 'rb').read(), 1)\n"
        "print(sorted(m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules))\n")
    png = tmp_path / "x.png"
    from convspec.viz import plot_confusion_matrix

    plot_confusion_matrix([[1, 0], [0, 1]], path=png)
    result = subprocess.run([sys.executable, "-c", code, str(png)], capture_output=True,
                            text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
