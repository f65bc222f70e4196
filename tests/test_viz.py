"""Tests for convspec.viz: every plot saves a real, non-blank PNG with the expected layout."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from matplotlib.figure import Figure

from convspec import viz
from convspec.errors import ConvspecError

RNG = np.random.default_rng(0)


def digits(n: int, side: int = 28) -> np.ndarray:
    """Digit-like images: a bright blob on a dark background, so pixels vary."""
    yy, xx = np.mgrid[:side, :side]
    centres = RNG.uniform(side * 0.3, side * 0.7, size=(n, 2))
    d2 = (yy - centres[:, 0, None, None]) ** 2 + (xx - centres[:, 1, None, None]) ** 2
    return np.exp(-d2 / (2 * (side / 6) ** 2)).astype(np.float32)


def image_axes(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.get_visible() and ax.images]


def check_png(fig: Figure, path: Path, n_images: int | None = None) -> None:
    """The PNG exists at figsize*dpi pixels, is not blank, and has ``n_images`` image axes."""
    assert path.is_file()
    png = mpimg.imread(path)
    width, height = fig.get_size_inches() * viz.DPI
    assert png.shape[:2] == (round(height), round(width))
    assert png[..., :3].var() > 1e-3
    if n_images is not None:
        assert len(image_axes(fig)) == n_images


# --------------------------------------------------------------------------- image grids


@pytest.mark.parametrize("n", [9, 4, 12])
def test_plot_images_grid(tmp_path: Path, n: int) -> None:
    path = tmp_path / "deep" / "dir" / f"images{n}.png"  # parent dirs are created
    fig = viz.plot_images(digits(n), np.arange(n) % 10, (np.arange(n) + 1) % 10, path=path)
    check_png(fig, path, n)
    cols = int(np.ceil(np.sqrt(n)))
    assert len(fig.axes) == cols * int(np.ceil(n / cols))
    assert image_axes(fig)[0].get_xlabel() == "True: 0, Pred: 1"
    assert not image_axes(fig)[0].get_xticks().size


def test_plot_images_layouts_and_labels(tmp_path: Path) -> None:
    flat = digits(3).reshape(3, -1)
    fig = viz.plot_images(flat, [1, 2, 3], ncols=3, path=tmp_path / "flat.png")
    check_png(fig, tmp_path / "flat.png", 3)
    assert [ax.get_xlabel() for ax in image_axes(fig)] == ["True: 1", "True: 2", "True: 3"]

    names = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt"]
    fig = viz.plot_images(digits(2)[..., None], [6, 1], [4, 1], class_names=names)
    assert image_axes(fig)[0].get_xlabel() == "True: Shirt, Pred: Coat"


def test_plot_images_rgb_in_colour(tmp_path: Path) -> None:
    rgb = RNG.uniform(-1, 1, size=(4, 8, 8, 3))  # out of [0, 1]: rescaled, not clipped
    fig = viz.plot_images(rgb, [0, 1, 2, 3], path=tmp_path / "rgb.png")
    check_png(fig, tmp_path / "rgb.png", 4)
    shown = image_axes(fig)[0].images[0].get_array()
    assert shown.shape == (8, 8, 3) and 0 <= shown.min() and shown.max() <= 1


def test_plot_images_errors() -> None:
    with pytest.raises(ConvspecError, match="3 labels but there are 2 images"):
        viz.plot_images(digits(2), [1, 2, 3])
    with pytest.raises(ConvspecError, match="not a square number"):
        viz.plot_images(np.zeros((2, 10)), [1, 2])
    with pytest.raises(ConvspecError, match="empty"):
        viz.plot_images(np.zeros((0, 4, 4)), [])
    with pytest.raises(ConvspecError, match="class_names has 2 entries"):
        viz.plot_images(digits(1), [5], class_names=["a", "b"])


def test_plot_example_errors(tmp_path: Path) -> None:
    true = np.arange(20) % 10
    pred = true.copy()
    pred[[2, 5, 7, 11, 13, 17]] = 0
    fig = viz.plot_example_errors(digits(20), true, pred, max_images=4, path=tmp_path / "e.png")
    check_png(fig, tmp_path / "e.png", 4)
    labels = [ax.get_xlabel() for ax in image_axes(fig)]
    assert labels == [
        "True: 2, Pred: 0",
        "True: 5, Pred: 0",
        "True: 7, Pred: 0",
        "True: 1, Pred: 0",
    ]
    assert "4 of 6" in fig.get_suptitle()


def test_plot_example_errors_without_errors(tmp_path: Path) -> None:
    labels = np.arange(5)
    fig = viz.plot_example_errors(digits(5), labels, labels, path=tmp_path / "none.png")
    check_png(fig, tmp_path / "none.png", 0)
    assert any("No misclassified images" in t.get_text() for t in fig.texts)


def test_plot_image(tmp_path: Path) -> None:
    fig = viz.plot_image(digits(1)[0].ravel(), title="Label: 7", path=tmp_path / "one.png")
    check_png(fig, tmp_path / "one.png", 1)
    with pytest.raises(ConvspecError, match="one image"):
        viz.plot_image(np.zeros((2, 3, 4, 1)))


# --------------------------------------------------------------------------- confusion matrix


@pytest.mark.parametrize("normalize", [False, True])
def test_plot_confusion_matrix(tmp_path: Path, normalize: bool) -> None:
    cm = np.array([[50, 2, 0], [3, 40, 7], [0, 0, 0]])
    path = tmp_path / "cm.png"
    fig = viz.plot_confusion_matrix(cm, class_names=["a", "b", "c"], normalize=normalize, path=path)
    check_png(fig, path, 1)  # the colorbar axes holds no AxesImage
    ax = image_axes(fig)[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Predicted", "True")
    texts = {t.get_text(): t.get_color() for t in ax.texts}
    assert len(ax.texts) == 9
    if normalize:
        assert "0.96" in texts  # 50 / 52, row-normalised
    else:
        assert texts["50"] == "white" and texts["2"] == "black"  # contrast on dark/light cells


def test_plot_confusion_matrix_rejects_non_square() -> None:
    with pytest.raises(ConvspecError, match="square"):
        viz.plot_confusion_matrix(np.zeros((2, 3)))


# --------------------------------------------------------------------------- network internals


def conv_weights() -> dict[str, np.ndarray]:
    return {
        "conv1/kernel": RNG.normal(size=(5, 5, 1, 16)).astype(np.float32),
        "conv1/bias": np.zeros(16, np.float32),
        "conv2/kernel": RNG.normal(size=(5, 5, 16, 10)).astype(np.float32),
        "fc1/kernel": RNG.normal(size=(64, 10)).astype(np.float32),
    }


def test_plot_conv_weights_shared_scale(tmp_path: Path) -> None:
    weights = conv_weights()
    fig = viz.plot_conv_weights(weights, "conv2", input_channel=3, path=tmp_path / "w.png")
    check_png(fig, tmp_path / "w.png", 10)
    kernel = weights["conv2/kernel"]
    clims = {ax.images[0].get_clim() for ax in image_axes(fig)}
    limit = float(np.abs(kernel).max())  # of every input channel: figures compare
    assert clims == {(-limit, limit)}  # symmetric: white (the colormap's middle) is zero
    assert all(ax.images[0].get_cmap().name == "seismic" for ax in image_axes(fig))
    np.testing.assert_array_equal(image_axes(fig)[4].images[0].get_array(), kernel[:, :, 3, 4])
    assert len(fig.axes) == 16 + 1  # 4x4 grid plus the colorbar
    assert fig.axes[-1].get_ylabel() == "weight"
    assert fig.get_suptitle() == "conv2: 10 filters, input channel 3 of 16"
    small = {"c/kernel": np.full((3, 3, 2, 4), -0.01, np.float32)}  # all negative: all blue
    small["c/kernel"][0, 0, 1, 0] = 0.001
    fig = viz.plot_conv_weights(small, "c", input_channel=1)
    limit = float(np.float32(0.01))
    assert {ax.images[0].get_clim() for ax in image_axes(fig)} == {(-limit, limit)}


def test_plot_conv_weights_errors() -> None:
    weights = conv_weights()
    with pytest.raises(ConvspecError, match="Conv layers in these weights: conv1, conv2"):
        viz.plot_conv_weights(weights, "fc1")
    with pytest.raises(ConvspecError, match="'conv9' has no kernel"):
        viz.plot_conv_weights(weights, "conv9")
    with pytest.raises(ConvspecError, match="1 input channel"):
        viz.plot_conv_weights(weights, "conv1", input_channel=1)


class FakeModel:
    """Duck-typed stand-in for a compiled model: only ``activations`` is needed."""

    def __init__(self) -> None:
        self.seen: np.ndarray | None = None

    def activations(self, x: np.ndarray) -> dict[str, np.ndarray]:
        self.seen = x
        conv1 = np.concatenate([x * k for k in range(1, 9)], axis=-1)
        return {"conv1": conv1, "pool1": conv1[:, ::2, ::2], "fc1": np.ones((len(x), 32))}


def test_plot_conv_layer(tmp_path: Path) -> None:
    model = FakeModel()
    image = (digits(1)[0] * 255).astype(np.uint8)
    fig = viz.plot_conv_layer(model, "conv1", image, path=tmp_path / "layer.png")
    check_png(fig, tmp_path / "layer.png", 8 + 1)  # the channels and the input beside them
    assert model.seen.shape == (1, 28, 28, 1) and model.seen.dtype == np.float32
    assert model.seen.max() <= 1.0  # uint8 pixels scaled to [0, 1]
    assert fig.get_suptitle() == "conv1: 8 channels of 28x28"
    axes = image_axes(fig)
    assert axes[0].get_title() == "input"
    np.testing.assert_allclose(axes[0].images[0].get_array(), model.seen[0, :, :, 0])
    assert all(ax.images[0].get_cmap().name == "binary" for ax in axes)
    fig = viz.plot_conv_layer(model, "pool1", image, name="conv1 \u2192 pool1",
                              note="test image 3, true class: Sneaker", show_input=False)
    assert len(image_axes(fig)) == 8
    assert fig.get_suptitle() == ("conv1 \u2192 pool1: 8 channels of 14x14\n"
                                  "test image 3, true class: Sneaker")


def test_plot_layer_output_takes_arrays(tmp_path: Path) -> None:
    output = RNG.random((7, 7, 36)).astype(np.float32)
    fig = viz.plot_layer_output(output, layer="relu2", image=digits(1)[0],
                                path=tmp_path / "relu2.png")
    check_png(fig, tmp_path / "relu2.png", 36 + 1)
    assert fig.get_suptitle() == "relu2: 36 channels of 7x7"
    with pytest.raises(ConvspecError, match=r"\(H, W, C\); got shape \(7, 7\)"):
        viz.plot_layer_output(output[..., 0], layer="x")


def test_block_outputs_are_the_tutorials_post_pool_and_relu_layers() -> None:
    from conftest import SPECS

    from convspec.specification import load_spec, loads_spec

    mnist = load_spec(SPECS / "mnist.yaml")
    assert viz.block_outputs(mnist) == {"conv1": "relu1", "conv2": "relu2"}
    shapes = {row.name: row.output for row in mnist.table.rows}
    assert (shapes["relu1"], shapes["relu2"]) == ((14, 14, 16), (7, 7, 36))
    branched = loads_spec("""
name: b
input: {height: 8, width: 8, channels: 1}
classes: 2
layers:
  - {kind: conv2d, name: c1, filters: 2, kernel: 3, padding: same}
  - {kind: relu, name: r1}
  - {kind: add, name: sum, inputs: [r1, c1]}
  - {kind: conv2d, name: c2, filters: 2, kernel: 3}
  - {kind: flatten}
  - {kind: dense, units: 2}
""")
    # c1 feeds two layers: its own output is what it makes; c2 is followed by a flatten
    assert viz.block_outputs(branched) == {"c1": "c1", "c2": "c2"}


def test_plot_conv_layer_errors() -> None:
    with pytest.raises(ConvspecError, match="Spatial layers of this model: conv1, pool1"):
        viz.plot_conv_layer(FakeModel(), "fc1", digits(1)[0])
    with pytest.raises(ConvspecError, match="'nope' is unknown"):
        viz.plot_conv_layer(FakeModel(), "nope", digits(1)[0])
    with pytest.raises(ConvspecError, match="no activations"):
        viz.plot_conv_layer(object(), "conv1", digits(1)[0])


# --------------------------------------------------------------------------- training curves


def write_run(run_dir: Path, n: int = 20) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps(
            {
                "iteration": i * 100,
                "loss": 2.3 * np.exp(-i / 5),
                "train_accuracy": 1 - 0.9 * np.exp(-i / 4),
                "val_accuracy": (1 - 0.9 * np.exp(-i / 4)) if i % 5 == 0 else None,
                "elapsed": i * 1.5,
            }
        )
        for i in range(n)
    ]
    path = run_dir / "metrics.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_plot_training_curves(tmp_path: Path) -> None:
    metrics = write_run(tmp_path / "run")
    fig = viz.plot_training_curves(tmp_path / "run", path=tmp_path / "curves.png")
    check_png(fig, tmp_path / "curves.png", 0)
    loss_ax, acc_ax = fig.axes
    assert len(loss_ax.lines) == 1 and len(acc_ax.lines) == 2  # these records: no val_loss
    train, val = acc_ax.lines
    assert train.get_ydata()[-1] > 90  # shown as percent
    assert len(val.get_xdata()) == 4  # null val_accuracy entries skipped
    assert [t.get_text() for t in acc_ax.get_legend().get_texts()] == ["training", "validation"]
    assert len(viz.plot_training_curves(str(metrics)).axes) == 2


def test_plot_training_curves_show_validation_loss_and_a_changing_rate() -> None:
    records = [{"iteration": i, "loss": 2.0 / (i + 1), "train_accuracy": 0.5,
                "val_loss": 1.5 / (i + 1) if i % 2 else None, "val_accuracy": None,
                "lr": 0.1 * 0.5 ** (i // 3)} for i in range(1, 9)]
    loss_ax, acc_ax, lr_ax = viz.plot_training_curves(records).axes
    train, val = loss_ax.lines
    np.testing.assert_allclose(val.get_xdata(), [1, 3, 5, 7])
    np.testing.assert_allclose(val.get_ydata(), [0.75, 0.375, 0.25, 1.5 / 8])
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == ["training",
                                                                        "validation"]
    assert lr_ax.get_ylabel() == "Learning rate" and len(acc_ax.lines) == 1
    constant = [{**r, "lr": 0.1} for r in records]  # no third panel for a constant rate
    assert len(viz.plot_training_curves(constant).axes) == 2


def test_plot_training_curves_from_records_without_validation() -> None:
    records = [{"iteration": i, "loss": 1.0 / (i + 1), "train_accuracy": 0.5} for i in range(3)]
    _, acc_ax = viz.plot_training_curves(records).axes
    assert len(acc_ax.lines) == 1


def test_plot_training_curves_errors(tmp_path: Path) -> None:
    with pytest.raises(ConvspecError, match="metrics.jsonl"):
        viz.plot_training_curves(tmp_path / "missing")
    empty = tmp_path / "empty" / "metrics.jsonl"
    empty.parent.mkdir()
    empty.write_text("\n")
    with pytest.raises(ConvspecError, match="no training records"):
        viz.plot_training_curves(empty)
    bad = write_run(tmp_path / "bad", n=3)
    bad.write_text(bad.read_text() + '{"iteration": 3, "loss"\n')
    with pytest.raises(ConvspecError, match=r"metrics\.jsonl:4: not a JSON record"):
        viz.plot_training_curves(tmp_path / "bad")
    with pytest.raises(ConvspecError, match="record 2 has no 'loss'"):
        viz.plot_training_curves(
            [
                {"iteration": 0, "loss": 1, "train_accuracy": 0.1},
                {"iteration": 1, "train_accuracy": 0.2},
            ]
        )


def test_no_pyplot_figures_leak(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    viz.plot_images(digits(2), [0, 1], path=tmp_path / "x.png")
    assert plt.get_fignums() == before
