"""Contract views and events a keeper pass reads at one block, through `strikeline.batchcall`.

Views are the SDK's calls (`BoundFunction.of(binding, name).call(*args, block=n)`) read in one
JSON-RPC batch by `Reader.read`, which turns the SDK's `CallFailed` into the keepers'
`KeeperError` (never a silent zero). Events are decoded straight from raw logs (`EventType`,
`get_logs`), their `eth_getLogs` sent as one batch too: the SDK decodes logs only through web3
(`ContractBinding.events`, a receipt's logs, several ms a log), so the keepers keep this.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import decode
from eth_utils import to_checksum_address
from eth_utils.abi import collapse_if_tuple
from web3 import Web3

from keepers.errors import KeeperError
from strikeline.batchcall import Batch, CallFailed, ContractCall, call_many


class Reader:
    """Reads views at one block in one batch (`strikeline.batchcall`) over `w3`'s provider."""

    def __init__(self, w3: Web3):
        self.w3 = w3

    def read(self, calls: Sequence[ContractCall]) -> list[Any]:
        """The calls' results, in order, in one batch; raises `KeeperError` if any fails."""
        try:
            return call_many(self.w3, calls)
        except CallFailed as exc:
            raise KeeperError(str(exc)) from None


@dataclass(frozen=True)
class EventType:
    """One event of a contract, decoded straight from raw logs (web3's log formatting costs
    several ms a log; this is the ABI decode alone)."""

    address: str
    name: str
    topic: str
    indexed: tuple[tuple[str, str], ...]
    data: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, contract: Any, name: str) -> EventType:
        [abi] = [e for e in contract.abi if e.get("type") == "event" and e["name"] == name]
        types = [collapse_if_tuple(i) for i in abi["inputs"]]
        signature = f"{name}({','.join(types)})"
        return cls(
            to_checksum_address(contract.address),
            name,
            "0x" + Web3.keccak(text=signature).hex().removeprefix("0x"),
            tuple(
                (i["name"], t) for i, t in zip(abi["inputs"], types, strict=True) if i["indexed"]
            ),
            tuple(
                (i["name"], t)
                for i, t in zip(abi["inputs"], types, strict=True)
                if not i["indexed"]
            ),
        )

    def decode(self, log: dict[str, Any]) -> dict[str, Any]:
        args: dict[str, Any] = {}
        for (name, kind), topic in zip(self.indexed, log["topics"][1:], strict=True):
            args[name] = decode([kind], bytes.fromhex(topic[2:]))[0]
        values = decode([k for _, k in self.data], bytes.fromhex(log["data"][2:]))
        args.update(zip((n for n, _ in self.data), values, strict=True))
        return args


def get_logs(
    reader: Reader, events: Sequence[EventType], start: int, end: int
) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Every log of `events` in [start, end] as (event name, args, raw log), in chain order;
    one `eth_getLogs` per contract, sent as one batch."""
    by_address: dict[str, dict[str, EventType]] = {}
    for event in events:
        by_address.setdefault(event.address, {})[event.topic] = event
    requests = [
        (
            "eth_getLogs",
            [
                {
                    "address": address,
                    "fromBlock": hex(start),
                    "toBlock": hex(end),
                    "topics": [sorted(types)],
                }
            ],
        )
        for address, types in by_address.items()
    ]
    batch = Batch(reader.w3)
    answers = [batch.request(method, params) for method, params in requests]
    batch.send()
    raw: list[dict[str, Any]] = []
    for answer in answers:
        if not answer.ok or not isinstance(answer.value, list):
            raise KeeperError(f"eth_getLogs [{start}, {end}]: the node refused the range")
        raw += answer.value
    raw.sort(key=lambda log: (int(log["blockNumber"], 16), int(log["logIndex"], 16)))
    out = []
    for log in raw:
        event = by_address[to_checksum_address(log["address"])][log["topics"][0]]
        out.append((event.name, event.decode(log), log))
    return out
