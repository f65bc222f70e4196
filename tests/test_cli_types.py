"""Command-line option types: every number option finite or bounded, no empty backend name.

Every option of every command is found through the CLI itself, so an option added later with a
plain ``click.FLOAT``/``click.INT`` fails ``test_every_number_option_uses_a_checked_type``.
A bad value is a bad argument: exit status 2 with the option named, before any work starts.
"""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from convspec.backends import ALIASES, list_backends
from convspec.cli import COMMANDS, cli, main
from convspec.cli._types import BoundedInt, FiniteFloat
from convspec.limits import MAX_SEED, MAX_SIZE, MAX_THREADS

ROOT = Path(__file__).resolve().parents[1]
MNIST = str(ROOT / "specs" / "mnist.yaml")


def _commands() -> dict[str, click.Command]:
    ctx = click.Context(cli)
    return {name: cli.get_command(ctx, name) for name in sorted(COMMANDS)}


def _options(kind: type) -> list[tuple[str, str]]:
    return [(name, param.opts[0]) for name, command in _commands().items()
            for param in command.params
            if isinstance(param, click.Option) and isinstance(param.type, kind)]


def _base_args(command: str, tmp_path: Path) -> list[str]:
    """Arguments that satisfy every required parameter of ``command``."""
    image = tmp_path / "x.png"
    image.write_bytes(b"")
    return {
        "check": [MNIST], "train": [MNIST], "evaluate": [MNIST, "--weights", str(tmp_path)],
        "predict": [MNIST, str(image), "--weights", str(tmp_path)],
        "export": [str(tmp_path), "--format", "onnx"], "plot": [str(tmp_path)],
        "report": [str(tmp_path)],
    }.get(command, [])


def test_every_number_option_uses_a_checked_type():
    for name, command in _commands().items():
        for param in command.params:
            if isinstance(param.type, click.types.FloatParamType):
                assert isinstance(param.type, FiniteFloat), (name, param.opts)
            if isinstance(param.type, click.types.IntParamType):
                assert isinstance(param.type, BoundedInt), (name, param.opts)
                assert param.type.max in (MAX_SIZE, MAX_SEED, MAX_THREADS), (name, param.opts)
    assert len(_options(FiniteFloat)) >= 3 and len(_options(BoundedInt)) >= 10


@pytest.mark.parametrize("command, option", _options(FiniteFloat))
@pytest.mark.parametrize("value, why", [
    ("nan", "nan is not a finite number"), ("inf", "inf is not a finite number"),
    ("-inf", "-inf is not a finite number"), ("NaN", "NaN is not a finite number"),
    ("1e400", "1e400 is too large for a float; give a finite number"),
])
def test_float_options_must_be_finite(capsys, tmp_path, command, option, value, why):
    code = main([command, *_base_args(command, tmp_path), f"{option}={value}"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"Invalid value for '{option}': {why}" in err


def test_lr_nan_is_a_bad_argument_not_a_spec_error(capsys):
    assert main(["train", MNIST, "--lr", "nan"]) == 2
    assert "Invalid value for '--lr': nan is not a finite number" in capsys.readouterr().err


def test_lr_too_small_for_a_float(capsys):
    assert main(["train", MNIST, "--lr", "1e-400"]) == 2
    assert "1e-400 is too small for a float (it reads as 0.0)" in capsys.readouterr().err


@pytest.mark.parametrize("command, option", _options(BoundedInt))
def test_integer_options_are_bounded(capsys, tmp_path, command, option):
    bound = {"--seed": MAX_SEED, "--threads": MAX_THREADS}.get(option, MAX_SIZE)
    for value in (str(bound + 1), "9" * 5000):
        code = main([command, *_base_args(command, tmp_path), f"{option}={value}"])
        err = capsys.readouterr().err
        assert code == 2
        assert f"Invalid value for '{option}'" in err
        assert f"<=x<={bound:,}" in err
        assert len(err) < 1000  # a 5,000-digit value is not echoed


@pytest.mark.parametrize("command", [name for name, command in _commands().items()
                                     if any("--backend" in p.opts for p in command.params)])
@pytest.mark.parametrize("value", ["", " ", "\t"])
def test_empty_backend_name_is_a_bad_argument(capsys, tmp_path, command, value):
    code = main([command, *_base_args(command, tmp_path), f"--backend={value}"])
    err = capsys.readouterr().err
    assert code == 2
    assert (f"an empty backend name; registered backends: {', '.join(list_backends())} "
            f"(aliases: {', '.join(sorted(ALIASES))})") in err


def test_help_shows_bounds_readably(capsys):
    assert main(["train", "--help"]) == 0
    assert "1<=x<=2,147,483,647" in capsys.readouterr().out
