"""The YAML reader: merge keys, bounded aliases and nesting, keys, documents, positions."""

from __future__ import annotations

import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from convspec.errors import SpecError
from convspec.specification import load_spec, loads_spec, yaml_marks
from convspec.specification.yaml_marks import MAX_DEPTH, YamlProblem, parse_yaml

CASES = Path(__file__).resolve().parent / "cases"


def problem_of(text: str) -> YamlProblem:
    with pytest.raises(YamlProblem) as info:
        parse_yaml(text)
    return info.value


# --------------------------------------------------------------------------- merge keys


def test_merge_key_case_reads_as_yaml_defines_it():
    spec = load_spec(CASES / "yaml-merge-key.yaml")
    first, second = spec.layers[0], spec.layers[1]
    assert (second.kind, second.filters, second.kernel, second.padding) == \
        ("conv2d", 16, (3, 3), "same")
    assert first.filters == 8  # the anchor itself is unchanged


def test_merged_values_are_located_where_they_are_written():
    text = (CASES / "yaml-merge-key.yaml").read_text()
    lines = text.splitlines()
    parsed = parse_yaml(text)
    assert parsed.position(("layers", 1, "filters")) == (7, 14)  # written in the mapping
    assert parsed.position(("layers", 1, "filters"), key=True) == (7, 5)
    kernel = lines[4].index("kernel: 3") + 1  # merged from the anchor on line 5
    assert parsed.position(("layers", 1, "kernel"), key=True) == (5, kernel)
    assert parsed.position(("layers", 1, "kernel")) == (5, kernel + len("kernel: "))


def test_an_error_in_a_merged_value_points_into_the_anchor():
    text = """name: t
input: {height: 8, width: 8, channels: 1}
classes: 3
base: &base {kind: conv2d, filters: 2, kernel: 0}
layers:
  - <<: *base
    filters: 4
  - {kind: flatten}
  - {kind: dense, units: 3}
"""
    with pytest.raises(SpecError) as info:
        loads_spec(text, source="m.yaml")
    lines = str(info.value).splitlines()
    assert "m.yaml:4:1: base: unknown key 'base'" in lines[0]
    assert lines[1].startswith("m.yaml:4:48: layers[0].conv2d.kernel: must be a positive")


def test_merge_of_a_list_of_mappings_earlier_ones_win_and_written_keys_win_over_all():
    data = parse_yaml("""a: &a {x: 1, y: 1}
b: &b {x: 2, y: 2, z: 2}
c:
  <<: [*a, *b]
  z: 3
  w: 4
""").data
    assert data["c"] == {"x": 1, "y": 1, "z": 3, "w": 4}


def test_merge_of_a_merged_mapping():
    data = parse_yaml("a: &a {x: 1}\nb: &b {<<: *a, y: 2}\nc: {<<: *b, x: 3}\n").data
    assert data["c"] == {"x": 3, "y": 2}
    assert data["b"] == {"x": 1, "y": 2}


def test_merged_keys_are_not_duplicates_but_written_ones_are():
    problem = problem_of("a: &a {x: 1}\nc: {<<: *a, x: 2, x: 3}\n")
    assert (problem.line, problem.column) == (2, 19)
    assert problem.message == "duplicate key 'x' (first given on line 2)"


def test_merge_of_a_mapping_already_merged_elsewhere_is_not_a_duplicate():
    text = "b: &b {k: 1}\nouter: {inner: &m {<<: *b, k: 2}}\nc: {<<: *m}\n"
    data = parse_yaml(text).data
    assert data["outer"]["inner"] == {"k": 2} and data["c"] == {"k": 2}


@pytest.mark.parametrize("value", ["5", "[1, 2]", "[{a: 1}, 2]"])
def test_merge_of_something_that_is_not_a_mapping_is_located(value):
    problem = problem_of(f"c:\n  <<: {value}\n")
    assert problem.line == 2
    assert "expected a mapping or list of mappings for merging" in problem.message


# --------------------------------------------------------------------------- aliases


def test_alias_bomb_is_refused_at_the_alias_quickly_and_in_little_memory():
    text = (CASES / "yaml-alias-bomb.yaml").read_text()
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(SpecError) as info:
            loads_spec(text, source="bomb.yaml")
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seconds < 0.5
    assert peak < 20 * 2**20
    assert str(info.value) == (
        "bomb.yaml:6:8: invalid YAML: the alias *e expands to 66,430 keys and values, taking "
        "the document past 100,000 (a spec needs a few hundred); write the values out or use "
        "fewer aliases")


def test_a_spec_that_uses_anchors_still_loads():
    text = """name: t
input: {height: 8, width: 8, channels: 1}
classes: 3
layers:
  - &conv {kind: conv2d, filters: 4, kernel: 3, padding: same}
  - *conv
  - &pool {kind: maxpool, size: 2}
  - *conv
  - *pool
  - {kind: flatten}
  - {kind: dense, units: 3}
"""
    spec = loads_spec(text)
    assert [layer.name for layer in spec.layers[:5]] == ["conv1", "conv2", "pool1", "conv3",
                                                          "pool2"]


def test_expansion_up_to_the_limit_is_read():
    # 10 x 10 x 10 x 10 scalars plus the lists: well under the limit, read in full
    text = ("a: &a [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]\nb: &b [" + ", ".join(["*a"] * 10) + "]\n"
            "c: &c [" + ", ".join(["*b"] * 10) + "]\nd: [" + ", ".join(["*c"] * 10) + "]\n")
    data = parse_yaml(text).data
    assert sum(len(b) for c in data["d"] for b in c) == 1000


def test_a_large_document_without_aliases_is_bounded_too(monkeypatch):
    monkeypatch.setattr(yaml_marks, "MAX_NODES", 50)  # parsing 100,000 values takes seconds
    # the mapping, its key, the list and 47 items: 50
    assert len(parse_yaml("v: [" + ", ".join(["0"] * 47) + "]\n").data["v"]) == 47
    problem = problem_of("v: [" + ", ".join(["0"] * 48) + "]\n")
    assert (problem.line, problem.column) == (1, 5 + 47 * 3)  # at the 48th item
    assert problem.message == ("invalid YAML: the document holds more than 50 keys and values; "
                               "a spec needs a few hundred")


def test_alias_to_an_undefined_anchor_is_located():
    problem = problem_of("a: 1\nb: *nope\n")
    assert (problem.line, problem.column) == (2, 4)
    assert "found undefined alias 'nope'" in problem.message


def test_recursive_alias_names_the_alias_and_the_anchor_line():
    problem = problem_of("a: &x\n  - 1\n  - *x\n")
    assert (problem.line, problem.column) == (3, 5)
    assert problem.message == ("invalid YAML: a recursive alias: *x is inside its own anchor &x "
                               "(line 1), so the value would contain itself")


def test_recursive_alias_through_a_merge_key():
    problem = problem_of("a: &x {b: 1, <<: *x}\n")
    assert "recursive alias" in problem.message


# --------------------------------------------------------------------------- nesting


def _nested(levels: int) -> str:
    """A document whose root mapping holds ``levels - 1`` nested lists: ``levels`` levels."""
    return "name: " + "[" * (levels - 1) + "]" * (levels - 1) + "\n"


@pytest.mark.parametrize("recursion_limit", [None, 20_000])
def test_nesting_limit_does_not_depend_on_the_recursion_limit(recursion_limit):
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(recursion_limit or old)
    try:
        assert parse_yaml(_nested(MAX_DEPTH)).data["name"] is not None
        problem = problem_of(_nested(MAX_DEPTH + 1))
        assert (problem.line, problem.column) == (1, 6 + MAX_DEPTH)
        assert problem.message == ("invalid YAML: nested too deeply (more than 100 levels of "
                                   "lists and mappings)")
    finally:
        sys.setrecursionlimit(old)


def test_nesting_through_aliases_is_bounded():
    text = "a: &a " + "[" * 60 + "]" * 60 + "\nb: " + "[" * 50 + "*a" + "]" * 50 + "\n"
    problem = problem_of(text)
    assert (problem.line, problem.column) == (2, 54)
    assert problem.message == ("invalid YAML: nested too deeply through the alias *a (more than "
                               "100 levels of lists and mappings)")


# --------------------------------------------------------------------------- keys, documents


@pytest.mark.parametrize("key, shown", [
    ("1", "the number 1"), ("1.5", "the number 1.5"), ("true", "the boolean true"),
    ("null", "null null"), ("~", "null ~"), ("0x10", "the number 0x10"),
])
def test_keys_must_be_names(key, shown):
    problem = problem_of(f"name: t\n{key}: x\n")
    assert (problem.line, problem.column) == (2, 1)
    assert problem.message == f"invalid YAML: a key must be a name, not {shown}"


def test_an_empty_key_is_named_so():
    problem = problem_of("name: t\n? \n: x\n")
    assert problem.message == "invalid YAML: a key must be a name, not an empty key"


def test_yaml_1_1_boolean_words_are_ordinary_keys():
    assert parse_yaml("on: 1\nyes: 2\nno: 3\n").data == {"on": 1, "yes": 2, "no": 3}


def test_second_document_says_how_to_fix_it():
    problem = problem_of("a: 1\n---\na: 2\n")
    assert (problem.line, problem.column) == (2, 1)
    assert problem.message == ("invalid YAML: expected a single document in the stream but found "
                               "another document (a spec file holds one YAML document: remove "
                               "the '---' line)")


@pytest.mark.parametrize("version, message", [
    ("1." + "9" * 5000, "a %YAML version number of 5,000 digits; convspec reads YAML 1.2"),
    ("2.0", "found incompatible YAML document (version 1.* is required)"),
])
def test_yaml_directive_with_an_odd_version_is_located(version, message):
    problem = problem_of(f"%YAML {version}\n---\na: 1\n")
    assert problem.line == 1
    assert problem.message == f"invalid YAML: {message}"


def test_one_explicit_document_is_fine():
    assert parse_yaml("%YAML 1.1\n---\na: 032\n...\n").data == {"a": 32}


def test_byte_order_mark_and_windows_line_ends_are_read():
    parsed = parse_yaml("\ufeffa: 1\r\nb: [1,\r\n  2]\r\n")
    assert parsed.data == {"a": 1, "b": [1, 2]}
    assert parsed.position(("b", 1)) == (3, 3)


def test_written_text_is_kept_for_numbers_booleans_and_nulls_only():
    parsed = parse_yaml("a: 1.0e+400\nb: yes\nc: true\nd:\ne: '5'\nf: [0x10]\n")
    written = {path: parsed.written(path) for path in
               [("a",), ("b",), ("c",), ("d",), ("e",), ("f",), ("f", 0), ("g",), ("f", 1)]}
    assert written == {("a",): "1.0e+400", ("b",): None, ("c",): "true", ("d",): "",
                       ("e",): None, ("f",): None, ("f", 0): "0x10", ("g",): None,
                       ("f", 1): None}


def test_positions_of_missing_paths_are_those_of_the_nearest_value():
    parsed = parse_yaml("a:\n  b: [1, 2]\n")
    assert parsed.position(("a", "b", 5)) == (2, 6)
    assert parsed.position(("a", "x")) == (2, 3)
    assert parsed.position(("a", "x"), key=True) == (2, 3)
    assert parsed.position(("a", "b"), key=True) == (2, 3)
    assert parsed.position(()) == (1, 1)


def test_positions_cost_nothing_for_aliases_that_expand_to_many_values():
    # 10 + 9 * 10 + 81 * 10 + ... : about 75,000 values with every alias expanded, read in well
    # under a second because nothing walks the expansion but validation
    levels = "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n"
                     for p, c in zip("abcd", "bcde"))
    text = "a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\n" + levels
    start = time.perf_counter()
    parsed = parse_yaml(text)
    assert time.perf_counter() - start < 0.2
    assert parsed.position(("e", 8, 8, 8, 8, 8)) == (1, 32)
@pytest.mark.parametrize("text, data", [
    ("name:\tt\n", {"name": "t"}), ("a: b\t\n", {"a": "b"}), ("a: b\t# note\n", {"a": "b"}),
    ("a:\t[1,\t2]\n", {"a": [1, 2]}), ("a: {x:\t1}\n", {"a": {"x": 1}}),
    ("a:\t\n  b: 1\n", {"a": {"b": 1}}),
])
def test_tabs_between_tokens_are_whitespace_as_in_yaml_1_2(text, data):
    assert parse_yaml(text).data == data


@pytest.mark.parametrize("text, line, column", [
    ("\ta: 1\n", 1, 1), ("a:\n\tb: 1\n", 2, 1), ("a: 1\n  \tb: 2\n", 2, 3),
    ("l:\n- \tx\n", 2, 3), ("a: |\n\ttext\n", 2, 1),
])
def test_tabs_that_indent_are_located_with_a_hint(text, line, column):
    problem = problem_of(text)
    assert (problem.line, problem.column) == (line, column)
    assert problem.message == ("invalid YAML: found character '\\t' that cannot start any token "
                               "(YAML indents with spaces: replace the tab with spaces)")
