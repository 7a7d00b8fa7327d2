"""strikeline.ids.next_expiry: the days_ahead-th 08:00 UTC expiry strictly after now."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strikeline import ids
from strikeline.errors import InvalidArgument
from strikeline.units import DAY, EXPIRY_HOUR, is_valid_expiry

NOW = st.integers(min_value=0, max_value=2**40)


@given(now=NOW, days_ahead=st.integers(min_value=0, max_value=3_650))
def test_never_past_always_an_expiry_and_days_ahead_counts_expiries(now, days_ahead):
    expiry = ids.next_expiry(now, days_ahead)
    assert expiry > now and is_valid_expiry(expiry)
    # exactly max(days_ahead, 1) expiries lie in (now, expiry]
    assert (expiry - EXPIRY_HOUR) // DAY - (now - EXPIRY_HOUR) // DAY == max(days_ahead, 1)


@given(now=NOW)
def test_zero_and_one_are_the_next_expiry_and_seven_is_six_days_later(now):
    assert ids.next_expiry(now, 0) == ids.next_expiry(now, 1) == ids.next_expiry(now)
    assert ids.next_expiry(now, 7) == ids.next_expiry(now) + 6 * DAY


@pytest.mark.parametrize(
    ("now", "days_ahead", "expected"),
    [
        (0, 1, EXPIRY_HOUR),  # 1970-01-01 00:00 -> 08:00 the same day
        (EXPIRY_HOUR - 1, 0, EXPIRY_HOUR),
        (EXPIRY_HOUR, 0, EXPIRY_HOUR + DAY),  # an expiry at now is past
        (EXPIRY_HOUR, 1, EXPIRY_HOUR + DAY),
        (EXPIRY_HOUR + 1, 2, EXPIRY_HOUR + 2 * DAY),
    ],
)
def test_examples(now, days_ahead, expected):
    assert ids.next_expiry(now, days_ahead) == expected


@pytest.mark.parametrize(
    ("now", "days_ahead", "message"),
    [
        (0, -1, "^days_ahead: must not be negative"),
        (-1, 1, "^now: must not be negative"),
        (1.5, 1, "^now: expected an integer"),
        (0, True, "^days_ahead: expected an integer"),
    ],
)
def test_negative_or_non_integer_arguments_are_refused(now, days_ahead, message):
    with pytest.raises(InvalidArgument, match=message):
        ids.next_expiry(now, days_ahead)
