"""The tensorflow prototypes of ``tf_variants.py``: the backend's training step written
directly with one switch at a time (``RawStep``), and the tutorial's TF1 graph as a step.

Variants (``RawStep``: the backend's network and loss written directly, one switch at a time;
a name is ``raw-<padding>`` plus any of ``-fused``, ``-fusedexact``, ``-gather``, ``-relufirst``,
``-add``):

* ``backend``: ``convspec.compile(spec, "tensorflow").train_step(x, y)`` as it is today
  ('SAME' convolutions, bias added with ``+``, Adam through ``ResourceApplyAdam`` with
  compensated constants);
* ``backend-opsadam``: the same with Adam op by op (``Adam(fused=False)``);
* ``raw-explicit``: the backend's graph before issue 15 (explicit pads
  ``[[0,0],[2,2],[2,2],[0,0]]``, ``bias_add``, Adam as ops, lr_t in float64 from the step
  variable), called with tensors;
* ``raw-same``: ``padding="SAME"`` (the table's pads are TF's SAME pads here);
* ``raw-padvalid``: ``tf.pad`` with the table's pads, then a ``VALID`` convolution (what any
  pads, not only SAME's, could use);
* ``-fused``: ``ResourceApplyAdam`` with ``lr = lr_t`` (float64, rounded once) and beta powers
  0, so the kernel's own bias correction is the identity; it still computes ``1 - beta2`` in
  float32 (0.00099998713 for 0.999);
* ``-fusedexact``: the same kernel given ``lr_t * sqrt(k2) / k1`` and ``eps * sqrt(k2)``, with
  ``k1, k2`` = the kernel's float32 ``1 - beta`` over the spec's: the kernel's moments are then
  the spec's times ``k1``, ``k2`` (rescaled at the edge), and its update the spec's update;
* ``-gather``: the minibatch gathered inside the graph from the resident training set (the
  call passes 64 indices);
* ``-relufirst``: ReLU before the max-pool (the same numbers: max and ReLU commute), so that
  Grappler can fuse conv + bias + ReLU into one oneDNN kernel;
* ``-add``: the convolutions' bias added with ``+`` as the tutorial does (``AddV2``, whose
  gradient is a ``Sum``) instead of ``tf.nn.bias_add`` (whose gradient oneDNN fuses into the
  filter gradient, ``_MklNativeConv2DBackpropFilterWithBias``);
* ``tf1``: the tutorial's graph (``peer_tf1``) through ``Session.run``, in its own tf.Graph.
"""

from __future__ import annotations

import numpy as np
from peer_tf1 import TF1Graph
from protocol import Data
from variants_common import NAMES


class RawStep:
    """The spec's training step in one tf.function, as switched by ``name`` (see above)."""

    def __init__(self, data: Data, name: str,
                 adam: tuple[float, float, float, float] = (1e-4, 0.9, 0.999, 1e-8)):
        import tensorflow as tf

        self.lr, self.b1, self.b2, self.eps = adam
        flags = set(name.split("-")[2:])
        self.tf, self.data = tf, data
        self.adam = "fusedexact" if "fusedexact" in flags else "fused" if "fused" in flags \
            else "ops"
        self.gather, self.relu_first = "gather" in flags, "relufirst" in flags
        self.add_bias = "add" in flags
        pads = [[0, 0], [2, 2], [2, 2], [0, 0]]
        self.pad, self.pre_pad = {"same": ("SAME", None), "explicit": (pads, None),
                                  "padvalid": ("VALID", pads)}[name.split("-")[1]]
        f32 = np.float32
        self.k1 = float(f32(1) - f32(self.b1)) / (1 - self.b1)  # kernel's 1 - beta / spec's
        self.k2 = float(f32(1) - f32(self.b2)) / (1 - self.b2)
        self.vars = [tf.Variable(data.weights[n]) for n in NAMES]
        self.m = [tf.Variable(tf.zeros_like(v)) for v in self.vars]
        self.v = [tf.Variable(tf.zeros_like(v)) for v in self.vars]
        self.step = tf.Variable(0, dtype=tf.int64)
        if self.gather:
            self.images, self.labels = tf.constant(data.train_x), tf.constant(data.train_y)
            sig = [tf.TensorSpec([None], tf.int64)]
        else:
            sig = [tf.TensorSpec([None, 28, 28, 1], tf.float32), tf.TensorSpec([None], tf.int64)]
        self.fn = tf.function(self._step, input_signature=sig,
                              autograph=False).get_concrete_function()

    def _forward(self, x):
        tf, (k1, b1, k2, b2, w3, b3, w4, b4) = self.tf, self.vars
        for k, b in ((k1, b1), (k2, b2)):
            if self.pre_pad is not None:
                x = tf.pad(x, self.pre_pad)
            x = tf.nn.conv2d(x, k, [1, 1, 1, 1], self.pad)
            x = x + b if self.add_bias else tf.nn.bias_add(x, b)
            if self.relu_first:
                x = tf.nn.max_pool2d(tf.nn.relu(x), 2, 2, "SAME")
            else:
                x = tf.nn.relu(tf.nn.max_pool2d(x, 2, 2, "SAME"))
        x = tf.nn.relu(tf.nn.bias_add(tf.matmul(tf.reshape(x, [-1, 1764]), w3), b3))
        return tf.nn.bias_add(tf.matmul(x, w4), b4)

    def _step(self, *args):
        tf = self.tf
        if self.gather:
            x, y = tf.gather(self.images, args[0]), tf.gather(self.labels, args[0])
        else:
            x, y = args
        with tf.GradientTape() as tape:
            logits = self._forward(x)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        grads = tape.gradient(loss, self.vars)
        acc = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1), y), tf.float32))
        t = tf.cast(self.step + 1, tf.float64)
        lr64 = self.lr * tf.sqrt(1.0 - tf.pow(tf.constant(self.b2, tf.float64), t)) / (
            1.0 - tf.pow(tf.constant(self.b1, tf.float64), t))
        lr_t = tf.cast(lr64, tf.float32)
        exact = self.adam == "fusedexact"
        lr_kernel = tf.cast(lr64 * np.sqrt(self.k2) / self.k1, tf.float32) if exact else lr_t
        for var, m, v, g in zip(self.vars, self.m, self.v, grads):
            if self.adam != "ops":  # powers 0: the kernel's alpha is its lr argument
                tf.raw_ops.ResourceApplyAdam(
                    var=var.handle, m=m.handle, v=v.handle, beta1_power=0.0, beta2_power=0.0,
                    lr=lr_kernel, beta1=self.b1, beta2=self.b2,
                    epsilon=self.eps * np.sqrt(self.k2) if exact else self.eps, grad=g)
            else:  # the backend's ops (convspec/backends/tensorflow/optim.py)
                m_t = m.assign_add((g - m) * (1.0 - self.b1))
                v_t = v.assign_add((tf.square(g) - v) * (1.0 - self.b2))
                var.assign_sub(lr_t * m_t / (tf.sqrt(v_t) + self.eps))
        self.step.assign_add(1)
        return loss, acc

    def gradients(self, i: int) -> dict[str, np.ndarray]:
        """Gradients of the loss on batch ``i`` at the current weights (no update)."""
        tf, rows = self.tf, self.data.batches[i]
        x, y = tf.constant(self.data.train_x[rows]), tf.constant(self.data.train_y[rows])
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=y, logits=self._forward(x)))
        return {n: g.numpy() for n, g in zip(NAMES, tape.gradient(loss, self.vars))}

    def __call__(self, i: int) -> None:
        tf, rows = self.tf, self.data.batches[i]
        if self.gather:
            self.fn(tf.constant(rows))
        else:
            self.fn(tf.constant(self.data.train_x[rows]), tf.constant(self.data.train_y[rows]))

    def weights(self) -> dict[str, np.ndarray]:
        return {n: v.numpy() for n, v in zip(NAMES, self.vars)}

    def slots(self) -> dict[str, np.ndarray]:
        """The spec's moments (``-fusedexact`` keeps them times k1, k2)."""
        k1, k2 = (self.k1, self.k2) if self.adam == "fusedexact" else (1.0, 1.0)
        return {f"{s}/{n}": (var.numpy() / k).astype(np.float32)
                for s, vs, k in (("m", self.m, k1), ("v", self.v, k2))
                for n, var in zip(NAMES, vs)}


class TF1:
    def __init__(self, data: Data):
        self.g, self.data = TF1Graph(data, own_graph=True), data

    def __call__(self, i: int) -> None:
        rows, g = self.data.batches[i], self.g
        g.session.run(g.optimizer, {g.x: g.x_flat[rows], g.y_true: g.y_onehot[rows]})

    def weights(self) -> dict[str, np.ndarray]:
        with self.g.graph.as_default():
            import tensorflow as tf

            values = self.g.session.run(tf.compat.v1.trainable_variables())
        return dict(zip(NAMES, values))
