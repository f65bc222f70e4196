"""Messages for pydantic errors: numbers as written, bounds, values YAML 1.1 read differently."""

from __future__ import annotations

import math

import pytest

from convspec.errors import SpecError
from convspec.specification import Spec, loads_spec, validate_spec
from convspec.specification.messages import describe

HEAD = "name: t\ninput: {height: 8, width: 8, channels: 1}\nclasses: 3\n"
LAYERS = "layers:\n  - {kind: flatten}\n  - {kind: dense, units: 3}\n"


def messages(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        loads_spec(text, source="m.yaml")
    return [f"{item.path}: {item.message}" for item in info.value.items]


def test_numbers_beyond_what_text_conversion_allows_are_described():
    data = {**_spec(), "classes": 10**6000}  # str() of it raises ValueError in Python >= 3.11
    with pytest.raises(SpecError) as info:
        validate_spec(data, source="code")
    assert str(info.value) == ("code: classes: must be at most 2,147,483,647, got a 6,001-digit "
                               "number")


def _spec() -> dict:
    return {"name": "t", "input": {"height": 8, "width": 8, "channels": 1}, "classes": 3,
            "layers": [{"kind": "flatten"}, {"kind": "dense", "units": 3}]}


@pytest.mark.parametrize("value, shown", [(math.inf, "inf"), (-math.inf, "-inf"),
                                          (math.nan, "nan")])
def test_non_finite_floats_from_code_say_what_they_are(value, shown):
    data = {**_spec(), "train": {"optimizer": {"kind": "sgd", "learning_rate": value}}}
    with pytest.raises(SpecError) as info:
        validate_spec(data, source="code")
    assert str(info.value) == (f"code: train.optimizer.sgd.learning_rate: must be a finite "
                               f"number, got {shown}")


def test_an_integer_too_large_for_a_float_field():
    big = "1" + "0" * 400
    assert messages(HEAD + LAYERS + f"init: {{biases: {{kind: constant, value: {big}}}}}\n") == [
        "init.biases.constant.value: must be a finite number; a 401-digit number is too large "
        "for a float (the largest is about 1.8e+308)"]


def test_a_number_too_small_for_a_float_reads_as_zero_and_says_so():
    assert messages(HEAD + LAYERS + "train: {optimizer: {kind: adam, learning_rate: 1e-400}}\n"
                    ) == ["train.optimizer.adam.learning_rate: must be greater than 0.0, got 0.0 "
                          "(1e-400 is too small for a float: it reads as 0.0)"]


@pytest.mark.parametrize("word", ["no", "on", "off", "yes", "y", "n", "NO"])
def test_yaml_1_1_boolean_words_are_names(word):
    assert loads_spec(f"name: {word}\n" + HEAD.split("\n", 1)[1] + LAYERS).name == word


@pytest.mark.parametrize("written", ["true", "false", "null", "~", "5", "1.5", "0x10"])
def test_a_string_field_given_a_number_boolean_or_null_says_to_quote_it(written):
    assert messages(f"name: {written}\n" + HEAD.split("\n", 1)[1] + LAYERS) == [
        f"name: must be a string, got {written}; put it in quotes ('{written}') if it is "
        f"meant as text"]


@pytest.mark.parametrize("word", ["yes", "No", "on", "OFF", "y", "n"])
def test_a_boolean_field_given_a_yaml_1_1_word_says_to_write_true_or_false(word):
    assert messages(HEAD + "layers:\n  - {kind: flatten}\n  - {kind: dense, units: 3, "
                    f"bias: {word}}}\n") == [
        f"layers[1].dense.bias: must be true or false, got {word!r}; write true or false "
        f"({word!r} is text in YAML 1.2, which convspec reads)"]


@pytest.mark.parametrize("written, hint", [
    ("5:5", "; 5:5 is text, not a number (YAML 1.1 read it as the base-60 number 305)"),
    ("1:30:00", "; 1:30:00 is text, not a number (YAML 1.1 read it as the base-60 number "
                "5400)"),
    ("1:30.5", "; 1:30.5 is text, not a number"),
    ("0b101", "; 0b101 is text (YAML 1.2 has no binary numbers): write it in decimal"),
])
def test_an_integer_field_given_a_yaml_1_1_number_says_it_is_text(written, hint):
    assert messages(HEAD + LAYERS + f"train: {{batch_size: {written}}}\n") == [
        f"train.batch_size: must be an integer, got {written!r}{hint}"]


def test_a_base60_looking_text_of_thousands_of_digits():
    long = "9" * 5000 + ":5"
    (message,) = messages(HEAD + LAYERS + f"train: {{batch_size: {long}}}\n")
    assert message == (f"train.batch_size: must be an integer, got {long[:40]!r}... (5,002 "
                       f"characters); {long[:40]!r}... (5,002 characters) is text, not a number")


def test_a_long_text_value_is_shortened():
    long = "x" * 500
    (message,) = messages(HEAD + LAYERS + f"train: {{batch_size: {long}}}\n")
    assert message == f"train.batch_size: must be an integer, got {'x' * 40!r}... (500 characters)"


def test_describe_without_written_text_is_unchanged():
    error = {"type": "finite_number", "loc": ("x",), "msg": "", "input": math.inf}
    assert describe(error, Spec) == "must be a finite number, got inf"
    assert describe(error, Spec, written="1e999") == ("must be a finite number; 1e999 is too "
                                                      "large for a float (the largest is about "
                                                      "1.8e+308)")


def test_a_long_message_is_shortened():
    levels = "".join(f"  {c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("ab", "bc"))
    text = ("x:\n  a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\n" + levels + HEAD +
            "layers:\n  - {kind: conv2d, filters: 2, kernel: *c}\n" + LAYERS.split("\n", 1)[1])
    lines = messages(text)
    assert lines[1].startswith("layers[0].conv2d.kernel: must be a positive integer or [height, "
                               "width] of positive integers, got [[[1, 2, 3")
    assert lines[1].endswith("... (2,439 characters)")
    assert len(lines[1]) < 300
