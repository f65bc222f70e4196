"""Training throughput on an idle machine and with one core kept busy by another process:
framework-default threads, convspec's choice (``convspec.threads``) and one thread.

    python benchmarks/busy.py --rounds 2 --steps 100

The busy process is a bounded Python spin loop (it ends by itself after ``--busy-limit``
seconds, or when this benchmark is gone) that this benchmark starts before, and kills after,
each busy block. Each run is a
``peers.py`` worker (own process, the peers' protocol) for a convspec backend with
``--threads default`` (one per CPU, what torch and TensorFlow choose on their own), no option
(convspec's choice, measured when the model is compiled), or ``--threads 1``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from peers import HERE, run_peer
from protocol import prepare

SETTINGS = {"default": ["--threads", "default"], "convspec": [], "1": ["--threads", "1"]}
BACKENDS = {"torch": "convspec-torch", "tensorflow": "convspec-tf"}


def start_busy(limit: float) -> subprocess.Popen:
    """One process spinning on one core for at most ``limit`` seconds, or until this process
    is gone (it also stops when the benchmark is killed)."""
    code = (f"import os, time\nparent, end = os.getppid(), time.time() + {limit}\n"
            "while time.time() < end and os.getppid() == parent:\n    pass\n")
    proc = subprocess.Popen([sys.executable, "-c", code])
    time.sleep(0.5)  # scheduled and spinning before anything is measured
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--busy-limit", type=float, default=1200,
                        help="seconds after which the busy loop stops by itself")
    parser.add_argument("--disturbed", type=float, default=0.1,
                        help="other load (cores) above which an idle run is flagged")
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                        help="before each idle run, wait up to this long for the other load "
                        "to fall to --disturbed")
    parser.add_argument("--json", default=str(HERE / "results" / "busy.json"))
    args = parser.parse_args()
    runs, wait = [], args.wait_idle
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.npz"
        prepare(data, args.steps)
        for r in range(args.rounds):
            for condition in ("idle", "busy"):
                print(f"round {r + 1}, {condition}", file=sys.stderr, flush=True)
                busy = start_busy(args.busy_limit) if condition == "busy" else None
                args.wait_idle = wait if condition == "idle" else 0.0
                try:
                    for backend, peer in BACKENDS.items():
                        for setting, extra in SETTINGS.items():
                            result = run_peer(peer, data, args, extra)
                            runs.append(result | {"condition": condition, "backend": backend,
                                                  "setting": setting, "round": r + 1})
                finally:
                    if busy is not None:
                        busy.kill()
                        busy.wait()
    print("| machine | backend | threads | threads used (convspec's reason) | images/s "
          "(median) | vs 1 thread | other load during (median) |\n|---|---|---|---|---|---|---|")
    def select(condition: str, backend: str, setting: str) -> list[dict]:
        return [r for r in runs
                if (r["condition"], r["backend"], r["setting"]) == (condition, backend, setting)]

    for condition in ("idle", "busy"):
        for backend in BACKENDS:
            rates = {s: statistics.median(r["images_per_s"] for r in select(condition, backend, s))
                     for s in SETTINGS}
            for setting in SETTINGS:
                mine = select(condition, backend, setting)
                used = sorted({str(r["threads"]) for r in mine})
                print(f"| {condition} | {backend} | {setting} | {'; '.join(used)} | "
                      f"{rates[setting]:,.0f} | {rates[setting] / rates['1']:.2f} | "
                      f"{statistics.median(r['other_load'] for r in mine):.2f} |")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": " ".join(["python", "benchmarks/busy.py",
                                                    *sys.argv[1:]]),
                               "date": time.strftime("%Y-%m-%d %H:%M:%S"), "runs": runs},
                              indent=1) + "\n")
    print(f"\nraw results: {out}")


if __name__ == "__main__":
    main()
