"""A Chainlink `AggregatorV3Interface` feed read through web3 (production feeds on forks).

`latestRoundData()` is read at the latest block and judged by that block's timestamp, so a
fork pinned in the past is judged by its own time. A round is refused when its answer is
zero or negative, when it is incomplete (`updatedAt == 0`), when it was carried over from
an older round (`answeredInRound < roundId`), when `updatedAt` is after the block, and when
it is older than `max_age` (set it a little above the feed's heartbeat: 3,600 s for
ETH/USD on mainnet). Answers are scaled from the feed's `decimals()` to 8 decimals.

Give it a Web3 that fails fast: `strikeline.rpc.RpcPool(urls).web3()` (2 s timeouts,
failover, no retries; web3's own HTTP provider retries a hung node for about 12 s).
"""

from __future__ import annotations

from typing import Any

import requests
from web3 import Web3
from web3.exceptions import BadFunctionCallOutput, ContractLogicError, Web3Exception

from keepers.sources.base import Observation, check_fresh
from keepers.sources.errors import InvalidReply, SourceUnavailable, StalePrice
from keepers.sources.numbers import PriceFormatError, scale_answer

#: The part of Chainlink's AggregatorV3Interface a price reader needs (an external
#: contract, so its ABI lives here rather than in `strikeline.bindings`).
AGGREGATOR_V3_ABI: list[dict[str, Any]] = [
    {
        "name": "decimals",
        "type": "function",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "uint8"}],
    },
    {
        "name": "description",
        "type": "function",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "string"}],
    },
    {
        "name": "latestRoundData",
        "type": "function",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [
            {"name": "roundId", "type": "uint80"},
            {"name": "answer", "type": "int256"},
            {"name": "startedAt", "type": "uint256"},
            {"name": "updatedAt", "type": "uint256"},
            {"name": "answeredInRound", "type": "uint80"},
        ],
    },
]
#: A mainnet feed's heartbeat is typically 3,600 s; a little slack for the update to land.
DEFAULT_MAX_AGE = 3_900


class ChainlinkSource:
    """The latest round of one Chainlink-style feed."""

    def __init__(
        self, w3: Web3, address: str, *, name: str | None = None, max_age: int = DEFAULT_MAX_AGE
    ):
        if max_age <= 0:
            raise ValueError("max_age must be positive")
        self.w3 = w3
        self.address = Web3.to_checksum_address(address)
        self.max_age = max_age
        self._name = name or f"chainlink:{self.address}"
        self._feed = w3.eth.contract(address=self.address, abi=AGGREGATOR_V3_ABI)
        self._decimals: int | None = None

    @property
    def name(self) -> str:
        return self._name

    def observe(self) -> Observation:
        try:
            block = self.w3.eth.get_block("latest")
            number, now = int(block["number"]), int(block["timestamp"])
            decimals = self._feed_decimals(number)
            round_id, answer, _started, updated_at, answered_in = (
                self._feed.functions.latestRoundData().call(block_identifier=number)
            )
        except ContractLogicError as exc:
            raise InvalidReply(self.name, f"feed reverted: {exc.message or 'no reason'}") from None
        except BadFunctionCallOutput:
            raise InvalidReply(self.name, "no AggregatorV3 feed at the address") from None
        except (requests.RequestException, OSError):
            # the message of a connection error holds the RPC URL, which may hold a key
            raise SourceUnavailable(self.name, "RPC node did not answer") from None
        except Web3Exception as exc:
            raise SourceUnavailable(self.name, f"RPC error ({type(exc).__name__})") from None
        if updated_at == 0:
            raise InvalidReply(self.name, f"round {round_id} is incomplete")
        if answered_in < round_id:
            raise StalePrice(self.name, f"round {round_id} carries the answer of {answered_in}")
        try:
            price = scale_answer(answer, decimals)
        except PriceFormatError as exc:
            raise InvalidReply(self.name, f"round {round_id}: {exc}") from None
        check_fresh(self.name, updated_at, now, self.max_age)
        return Observation(self.name, price, int(updated_at))

    def _feed_decimals(self, block: int) -> int:
        """The feed's decimals, read once (a feed never changes them)."""
        if self._decimals is None:
            self._decimals = int(self._feed.functions.decimals().call(block_identifier=block))
        return self._decimals
