"""Fuzz `convspec validate` and `convspec shapes` with mutated specs; print the counts.

    python benchmarks/fuzz_cli.py                   # 10,000 cases, seed 0
    python benchmarks/fuzz_cli.py --cases 50000 --seed 7 --save failures/

Case ``i`` of seed ``s`` is the same on every machine (``random.Random(f"{s}:{i}")``), so a
failure is reproduced with ``--first i --cases 1``. The mutations and the property (exit status
0, 1 or 2, no traceback, no hang, every error line located, validate and shapes agreeing) are
those of ``tests/test_fuzz.py``, from ``tests/spec_mutations.py``. Exits 1 when any count of
failures is not zero.
"""

from __future__ import annotations

import argparse
import collections
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from spec_mutations import BASES, check, disagreement, failures, mutate  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first", type=int, default=0, help="index of the first case")
    parser.add_argument("--limit", type=float, default=10.0, help="seconds per run (a hang)")
    parser.add_argument("--save", type=Path, help="folder for the files of failing cases")
    args = parser.parse_args()

    counts: collections.Counter[str] = collections.Counter()
    codes: collections.Counter[int | None] = collections.Counter()
    examples: dict[str, str] = {}
    slowest = (0.0, -1)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.first, args.first + args.cases):
            rnd = random.Random(f"{args.seed}:{i}")
            raw = mutate(BASES[rnd.randrange(len(BASES))], rnd)
            began = time.perf_counter()
            runs = check(raw, Path(tmp), args.limit)
            slowest = max(slowest, (time.perf_counter() - began, i))
            found = [f for r in runs for f in failures(r)] + disagreement(runs)
            codes.update(r.code for r in runs)
            counts["cases"] += 1
            counts["runs"] += len(runs)
            for kind in ("traceback", "hang", "exit code", "unlocated", "disagree"):
                counts[kind] += sum(f.startswith(kind) for f in found)
            for problem in found:
                examples.setdefault(problem.split(":")[0], f"case {i}: {problem}")
            if found and args.save:
                args.save.mkdir(parents=True, exist_ok=True)
                (args.save / f"case-{args.seed}-{i}.yaml").write_bytes(raw)
    seconds = time.perf_counter() - start
    print(f"cases tried: {counts['cases']:,} (seed {args.seed}, cases {args.first}.."
          f"{args.first + args.cases - 1}), runs: {counts['runs']:,} in {seconds:.0f} s "
          f"(slowest case: {slowest[0]:.2f} s, case {slowest[1]})")
    print("exit codes: " + ", ".join(f"{code}: {n:,}" for code, n in sorted(
        codes.items(), key=lambda item: str(item[0]))))
    failed = 0
    for kind, label in [("traceback", "tracebacks"), ("hang", "hangs"),
                        ("exit code", "exit codes other than 0, 1, 2"),
                        ("unlocated", "unlocated errors"),
                        ("disagree", "validate/shapes disagree")]:
        print(f"{label}: {counts[kind]}")
        failed += counts[kind]
    for example in examples.values():
        print(f"  e.g. {example}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
