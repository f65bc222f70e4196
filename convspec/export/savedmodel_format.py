"""TensorFlow SavedModel export: the TensorFlow backend's network behind a serving signature.

The SavedModel's ``serving_default`` signature takes ``images`` (a [None, H, W, C] float32
tensor, NHWC) and returns ``{"logits": (N, classes)}`` in evaluation mode; the same function
is the loaded object's ``serve`` attribute. The spec's name, architecture hash and convspec
version are in ``assets.extra/convspec.json`` (TensorFlow Serving's place for extra files).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..specification import Spec
from .torchscript_format import metadata

SIGNATURE = "serving_default"


def write(spec: Spec, weights: Mapping[str, np.ndarray], path: Path,
          extra: Mapping[str, str] | None = None) -> None:
    from ..backends.tensorflow import quiet_tensorflow

    quiet_tensorflow()
    import tensorflow as tf

    from ..backends.tensorflow.network import Network

    class Serving(tf.Module):
        def __init__(self, net: Network):
            super().__init__(name="convspec")
            self.net = net
            images = tf.TensorSpec([None, *net.table.input], tf.float32, name="images")
            self.serve = tf.function(self._serve, input_signature=[images], autograph=False)

        def _serve(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"logits": tf.identity(self.net(images).logits,
                                          name="logits")}

    with tf.device("/CPU:0"):
        net = Network(spec)
        for name, variable in net.weights.items():
            variable.assign(np.asarray(weights[name], dtype=np.float32))
        serving = Serving(net)
        tf.saved_model.save(serving, str(path), signatures={SIGNATURE: serving.serve})
    folder = path / "assets.extra"
    folder.mkdir(exist_ok=True)
    meta = {**metadata(spec), **(extra or {})}
    (folder / "convspec.json").write_text(json.dumps(meta, sort_keys=True) + "\n",
                                          encoding="utf-8")


def run(path: Path, images: np.ndarray) -> np.ndarray:
    from ..backends.tensorflow import quiet_tensorflow

    quiet_tensorflow()
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    return loaded.signatures[SIGNATURE](images=tf.constant(images))["logits"].numpy()
