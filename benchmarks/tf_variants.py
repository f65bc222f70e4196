"""Where the tensorflow backend's training step spends its time, and what each candidate
speed-up gives, against the tutorial's TF1 graph, in one process on the same batches.

    python benchmarks/tf_variants.py time --rounds 7 --steps 50   # ms per step, interleaved
    python benchmarks/tf_variants.py numerics --steps 50          # weights after 50 steps
    python benchmarks/tf_variants.py reference                    # 3 steps vs float64 Adam
    python benchmarks/tf_variants.py kernels                      # executed kernels, ms per op
    python benchmarks/tf_variants.py boundary                     # the NumPy call boundary

Variants (``RawStep``: the backend's network and loss written directly, one switch at a time;
a name is ``raw-<padding>`` plus any of ``-fused``, ``-fusedexact``, ``-gather``, ``-relufirst``,
``-add``):

* ``backend``: ``convspec.compile(spec, "tensorflow").train_step(x, y)`` as it is today;
* ``raw-explicit``: the same graph (explicit pads ``[[0,0],[2,2],[2,2],[0,0]]``, Adam as
  ops, lr_t in float64 from the step variable), called with tensors;
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

Both frameworks use every CPU this process may use (``--threads`` to change), whatever the
load, so that variants compare under the same thread pools.
"""

from __future__ import annotations

import argparse
import collections
import glob
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from peer_tf1 import TF1Graph  # noqa: E402
from protocol import SPEC, Data  # noqa: E402
from variants_common import (  # noqa: E402
    NAMES,
    Backend,
    load_data,
    print_rounds,
    rel_errors,
    timed_rounds,
)

import convspec  # noqa: E402
from convspec.threads import affinity_cpus, request_threads  # noqa: E402


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


def variants(data: Data, which: list[str]) -> dict[str, object]:
    def make(name: str) -> object:
        if name == "backend":
            return Backend(data)
        if name == "tf1":
            return TF1(data)
        return RawStep(data, name)

    return {name: make(name) for name in which}


def time_variants(args: argparse.Namespace) -> None:
    data = load_data(args.steps)
    samples = timed_rounds(variants(data, args.variants), args.steps, args.rounds)
    print_rounds(samples, "tf1", args.disturbed)


def numerics(args: argparse.Namespace) -> None:
    data = load_data(args.steps, random=args.random)
    torch_ref = Backend(data, "torch")
    runs = {"torch backend": torch_ref, **variants(data, args.variants)}
    for run in runs.values():
        for i in range(args.steps):
            run(i)
    ref_w, ref_s = torch_ref.weights(), torch_ref.slots()
    tf_w = runs["backend"].weights() if "backend" in runs else None
    print(f"{'random' if args.random else 'Fashion-MNIST'} data, after {args.steps} steps; "
          f"tolerances (tests/test_cross_backend.py): weights 1e-4, "
          "optimizer slots 1e-3\n| variant | weights vs torch backend | slots vs torch "
          "backend | weights vs tensorflow backend |\n|---|---|---|---|")
    for name, run in runs.items():
        slots = f"{rel_errors(ref_s, run.slots()):.1e}" if hasattr(run, "slots") else "-"
        vs_tf = f"{rel_errors(tf_w, run.weights()):.1e}" if tf_w is not None else "-"
        print(f"| {name} | {rel_errors(ref_w, run.weights()):.1e} | {slots} | {vs_tf} |")


def reference(args: argparse.Namespace) -> None:
    """3 steps against the documented Adam in float64 NumPy on each step's own gradients,
    with tests/test_parity.py's tolerance (rtol 1e-5, atol 1e-5 max|want|): the fraction of
    it used (<= 1 passes), for the spec's Adam and the parity test's (lr 0.01, b1 0.8, b2 0.9,
    eps 1e-3)."""
    data = load_data(3, random=True)
    print("| variant | Adam | weights: tolerance used | m | v |\n|---|---|---|---|---|")
    for adam in ((1e-4, 0.9, 0.999, 1e-8), (0.01, 0.8, 0.9, 1e-3)):
        for name in args.variants:
            if not name.startswith("raw"):
                continue
            run = RawStep(data, name, adam)
            lr, b1, b2, eps = adam
            w = {k: v.astype(np.float64) for k, v in run.weights().items()}
            m = {k: np.zeros_like(v) for k, v in w.items()}
            v = {k: np.zeros_like(x) for k, x in w.items()}
            for t in range(1, 4):
                for k, g in run.gradients(t - 1).items():
                    g = g.astype(np.float64)
                    m[k] += (g - m[k]) * (1 - b1)
                    v[k] += (g * g - v[k]) * (1 - b2)
                    w[k] -= lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m[k] / (
                        np.sqrt(v[k]) + eps)
                run(t - 1)
            got, slots = run.weights(), run.slots()

            def used(want: dict, have: dict) -> float:
                return max(float(np.max(np.abs(have[k] - want[k])
                                        / (1e-5 * np.abs(want[k]).max() + 1e-5 * np.abs(want[k]))))
                           for k in want)

            print(f"| {name} | {adam} | {used(w, got):.2f} | "
                  f"{used(m, {k: slots[f'm/{k}'] for k in m}):.2f} | "
                  f"{used(v, {k: slots[f'v/{k}'] for k in v}):.2f} |", flush=True)


def op_times(run, steps: int) -> tuple[dict[str, float], float]:
    """ms per step of each executed kernel (TF profiler's host trace), and the wall ms/step."""
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        for i in range(steps):
            run(i)
        wall = (time.perf_counter() - start) / steps * 1e3
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        space.ParseFromString(Path(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)[0])
                              .read_bytes())
    totals: dict[str, float] = collections.Counter()
    for plane in space.planes:
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            if not line.name.startswith("tf_Compute") and line.name != "python":
                continue
            for event in line.events:
                name = names.get(event.metadata_id, "?")
                if ":" in name and not name.startswith("Executor"):  # node:kernel
                    totals[name] += event.duration_ps / 1e9 / steps
    return dict(totals), wall


CATEGORIES = (  # (category, substrings of "node:kernel"), first match wins
    ("conv backward", ("Conv2DBackprop",)),
    ("conv forward (+ bias)", ("Conv2D",)),
    ("max-pool forward + backward", ("MaxPool",)),
    ("dense (matmul) forward + backward", ("MatMul",)),
    ("relu forward + backward", ("Relu",)),
    ("Adam", ("ApplyAdam", "Sqrt", "AssignAddVariableOp", "AssignSubVariableOp", "Square",
              ":Mul", ":Sub", ":RealDiv", ":AddV2", ":Pow", ":Cast")),
    ("batch gather", ("Gather",)),
    ("loss, bias gradients, other", ("",)),
)


def kernels(args: argparse.Namespace) -> None:
    data = load_data(args.steps + 5)
    summary: dict[str, dict[str, float]] = {}
    for name, run in variants(data, args.variants).items():
        for i in range(5):
            run(i)
        totals, wall = op_times(run, args.steps)
        ops = {k: v for k, v in totals.items() if not k.startswith(("EagerLocalExecute",
                                                                     "KernelAndDevice"))}
        summary[name] = {"wall": wall}
        for op, ms in ops.items():
            category = next(c for c, keys in CATEGORIES if any(k in op for k in keys))
            summary[name][category] = summary[name].get(category, 0.0) + ms
        print(f"\n### {name}: {wall:.2f} ms/step under the profiler; kernel time "
              f"{sum(ops.values()):.2f} ms/step\n| node:kernel | ms/step |\n|---|---|")
        for op, ms in sorted(ops.items(), key=lambda kv: -kv[1])[:args.top]:
            print(f"| {op} | {ms:.3f} |")
    names = list(summary)
    print("\n| kernel time, ms/step | " + " | ".join(names) + " |\n|---|"
          + "---|" * len(names))
    for category, _ in CATEGORIES:
        print(f"| {category} | " + " | ".join(f"{summary[n].get(category, 0.0):.2f}"
                                              for n in names) + " |")
    print("| wall ms/step under the profiler | " + " | ".join(f"{summary[n]['wall']:.2f}"
                                                              for n in names) + " |")


def boundary(args: argparse.Namespace) -> None:
    """The call boundary of train_step, piece by piece (median microseconds)."""
    import tensorflow as tf

    data = load_data(64)
    backend = Backend(data).model
    rows = data.batches[0]
    x, y = data.train_x[rows], data.train_y[rows]
    backend.train_step(x, y)
    tx, ty = tf.constant(x), tf.constant(y)
    concrete = backend._train_concrete
    trivial = tf.function(lambda a, b: tf.shape(a)[0] + tf.shape(b)[0]).get_concrete_function(
        tf.TensorSpec([None, 28, 28, 1], tf.float32), tf.TensorSpec([None], tf.int64))
    pieces = {
        "gather x[rows], y[rows] (NumPy)": lambda: (data.train_x[rows], data.train_y[rows]),
        "input checks (_images, _labels)": lambda: backend._labels(y, len(backend._images(x))),
        "tf.constant(x), tf.constant(y)": lambda: (tf.constant(x), tf.constant(y)),
        "train_step(x, y), whole": lambda: backend.train_step(x, y),
        "concrete function on tensors": lambda: concrete(tx, ty),
        "dispatch: a trivial concrete function, same inputs": lambda: trivial(tx, ty),
    }
    times: dict[str, list[float]] = {name: [] for name in pieces}
    for _ in range(args.rounds):  # interleaved, like every timing here
        for name, fn in pieces.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                fn()
            times[name].append((time.perf_counter() - start) / args.steps * 1e6)
    print("| piece | us per call (median of rounds) |\n|---|---|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):,.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["time", "numerics", "reference", "kernels",
                                         "boundary"])
    parser.add_argument("--variants", default="backend,raw-explicit,raw-same,raw-padvalid,"
                        "raw-same-add,raw-same-fused,raw-same-fusedexact,raw-same-fusedexact-add,"
                        "raw-same-fusedexact-add-gather,raw-same-fusedexact-add-relufirst,tf1")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--random", action="store_true",
                        help="numerics on the cross-backend tests' random batches")
    parser.add_argument("--disturbed", type=float, default=0.1,
                        help="other load (cores) above which a round is flagged")
    parser.add_argument("--top", type=int, default=14, help="kernels listed per variant")
    parser.add_argument("--threads", type=int, default=len(affinity_cpus()))
    args = parser.parse_args()
    args.variants = args.variants.split(",")
    request_threads(args.threads)
    convspec.compile(convspec.load_spec(SPEC), backend="tensorflow")  # sets TF's threads
    print(f"{args.threads} intra-/inter-op threads", file=sys.stderr)
    {"time": time_variants, "numerics": numerics, "kernels": kernels, "boundary": boundary,
     "reference": reference}[args.what](args)


if __name__ == "__main__":
    main()
