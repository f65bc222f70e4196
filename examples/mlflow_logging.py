"""Log a convspec run to MLflow through the Trainer's callbacks (MLflow is optional).

    pip install "convspec[mlflow]"          # mlflow-skinny: the tracking client
    python examples/mlflow_logging.py [torch|tensorflow] [iterations] [--tracking-uri URI]
    mlflow ui --backend-store-uri ./mlruns  # to browse (needs the full mlflow package)

A ``Callback`` sees every metrics record (``on_metrics``: the training loss and accuracy of
the window, the learning rate, and the validation loss and accuracy when there is one) and the
test evaluation (``on_test_end``); this one sends them to the active MLflow run, with the
spec's training settings as parameters and the run directory's files as artifacts. The same
few lines send them to Weights & Biases or any other tracker.

The default store is MLflow's local file store, ``./mlruns``. MLflow 3 keeps that store in
maintenance mode and refuses it unless ``MLFLOW_ALLOW_FILE_STORE=true``, which this example
sets; pass ``--tracking-uri sqlite:///mlflow.db`` (or a server's URL) for another store.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from convspec.train import Callback, TrainOptions, run_training

SPEC = Path(__file__).resolve().parents[1] / "specs" / "mnist.yaml"


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optimizer": {"kind": "adam"}}`` -> ``{"optimizer.kind": "adam"}`` (MLflow params)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


class MLflowLogger(Callback):
    """Sends a run's parameters, metrics records and test results to the active MLflow run."""

    def on_train_begin(self, trainer: Any) -> None:
        import mlflow

        if trainer.resumed_from is None:
            mlflow.log_params(flatten(trainer.spec.train.model_dump(mode="json"), "train."))

    def on_metrics(self, trainer: Any, record: Mapping[str, Any]) -> None:
        import mlflow

        metrics = {k: float(v) for k, v in record.items()
                   if k not in ("iteration", "elapsed") and v is not None}
        mlflow.log_metrics(metrics, step=int(record["iteration"]))

    def on_test_end(self, trainer: Any, evaluation: Any) -> None:
        import mlflow

        mlflow.log_metrics({"test_accuracy": evaluation.accuracy, "test_loss": evaluation.loss},
                           step=trainer.iteration)


def main() -> None:
    import mlflow

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backend", nargs="?", default="torch")
    parser.add_argument("iterations", nargs="?", type=int, default=300)
    parser.add_argument("--tracking-uri", default="file:./mlruns")
    parser.add_argument("--out", default=None, help="run directory (default: runs/...)")
    args = parser.parse_args()

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # see the module docstring
    mlflow.set_tracking_uri(args.tracking_uri)
    mlflow.set_experiment("convspec")
    with mlflow.start_run(run_name=f"mnist-{args.backend}") as active:
        options = TrainOptions(spec_path=str(SPEC), backend=args.backend,
                               overrides={"iterations": args.iterations, "out": args.out})
        outcome = run_training(options, callbacks=[MLflowLogger()])
        for name in ("spec.yaml", "final.json", "weights.safetensors", "best.safetensors"):
            if outcome.run_dir is not None and (outcome.run_dir / name).is_file():
                mlflow.log_artifact(str(outcome.run_dir / name))
    print(f"MLflow run {active.info.run_id} in {args.tracking_uri}")


if __name__ == "__main__":
    main()
