"""The oracle keeper's price step end to end against the three fake exchanges: what it
reports, and that disagreeing, stale, rate-limited or hung sources push nothing and say
why in one log line."""

from __future__ import annotations

import logging
import time

import pytest
from fake_exchanges import hung, kraken_error, rate_limited

from keepers.aggregate import AggregationPolicy, OnchainSpot, PushPolicy, PushReason, Refusal
from keepers.price_step import price_step
from keepers.sources import BinanceSource, CoinbaseSource, KrakenSource, SourcePanel

AGGREGATION = AggregationPolicy(max_age=60, min_sources=2, outlier_bps=100, max_spread_bps=150)
PUSH = PushPolicy(deviation_bps=50, heartbeat=1_800)
NO_PRICE = OnchainSpot(0, 0)


@pytest.fixture
def exchanges(coinbase, binance, kraken):
    (cb, cb_url), (bn, bn_url), (kr, kr_url) = coinbase, binance, kraken
    panel = SourcePanel(
        [
            CoinbaseSource("ETH/USD", base_url=cb_url, timeout=0.5),
            BinanceSource("ETH/USDT", base_url=bn_url, timeout=0.5),
            KrakenSource("ETH/USD", base_url=kr_url, timeout=0.5),
        ]
    )
    return panel, cb, bn, kr


def step(panel, onchain=NO_PRICE):
    return price_step(panel, onchain, int(time.time()), AGGREGATION, PUSH)


def set_prices(cb, bn, kr, coinbase: str, binance: str, kraken: str) -> None:
    cb.prices["ETH-USD"], bn.prices["ETHUSDT"], kr.prices["XETHZUSD"] = coinbase, binance, kraken


def test_agreeing_sources_report_their_median(exchanges, caplog):
    panel, cb, bn, kr = exchanges
    set_prices(cb, bn, kr, "3012.40", "3012.45", "3012.60")
    with caplog.at_level(logging.INFO, "keepers"):
        result = step(panel)
    assert result.report is not None and result.report.price == 301_245_000_000
    assert result.decision.reason is PushReason.FIRST_PRICE
    assert "oracle price: 301245000000 from 3 sources; push (first_price" in caplog.text


def test_an_outlier_is_dropped_and_logged(exchanges, caplog):
    panel, cb, bn, kr = exchanges
    set_prices(cb, bn, kr, "3012.40", "3012.50", "3200")
    with caplog.at_level(logging.INFO, "keepers"):
        result = step(panel)
    assert result.report.price == 301_245_000_000  # (3012.40 + 3012.50) / 2
    assert [o.source for o in result.report.outliers] == ["kraken:ETHUSD"]
    assert "outlier kraken:ETHUSD at 320000000000 dropped" in caplog.text


def test_disagreeing_sources_push_nothing(exchanges, caplog):
    panel, cb, bn, kr = exchanges
    set_prices(cb, bn, kr, "3000", "3100", "3200")
    with caplog.at_level(logging.WARNING, "keepers"):
        result = step(panel)
    assert result.report is None and result.result.reason is Refusal.DISAGREEMENT
    assert caplog.messages == [
        "oracle price: no report (disagreement): only 1 of 3 fresh sources lie within "
        "100 bps of their median 310000000000"
    ]


def test_stale_sources_push_nothing(exchanges, caplog):
    panel, cb, bn, kr = exchanges
    for fake in (cb, bn, kr):
        fake.data_time = time.time() - 600
    with caplog.at_level(logging.WARNING, "keepers"):
        result = step(panel)
    assert result.report is None and result.result.reason is Refusal.ALL_STALE
    assert "oracle price: no report (all_stale): all 3 answering sources are stale" in caplog.text
    assert caplog.text.count("(StalePrice): price is 60") == 3


def test_rate_limited_sources_push_nothing_and_are_left_alone(exchanges, caplog):
    panel, cb, bn, kr = exchanges
    bn.next = rate_limited("30", {"code": -1003, "msg": "Too many requests."})
    kr.next = kraken_error("EAPI:Rate limit exceeded")
    with caplog.at_level(logging.WARNING, "keepers"):
        result = step(panel)
    assert result.report is None and result.result.reason is Refusal.TOO_FEW_FRESH
    assert (
        "price source binance:ETHUSDT failed (RateLimited): HTTP 429: rate limited; "
        "retry in 30 s" in caplog.text
    )
    assert "oracle price: no report (too_few_fresh): 1 fresh sources, 2 needed" in caplog.text
    calls = len(bn.requests), len(kr.requests)
    assert step(panel).report is None
    assert (len(bn.requests), len(kr.requests)) == calls  # not asked inside their hint


def test_a_hung_source_does_not_hold_up_the_others(exchanges):
    panel, cb, bn, kr = exchanges
    kr.next = hung(30)
    result = step(panel)
    assert result.report is not None
    assert [f.kind for f in result.readings.failures] == ["SourceUnavailable"]
    assert len(result.report.used) == 2


def test_an_unchanged_recent_price_is_not_pushed(exchanges, caplog):
    panel, cb, bn, kr = exchanges
    onchain = OnchainSpot(301_245_000_000, int(time.time()) - 120)
    with caplog.at_level(logging.INFO, "keepers"):
        result = step(panel, onchain)
    assert result.report is None and result.decision.reason is PushReason.UNCHANGED
    assert "no push (unchanged, moved 0 bps, on-chain age 1" in caplog.text
