"""The framework-free commands: shapes, validate, schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from convspec.cli import main

ROOT = Path(__file__).resolve().parents[1]
MNIST = str(ROOT / "specs" / "mnist.yaml")
INVALID = ROOT / "tests" / "specs" / "invalid"
VALID = ROOT / "tests" / "specs" / "valid"

BAD_SHAPES = """\
name: bad
input: {height: 8, width: 8, channels: 1}
classes: 3
layers:
  - {kind: conv2d, filters: 2, kernel: 3}
  - {kind: maxpool, size: 4}
  - {kind: conv2d, filters: 2, kernel: 3}
  - {kind: flatten}
  - {kind: dense, units: 3}
"""


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return code, out, err


def subprocess_run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    result = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture
def bad_shapes(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_SHAPES, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- shapes


def test_shapes_mnist(capsys):
    code, out, err = run(capsys, "shapes", MNIST)
    assert code == 0
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == "mnist: input 28x28x1, 10 classes"
    rows = {line.split()[0]: line.split() for line in lines[1:] if line.strip()}
    assert rows["input"] == ["input", "28x28x1"]
    assert rows["conv1"] == ["conv1", "conv2d", "28x28x16", "416", "313,600"]
    assert rows["pool1"] == ["pool1", "maxpool", "14x14x16", "0", "0"]
    assert rows["relu1"][2] == "14x14x16"
    assert rows["conv2"] == ["conv2", "conv2d", "14x14x36", "14,436", "2,822,400"]
    assert rows["pool2"][2] == "7x7x36"
    assert rows["flatten"][2] == "1764"
    assert rows["fc1"] == ["fc1", "dense", "128", "225,920", "225,792"]
    assert rows["fc2"] == ["fc2", "dense", "10", "1,290", "1,280"]
    assert rows["total"] == ["total", "242,062", "3,363,072"]
    assert lines[-1] == ("242,062 parameters, 3,363,072 MACs = 6.73 MFLOPs per image "
                         "(forward)")


@pytest.mark.parametrize("count, text", [
    (0, "0.00"), (6_726_144, "6.73"), (4_999, "0.00"), (5_000, "0.01"), (994_999, "0.99"),
    (995_000, "1.00"), (10**400, "1" + "0" * 394 + ".00"),
])
def test_millions_are_exact_for_any_count(count, text):
    from convspec.summary import hundredths

    assert hundredths(count, 10**6) == text


def test_shapes_of_the_largest_sizes_in_bounds(capsys, tmp_path):
    big = 2**31 - 1
    path = tmp_path / "big.yaml"
    path.write_text(f"name: big\ninput: {{height: {big}, width: {big}, channels: {big}}}\n"
                    f"classes: {big}\nlayers:\n  - {{kind: flatten}}\n"
                    f"  - {{kind: dense, units: {big}}}\n")
    code, out, _ = run(capsys, "shapes", str(path))
    assert code == 0
    params = big**3 * big + big
    flops = 2 * big**4  # 4.25e37: beyond int64, exact as Python ints, no float in between
    assert out.splitlines()[-1] == (f"{params:,} parameters, {big**4:,} MACs = "
                                    f"{flops // 10**6}.{flops // 10**4 % 100:02d} MFLOPs per "
                                    f"image (forward)")
    code, out, _ = run(capsys, "shapes", "--json", str(path))
    assert code == 0 and json.loads(out)["params"] == params


def test_shapes_json(capsys):
    code, out, err = run(capsys, "shapes", "--json", MNIST)
    assert code == 0 and err == ""
    data = json.loads(out)
    assert data["name"] == "mnist"
    assert data["input"] == [28, 28, 1]
    assert [layer["output"] for layer in data["layers"]] == [
        [28, 28, 16], [14, 14, 16], [14, 14, 16], [14, 14, 36], [7, 7, 36], [7, 7, 36], [1764],
        [128], [10],
    ]
    assert data["layers"][0]["pads"] == [[2, 2], [2, 2]]
    assert (data["params"], data["macs"], data["flops"]) == (242_062, 3_363_072, 6_726_144)


def test_shapes_bad_spec_prints_rows_then_the_located_error(capsys, bad_shapes):
    code, out, err = run(capsys, "shapes", str(bad_shapes))
    assert code == 1
    names = [line.split()[0] for line in out.splitlines()[2:]]
    assert names == ["input", "conv1", "pool1"]  # up to, not including, the failing layer
    assert "6x6x2" in out and "1x1x2" in out
    assert "total" not in out
    assert err == (f"error: {bad_shapes}:7:5: layers[2].conv2d (conv2): kernel 3x3 does not fit "
                   "the 1x1x2 input with padding 'valid'; the output would be empty. Use padding "
                   "'same', a smaller kernel, or remove a downsampling layer before it\n")


def test_shapes_bad_first_layer_prints_no_table(capsys, tmp_path):
    path = tmp_path / "first.yaml"
    path.write_text(BAD_SHAPES.replace("layers:\n", "layers:\n  - {kind: dense, units: 3}\n"))
    code, out, err = run(capsys, "shapes", str(path))
    assert code == 1
    assert out == ""
    assert err.startswith(f"error: {path}:5:5: layers[0].dense (fc1): dense needs a flat input")


def test_shapes_json_bad_spec_prints_only_the_error(capsys, bad_shapes):
    code, out, err = run(capsys, "shapes", "--json", str(bad_shapes))
    assert code == 1
    assert out == ""
    assert f"{bad_shapes}:7:5:" in err


def test_shapes_invalid_spec_lists_every_error(capsys):
    path = INVALID / "positive_integer.yaml"
    code, out, err = run(capsys, "shapes", str(path))
    assert code == 1
    assert out == ""
    assert len(err.splitlines()) == 3
    assert all(line.startswith(f"{path}:") for line in err.splitlines())


def test_shapes_missing_file(capsys, tmp_path):
    path = tmp_path / "nope.yaml"
    code, out, err = run(capsys, "shapes", str(path))
    assert code == 1
    assert out == ""
    assert err == f"error: {path}: no such file\n"


def test_shapes_bad_option(capsys):
    code, out, err = run(capsys, "shapes", "--bogus", MNIST)
    assert code == 2
    assert "No such option" in err and "--bogus" in err


def test_unknown_command(capsys):
    code, _, err = run(capsys, "shapez", MNIST)
    assert code == 2
    assert "No such command" in err


def test_help_lists_the_commands(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for name in ("shapes", "validate", "schema"):
        assert name in out


# --------------------------------------------------------------------------- validate


def test_validate_ok(capsys):
    paths = [MNIST, *(str(p) for p in sorted(VALID.glob("*.yaml")))]
    code, out, err = run(capsys, "validate", *paths)
    assert code == 0
    assert err == ""
    assert out.splitlines()[0] == f"{MNIST}: ok (mnist, 9 layers)"
    assert len(out.splitlines()) == len(paths)


def test_validate_reports_every_file_and_every_error(capsys, bad_shapes, tmp_path):
    bad_types = INVALID / "positive_integer.yaml"
    missing = tmp_path / "missing.yaml"
    code, out, err = run(capsys, "validate", MNIST, str(bad_types), str(bad_shapes), str(missing))
    assert code == 1
    assert out == f"{MNIST}: ok (mnist, 9 layers)\n"
    lines = err.splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == [str(bad_types)] * 3
    assert lines[3].startswith(f"{bad_shapes}:7:5: layers[2].conv2d (conv2): kernel 3x3")
    assert lines[4] == f"{missing}: no such file"
    assert lines[5] == "3 of 4 spec(s) invalid"
    assert len(lines) == 6


def test_validate_needs_a_file(capsys):
    code, _, err = run(capsys, "validate")
    assert code == 2
    assert "Missing argument" in err


# --------------------------------------------------------------------------- schema


def test_schema_is_the_committed_schema(capsys):
    code, out, err = run(capsys, "schema")
    assert code == 0 and err == ""
    schema = json.loads(out)
    assert {"name", "input", "classes", "layers", "init", "train"} <= set(schema["properties"])
    assert set(schema["required"]) == {"name", "input", "classes", "layers"}
    committed = (ROOT / "specs" / "schema.json").read_text(encoding="utf-8")
    assert out == committed, "specs/schema.json is stale: run `convspec schema --out " \
                             "specs/schema.json`"


def test_schema_lists_every_layer_kind(capsys):
    from convspec.specification import LAYER_KINDS

    _, out, _ = run(capsys, "schema")
    text = json.dumps(json.loads(out)["$defs"])
    for kind in LAYER_KINDS:
        assert f'"const": "{kind}"' in text or f'"enum": ["{kind}"]' in text, kind


def test_schema_out_file(capsys, tmp_path):
    target = tmp_path / "schema.json"
    code, out, _ = run(capsys, "schema", "--out", str(target))
    assert code == 0
    assert out == f"wrote {target}\n"
    _, printed, _ = run(capsys, "schema")
    assert target.read_text(encoding="utf-8") == printed


# --------------------------------------------------------------------------- subprocess


def test_exit_codes_in_a_subprocess(bad_shapes):
    ok = subprocess_run("-m", "convspec", "shapes", "specs/mnist.yaml")
    assert ok.returncode == 0
    assert "242,062" in ok.stdout
    bad = subprocess_run("-m", "convspec", "shapes", str(bad_shapes))
    assert bad.returncode == 1
    assert f"{bad_shapes}:7:5:" in bad.stderr
    missing = subprocess_run("-m", "convspec", "validate", "specs/mnist.yaml", "nope.yaml")
    assert missing.returncode == 1
    assert "nope.yaml: no such file" in missing.stderr
    usage = subprocess_run("-m", "convspec", "shapes", "--bogus", "specs/mnist.yaml")
    assert usage.returncode == 2


def test_framework_free_commands_import_no_framework():
    code = (
        "import sys; from convspec.cli import main; "
        "main(['shapes','specs/mnist.yaml']); main(['validate','specs/mnist.yaml']); "
        "main(['schema']); "
        "assert not any(m.split('.')[0] in ('torch','tensorflow','keras','jax') "
        "for m in sys.modules)"
    )
    result = subprocess_run("-c", code)
    assert result.returncode == 0, result.stderr
    assert "242,062" in result.stdout


def test_shapes_loads_no_framework_exporter_or_plotting():
    """`convspec shapes` is the quick look: none of the heavy packages may load for it."""
    heavy = ("torch", "tensorflow", "keras", "jax", "onnx", "onnxruntime", "matplotlib",
             "numpy", "PIL", "rich")
    code = (
        "import sys; from convspec.cli import main; "
        "code = main(['shapes', 'specs/mnist.yaml']); "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r}))); "
        "sys.exit(code)"
    )
    result = subprocess_run("-c", code)
    assert result.returncode == 0, result.stderr
    assert "242,062" in result.stdout
    assert result.stdout.splitlines()[-1] == "[]"


def test_gc_freeze_only_when_convspec_owns_the_process(capsys):
    import gc

    frozen = gc.get_freeze_count()
    code, out, _ = run(capsys, "shapes", MNIST)  # a caller's process: leave its GC alone
    assert code == 0 and "242,062" in out
    assert gc.get_freeze_count() == frozen and gc.isenabled()
    code = (
        "import gc, sys; sys.argv = ['convspec', 'shapes', 'specs/mnist.yaml']; "
        "from convspec.cli import main; code = main(); "
        "print(gc.get_freeze_count() > 0, gc.isenabled()); sys.exit(code)"
    )
    result = subprocess_run("-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "True True"
