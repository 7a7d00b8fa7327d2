"""CoinbaseSource against a local fake of Coinbase Exchange's ticker."""

from __future__ import annotations

import time

import pytest
from fake_exchanges import Reply, hung, rate_limited, server_error

from keepers.sources import (
    CoinbaseSource,
    InvalidReply,
    RateLimited,
    SourceUnavailable,
    StalePrice,
    UnknownPair,
    UpstreamError,
)


def source(url: str, **options) -> CoinbaseSource:
    return CoinbaseSource("ETH/USD", base_url=url, timeout=options.pop("timeout", 1.0), **options)


def test_observes_the_last_trade_as_an_exact_integer(coinbase):
    fake, url = coinbase
    fake.prices["ETH-USD"] = "3012.123456789"  # 9 decimals: the 9th is cut off
    before = int(time.time())
    seen = source(url).observe()
    assert seen.source == "coinbase:ETH-USD"
    assert seen.price == 301_212_345_678
    assert before - 1 <= seen.timestamp <= time.time()
    assert fake.requests == [("/products/ETH-USD/ticker", {})]


def test_maps_the_pair_to_the_product(coinbase):
    fake, url = coinbase
    fake.prices["BTC-USD"] = "97000.5"
    assert source(url).product == "ETH-USD"
    assert CoinbaseSource("btc/usd", base_url=url).observe().price == 9_700_050_000_000


def test_a_json_number_is_read_exactly_never_through_a_float(coinbase):
    fake, url = coinbase
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    # as a float this would be 123456789.12345679
    fake.next = Reply(200, f'{{"price": 123456789.123456789012, "time": "{stamp}"}}')
    assert source(url).observe().price == 12_345_678_912_345_678


def test_unknown_or_renamed_product(coinbase):
    _, url = coinbase
    with pytest.raises(UnknownPair, match="product MATIC-USD not found") as raised:
        CoinbaseSource("MATIC/USD", base_url=url).observe()
    assert raised.value.retry_after == UnknownPair.DEFAULT_RETRY_AFTER


def test_rate_limited_with_retry_after(coinbase):
    fake, url = coinbase
    fake.next = rate_limited("9", {"message": "Public rate limit exceeded"})
    with pytest.raises(RateLimited, match="HTTP 429") as raised:
        source(url).observe()
    assert raised.value.retry_after == 9.0


def test_stale_trade_time(coinbase):
    fake, url = coinbase
    fake.data_time = time.time() - 120
    with pytest.raises(StalePrice, match=r"price is 1[12]\d s old \(limit 60 s\)"):
        source(url).observe()
    assert source(url, max_age=300).observe().price == 301_245_000_000


def test_trade_time_in_the_future(coinbase):
    fake, url = coinbase
    fake.data_time = time.time() + 60
    with pytest.raises(InvalidReply, match="in the future"):
        source(url).observe()


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"price": True, "time": "2026-01-01T00:00:00Z"}, "is a bool"),
        ({"price": None, "time": "2026-01-01T00:00:00Z"}, "is a NoneType"),
        ({"price": "-3012.45", "time": "2026-01-01T00:00:00Z"}, "not a plain positive"),
        ({"price": "3e3", "time": "2026-01-01T00:00:00Z"}, "not a plain positive"),
        ({"price": "0.000000001", "time": "2026-01-01T00:00:00Z"}, "zero at 8 decimals"),
        ({"price": "3012.45"}, "no trade time"),
        ({"price": "3012.45", "time": "yesterday"}, "not ISO 8601"),
        ({"price": "3012.45", "time": "2026-01-01T00:00:00"}, "no time zone"),
        (["3012.45"], "not a JSON object"),
    ],
)
def test_malformed_tickers(coinbase, body, match):
    fake, url = coinbase
    fake.next = Reply(200, body)
    with pytest.raises(InvalidReply, match=match):
        source(url).observe()


def test_in_body_error(coinbase):
    fake, url = coinbase
    fake.next = Reply(400, {"message": "invalid request"})
    with pytest.raises(UpstreamError, match="HTTP 400: invalid request"):
        source(url).observe()


def test_gateway_error_and_hung_reply(coinbase):
    fake, url = coinbase
    fake.next = server_error(502)
    with pytest.raises(SourceUnavailable, match="HTTP 502"):
        source(url).observe()
    fake.next = hung()
    with pytest.raises(SourceUnavailable, match="no answer within 0.3 s"):
        source(url, timeout=0.3).observe()
