"""TensorFlow on CPU: ways to run a grouped convolution, forward and backward, timed.

    python benchmarks/tf_grouped_conv.py [--rounds 5]

TensorFlow's CPU kernels run ``tf.nn.conv2d`` with a grouped kernel forward, but its gradient
only through oneDNN (on by default on x86 Linux; ``TF_ENABLE_ONEDNN_OPTS=0`` and builds without
it raise) or under XLA. The candidates: the native grouped kernel (``native``, a cell "fails"
where it raises), one convolution per group joined by a concat (``split``), a block-diagonal
dense kernel (``blockdiag``: groups times the work), a depthwise convolution per input channel
summed over each group (``dwsum``; exactly ``tf.nn.depthwise_conv2d`` when a group has one
input channel), and the native kernel under XLA (``native-xla``, and ``split-xla`` for
comparison). Each is one ``tf.function`` of the output and both gradients on a batch of 64
14x14 maps with a 3x3 kernel, single-threaded; interleaved rounds, medians. Prints a Markdown
table (ms per call, and max |difference| of the output from ``split``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402


def split(x: tf.Tensor, k: tf.Tensor, groups: int) -> tf.Tensor:
    return tf.concat([tf.nn.conv2d(a, b, 1, "SAME") for a, b in zip(
        tf.split(x, groups, axis=-1), tf.split(k, groups, axis=-1), strict=True)], -1)


def blockdiag(x: tf.Tensor, k: tf.Tensor, groups: int) -> tf.Tensor:
    kh, kw, cg, out = k.shape
    blocks = tf.reshape(k, [kh, kw, cg, groups, out // groups])
    full = tf.einsum("hwcgo,Gg->hwGcgo", blocks, tf.eye(groups))  # zero off the diagonal
    return tf.nn.conv2d(x, tf.reshape(full, [kh, kw, groups * cg, out]), 1, "SAME")


def dwsum(x: tf.Tensor, k: tf.Tensor, groups: int) -> tf.Tensor:
    kh, kw, cg, out = k.shape
    og = out // groups
    kd = tf.reshape(tf.transpose(tf.reshape(k, [kh, kw, cg, groups, og]), [0, 1, 3, 2, 4]),
                    [kh, kw, groups * cg, og])
    y = tf.nn.depthwise_conv2d(x, kd, [1, 1, 1, 1], "SAME")
    if cg == 1:
        return y
    n, h, w = tf.shape(y)[0], tf.shape(y)[1], tf.shape(y)[2]
    return tf.reshape(tf.reduce_sum(tf.reshape(y, [n, h, w, groups, cg, og]), axis=4),
                      [n, h, w, out])


def native(x: tf.Tensor, k: tf.Tensor, groups: int) -> tf.Tensor:
    return tf.nn.conv2d(x, k, 1, "SAME")


VARIANTS = {"native": (native, False), "split": (split, False), "blockdiag": (blockdiag, False),
            "dwsum": (dwsum, False), "native-xla": (native, True), "split-xla": (split, True)}
CASES = [(64, 64, 2), (64, 64, 4), (64, 64, 32), (64, 64, 64)]  # (in, out, groups)


def _step(fn, groups: int, jit: bool):
    @tf.function(jit_compile=jit, autograph=False)
    def step(x: tf.Tensor, k: tf.Tensor):
        with tf.GradientTape() as tape:
            tape.watch([x, k])
            y = fn(x, k, groups)
            loss = tf.reduce_sum(y * y)
        return y, tape.gradient(loss, [x, k])
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=5)
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(1)
    print("| in -> out channels | groups | " + " | ".join(VARIANTS) + " |")
    print("|---|---|" + "---|" * len(VARIANTS))
    for c_in, c_out, groups in CASES:
        x = tf.random.normal([64, 14, 14, c_in], seed=1)
        k = tf.random.normal([3, 3, c_in // groups, c_out], seed=2)
        steps = {name: _step(fn, groups, jit) for name, (fn, jit) in VARIANTS.items()}
        reference = steps["split"](x, k)[0]
        diffs: dict[str, float] = {}
        for name, step in list(steps.items()):  # also the warm-up (tracing, compiling)
            try:
                diffs[name] = float(tf.reduce_max(tf.abs(step(x, k)[0] - reference)))
            except tf.errors.InvalidArgumentError:  # no kernel for this gradient
                del steps[name]
        samples: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(args.rounds):
            for name, step in steps.items():
                start = time.perf_counter()
                for _ in range(args.calls):
                    step(x, k)[0].numpy()
                samples[name].append((time.perf_counter() - start) / args.calls * 1e3)
        cells = [f"{statistics.median(samples[name]):.1f} ms ({diffs[name]:.0e})"
                 if name in steps else "fails" for name in VARIANTS]
        print(f"| {c_in} -> {c_out} | {groups} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
