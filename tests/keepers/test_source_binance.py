"""BinanceSource against a local fake of Binance's spot price ticker."""

from __future__ import annotations

import time

import pytest
from fake_exchanges import Reply, banned, rate_limited

from keepers.sources import (
    BinanceSource,
    InvalidReply,
    RateLimited,
    StalePrice,
    UnknownPair,
    UpstreamError,
)


def source(url: str, **options) -> BinanceSource:
    return BinanceSource("ETH/USDT", base_url=url, timeout=1.0, **options)


def test_observes_the_price_timed_by_the_server_date(binance):
    fake, url = binance
    fake.data_time = time.time() - 30  # served from a cache half a minute old
    seen = source(url).observe()
    assert seen.source == "binance:ETHUSDT"
    assert seen.price == 301_245_000_000
    assert abs(seen.timestamp - (time.time() - 30)) <= 2
    assert fake.requests == [("/api/v3/ticker/price", {"symbol": "ETHUSDT"})]


def test_futures_shape_time_in_milliseconds_wins_over_the_date(binance):
    fake, url = binance
    millis = int(time.time() * 1000) - 5_000
    fake.next = Reply(
        200, {"symbol": "ETHUSDT", "price": "3000.1", "time": millis}, date=time.time() - 3_600
    )
    seen = source(url).observe()
    assert seen.timestamp == millis // 1000
    assert seen.price == 300_010_000_000


def test_reply_without_any_timestamp(binance):
    fake, url = binance
    fake.next = Reply(200, {"symbol": "ETHUSDT", "price": "3000.1"}, with_date=False)
    with pytest.raises(InvalidReply, match="no timestamp"):
        source(url).observe()


def test_stale_cached_reply(binance):
    fake, url = binance
    fake.data_time = time.time() - 600
    with pytest.raises(StalePrice, match="limit 60 s"):
        source(url).observe()


def test_invalid_symbol_in_body(binance):
    _, url = binance
    with pytest.raises(UnknownPair, match=r"code -1121: Invalid symbol\."):
        BinanceSource("ETH/USD", base_url=url).observe()


def test_answer_for_another_symbol(binance):
    fake, url = binance
    fake.next = Reply(200, {"symbol": "ETHBUSD", "price": "3000.1"})
    with pytest.raises(UnknownPair, match="answered for 'ETHBUSD'"):
        source(url).observe()


def test_429_with_retry_after(binance):
    fake, url = binance
    fake.next = rate_limited("13", {"code": -1003, "msg": "Too many requests."})
    with pytest.raises(RateLimited, match="HTTP 429: rate limited") as raised:
        source(url).observe()
    assert raised.value.retry_after == 13.0


def test_418_ip_ban_with_retry_after(binance):
    fake, url = binance
    fake.next = banned("120")
    with pytest.raises(RateLimited, match="HTTP 418: IP banned") as raised:
        source(url).observe()
    assert raised.value.retry_after == 120.0


def test_too_many_requests_code_without_429(binance):
    fake, url = binance
    fake.next = Reply(400, {"code": -1003, "msg": "Too much request weight used."})
    with pytest.raises(RateLimited, match="code -1003") as raised:
        source(url).observe()
    assert raised.value.retry_after == RateLimited.DEFAULT_RETRY_AFTER


def test_other_coded_error(binance):
    fake, url = binance
    fake.next = Reply(400, {"code": -1022, "msg": "Signature for this request is not valid."})
    with pytest.raises(UpstreamError, match="code -1022"):
        source(url).observe()


def test_4xx_html_page(binance):
    fake, url = binance
    fake.next = Reply(403, "<html>Forbidden</html>", {"Content-Type": "text/html"})
    with pytest.raises(UpstreamError, match="HTTP 403 without a JSON body"):
        source(url).observe()
