"""The failing inputs of tests/cases/ (copied from the shared cases folder), each with its right
outcome, through the command line as a user runs them.

Covers: convspec.cli, convspec.specification.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from convspec.cli import main
from convspec.specification import loads_spec

CASES = Path(__file__).resolve().parent / "cases"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err + out
    return code, out, err


def test_merge_key_is_plain_yaml(capsys):
    path = str(CASES / "yaml-merge-key.yaml")
    code, out, _ = run(capsys, "shapes", path)
    assert code == 0
    conv2 = next(line for line in out.splitlines() if line.startswith("conv2 "))
    assert conv2.split()[1:4] == ["conv2d", "28x28x16", "1,168"]  # 3x3x8x16 + 16


def test_base60_and_leading_zero_are_read_as_yaml_1_2(capsys):
    path = CASES / "yaml11-base60-octal.yaml"
    code, out, err = run(capsys, "shapes", str(path))
    assert code == 1 and out == ""
    assert err.splitlines() == [
        f"{path}:5:42: layers[0].conv2d.kernel: must be a positive integer or [height, width] "
        f"of positive integers, got '5:5'; 5:5 is text, not a number (YAML 1.1 read it as the "
        f"base-60 number 305): write [5, 5] for a height and a width",
        f"{path}:6:27: layers[1].maxpool.size: must be a positive integer or [height, width] of "
        f"positive integers, got '2:2'; 2:2 is text, not a number (YAML 1.1 read it as the "
        f"base-60 number 122): write [2, 2] for a height and a width",
    ]
    fixed = path.read_text().replace("5:5", "[5, 5]").replace("2:2", "[2, 2]")
    assert loads_spec(fixed).layers[0].filters == 32  # 032 is 32, not octal 26


def test_alias_bomb_is_refused_in_well_under_a_second(capsys):
    path = CASES / "yaml-alias-bomb.yaml"
    start = time.perf_counter()
    code, _, err = run(capsys, "validate", str(path))
    assert time.perf_counter() - start < 1.0
    assert code == 1
    assert err.splitlines()[0].startswith(f"{path}:6:8: invalid YAML: the alias *e expands to "
                                          f"66,430 keys and values")


def test_every_non_finite_value_is_located(capsys):
    path = CASES / "nonfinite-numbers.yaml"
    code, _, err = run(capsys, "validate", str(path))
    assert code == 1
    assert err.splitlines() == [
        f"{path}:9:43: init.weights.truncated_normal.mean: must be a finite number; 1.0e+400 "
        f"is too large for a float (the largest is about 1.8e+308)",
        f"{path}:10:35: init.biases.constant.value: must be a finite number, got .nan",
        f"{path}:12:42: train.optimizer.adam.learning_rate: must be a finite number, got .inf",
        "1 of 1 spec(s) invalid",
    ]


@pytest.mark.parametrize("value", ["nan", "inf", "1e400"])
def test_non_finite_learning_rate_on_the_command_line_is_a_bad_argument(capsys, value):
    code, _, err = run(capsys, "train", str(CASES / "nonfinite-numbers.yaml"), "--lr", value)
    assert code == 2
    assert "Invalid value for '--lr'" in err


def test_shapes_overflow_never_crashes(capsys):
    code, _, _ = run(capsys, "shapes", str(CASES / "shapes-overflow.yaml"))
    assert code in (0, 1)


def test_shapes_overflow_is_a_located_error(capsys):
    path = CASES / "shapes-overflow.yaml"
    code, _, err = run(capsys, "shapes", str(path))
    assert code == 1
    assert err.startswith(f"error: {path}:6:26: layers[1].dense.units: must be at most "
                          f"2,147,483,647, got a 401-digit number")


def test_a_401_digit_top_level_size_is_a_located_error(capsys, tmp_path):
    text = (CASES / "shapes-overflow.yaml").read_text()
    units = "1" + "0" * 400
    path = tmp_path / "classes.yaml"
    path.write_text(text.replace(f"units: {units}", "units: 3").replace("classes: 3",
                                                                         f"classes: {units}"))
    code, _, err = run(capsys, "shapes", str(path))
    assert code == 1
    assert err == (f"error: {path}:3:10: classes: must be at most 2,147,483,647, got a "
                   f"401-digit number\n")
