"""Exact price conversions: decimal strings and Chainlink answers to 8-decimal integers."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keepers.sources.numbers import MAX_PRICE, PriceFormatError, parse_price, scale_answer


@given(st.integers(1, MAX_PRICE), st.text("0123456789", max_size=10))
def test_decimal_strings_round_trip_and_extra_digits_are_cut(units, extra):
    text = f"{units // 10**8}.{units % 10**8:08d}{extra}"
    assert parse_price(text) == units
    assert parse_price(Decimal(text)) == units


@given(st.integers(1, 10**12))
def test_whole_numbers(whole):
    assert parse_price(str(whole)) == whole * 10**8
    assert parse_price(whole) == whole * 10**8


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1.",
        ".5",
        "+1",
        "-1",
        " 1",
        "1 ",
        "1_000",
        "1e5",
        "1E5",
        "NaN",
        "Infinity",
        "0x10",
        "١٢٣",
    ],
)
def test_anything_but_plain_decimal_notation_is_refused(text):
    with pytest.raises(PriceFormatError, match="not a plain positive decimal"):
        parse_price(text)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("0", "zero at 8 decimals"),
        ("0.000000009", "zero at 8 decimals"),
        ("1000000000000.00000001", "above the Oracle's maximum"),
        (1.5, "is a float"),
        (None, "is a NoneType"),
        (True, "is a bool"),
        (Decimal("NaN"), "not a plain positive"),
    ],
)
def test_unusable_values(value, match):
    with pytest.raises(PriceFormatError, match=match):
        parse_price(value)


def test_the_oracle_maximum_itself_is_accepted():
    assert parse_price("1000000000000") == MAX_PRICE


@given(st.integers(1, 10**40), st.integers(0, 30))
def test_chainlink_answers_scale_down_exactly(answer, decimals):
    expected = int(Fraction(answer * 10**8, 10**decimals))  # floor for positive values
    if expected == 0 or expected > MAX_PRICE:
        with pytest.raises(PriceFormatError):
            scale_answer(answer, decimals)
    else:
        assert scale_answer(answer, decimals) == expected


@pytest.mark.parametrize("answer", [0, -1, -(10**20)])
def test_chainlink_answers_must_be_positive(answer):
    with pytest.raises(PriceFormatError, match="is not positive"):
        scale_answer(answer, 8)
