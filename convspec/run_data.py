"""The data a run was trained on, reopened: what ``evaluate``, ``plot``, ``report`` and
``predict`` use unless told otherwise.

A run directory records its data source in ``spec.yaml`` (``train.dataset``, paths absolute)
and ``config.json`` (the built-in data folder, and the ``data`` object: class names,
preprocessing, content keys; ``convspec.data.record``). Reopening a run reads the same data
with the same preprocessing (the recorded mean and std, never recomputed), checks it against
the spec first, and says when the images changed since training.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .data.catalog import DATASETS
from .data.dataset import Dataset
from .data.loader import load_data
from .data.preprocess import Preprocessing
from .data.resolve import with_data
from .errors import UsageError
from .run_directory import CONFIG_FILE, RunDirectory
from .specification import Spec
from .train.options import apply_overrides, probe_data

Log = Callable[[str], None]


def run_of(path: str | os.PathLike[str] | None) -> RunDirectory | None:
    """The run directory that ``path`` is, or holds a weights file of; None otherwise."""
    if path is None:
        return None
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    return RunDirectory.open(folder) if (folder / CONFIG_FILE).is_file() else None


def open_target(target: str | os.PathLike[str], weights: str | os.PathLike[str] | None,
                ) -> tuple[Spec, RunDirectory | None, dict[str, Any]]:
    """(spec, run, weights) for ``RUN_DIR`` (its spec, its weights unless ``weights``) or
    ``SPEC --weights W`` (the run W belongs to, if any). ``UsageError`` for a spec without
    weights; ``WeightsError`` for weights of another network."""
    from .run_directory import resolve_weights
    from .specification import load_spec

    if Path(target).is_dir():
        run: RunDirectory | None = RunDirectory.open(target)
        assert run is not None
        spec = run.load_spec()
        weights = weights or target
    elif weights is None:
        raise UsageError(f"{target} is a spec: give --weights RUN_DIR_OR_FILE (or give a run "
                         "directory instead of the spec)")
    else:
        spec = load_spec(target)
        run = run_of(weights)
    return spec, run, resolve_weights(weights, spec)


def recorded_preprocessing(run: RunDirectory | None) -> Preprocessing | None:
    record = run.config.data_record() if run is not None and run.config else None
    return None if record is None else Preprocessing.from_dict(record.preprocessing)


def input_preprocessing(spec: Spec, run: RunDirectory | None) -> Preprocessing:
    """What the network's input is, from stored uint8 pixels: the run's recorded
    preprocessing, else the spec's given mean / std, else pixel / 255. ``UsageError`` for a
    per-channel normalisation without the run that computed it."""
    recorded = recorded_preprocessing(run)
    if recorded is not None:
        return Preprocessing("1/255", recorded.mean, recorded.std)
    normalize = spec.train.normalize
    if normalize is None:
        return Preprocessing()
    if normalize.kind == "mean_std":
        return Preprocessing("1/255", tuple(normalize.mean), tuple(normalize.std))
    raise UsageError("train.normalize is per_channel: its mean and std were computed by the "
                     "training run and are recorded in its directory; give the run directory "
                     "(RUN_DIR, or --weights RUN_DIR)")


def run_data(spec: Spec, run: RunDirectory | None, *, data: str | None = None,
             dataset: str | None = None, data_dir: str | None = None,
             log: Log | None = None) -> Dataset:
    """The data to evaluate ``spec`` on: ``--data PATH`` or ``--dataset NAME`` when given,
    else the run's own (its ``train.dataset`` and data folder). Probed and checked against
    the spec before it is read (``DataError``); read with the run's recorded preprocessing."""
    say = log or (lambda message: None)
    told = bool(data or dataset)
    if dataset:
        spec = apply_overrides(spec, {"dataset": dataset})
    spec = with_data(spec, data=data)
    if data_dir is None and run is not None and run.config and not told:
        data_dir = run.config.data_dir
    _, notes = probe_data(spec, data_dir)
    for note in notes:
        say(f"Note: {note}")
    loaded = load_data(spec, data_dir=data_dir, preprocessing=recorded_preprocessing(run),
                       log=say)
    record = run.config.data_record() if run is not None and run.config else None
    if record is not None and record.content and not told:
        now = loaded.info.get("content") or {}
        if now and dict(now) != dict(record.content):
            say(f"Note: the images of {loaded.source} changed since this run was trained "
                "(files added, removed or modified)")
    return loaded


def class_names(spec: Spec, run: RunDirectory | None) -> tuple[str, ...]:
    """One name per output: the run's recorded class names, else the built-in dataset's,
    else '0', '1', ...; outputs beyond the data's classes are named by their index."""
    record = run.config.data_record() if run is not None and run.config else None
    dataset = spec.train.dataset
    if record is not None:
        names = record.class_names
    elif isinstance(dataset, str) and dataset in DATASETS:
        names = DATASETS[dataset].class_names
    else:
        names = ()
    return padded(names, spec.classes)


def padded(names: tuple[str, ...] | list[str], outputs: int) -> tuple[str, ...]:
    """``names`` cut or extended (with indices) to one per output."""
    names = tuple(names[:outputs])
    return names + tuple(str(i) for i in range(len(names), outputs))


def describe(data: Dataset, split: str) -> str:
    """``Data: <where it came from>; <split> set: N images``."""
    sample = " (the 5,000-image MNIST sample)" if data.is_sample else ""
    return (f"Data: {data.source}{sample}; {split} set: {len(getattr(data, split)):,} images"
            + ("" if data.preprocessing.mean is None else
               f"; preprocessing {data.preprocessing.formula()}"))


def describe_source(source: Any) -> str:
    """A built-in name or a source model, in a few words."""
    if isinstance(source, str):
        return source
    return f"{source.kind} {source.path}"
