"""should_push(): hypothesis against a plain model, and the edges of each rule."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keepers.aggregate import (
    AggregatePrice,
    OnchainSpot,
    PushPolicy,
    PushReason,
    should_push,
)

NOW = 1_800_000_000
POLICY = PushPolicy(deviation_bps=50, heartbeat=1_800)


def candidate(price: int, timestamp: int = NOW) -> AggregatePrice:
    return AggregatePrice(price, timestamp, ())


def model(price: int, timestamp: int, onchain: OnchainSpot, now: int, policy: PushPolicy):
    if onchain.price == 0:
        return True, PushReason.FIRST_PRICE
    if timestamp <= onchain.timestamp:
        return False, PushReason.NOT_NEWER
    if Fraction(abs(price - onchain.price), onchain.price) >= Fraction(
        policy.deviation_bps, 10_000
    ):
        return True, PushReason.DEVIATION
    if now - onchain.timestamp >= policy.heartbeat:
        return True, PushReason.HEARTBEAT
    return False, PushReason.UNCHANGED


@given(
    st.integers(1, 10**20),
    st.integers(0, 10**20),
    st.integers(NOW - 5_000, NOW),
    st.integers(NOW - 5_000, NOW),
    st.builds(PushPolicy, deviation_bps=st.integers(1, 9_999), heartbeat=st.integers(1, 4_000)),
)
def test_matches_the_model(price, onchain_price, onchain_time, observed_at, policy):
    onchain = OnchainSpot(onchain_price, onchain_time)
    decision = should_push(candidate(price, observed_at), onchain, NOW, policy)
    assert (decision.push, decision.reason) == model(price, observed_at, onchain, NOW, policy)
    assert decision.age == NOW - onchain_time
    if onchain_price:
        assert decision.deviation_bps == abs(price - onchain_price) * 10_000 // onchain_price


def test_first_price():
    decision = should_push(candidate(3_000), OnchainSpot(0, 0), NOW, POLICY)
    assert decision.push and decision.reason is PushReason.FIRST_PRICE


@pytest.mark.parametrize(
    ("price", "push"), [(100_500, True), (99_500, True), (100_499, False), (99_501, False)]
)
def test_deviation_threshold_is_inclusive(price, push):
    decision = should_push(candidate(price), OnchainSpot(100_000, NOW - 10), NOW, POLICY)
    assert decision.push is push
    assert decision.reason is (PushReason.DEVIATION if push else PushReason.UNCHANGED)


@pytest.mark.parametrize(("age", "push"), [(1_800, True), (1_799, False)])
def test_heartbeat_is_inclusive(age, push):
    decision = should_push(candidate(100_000), OnchainSpot(100_000, NOW - age), NOW, POLICY)
    assert (decision.push, decision.age) == (push, age)
    assert decision.reason is (PushReason.HEARTBEAT if push else PushReason.UNCHANGED)


def test_a_report_no_newer_than_the_chain_is_never_pushed():
    onchain = OnchainSpot(100_000, NOW - 5_000)
    decision = should_push(candidate(200_000, NOW - 5_000), onchain, NOW, POLICY)
    assert not decision.push and decision.reason is PushReason.NOT_NEWER
    assert decision.deviation_bps == 10_000


@pytest.mark.parametrize(
    "options", [{"deviation_bps": 0}, {"deviation_bps": 10_000}, {"heartbeat": 0}]
)
def test_bad_policies(options):
    with pytest.raises(ValueError):
        PushPolicy(**options)
