"""The HTTP layer under every exchange source: hung and trickled replies, size cap,
connection failures, Retry-After forms, and no URL in any message."""

from __future__ import annotations

import logging
import time
import traceback
from email.utils import formatdate

import pytest
from fake_exchanges import FakeServer, Reply, trickled

from keepers.sources import CoinbaseSource, SourcePanel, SourceUnavailable
from keepers.sources.http import JsonGetter, http_date, parse_retry_after
from strikeline.chain import free_port


@pytest.fixture
def server():
    replies: dict[str, Reply] = {}
    fake = FakeServer(lambda path, query: replies.get(path, Reply(404, {"message": "none"})))
    fake.start()
    yield replies, fake.url
    fake.stop()


def test_a_trickled_reply_hits_the_whole_reply_deadline(server):
    replies, url = server
    replies["/slow"] = trickled({"price": "1.0", "padding": "x" * 40}, every=0.05)
    getter = JsonGetter("slow", url, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(SourceUnavailable, match="reply took longer than 0.5 s"):
        getter.get("/slow")
    assert time.monotonic() - started < 1.5  # a per-read timeout alone would wait ~3 s


def test_oversized_reply(server):
    replies, url = server
    replies["/big"] = Reply(200, {"blob": "x" * 100_000})
    with pytest.raises(SourceUnavailable, match="reply larger than 65536 bytes"):
        JsonGetter("big", url).get("/big")


def test_connection_refused_names_no_url():
    secret_url = f"http://127.0.0.1:{free_port()}/v3/secret-api-key-123"
    with pytest.raises(SourceUnavailable, match="connection failed") as raised:
        JsonGetter("down", secret_url, timeout=0.5).get("/ticker")
    shown = "".join(traceback.format_exception(raised.value))
    assert "secret-api-key-123" not in shown
    assert "127.0.0.1" not in shown


def test_retry_after_as_an_http_date(server):
    replies, url = server
    replies["/limited"] = Reply(429, {}, {"Retry-After": formatdate(time.time() + 40, usegmt=True)})
    with pytest.raises(Exception, match="HTTP 429") as raised:
        JsonGetter("limited", url).get("/limited")
    assert 38 <= raised.value.retry_after <= 40


def test_503_carries_its_retry_after(server):
    replies, url = server
    replies["/down"] = Reply(503, {"message": "maintenance"}, {"Retry-After": "300"})
    with pytest.raises(SourceUnavailable, match="HTTP 503") as raised:
        JsonGetter("down", url).get("/down")
    assert raised.value.retry_after == 300.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("12", 12.0),
        ("soon", None),
        ("-5", None),
        ("Thu, 01 Jan 1970 00:01:40 GMT", 0.0),
    ],
)
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value, now=1_000.0) == expected


def test_http_date():
    assert http_date("Thu, 01 Jan 1970 00:01:40 GMT") == 100
    assert http_date("not a date") is None
    assert http_date("Thu, 01 Jan 1970 00:01:40") is None  # no zone


@pytest.mark.parametrize("reachable", [True, False])
def test_sources_log_no_url(server, caplog, reachable):
    _, url = server
    base = url if reachable else f"http://127.0.0.1:{free_port()}"
    panel = SourcePanel([CoinbaseSource("ETH/USD", base_url=f"{base}/key-789/", timeout=0.5)])
    with caplog.at_level(logging.INFO):
        readings = panel.observe()
    kind = "UnknownPair" if reachable else "SourceUnavailable"
    assert readings.failures[0].kind == kind
    assert f"price source coinbase:ETH-USD failed ({kind})" in caplog.text
    # httpx logs every request's full URL at INFO; keepers.sources.http quiets it
    assert "key-789" not in caplog.text and "127.0.0.1" not in caplog.text
