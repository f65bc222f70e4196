"""YAML 1.2 core-schema scalars: numbers and booleans read as a person writes them."""

from __future__ import annotations

import math
import sys

import pytest

from convspec.specification.yaml_core import MAX_DIGITS
from convspec.specification.yaml_marks import YamlProblem, parse_yaml


def value_of(text: str):
    return parse_yaml(f"v: {text}\n").data["v"]


def problem_of(text: str) -> YamlProblem:
    with pytest.raises(YamlProblem) as info:
        parse_yaml(f"v: {text}\n")
    return info.value


@pytest.mark.parametrize("written, value", [
    # integers: decimal (a leading zero is not octal), 0o octal, 0x hexadecimal, _ groups
    ("032", 32), ("0", 0), ("-0", 0), ("+5", 5), ("-12", -12), ("007", 7),
    ("0o17", 15), ("0x1F", 31), ("0xff", 255), ("1_000", 1000), ("1_000_000", 10**6),
    # booleans and null: only the core forms
    ("true", True), ("True", True), ("TRUE", True), ("false", False), ("FALSE", False),
    ("null", None), ("Null", None), ("~", None), ("", None),
])
def test_core_integers_booleans_and_null(written, value):
    read = value_of(written)
    assert read == value and type(read) is type(value)


@pytest.mark.parametrize("written, value", [
    ("1.5", 1.5), (".5", 0.5), ("1.", 1.0), ("1e-4", 1e-4), ("1E-4", 1e-4), ("1.5e+2", 150.0),
    (".5e3", 500.0), ("2e3", 2000.0), ("-1.25", -1.25), ("0.000_1", 1e-4), ("1e400", math.inf),
    ("-1e400", -math.inf), (".inf", math.inf), ("-.Inf", -math.inf), ("+.INF", math.inf),
])
def test_core_floats(written, value):
    read = value_of(written)
    assert isinstance(read, float)
    assert read == value


@pytest.mark.parametrize("written", [".nan", ".NaN", ".NAN"])
def test_nan(written):
    assert math.isnan(value_of(written))


@pytest.mark.parametrize("written", [
    "5:5", "2:2", "1:30:00", "0b101", "yes", "no", "on", "off", "y", "n", "Yes", "ON",
    "tRue", "nULL", "2001-12-14", "2001-12-14 21:59:43.10", "1__0", "_1", "1_", "0x", "0o8",
    "=", "<<", ".", "+", "1e", "e3", "0x1_F", ".na", "inf", "nan",
])
def test_what_yaml_1_1_reads_as_numbers_booleans_or_dates_is_text(written):
    assert value_of(written) == written


@pytest.mark.parametrize("written, value", [
    ('!!int "5"', 5), ("!!int 0x10", 16), ("!!float 1", 1.0), ('!!float "2.5"', 2.5),
    ("!!bool true", True), ("!!null ''", None), ("!!str 5", "5"), ("!!str true", "true"),
    ("'032'", "032"), ('"yes"', "yes"),
])
def test_explicit_core_tags_and_quotes(written, value):
    read = value_of(written)
    assert read == value and type(read) is type(value)


@pytest.mark.parametrize("written, message", [
    ("!!int abc", "'abc' is not an integer (decimal, 0o octal or 0x hexadecimal)"),
    ("!!int 0b101", "'0b101' is not an integer (decimal, 0o octal or 0x hexadecimal)"),
    ("!!int 1.5", "'1.5' is not an integer (decimal, 0o octal or 0x hexadecimal)"),
    ("!!float x", "'x' is not a number"),
    ("!!bool yes", "'yes' is not true or false"),
    ("!!null x", "'x' is not null"),
])
def test_explicit_tag_with_a_value_it_cannot_read_is_located(written, message):
    problem = problem_of(written)
    assert (problem.line, problem.column) == (1, 4)
    assert problem.message == f"invalid YAML: {message}"


@pytest.mark.parametrize("tag, value", [
    ("binary", "aGVsbG8="), ("timestamp", "2001-12-14"), ("set", "{a, b}"),
    ("omap", "[a: 1]"), ("pairs", "[a: 1]"),
])
def test_standard_tags_a_spec_never_holds_are_refused(tag, value):
    problem = problem_of(f"!!{tag} {value}")
    assert (problem.line, problem.column) == (1, 4)
    assert problem.message == (f"invalid YAML: the tag !!{tag} is not allowed in a spec: a spec "
                               f"holds only text, numbers, true/false, null, lists and mappings")


def test_integer_length_is_bounded_by_convspec_not_the_interpreter():
    assert value_of("9" * MAX_DIGITS) == 10**MAX_DIGITS - 1
    assert value_of("-" + "9" * MAX_DIGITS) == -(10**MAX_DIGITS - 1)
    assert value_of("1_" + "0" * (MAX_DIGITS - 1)) == 10 ** (MAX_DIGITS - 1)  # _ is no digit
    assert value_of("0x" + "f" * 830) == 16**830 - 1  # 1,000 decimal digits


@pytest.mark.parametrize("written", ["9" * (MAX_DIGITS + 1), "-" + "1" * 5000,
                                     "0x" + "f" * 831, "0o" + "7" * 1108])
def test_a_longer_integer_is_a_located_error(written):
    problem = problem_of(written)
    assert (problem.line, problem.column) == (1, 4)
    assert problem.message == (f"invalid YAML: {written[:20]}... is longer than any integer "
                               f"convspec reads (1,000 digits)")


@pytest.mark.skipif(not hasattr(sys, "set_int_max_str_digits"), reason="Python without the limit")
def test_a_lower_interpreter_digit_limit_does_not_change_what_is_read():
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(640)
    try:
        assert value_of("1" + "0" * 999) == 10**999
    finally:
        sys.set_int_max_str_digits(old)


def test_merge_key_text_as_a_value_is_text():
    assert value_of("<<") == "<<"


@pytest.mark.parametrize("text, column", [('"\\ud800"', 4), ('"ab\\udfff"', 4)])
def test_text_with_a_lone_surrogate_is_refused(text, column):
    problem = problem_of(text)
    assert (problem.line, problem.column) == (1, column)
    assert problem.message.endswith("is half of a UTF-16 pair, not a character")


def test_a_key_with_a_lone_surrogate_is_refused():
    with pytest.raises(YamlProblem, match="half of a UTF-16 pair"):
        parse_yaml('"\\ud83d": 1\n')


def test_escaped_characters_beyond_the_basic_plane_are_read():
    assert value_of('"\\U0001F600 \\u00e9"') == "\U0001F600 \u00e9"
