"""The Python API in about 20 lines: load a spec, compile, train, evaluate, plot.

    python examples/python_api.py [torch|tensorflow] [iterations]
"""

import sys
from pathlib import Path

import convspec
from convspec import viz

backend = sys.argv[1] if len(sys.argv) > 1 else "torch"
iterations = int(sys.argv[2]) if len(sys.argv) > 2 else 1000

spec = convspec.load_spec(Path(__file__).resolve().parents[1] / "specs" / "mnist.yaml")
print(f"{convspec.infer_shapes(spec).params:,} parameters")
data = convspec.load_dataset(spec.train.dataset, log=print)  # offline: the MNIST sample
model = convspec.compile(spec, backend=backend)
convspec.Trainer(spec, model, data).fit(until=iterations)
result = convspec.evaluate(model, data.test)  # in batches of train.eval_batch_size
print(result.summary())
convspec.save_weights("mnist.safetensors", model.get_weights(), spec)  # any backend loads it
viz.plot_confusion_matrix(result.confusion, path="confusion.png")
viz.plot_conv_weights(model.get_weights(), "conv1", path="conv1_filters.png")
