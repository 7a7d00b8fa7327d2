"""KrakenSource against a local fake of Kraken's public ticker."""

from __future__ import annotations

import time

import pytest
from fake_exchanges import Reply, kraken_error

from keepers.sources import (
    InvalidReply,
    KrakenSource,
    RateLimited,
    SourceUnavailable,
    StalePrice,
    UnknownPair,
    UpstreamError,
)


def source(url: str, **options) -> KrakenSource:
    return KrakenSource("ETH/USD", base_url=url, timeout=1.0, **options)


def test_alias_answered_under_the_canonical_name(kraken):
    fake, url = kraken
    seen = source(url).observe()
    assert seen.source == "kraken:ETHUSD"
    assert seen.price == 301_245_000_000
    assert abs(seen.timestamp - time.time()) <= 2
    assert fake.requests == [("/0/public/Ticker", {"pair": "ETHUSD"})]


def test_answer_for_another_pair_is_refused(kraken):
    fake, url = kraken
    fake.aliases["ETHUSD"] = "XETHZEUR"  # renamed upstream: the alias now means euros
    fake.prices["XETHZEUR"] = "2800.1"
    with pytest.raises(UnknownPair, match=r"answered for \['XETHZEUR'\]"):
        source(url).observe()


def test_unknown_pair_in_the_error_array(kraken):
    _, url = kraken
    with pytest.raises(UnknownPair, match="EQuery:Unknown asset pair"):
        KrakenSource("DOGE/CHF", base_url=url).observe()


def test_rate_limit_in_the_error_array(kraken):
    fake, url = kraken
    fake.next = kraken_error("EAPI:Rate limit exceeded")
    with pytest.raises(RateLimited, match="EAPI:Rate limit exceeded") as raised:
        source(url).observe()
    assert raised.value.retry_after == RateLimited.DEFAULT_RETRY_AFTER


def test_throttled_until_a_time(kraken):
    fake, url = kraken
    until = int(time.time()) + 20
    fake.next = kraken_error(f"EService: Throttled: {until}")
    with pytest.raises(RateLimited, match="Throttled") as raised:
        source(url).observe()
    assert 18 <= raised.value.retry_after <= 20


def test_service_unavailable_and_other_errors(kraken):
    fake, url = kraken
    fake.next = kraken_error("EService:Unavailable")
    with pytest.raises(SourceUnavailable, match="EService:Unavailable"):
        source(url).observe()
    fake.next = kraken_error("EGeneral:Invalid arguments")
    with pytest.raises(UpstreamError, match="EGeneral:Invalid arguments"):
        source(url).observe()


def test_warnings_alone_do_not_fail(kraken):
    fake, url = kraken
    fake.next = Reply(
        200, {"error": ["WGeneral:Deprecated"], "result": {"XETHZUSD": {"c": ["3100.5", "1"]}}}
    )
    assert source(url).observe().price == 310_050_000_000


def test_stale_date(kraken):
    fake, url = kraken
    fake.data_time = time.time() - 90
    with pytest.raises(StalePrice):
        source(url).observe()


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"error": [], "result": {}}, "no result"),
        ({"error": []}, "no result"),
        ({"error": [], "result": {"XETHZUSD": {"a": ["1", "1", "1"]}}}, "no last trade"),
        ({"error": [], "result": {"XETHZUSD": {"c": ["abc", "1"]}}}, "not a plain positive"),
        ("[]", "not a JSON object"),
        ({"error": "EAPI:Rate limit exceeded"}, "error field is not a list"),
    ],
)
def test_malformed_replies(kraken, body, match):
    fake, url = kraken
    fake.next = Reply(200, body)
    with pytest.raises(InvalidReply, match=match):
        source(url).observe()
