"""aggregate(): hypothesis against a plain model of the rules, plus named examples."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keepers.aggregate import (
    AggregatePrice,
    AggregationPolicy,
    Refusal,
    Refused,
    aggregate,
    median,
)
from keepers.sources import Observation, Readings, SourceFailure

NOW = 1_800_000_000
POLICY = AggregationPolicy(
    max_age=60, max_future=5, min_sources=2, outlier_bps=100, max_spread_bps=150
)


def obs(price: int, age: int = 0, source: str | None = None) -> Observation:
    return Observation(source or f"s{price}-{age}", price, NOW - age)


def stale_failure(name: str = "late") -> SourceFailure:
    return SourceFailure(name, "StalePrice", "price is 900 s old", 5.0)


def down(name: str = "down") -> SourceFailure:
    return SourceFailure(name, "SourceUnavailable", "HTTP 502", 5.0)


# --------------------------------------------------------------------------- the model


def model(readings: Readings, now: int, p: AggregationPolicy):
    """The rules of docs/keepers.md, written plainly with exact fractions."""
    fresh = [o for o in readings.observations if -p.max_future <= now - o.timestamp <= p.max_age]
    stale = [o for o in readings.observations if o not in fresh]
    if not fresh:
        if stale or any(f.kind == "StalePrice" for f in readings.failures):
            return Refusal.ALL_STALE
        return Refusal.NO_DATA
    if len(fresh) < p.min_sources:
        return Refusal.TOO_FEW_FRESH

    def exact_median(values):
        values = sorted(values)
        n = len(values)
        return (
            Fraction(values[n // 2]) if n % 2 else Fraction(values[n // 2 - 1] + values[n // 2], 2)
        )

    center = int(exact_median([o.price for o in fresh]))  # the Oracle rounds down
    kept = [
        o
        for o in fresh
        if Fraction(abs(o.price - center), center) <= Fraction(p.outlier_bps, 10_000)
    ]
    if len(kept) < p.min_sources or Fraction(len(kept), len(fresh)) <= Fraction(1, 2):
        return Refusal.DISAGREEMENT
    price = int(exact_median([o.price for o in kept]))
    spread = max(o.price for o in kept) - min(o.price for o in kept)
    if Fraction(spread, price) > Fraction(p.max_spread_bps, 10_000):
        return Refusal.DISAGREEMENT
    outliers = [o for o in fresh if o not in kept]
    timestamp = min([now] + [o.timestamp for o in kept])
    return price, timestamp, sorted(kept, key=repr), sorted(outliers, key=repr)


def summary(result):
    if isinstance(result, Refused):
        return result.reason
    return (
        result.price,
        result.timestamp,
        sorted(result.used, key=repr),
        sorted(result.outliers, key=repr),
    )


# --------------------------------------------------------------------------- strategies


@st.composite
def observation_sets(draw):
    base = draw(st.integers(1, 10**12))
    spread = draw(st.sampled_from([0, 50, 100, 200, 500, 5_000]))  # bps around the base
    n = draw(st.integers(0, 9))
    result = []
    for i in range(n):
        if draw(st.booleans()):
            price = base + draw(st.integers(-base * spread // 10_000, base * spread // 10_000))
        else:
            price = draw(st.integers(1, 10**13))
        price = max(1, price)
        age = draw(st.one_of(st.integers(-10, 70), st.just(0)))
        result.append(Observation(f"source{i}", price, NOW - age))
    failures = draw(st.lists(st.sampled_from([stale_failure(), down()]), max_size=2))
    return Readings(tuple(result), tuple(failures))


@st.composite
def agreeing_sets(draw):
    """Sets POLICY reports from: 2-7 fresh sources within 40 bps of a base price, fewer
    outliers at least 5% away, stale observations and failed sources around them."""
    base = draw(st.integers(10**4, 10**18))
    band = base * 40 // 10_000
    n = draw(st.integers(2, 7))
    result = [
        Observation(
            f"agree{i}", base + draw(st.integers(-band, band)), NOW - draw(st.integers(-5, 60))
        )
        for i in range(n)
    ]
    for i in range(draw(st.integers(0, n - 1))):
        far = base * draw(st.integers(500, 50_000)) // 10_000
        price = base + far if draw(st.booleans()) else max(1, base - far)
        result.append(Observation(f"outlier{i}", price, NOW - draw(st.integers(0, 60))))
    for i in range(draw(st.integers(0, 2))):
        result.append(Observation(f"stale{i}", draw(st.integers(1, 10**18)), NOW - 61 - i))
    failures = draw(st.lists(st.sampled_from([stale_failure(), down()]), max_size=2))
    return Readings(tuple(draw(st.permutations(result))), tuple(failures))


policies = st.builds(
    AggregationPolicy,
    max_age=st.integers(1, 100),
    max_future=st.integers(0, 10),
    min_sources=st.integers(1, 4),
    outlier_bps=st.integers(1, 2_000),
    max_spread_bps=st.integers(1, 4_000),
)


# --------------------------------------------------------------------------- properties


@given(observation_sets(), policies)
def test_matches_the_model(readings, policy):
    assert summary(aggregate(readings, NOW, policy)) == model(readings, NOW, policy)


@given(observation_sets(), st.randoms(use_true_random=False))
def test_order_of_observations_does_not_matter(readings, rng):
    shuffled = list(readings.observations)
    rng.shuffle(shuffled)
    again = Readings(tuple(shuffled), readings.failures)
    assert summary(aggregate(again, NOW, POLICY)) == summary(aggregate(readings, NOW, POLICY))


@given(agreeing_sets())
def test_a_reported_price_is_bounded_by_agreeing_fresh_sources(readings):
    result = aggregate(readings, NOW, POLICY)
    assert isinstance(result, AggregatePrice)
    assert sorted(o.source for o in result.used) == sorted(
        o.source for o in readings.observations if o.source.startswith("agree")
    )
    used = [o.price for o in result.used]
    assert min(used) <= result.price <= max(used)
    assert len(result.used) >= POLICY.min_sources
    assert 2 * len(result.used) > len(result.used) + len(result.outliers)
    assert all(NOW - o.timestamp <= POLICY.max_age for o in result.used)
    assert (max(used) - min(used)) * 10_000 <= POLICY.max_spread_bps * result.price
    assert result.timestamp == min(NOW, *(o.timestamp for o in result.used))


@given(agreeing_sets(), st.integers(61, 10**6), st.integers(1, 10**15))
def test_a_stale_observation_never_moves_the_price(readings, age, price):
    before = aggregate(readings, NOW, POLICY)
    assert isinstance(before, AggregatePrice)
    with_stale = Readings(readings.observations + (obs(price, age, "old"),), readings.failures)
    after = aggregate(with_stale, NOW, POLICY)
    assert isinstance(after, AggregatePrice)
    assert (after.price, after.used) == (before.price, before.used)


@given(st.integers(1, 10**20), st.integers(2, 9))
def test_unanimous_sources_report_their_price(price, n):
    readings = Readings(tuple(obs(price, i, f"s{i}") for i in range(n)))
    result = aggregate(readings, NOW, POLICY)
    assert isinstance(result, AggregatePrice)
    assert result.price == price and not result.outliers


@given(st.lists(st.integers(0, 10**20), min_size=1, max_size=16))
def test_median_is_the_oracles(values):
    ordered = sorted(values)
    n = len(ordered)
    expected = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) // 2
    assert median(values) == expected


# --------------------------------------------------------------------------- examples


def test_one_outlier_among_three_is_dropped():
    readings = Readings((obs(3_000, source="a"), obs(3_001, source="b"), obs(3_300, source="c")))
    result = aggregate(readings, NOW, POLICY)
    assert isinstance(result, AggregatePrice)
    assert result.price == 3_000  # (3000 + 3001) // 2: rounded down as the Oracle does
    assert [o.source for o in result.outliers] == ["c"]


def test_two_sources_far_apart_disagree():
    result = aggregate(Readings((obs(3_000), obs(3_300))), NOW, POLICY)
    assert isinstance(result, Refused) and result.reason is Refusal.DISAGREEMENT
    assert "only 0 of 2 fresh sources lie within 100 bps" in result.message


def test_no_agreeing_majority_disagrees():
    # the median's neighbourhood holds 2 of 4: not a strict majority
    prices = [10_000, 10_050, 11_000, 9_000]
    result = aggregate(Readings(tuple(obs(p) for p in prices)), NOW, POLICY)
    assert isinstance(result, Refused) and result.reason is Refusal.DISAGREEMENT


def test_agreeing_sources_spread_past_the_bound():
    # each within 1% of the median 10_000, but together they span 1.9%
    prices = [9_905, 10_000, 10_095]
    result = aggregate(Readings(tuple(obs(p) for p in prices)), NOW, POLICY)
    assert isinstance(result, Refused) and result.reason is Refusal.DISAGREEMENT
    assert "span 190 bps" in result.message
    loose = AggregationPolicy(max_spread_bps=200)
    assert aggregate(Readings(tuple(obs(p) for p in prices)), NOW, loose).price == 10_000


def test_all_stale():
    readings = Readings((obs(3_000, age=61), obs(3_001, age=3_600)), (down(),))
    result = aggregate(readings, NOW, POLICY)
    assert isinstance(result, Refused) and result.reason is Refusal.ALL_STALE
    assert result.message == "all 2 answering sources are stale (1 failed)"


def test_stale_by_the_sources_own_check_counts_as_stale():
    result = aggregate(Readings((), (stale_failure("a"), down("b"))), NOW, POLICY)
    assert isinstance(result, Refused) and result.reason is Refusal.ALL_STALE


def test_nothing_answered():
    result = aggregate(Readings((), (down("a"), down("b"))), NOW, POLICY)
    assert isinstance(result, Refused) and result.reason is Refusal.NO_DATA


def test_too_few_fresh():
    readings = Readings((obs(3_000), obs(3_000, age=61)), (down(),))
    result = aggregate(readings, NOW, POLICY)
    assert isinstance(result, Refused) and result.reason is Refusal.TOO_FEW_FRESH
    assert result.message == "1 fresh sources, 2 needed"


def test_freshness_edges():
    at_limit = Readings((obs(3_000, age=60, source="a"), obs(3_000, age=-5, source="b")))
    assert isinstance(aggregate(at_limit, NOW, POLICY), AggregatePrice)
    past = Readings((obs(3_000, age=61, source="a"), obs(3_000, age=-6, source="b")))
    assert aggregate(past, NOW, POLICY).reason is Refusal.ALL_STALE


def test_a_report_is_never_timed_after_now():
    # exchange clocks run ahead of the chain head; the Oracle rejects reports from the future
    ahead = Readings((obs(3_000, age=-3, source="a"), obs(3_000, age=-4, source="b")))
    assert aggregate(ahead, NOW, POLICY).timestamp == NOW
    mixed = Readings((obs(3_000, age=-3, source="a"), obs(3_000, age=7, source="b")))
    assert aggregate(mixed, NOW, POLICY).timestamp == NOW - 7


@pytest.mark.parametrize(
    "options",
    [
        {"max_age": 0},
        {"max_future": -1},
        {"min_sources": 0},
        {"outlier_bps": 0},
        {"outlier_bps": 10_000},
        {"max_spread_bps": 0},
    ],
)
def test_bad_policies(options):
    with pytest.raises(ValueError):
        AggregationPolicy(**options)
