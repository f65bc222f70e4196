"""The gate "validates means it trains", at scale: random small valid specs compiled by every
backend and checked against the NumPy reference (forward and gradients, ``convspec.verification``).

    python benchmarks/spec_gate.py --specs 5000 --seed 1
    python benchmarks/spec_gate.py --specs 2000 --seed 1 --without-route-around

``--without-route-around`` switches off ``shapes.single_window_form`` in both backends (the
strided form goes to the framework as written) to show what the gate finds without it. Prints
the counts that go into benchmarks/README.md: specs tried, draws that did not validate, per
backend the outcomes by the layer kind of the first difference ('-': none), and how close the
passing ones came to the tolerances.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _without_route_around() -> None:
    import convspec.backends.tensorflow.ops as tf_ops
    import convspec.backends.torch.ops as torch_ops

    def as_written(output, kernel, stride, dilation):
        return stride, (None, None)

    for module in (torch_ops, tf_ops):
        module.single_window_form = as_written


def _describe(spec) -> str:
    rows = spec.table.rows
    parts = [f"input {spec.input.height}x{spec.input.width}x{spec.input.channels}"]
    for layer, row in zip(spec.layers, rows, strict=True):
        if layer.kind == "conv2d":
            parts.append(f"conv2d k{list(layer.kernel)} s{list(layer.stride)} "
                         f"d{list(layer.dilation)} {layer.padding!r} "
                         f"{'x'.join(map(str, row.input))}->{'x'.join(map(str, row.output))}")
    return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backend", action="append", help="default: every installed one")
    parser.add_argument("--without-route-around", action="store_true")
    parser.add_argument("--show", type=int, default=5, help="failing specs to print")
    args = parser.parse_args()

    from spec_generator import check_spec, random_spec

    from convspec.backends import available_backends

    if args.without_route_around:
        _without_route_around()
    backends = args.backend or [b for b in ("torch", "tensorflow")
                                if b in available_backends()]
    rng = random.Random(args.seed)
    outcomes: dict[str, collections.Counter] = {b: collections.Counter() for b in backends}
    rejected, shown, began = 0, 0, time.perf_counter()
    margins = [0.0, 0.0]
    for n in range(1, args.specs + 1):
        spec, misses = random_spec(rng)
        rejected += misses
        for name in backends:
            outcome = check_spec(spec, name)
            outcomes[name][outcome.kinds] += 1
            margins = [max(a, b) for a, b in zip(margins, outcome.margins, strict=True)]
            if outcome.failure is not None and shown < args.show:
                shown += 1
                print(f"  {name}: {outcome.failure.what} off by "
                      f"{outcome.failure.difference:.3g}: {_describe(spec)}", flush=True)
        if n % 500 == 0:
            print(f"... {n} specs, {time.perf_counter() - began:.0f} s", flush=True)
    seconds = time.perf_counter() - began
    print(f"specs tried: {args.specs} (seed {args.seed}; {rejected} draws did not validate "
          f"and were redrawn); {seconds:.0f} s")
    print(f"largest difference that passed: {margins[0]:.1%} of the forward tolerance, "
          f"{margins[1]:.1%} of the gradient tolerance")
    for name, counts in outcomes.items():
        bad = {k: v for k, v in counts.items() if k != "-"}
        print(f"{name}: {counts['-']} match the reference, {sum(bad.values())} mismatch"
              + (f" ({', '.join(f'{k}: {v}' for k, v in sorted(bad.items()))})" if bad else ""))


if __name__ == "__main__":
    main()
