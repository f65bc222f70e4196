"""convspec.limits: the bounds every size shares, and how a number too large to print is named."""

from __future__ import annotations

import pytest

from convspec.limits import digits, number_text


@pytest.mark.parametrize("power, offset, count", [
    (0, -1, 1), (0, 0, 1), (1, -1, 1), (1, 0, 2), (2, -1, 2), (18, -1, 18), (18, 0, 19),
    (400, -1, 400), (400, 0, 401), (5000, 7, 5001),
])
def test_digits_counts_without_converting_to_text(power, offset, count):
    number = 10**power + offset  # 10**5000 cannot be converted to text in Python >= 3.11
    assert digits(number) == count
    assert digits(-number) == count


def test_number_text_names_a_huge_number_by_its_digits():
    assert number_text(4294967296) == "4294967296"
    assert number_text(10**30 - 1) == repr(10**30 - 1)
    assert number_text(10**400) == "a 401-digit number"
    assert number_text(10**5000) == "a 5,001-digit number"
