"""The gate: mutated specs never break `convspec validate` or `convspec shapes`.

Hypothesis draws a valid spec and a random source that drives the mutations of
``spec_mutations`` (text and data level); each case runs ``validate``, ``shapes`` and
``shapes --json`` through the command line in-process. Every run ends with exit status 0, 1
or 2, raises nothing, finishes within its time limit and locates every error line
(``file:line:col``); validate and shapes agree on whether the spec is valid. Derandomized and
bounded to about a minute; ``benchmarks/fuzz_cli.py`` runs 10,000 and more of the same cases.

Covers: convspec.cli.validate_cmd, convspec.cli.shapes_cmd, convspec.specification,
convspec.shapes (mutated specs end to end).
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spec_mutations import BASES, check, disagreement, failures, mutate

LIMIT_S = 10.0  # per run: the slowest case of 10,000 takes well under a second


@pytest.mark.slow
def test_mutated_specs_give_located_errors_or_a_table(tmp_path):
    outcomes = {0: 0, 1: 0}

    @settings(max_examples=3000, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.sampled_from(BASES), st.randoms(use_true_random=False))
    def property_holds(base: str, rnd: random.Random) -> None:
        raw = mutate(base, rnd)
        runs = check(raw, tmp_path, LIMIT_S)
        found = [f for r in runs for f in failures(r)] + disagreement(runs)
        assert not found, (found, raw[:2000], [r.err or r.traceback for r in runs])
        outcomes[runs[0].code] = outcomes.get(runs[0].code, 0) + 1

    property_holds()
    # guard against mutations that only ever break the spec, or never do
    assert outcomes[0] >= 50 and outcomes[1] >= 500, outcomes


def test_the_mutations_reach_every_family():
    """The families of the issue are among the cases (so the gate tries them)."""
    rnd = random.Random(0)
    texts = [mutate(BASES[i % len(BASES)], rnd) for i in range(1000)]
    for needle in [b".inf", b".nan", b"5:5", b"032", b"0b101", b"<<", b"*l", b"[[[[[[[[[[",
                   b"!!", b"yes", b"\r\n", b"\xef\xbb\xbf", b"---", b"1" + b"0" * 400]:
        assert any(needle in text for text in texts), needle
    assert any(_not_utf8(text) for text in texts)


def _not_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False
