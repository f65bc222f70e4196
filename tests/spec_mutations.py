"""Bad specs made from good ones, and what every ``validate`` / ``shapes`` run on them must do.

The valid specs (``specs/*.yaml``, ``tests/specs/valid/*.yaml``) are mutated at the text level
(lines deleted, duplicated, swapped or re-indented; YAML syntax, tags, anchors, merge keys,
deep nesting and random unicode inserted; numbers replaced by huge, negative, non-finite,
octal, base-60 or binary forms; words YAML 1.1 reads as booleans; line ends, byte-order marks
and bytes that are not UTF-8; truncation) and at the data level (values replaced by random
JSON-like values, keys dropped or added, list items dropped or repeated), then run through the
command line in-process (``convspec.cli.main``). Every run must end with exit status 0, 1 or
2, without an exception, within a time limit, and every error line it prints must be located
(``file:line:col: ...``). Shared by ``tests/test_fuzz.py`` and ``benchmarks/fuzz_cli.py``.
"""

from __future__ import annotations

import contextlib
import io
import random
import re
import signal
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from convspec.cli import main
from convspec.specification.yaml_marks import parse_yaml

ROOT = Path(__file__).resolve().parents[1]
BASES = [p.read_text(encoding="utf-8") for p in
         sorted(ROOT.glob("specs/*.yaml")) + sorted(ROOT.glob("tests/specs/valid/*.yaml"))]
COMMANDS = (("validate",), ("shapes",), ("shapes", "--json"))

NUMBERS = [
    "0", "-1", "-0", "+5", "032", "0o17", "0x1F", "0b101", "5:5", "1:30:00", "1_000", "1__0",
    ".5e3", "1.", "1e-4", "2e3", "0.5", "-0.5", ".inf", "-.inf", ".nan", ".NaN", "1.0e+400",
    "-1e400", "1e-400", "2147483647", "2147483648", "9223372036854775807",
    "9223372036854775808", "1" + "0" * 30, "-" + "1" + "0" * 30, "1" + "0" * 400,
    "9" * 1001, "9" * 4301, "0x" + "f" * 900, "0b" + "1" * 5000, "9" * 5000 + ":5",
    "1." + "0" * 500 + "1", "1e99999",
]
WORDS = [
    "yes", "no", "on", "off", "y", "n", "Yes", "NO", "~", "null", "true", "False", "",
    "2001-12-14", "2001-12-14 21:59:43.10", "!!binary aGk=", "!!timestamp 2001-12-14",
    "!!set {a: null}", "!!omap [a: 1]", "!!int x", "!!float y", "!!bool yes", "!!null x",
    "!!str 5", "!!python/none", "!!python/object/apply:os.system [echo]", "!foo bar", "*a",
    "*undefined", "&a 3", "<<", "=", "[1, 2]", "[1, 2, 3]", "{a: 1}", "[]", "{}", "'5'",
    '"\\x00"', "|\n  text", "> folded", "same", "SAME", "valid", "relu", "conv", "dense",
]
SNIPPETS = [
    ":", ": ", "- ", "-", "{", "}", "[", "]", ",", "&a ", "*a", "! ", "!!str ", "<<: *a\n",
    "---\n", "...\n", "%YAML 1.1\n", "%TAG ! tag:x,2000:\n", "? ", "|", ">", "#", "'", '"',
    "\t", "\x00", "\r", "\ufeff", "\u2028", "\x85", "\x1b", "\\", "@", "`", "%", "  ",
    "\n  - {kind: flatten}\n", "\n  <<: {filters: 3}\n", "\nlayers: []\n", "\nx: &x [*x]\n",
    "\n? [a, b]\n: c\n", "\n1: x\n", "\ntrue: x\n", "\n~: x\n", "\n? \n: x\n",
]
BOMB = "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n"
               for p, c in zip("abcdefgh", "bcdefghi")).replace("*a", "lol")
KEYS = ["kind", "units", "filters", "kernel", "stride", "padding", "dilation", "size", "rate",
        "name", "bias", "activation", "alpha", "momentum", "epsilon", "seed", "batch_size",
        "iterations", "epochs", "learning_rate", "classes", "input", "layers", "train", "init",
        "kernal", "Kind", "unit", "", "<<", "1", "null"]


# --------------------------------------------------------------------------- text level


def _lines(text: str) -> list[str]:
    return text.split("\n")


def delete_line(text: str, rnd: random.Random) -> str:
    lines = _lines(text)
    del lines[rnd.randrange(len(lines))]
    return "\n".join(lines)


def duplicate_line(text: str, rnd: random.Random) -> str:
    lines = _lines(text)
    i = rnd.randrange(len(lines))
    lines.insert(rnd.randrange(len(lines) + 1), lines[i])
    return "\n".join(lines)


def swap_lines(text: str, rnd: random.Random) -> str:
    lines = _lines(text)
    i, j = rnd.randrange(len(lines)), rnd.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


def reindent_line(text: str, rnd: random.Random) -> str:
    lines = _lines(text)
    i = rnd.randrange(len(lines))
    lines[i] = rnd.choice(["", " ", "  ", "    ", "\t"]) + lines[i].lstrip(" ")
    return "\n".join(lines)


def insert_syntax(text: str, rnd: random.Random) -> str:
    at = rnd.randrange(len(text) + 1)
    return text[:at] + rnd.choice(SNIPPETS) + text[at:]


def insert_unicode(text: str, rnd: random.Random) -> str:
    at = rnd.randrange(len(text) + 1)
    alphabet = [0, 0x7f, 0xa0, 0xff, 0x100, 0x2028, 0xd800, 0xdfff, 0xfeff, 0xfffe, 0x1f600,
                0x10ffff]
    chars = "".join(chr(rnd.choice(alphabet) if rnd.random() < 0.3 else rnd.randrange(0x110000))
                    for _ in range(rnd.randint(1, 4)))
    return text[:at] + chars + text[at:]


_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?(?![\w.])")
_VALUE = re.compile(r"(?<=: )[^,{}\[\]\n]+")


def replace_number(text: str, rnd: random.Random) -> str:
    found = list(_NUMBER.finditer(text))
    if not found:
        return insert_syntax(text, rnd)
    m = rnd.choice(found)
    return text[:m.start()] + rnd.choice(NUMBERS) + text[m.end():]


def replace_value(text: str, rnd: random.Random) -> str:
    found = list(_VALUE.finditer(text))
    if not found:
        return insert_syntax(text, rnd)
    m = rnd.choice(found)
    return text[:m.start()] + rnd.choice(WORDS + NUMBERS) + text[m.end():]


def nest_deeply(text: str, rnd: random.Random) -> str:
    depth = rnd.choice([10, 98, 99, 100, 101, 300, 3000])
    found = list(_VALUE.finditer(text)) or [re.search(r"$", text)]
    m = rnd.choice(found)
    opener, closer = rnd.choice([("[", "]"), ("{a: ", "}")])
    return text[:m.start()] + opener * depth + "1" + closer * depth + text[m.end():]


def use_anchors(text: str, rnd: random.Random) -> str:
    """An anchor on one layer, then an alias or a merge key of it in another."""
    layers = [m.start() for m in re.finditer(r"(?m)^  - \{", text)]
    if len(layers) < 2:
        return insert_syntax(text, rnd)
    first, second = sorted(rnd.sample(layers, 2))
    use = rnd.choice(["*l", "{<<: *l, name: merged}", "{<<: [*l, {units: 2}]}", "*l\n  - *l"])
    end = text.index("\n", second) if "\n" in text[second:] else len(text)
    text = text[:second + 4] + use + text[end:]
    return text[:first + 4] + "&l " + text[first + 4:]


def add_bomb(text: str, rnd: random.Random) -> str:
    levels = rnd.randint(3, 8)
    return text + "a: &a [lol]\n" + "".join(BOMB.splitlines(keepends=True)[:levels])


def line_ends(text: str, rnd: random.Random) -> str:
    return rnd.choice([text.replace("\n", "\r\n"), text.replace("\n", "\r"), "\ufeff" + text,
                       text + "\n---\n" + text, "%YAML 1.2\n---\n" + text])


def truncate(text: str, rnd: random.Random) -> str:
    return text[:rnd.randrange(len(text) + 1)]


TEXT_MUTATIONS: list[Callable[[str, random.Random], str]] = [
    delete_line, duplicate_line, swap_lines, reindent_line, insert_syntax, insert_unicode,
    replace_number, replace_number, replace_value, replace_value, nest_deeply, use_anchors,
    add_bomb, line_ends, truncate,
]


# --------------------------------------------------------------------------- data level


def random_value(rnd: random.Random, depth: int = 0) -> Any:
    roll = rnd.random()
    if roll < 0.1:
        return rnd.choice([None, True, False])
    if roll < 0.35:
        return rnd.choice([0, 1, -1, 2, 3, 7, 28, 2**31 - 1, 2**31, 2**63, -(2**63), 10**30,
                           10**400, -(10**400)])
    if roll < 0.55:
        return rnd.choice([0.0, 0.5, -0.5, 1.0, 1e-4, 1e308, 1e-320, 5e-324, float("inf"),
                           float("-inf"), float("nan")])
    if roll < 0.8 or depth > 2:
        return rnd.choice(["", "same", "valid", "relu", "conv2d", "dense", "flatten", "mnist",
                           "5:5", "yes", "no", "on", "null", "1e-4", "032", "x" * 300, "a\nb",
                           "\x00", "\u2028", "é", "😀", "<<", "*a", "&a", "#", ": "])
    if roll < 0.9:
        return [random_value(rnd, depth + 1) for _ in range(rnd.randint(0, 3))]
    return {rnd.choice(KEYS): random_value(rnd, depth + 1) for _ in range(rnd.randint(0, 3))}


def _containers(data: Any) -> Iterator[dict | list]:
    if isinstance(data, (dict, list)):
        yield data
        for child in (data.values() if isinstance(data, dict) else data):
            yield from _containers(child)


def mutate_data(data: Any, rnd: random.Random) -> Any:
    containers = list(_containers(data))
    if not containers:
        return random_value(rnd)
    box = rnd.choice(containers)
    keys = list(box) if isinstance(box, dict) else list(range(len(box)))
    action = rnd.choice(["replace", "replace", "drop", "add", "repeat"])
    if action == "add" or not keys:
        if isinstance(box, dict):
            box[rnd.choice(KEYS + [1, True, None, 1.5])] = random_value(rnd)
        else:
            box.insert(rnd.randrange(len(box) + 1), random_value(rnd))
    elif action == "replace":
        box[rnd.choice(keys)] = random_value(rnd)
    elif action == "drop":
        del box[rnd.choice(keys)]
    elif isinstance(box, list):
        box.insert(rnd.randrange(len(box) + 1), box[rnd.choice(keys)])
    else:
        key = rnd.choice(keys)
        box[key] = box[rnd.choice(keys)]
    return data


def dump(data: Any, rnd: random.Random) -> str:
    return yaml.safe_dump(data, sort_keys=rnd.random() < 0.3, allow_unicode=rnd.random() < 0.5,
                          default_flow_style=rnd.choice([None, False, True]), width=10**6)


# --------------------------------------------------------------------------- cases


def mutate(base: str, rnd: random.Random) -> bytes:
    """One to three mutations of ``base``; the bytes of the file to write."""
    text = base
    if rnd.random() < 0.45:
        data = parse_yaml(base).data
        for _ in range(rnd.randint(1, 3)):
            data = mutate_data(data, rnd)
        text = dump(data, rnd)
    for _ in range(rnd.randint(0 if text != base else 1, 3)):
        text = rnd.choice(TEXT_MUTATIONS)(text, rnd)
    raw = text.encode("utf-8", "surrogatepass")  # a lone surrogate is not UTF-8
    if rnd.random() < 0.03:
        at = rnd.randrange(len(raw) + 1)
        raw = raw[:at] + bytes([rnd.randrange(0x80, 0x100)]) + raw[at:]
    return raw


class Hang(BaseException):
    """The time limit of one run passed (a BaseException: no ``except Exception`` eats it)."""


@dataclass
class Run:
    """One command on one file: its exit status, output, and what went wrong, if anything."""

    args: tuple[str, ...]
    code: int | None = None
    out: str = ""
    err: str = ""
    traceback: str = ""
    hung: bool = False
    unlocated: list[str] = field(default_factory=list)


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise Hang in this (main) thread after ``seconds``; no limit where there is no SIGALRM."""
    if not hasattr(signal, "setitimer"):  # Windows
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise Hang

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run(args: tuple[str, ...], path: str, limit_s: float) -> Run:
    """``convspec ARGS PATH`` in this process, as the console script would run it."""
    result = Run(args)
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                time_limit(limit_s):
            result.code = main([*args, path])
    except Hang:
        result.hung = True
    except Exception:  # a traceback: what the property forbids
        result.traceback = traceback.format_exc()
    result.out, result.err = out.getvalue(), err.getvalue()
    located = re.compile(rf"(?:error: )?{re.escape(path)}:\d+:\d+: \S")
    summary = re.compile(r"\d+ of \d+ spec\(s\) invalid")
    result.unlocated = [line for line in result.err.split("\n")
                        if line and not (located.match(line) or summary.fullmatch(line))]
    return result


def failures(result: Run) -> list[str]:
    """What is wrong with one run: empty when the property holds."""
    found = []
    if result.traceback:
        found.append(f"traceback: {result.traceback.strip().splitlines()[-1]}")
    if result.hung:
        found.append("hang")
    if not result.traceback and not result.hung and result.code not in (0, 1, 2):
        found.append(f"exit code {result.code}")
    if result.unlocated:
        found.append(f"unlocated error: {result.unlocated[0]!r}")
    if result.code == 1 and not result.err.strip():
        found.append("exit code 1 without a message")
    return found


def check(raw: bytes, directory: Path, limit_s: float = 10.0) -> list[Run]:
    """Every command on the file holding ``raw``."""
    path = directory / "spec.yaml"
    path.write_bytes(raw)
    return [run(args, str(path), limit_s) for args in COMMANDS]


def disagreement(runs: list[Run]) -> list[str]:
    """validate and shapes must agree on whether a spec is valid."""
    codes = {r.code for r in runs if not r.traceback and not r.hung}
    return [f"disagree: exit codes {sorted(codes)}"] if len(codes) > 1 else []
