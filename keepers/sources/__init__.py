"""Price sources behind one interface (`PriceSource.observe() -> Observation`).

Chainlink feeds through web3, the Coinbase, Binance and Kraken REST tickers, and a seeded
jump-diffusion for devnets; `SourcePanel` asks them together.
"""

from keepers.sources.base import (
    MAX_CLOCK_SKEW,
    Observation,
    PriceSource,
    Readings,
    SourceFailure,
)
from keepers.sources.binance import BinanceSource
from keepers.sources.chainlink import ChainlinkSource
from keepers.sources.coinbase import CoinbaseSource
from keepers.sources.errors import (
    InvalidReply,
    RateLimited,
    SourceError,
    SourceUnavailable,
    StalePrice,
    UnknownPair,
    UpstreamError,
)
from keepers.sources.kraken import KrakenSource
from keepers.sources.panel import SourcePanel
from keepers.sources.simulated import JumpDiffusion, SimulatedFeed

__all__ = [
    "MAX_CLOCK_SKEW",
    "BinanceSource",
    "ChainlinkSource",
    "CoinbaseSource",
    "InvalidReply",
    "JumpDiffusion",
    "KrakenSource",
    "Observation",
    "PriceSource",
    "RateLimited",
    "Readings",
    "SimulatedFeed",
    "SourceError",
    "SourceFailure",
    "SourcePanel",
    "SourceUnavailable",
    "StalePrice",
    "UnknownPair",
    "UpstreamError",
]
