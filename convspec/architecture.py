"""Which network a set of weights belongs to: a canonical fingerprint, compared by meaning.

The fingerprint says what the network *is*, not how its spec was written: the input shape, the
classes, and per layer its kind, its resolved hyper-parameters (defaults filled in, the pool
stride resolved, padding as the resolved pad amounts, so ``same`` and the equal explicit pads
are one network), its weights' canonical names and shapes and, where it does not simply take
the previous layer, the positions of the layers it takes (``"input"`` for the image; a plain
stack's print has none, as before graphs existed). Names of layers without weights do not
matter (``flatten`` and ``flatten1`` are the same layer); blocks are expanded first. Weights
files and checkpoints store it (``architecture_metadata``); ``check_architecture`` compares it
on loading and names the first difference.

Files written before the fingerprint existed store the spec's own data (``architecture``) and
a hash of how it was written (``architecture_hash``): the fingerprint is derived from the
former; a checkpoint that has only the hash still loads when the hash matches.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .errors import WeightsError

if TYPE_CHECKING:
    from .specification import Spec

FINGERPRINT_KEY = "fingerprint"  # metadata key of the canonical JSON
HASH_KEY = "architecture_hash"
LEGACY_KEY = "architecture"  # the spec data that files from before the fingerprint store


def fingerprint(spec: Spec) -> dict[str, Any]:
    """The canonical description of ``spec``'s network, as JSON data (see the module doc)."""
    layers = []
    index = {row.name: i for i, row in enumerate(spec.table.rows)}
    for i, (layer, row) in enumerate(zip(spec.layers, spec.table.rows, strict=True)):
        entry = layer.resolved(row.pads)
        # [name, shape] pairs: a list keeps the canonical order through sorted-key JSON
        entry["weights"] = [[name, list(slot.shape)] for name, slot in row.weights.items()]
        sources = [index.get(name, name) for name in row.inputs]  # "input": the image
        if sources != [i - 1 if i else "input"]:
            entry["inputs"] = sources  # a graph's connections, by position
        layers.append(entry)
    return {"input": list(spec.table.input), "classes": spec.classes, "layers": layers}


def _canonical_json(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def fingerprint_hash(print_: Mapping[str, Any]) -> str:
    """A stable 16-hex-digit hash of a fingerprint."""
    return hashlib.sha256(_canonical_json(print_).encode()).hexdigest()[:16]


def legacy_hash(spec: Spec) -> str:
    """The hash convspec stored before the fingerprint: of the spec's input, classes and
    layers as written out by ``to_dict`` (names included)."""
    d = spec.to_dict()
    layers = [{key: value for key, value in data.items()
               if layer.added_later.get(key, ...) != value}  # fields those files lacked
              for layer, data in zip(spec.layers, d["layers"], strict=True)]
    blob = _canonical_json({"input": d["input"], "classes": d["classes"], "layers": layers})
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def architecture_metadata(spec: Spec) -> dict[str, str]:
    """The metadata entries that tie a weights file or checkpoint to its network."""
    print_ = fingerprint(spec)
    return {FINGERPRINT_KEY: _canonical_json(print_), HASH_KEY: fingerprint_hash(print_)}


def stored_fingerprint(meta: Mapping[str, str]) -> dict[str, Any] | None:
    """The fingerprint a file's metadata holds, or derives from an older file's stored spec
    data; None when the file holds neither (only an old-style hash, or nothing)."""
    from .shapes import ShapeError
    from .specification import Spec

    key = FINGERPRINT_KEY if FINGERPRINT_KEY in meta else LEGACY_KEY
    if key not in meta:
        return None
    data = json.loads(meta[key])
    if not isinstance(data, dict):
        raise ValueError(f"its {key!r} entry is not a mapping")
    if key == FINGERPRINT_KEY:
        return data
    spec = Spec.model_validate({"name": "stored", **data})  # a ValidationError is a ValueError
    try:
        return fingerprint(spec)
    except ShapeError as exc:
        raise ValueError(exc.message) from None


def show_value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return "x".join(map(str, value))  # a shape
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value) or "none"  # weight names
    return json.dumps(value)


def first_difference(stored: Mapping[str, Any], current: Mapping[str, Any],
                     names: list[str]) -> tuple[str, Any, Any] | None:
    """(what, stored value, current value) of the first difference, in network order, or
    None when the fingerprints are equal. ``names`` are the current spec's layer names."""
    for key in ("input", "classes"):
        if stored.get(key) != current.get(key):
            return key, stored.get(key), current.get(key)
    old, new = stored.get("layers", []), current.get("layers", [])
    for index, (a, b) in enumerate(zip(old, new)):
        if a == b:
            continue
        where = f"layer {index} ({names[index]})"
        if a.get("kind") != b.get("kind"):
            return f"{where} kind", a.get("kind"), b.get("kind")
        for field in [*b, *(k for k in a if k not in b)]:
            if field != "weights" and a.get(field) != b.get(field):
                return f"{where} {field}", a.get(field), b.get(field)
        wa, wb = dict(a.get("weights", [])), dict(b.get("weights", []))
        if list(wa) != list(wb):
            return f"{where} weight names", list(wa), list(wb)
        for name in wb:
            if wa[name] != wb[name]:
                return f"{where} weight {name} shape", wa[name], wb[name]
    if len(old) != len(new):
        return "number of layers", len(old), len(new)
    return None


def check_architecture(meta: Mapping[str, str], spec: Spec, source: str,
                       what: str = "the weights file") -> None:
    """Refuse, with a one-line WeightsError naming the first difference, a file (``source``,
    described as ``what``) whose stored network is not ``spec``'s."""
    try:
        stored = stored_fingerprint(meta)
    except (ValueError, TypeError) as exc:
        raise WeightsError(f"{source}: cannot read the network it was trained for "
                           f"({' '.join(str(exc).split())})") from None
    if stored is None:
        if meta.get(HASH_KEY) == legacy_hash(spec):
            return
        raise WeightsError(f"{source} was trained for a different network than spec "
                           f"{spec.name!r} (architecture {meta.get(HASH_KEY)}, the spec's "
                           f"{legacy_hash(spec)}); use the spec it was trained with")
    names = [row.name for row in spec.table.rows]
    difference = first_difference(stored, fingerprint(spec), names)
    if difference is not None:
        field, old, new = difference
        verb = "are" if field.endswith("names") else "is"
        raise WeightsError(f"{source} was trained for a different network: {field} {verb} "
                           f"{show_value(old)} in {what}, {show_value(new)} in spec {spec.name!r}")
