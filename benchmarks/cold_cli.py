"""Cold `convspec shapes specs/mnist.yaml`, two or more revisions side by side, run by hand.

    python benchmarks/cold_cli.py 973b796 HEAD --rounds 40            # bytecode cached
    python benchmarks/cold_cli.py 973b796 HEAD --rounds 40 --no-cache  # compiled every run
    python benchmarks/cold_cli.py 973b796 HEAD --instructions          # valgrind, deterministic

Each revision's ``convspec`` package is unpacked (``git archive``) into a temporary directory
and run as the program, as the console script runs it (``main()`` reading ``sys.argv``), in
fresh processes, the revisions interleaved round by round because the machine is shared and
noisy. ``--no-cache`` leaves the unpacked package without ``__pycache__`` and sets
PYTHONDONTWRITEBYTECODE, like a checkout on a machine with that variable set (this VM).
``--instructions`` counts instructions once per revision under valgrind's callgrind, which
does not depend on the load of the machine.
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN = ("import sys; sys.path.insert(0, sys.argv.pop(1)); sys.argv[0] = 'convspec'; "
       "from convspec.cli import main; sys.exit(main())")


def unpack(rev: str, into: Path, cache: bool) -> Path:
    archive = subprocess.run(["git", "archive", "--format=tar", rev, "convspec"], cwd=ROOT,
                             check=True, capture_output=True).stdout
    target = into / re.sub(r"\W", "_", rev)
    target.mkdir()
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    if cache:
        compileall.compile_dir(target / "convspec", quiet=1)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revs", nargs="+", help="git revisions, e.g. 973b796 HEAD")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--no-cache", action="store_true", help="no bytecode cache")
    parser.add_argument("--instructions", action="store_true", help="callgrind counts")
    parser.add_argument("--spec", default="specs/mnist.yaml")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.no_cache:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        roots = {rev: unpack(rev, Path(tmp), not args.no_cache) for rev in args.revs}
        cmds = {rev: [sys.executable, "-c", RUN, str(path), "shapes", args.spec]
                for rev, path in roots.items()}
        if args.instructions:
            for rev, cmd in cmds.items():
                out = subprocess.run(["valgrind", "--tool=callgrind",
                                      "--callgrind-out-file=/dev/null", *cmd], cwd=ROOT,
                                     env={**env, "PYTHONHASHSEED": "0"}, capture_output=True,
                                     text=True, check=True).stderr
                count = int(re.search(r"Collected : (\d+)", out).group(1))
                print(f"{rev}: {count / 1e6:,.1f} M instructions")
            return
        times: dict[str, list[float]] = {rev: [] for rev in cmds}
        for _ in range(args.rounds):
            for rev, cmd in cmds.items():
                start = time.perf_counter()
                subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
                times[rev].append(time.perf_counter() - start)
    for rev, t in times.items():
        print(f"{rev}: min {min(t):.3f} s, median {statistics.median(t):.3f} s over {len(t)} "
              f"runs ({'no bytecode cache' if args.no_cache else 'bytecode cached'})")


if __name__ == "__main__":
    main()
