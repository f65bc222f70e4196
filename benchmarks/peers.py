"""The tutorial network written the fastest ways a person would, against both convspec backends.

    python benchmarks/peers.py --rounds 3            # the table of issue 15, and JSON
    python benchmarks/peers.py --peers tf1,convspec-tf --rounds 5 --steps 300

Protocol (``protocol.py``): each round runs every peer once, in its own process, in a rotated
order; each run trains ``--steps`` Adam steps of batch 64 on the same minibatches from the same
initial weights, times steps ``warmup + 1 ..``, then evaluates the 10,000 test images and
reports its start-up time. Other load is sampled for 0.5 s before and after each run (nothing
of ours running) and measured during the timed steps; a run is flagged as disturbed when any
of the three exceeds ``--disturbed`` cores. The float32 matmul peak is measured at the start
and the end of the same invocation (best of both). OMP_NUM_THREADS is removed from the
workers' environment so every framework picks its own threads (convspec: ``convspec.threads``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from protocol import (
    ROOT,
    TRAIN_FLOPS,
    idle_sample,
    matmul_peak,
    prepare,
    run_worker,
    spawn,
)

HERE = Path(__file__).resolve().parent
PEERS = {  # name: (module, factory, description)
    "tf1": ("peer_tf1", "build", "the tutorial's own code, tf.compat.v1 graph + Session.run"),
    "keras": ("peer_keras", "build", "hand-written Keras 3, Sequential + fit on tf.data"),
    "torch": ("peer_torch", "build", "hand-written PyTorch, nn.Sequential + torch.optim.Adam"),
    "torch-malloc": ("peer_torch", "build", "the same, with glibc's malloc thresholds set as "
                     "convspec.allocator sets them (environment variables)"),
    "convspec-torch": ("peer_convspec", "build_torch", "convspec, torch backend (train_step)"),
    "convspec-tf": ("peer_convspec", "build_tensorflow",
                    "convspec, tensorflow backend (train_step)"),
}


# Environment of a peer's worker beyond worker_env's: torch-malloc is hand-written PyTorch
# with glibc's thresholds at convspec.allocator's values (what the torch backend gains by them).
PEER_ENV = {"torch-malloc": {"MALLOC_MMAP_THRESHOLD_": str(32 << 20),
                             "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}}


def worker_env(peer: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env.update(PEER_ENV.get(peer, {}))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(HERE), env.get("PYTHONPATH", "")])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def apply_threads(value: str | None) -> None:
    """``--threads`` of a worker (convspec peers only): N, or 'default' for the frameworks'
    own default of one thread per CPU; absent: convspec's choice."""
    if value is None:
        return
    sys.path.insert(0, str(ROOT))
    from convspec.threads import affinity_cpus, request_threads

    request_threads(len(affinity_cpus()) if value == "default" else int(value))


def worker(args: argparse.Namespace) -> None:
    if args.worker == "peak":
        print(json.dumps(matmul_peak()))
        return
    apply_threads(args.threads)
    module, factory, _ = PEERS[args.worker]
    build = getattr(importlib.import_module(module), factory)
    print(json.dumps(run_worker(build, Path(args.data), args.t0, args.steps, args.warmup)))


def run_peer(peer: str, data: Path, args: argparse.Namespace,
             extra: list[str] | None = None) -> dict:
    """One measured run of ``peer`` with the load around it; flagged when disturbed. With
    ``--wait-idle S``, first waits up to S seconds for the other load to fall to
    ``--disturbed`` (a shared machine has quiet minutes)."""
    deadline = time.monotonic() + getattr(args, "wait_idle", 0.0)
    before = idle_sample()
    while before > args.disturbed and time.monotonic() < deadline:
        time.sleep(5)
        before = idle_sample()
    result = spawn([str(HERE / "peers.py"), "--worker", peer, "--data", str(data), "--steps",
                    str(args.steps), "--warmup", str(args.warmup), *(extra or [])],
                   env=worker_env(peer))
    after = idle_sample()
    result.update(peer=peer, load_before=before, load_after=after)
    result["disturbed"] = max(before, after, result["other_load"]) > args.disturbed
    print(f"  {peer:<15} {result['images_per_s']:8,.0f} img/s  eval "
          f"{result['eval_images_per_s']:8,.0f} img/s  start-up {result['startup_s']:5.1f} s  "
          f"acc {result['test_accuracy']:.3f}  load {before:.2f}/{result['other_load']:.2f}/"
          f"{after:.2f}{'  DISTURBED' if result['disturbed'] else ''}", file=sys.stderr,
          flush=True)
    return result


def table(runs: list[dict], peers: list[str], peak: float) -> str:
    rows = ["| peer | images/s (median) | rounds | vs TF1 graph | vs TF1, same round (median) | "
            "GFLOP/s | of peak | page faults per step | eval images/s | start-up s | "
            "test acc. | disturbed rounds |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    med = {p: statistics.median(r["images_per_s"] for r in runs if r["peer"] == p)
           for p in peers}
    base = med.get("tf1")
    tf1 = {r["round"]: r["images_per_s"] for r in runs if r["peer"] == "tf1"}
    for p in peers:
        mine = [r for r in runs if r["peer"] == p]
        ratio = f"{med[p] / base:.2f}" if base else "-"
        paired = [r["images_per_s"] / tf1[r["round"]] for r in mine if r["round"] in tf1]
        same_round = f"{statistics.median(paired):.2f}" if paired else "-"
        gflops = med[p] * TRAIN_FLOPS / 1e9
        each = ", ".join(f"{r['images_per_s']:,.0f}" for r in mine)
        faults = statistics.median(r.get("page_faults_per_step", float("nan")) for r in mine)
        rows.append(
            f"| {p} | {med[p]:,.0f} | {each} | "
            f"{ratio} | {same_round} | {gflops:.1f} | {gflops / peak:.0%} | {faults:,.1f} | "
            f"{statistics.median(r['eval_images_per_s'] for r in mine):,.0f} | "
            f"{statistics.median(r['startup_s'] for r in mine):.2f} | "
            f"{statistics.median(r['test_accuracy'] for r in mine):.4f} | "
            f"{sum(r['disturbed'] for r in mine)} of {len(mine)} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", default=",".join(PEERS),
                        help=f"comma-separated, from {', '.join(PEERS)}")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20, help="untimed first steps")
    parser.add_argument("--disturbed", type=float, default=0.1,
                        help="other load (cores) above which a run is flagged")
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                        help="before each run, wait up to this long for the other load to "
                        "fall to --disturbed")
    parser.add_argument("--json", default=str(HERE / "results" / "peers.json"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--threads", help=argparse.SUPPRESS)
    parser.add_argument("--t0", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    peers = args.peers.split(",")
    unknown = set(peers) - set(PEERS)
    if unknown:
        parser.error(f"unknown peers {sorted(unknown)}; choose from {', '.join(PEERS)}")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.npz"
        source = prepare(data, args.steps)
        print(f"data: {source}; {args.rounds} rounds x {args.steps} steps "
              f"(first {args.warmup} untimed)", file=sys.stderr)
        peaks = [spawn([str(HERE / "peers.py"), "--worker", "peak"], env=worker_env())]
        runs = []
        for r in range(args.rounds):
            print(f"round {r + 1}", file=sys.stderr, flush=True)
            order = peers[r % len(peers):] + peers[:r % len(peers)]
            runs += [run_peer(p, data, args) | {"round": r + 1} for p in order]
        peaks.append(spawn([str(HERE / "peers.py"), "--worker", "peak"], env=worker_env()))
    peak = max(max(p.values()) for p in peaks)
    print(f"\nfloat32 matmul peak {peak:.1f} GFLOP/s (2048x2048, best of NumPy and PyTorch, "
          f"start and end of this run); {TRAIN_FLOPS / 1e6:.2f} MFLOP per training image\n")
    print(table(runs, peers, peak))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "command": " ".join(["python", "benchmarks/peers.py", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"), "data": source, "cpus": os.cpu_count(),
        "peak_gflops": peak, "peaks": peaks, "train_flops_per_image": TRAIN_FLOPS,
        "peers": {p: PEERS[p][2] for p in peers}, "runs": runs}, indent=1) + "\n")
    print(f"\nraw results: {out}")


if __name__ == "__main__":
    main()
