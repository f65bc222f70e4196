"""The tutorial's own TensorFlow 1 code, ported to ``tf.compat.v1`` and nothing else changed.

As the tutorial writes it (``/work/shared/seed``): flat 784-float placeholders reshaped to
images, one-hot float labels, ``new_conv_layer`` = ``tf.nn.conv2d(padding='SAME')`` +
biases, 2x2 SAME ``max_pool``, ReLU; ``flatten_layer``; ``new_fc_layer`` = ``matmul +
biases`` (+ ReLU); ``softmax_cross_entropy_with_logits_v2``; ``AdamOptimizer(1e-4)
.minimize(cost)``; ``session.run(optimizer, feed_dict)`` per step; the test set through
``session.run(y_pred_cls)`` in batches of 256. Two harness changes: the variables start from
the shared initial weights (the tutorial draws ``tf.truncated_normal(stddev=0.05)`` and 0.05
biases, the same distribution) and the batches are the shared index rows, gathered from the
in-memory arrays in the tutorial's formats (flat images, one-hot labels).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from protocol import EVAL_BATCH, Data


class TF1Graph:
    """``own_graph``: build in a ``tf.Graph`` of its own instead of switching eager execution
    off for the process (to run next to TF2 code in one process; the same graph)."""

    def __init__(self, data: Data, own_graph: bool = False):
        import tensorflow as tf

        v1 = tf.compat.v1
        if own_graph:
            self.graph = tf.Graph()
            with self.graph.as_default():
                self._build(tf, data)
        else:
            v1.disable_eager_execution()
            self._build(tf, data)

    def _build(self, tf, data: Data) -> None:
        v1 = tf.compat.v1
        w = data.weights
        self.data = data
        self.x_flat = data.train_x.reshape(len(data.train_x), -1)
        self.y_onehot = np.eye(10, dtype=np.float32)[data.train_y]
        self.test_flat = data.test_x.reshape(len(data.test_x), -1)

        def new_conv_layer(inp, name):
            weights, biases = tf.Variable(w[f"{name}/kernel"]), tf.Variable(w[f"{name}/bias"])
            layer = tf.nn.conv2d(input=inp, filters=weights, strides=[1, 1, 1, 1],
                                 padding="SAME")
            layer += biases
            layer = tf.nn.max_pool2d(input=layer, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1],
                                     padding="SAME")
            return tf.nn.relu(layer)

        def new_fc_layer(inp, name, use_relu):
            weights, biases = tf.Variable(w[f"{name}/kernel"]), tf.Variable(w[f"{name}/bias"])
            layer = tf.matmul(inp, weights) + biases
            return tf.nn.relu(layer) if use_relu else layer

        self.x = v1.placeholder(tf.float32, shape=[None, 784], name="x")
        x_image = tf.reshape(self.x, [-1, 28, 28, 1])
        self.y_true = v1.placeholder(tf.float32, shape=[None, 10], name="y_true")
        layer = new_conv_layer(new_conv_layer(x_image, "conv1"), "conv2")
        num_features = layer.get_shape()[1:4].num_elements()
        layer_flat = tf.reshape(layer, [-1, num_features])
        layer_fc1 = new_fc_layer(layer_flat, "fc1", use_relu=True)
        layer_fc2 = new_fc_layer(layer_fc1, "fc2", use_relu=False)
        self.y_pred_cls = tf.argmax(tf.nn.softmax(layer_fc2), axis=1)
        cross_entropy = tf.nn.softmax_cross_entropy_with_logits(logits=layer_fc2,
                                                                labels=self.y_true)
        cost = tf.reduce_mean(cross_entropy)
        self.optimizer = v1.train.AdamOptimizer(learning_rate=1e-4).minimize(cost)
        self.session = v1.Session()
        self.session.run(v1.global_variables_initializer())

    def train(self, steps: int, on_step_end: Callable[[int], None]) -> None:
        for i in range(steps):
            idx = self.data.batches[i]
            feed_dict_train = {self.x: self.x_flat[idx], self.y_true: self.y_onehot[idx]}
            self.session.run(self.optimizer, feed_dict=feed_dict_train)
            on_step_end(i)

    def evaluate(self) -> float:
        n = len(self.test_flat)
        cls_pred = np.zeros(n, dtype=np.int64)
        for i in range(0, n, EVAL_BATCH):
            j = min(i + EVAL_BATCH, n)
            cls_pred[i:j] = self.session.run(self.y_pred_cls,
                                             feed_dict={self.x: self.test_flat[i:j]})
        return float(np.mean(cls_pred == self.data.test_y))


build = TF1Graph
