"""Fixtures of the keepers tests: fake exchanges on local ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_exchanges import FakeBinance, FakeCoinbase, FakeKraken, FakeServer

ETH_USD = "3012.45000000"


@pytest.fixture
def coinbase() -> Iterator[tuple[FakeCoinbase, str]]:
    fake = FakeCoinbase({"ETH-USD": ETH_USD})
    server = FakeServer(fake).start()
    yield fake, server.url
    server.stop()


@pytest.fixture
def binance() -> Iterator[tuple[FakeBinance, str]]:
    fake = FakeBinance({"ETHUSDT": ETH_USD})
    server = FakeServer(fake).start()
    yield fake, server.url
    server.stop()


@pytest.fixture
def kraken() -> Iterator[tuple[FakeKraken, str]]:
    fake = FakeKraken({"XETHZUSD": "3012.45"}, aliases={"ETHUSD": "XETHZUSD"})
    server = FakeServer(fake).start()
    yield fake, server.url
    server.stop()
