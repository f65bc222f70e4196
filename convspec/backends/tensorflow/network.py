"""The spec as a ``tf.Module``: its weights, and a forward pass that walks the spec's layers.

The module holds every declared weight slot of every layer (``row.slots``: shape,
trainability, ones or zeros until loaded) as a float32 variable in the canonical layout; the
forward pass hands each layer the outputs it takes (``row.inputs``: one tensor, or the tuple of
them for a merge kind) and its weights, in the spec's order (which puts every layer after the
layers it takes), to its kind's op (``ops.OPS``) and checks each static output shape against
the shape table while tracing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import tensorflow as tf

from ... import dropout
from ...graph import IMAGE_INPUT
from ...specification import Spec
from .ops import EVAL, OPS, Call, Mode


@dataclass
class Forward:
    """What one forward pass produced: logits, pending moving-stat assignments, activations."""

    logits: tf.Tensor
    updates: list[tuple[tf.Variable, tf.Tensor]] = field(default_factory=list)
    activations: dict[str, tf.Tensor] = field(default_factory=dict)


class Network(tf.Module):
    """The compiled network: ``network(x_nhwc, mode, collect)`` -> ``Forward``; meant to run
    inside a ``tf.function`` (the walk below then runs once, at trace time)."""

    def __init__(self, spec: Spec, compute_dtype: tf.DType = tf.float32):
        super().__init__(name="convspec_network")
        self.spec = spec
        self.table = spec.table
        self.compute_dtype = compute_dtype  # float32 variables, cast at use (mixed precision)
        self.weights = {name: tf.Variable((tf.ones if slot.init == "ones" else tf.zeros)(
                                              slot.shape, tf.float32),
                                          name=name, trainable=slot.trainable)
                        for name, slot in self.table.weights.items()}  # canonical order

    def __call__(self, x: tf.Tensor, mode: Mode = EVAL, collect: bool = False) -> Forward:
        """Logits (N, classes) of NHWC images; with ``collect``, every layer's output."""
        out = Forward(x)
        values = {IMAGE_INPUT: tf.cast(x, self.compute_dtype)}
        for index, (layer, row) in enumerate(zip(self.spec.layers, self.table.rows,
                                                 strict=True)):
            call = Call(index, mode, dropout.layer_key(self.spec.train.seed, index),
                        getattr(layer, "activation_layer", None), self.compute_dtype,
                        out.updates)
            xs = tuple(values[source] for source in row.inputs)
            x = OPS[layer.kind](call, layer, row, xs[0] if len(xs) == 1 else xs,
                                *(self.weights[n] for n in row.weights))
            if tuple(x.shape[1:]) != row.output:  # trace-time guard: the table is the truth
                raise AssertionError(f"{row.name}: TensorFlow built {tuple(x.shape[1:])}, "
                                     f"the shape table says {row.output}")
            values[row.name] = x
            if collect:
                out.activations[row.name] = tf.cast(x, tf.float32)
        out.logits = tf.cast(x, tf.float32)
        return out
