"""The project's layout rules (PREAMBLE "Rules", issue 11): tests mirror modules, and no module
under ``convspec/`` grows past about 300 lines without saying why at its top.

Covers: the layout of tests/ against convspec/ (no module of its own).
"""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "convspec"
TESTS = ROOT / "tests"

# Test files that check a behaviour crossing modules keep a behaviour name; each says in its
# docstring ("Covers: ...") which modules it exercises.
CROSS_CUTTING = {
    "test_accuracy.py": "both backends learn real MNIST and agree: train, evaluation, backends",
    "test_cases.py": "the shared failing inputs of tests/cases/, end to end through the CLI",
    "test_cli_data.py": "the --data option across every command that reads data",
    "test_cli_files.py": "disk failures and damaged run files through every command",
    "test_cross_backend.py": "PyTorch against TensorFlow: gradients, runs, weights, state",
    "test_examples.py": "the scripts of examples/, which are not modules of convspec",
    "test_fuzz.py": "mutated specs through `validate` and `shapes` on the command line",
    "test_jit.py": "opt-in compilation in both backends and the train --compile flag",
    "test_own_data.py": "real data through every source kind of convspec.data and the CLI",
    "test_parity.py": "every backend against the shape table and the NumPy reference",
    "test_project_rules.py": "this file: the layout of tests/ and convspec/",
    "test_properties.py": "property test of the spec loader and the shape inference together",
    "test_spec_generator.py": "random valid specs compiled by every backend (the gate)",
    "test_zoo.py": "the published networks of specs/zoo/: specification, shapes, summary",
}

LONG = 330  # lines; "about 300" in the rules, with a little slack before a reason is due
REASON = "Over 300 lines because"


def module_names() -> set[str]:
    """Every name ``tests/test_<name>.py`` may take for a module under convspec/.

    ``convspec/a/b/c.py`` gives ``c``, ``b_c`` and ``a_b_c``; a package's ``__init__.py`` is
    named after the package, a leading underscore and a ``_cmd`` suffix are dropped
    (``cli/_types.py`` -> ``cli_types``, ``cli/train_cmd.py`` -> ``cli_train``), and a plural
    folder may be written singular (``backends/base.py`` -> ``backend_base``).
    """
    names: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if not parts or parts[-1] == "__main__":
            continue
        parts[-1] = parts[-1].lstrip("_").removesuffix("_cmd")
        spellings = [[p, p[:-1]] if p.endswith("s") else [p] for p in parts]
        for start in range(len(parts)):
            names.update("_".join(combo) for combo in itertools.product(*spellings[start:]))
    return names


def test_every_test_file_is_named_after_a_module_or_is_a_listed_behaviour():
    names = module_names()
    unnamed = sorted(path.name for path in TESTS.glob("test_*.py")
                     if path.stem.removeprefix("test_") not in names
                     and path.name not in CROSS_CUTTING)
    assert not unnamed, (
        f"{', '.join(unnamed)}: name a test file tests/test_<module>.py after the module it "
        "tests (convspec/cli/_types.py -> test_cli_types.py), or, for a behaviour that crosses "
        "modules, add it to CROSS_CUTTING in tests/test_project_rules.py with a reason and say "
        "which modules it covers in a 'Covers:' line of its docstring")


def test_the_cross_cutting_list_is_current():
    names = module_names()
    for name in CROSS_CUTTING:
        assert (TESTS / name).is_file(), f"{name} is listed in CROSS_CUTTING but does not exist"
        assert Path(name).stem.removeprefix("test_") not in names, (
            f"{name} is named after a module: it needs no place in CROSS_CUTTING")


def test_each_cross_cutting_file_names_the_modules_it_covers():
    for name in CROSS_CUTTING:
        doc = ast.get_docstring(ast.parse((TESTS / name).read_text(encoding="utf-8"))) or ""
        covers = re.search(r"^Covers: (.+?)(?:\n\n|\Z)", doc, re.M | re.S)
        assert covers, f"{name}: its docstring needs a 'Covers: ...' line naming the modules"
        for dotted in re.findall(r"\bconvspec(?:\.\w+)+", covers.group(1)):
            where = ROOT.joinpath(*dotted.split("."))
            assert where.with_suffix(".py").is_file() or (where / "__init__.py").is_file(), (
                f"{name} says it covers {dotted}, which is not a module")


def test_every_long_module_says_why_at_its_top():
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        if lines <= LONG:
            continue
        top = (ast.get_docstring(ast.parse(text)) or "").split("\n\n")[:2]  # its first paragraphs
        if not any(REASON in paragraph for paragraph in top):
            missing.append(f"{path.relative_to(ROOT)} ({lines} lines)")
    assert not missing, (
        f"{', '.join(missing)}: a module over {LONG} lines splits along a clear seam (one idea "
        f"per module) or says at the top of its docstring '{REASON} ...'")
