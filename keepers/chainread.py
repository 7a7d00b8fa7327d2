"""Many contract views read at one block in one JSON-RPC batch.

A keeper pass reads dozens of views (every indexed account's position in a series, every
margined account's shorts). Sent one `eth_call` at a time through web3, each costs a round
trip plus web3's per-call formatting (about 15 ms a position on a loaded machine); sent as
one JSON-RPC batch with the ABI encoded once per function, a 64-read pass costs one round
trip. `Reader.call_many` falls back to one request per call when the provider is not a
`strikeline.rpc` pool (a plain web3 provider in a script), with the same results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import decode, encode
from eth_utils import function_abi_to_4byte_selector, to_checksum_address
from eth_utils.abi import collapse_if_tuple
from web3 import Web3

from keepers.errors import KeeperError

#: calls per JSON-RPC batch (nodes cap batches; geth's default limit is 1000)
BATCH_LIMIT = 500


@dataclass(frozen=True)
class View:
    """One view function of one contract: its selector and ABI types, built once."""

    address: str
    name: str
    selector: bytes
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    @classmethod
    def of(cls, contract: Any, name: str) -> View:
        [abi] = [e for e in contract.abi if e.get("type") == "function" and e["name"] == name]
        return cls(
            to_checksum_address(contract.address),
            name,
            function_abi_to_4byte_selector(abi),
            tuple(collapse_if_tuple(i) for i in abi["inputs"]),
            tuple(collapse_if_tuple(o) for o in abi["outputs"]),
        )

    def data(self, *args: Any) -> str:
        return "0x" + (self.selector + encode(list(self.inputs), list(args))).hex()

    def result(self, raw: str | bytes) -> Any:
        """The decoded return value; a single output is unwrapped, as web3 does."""
        blob = bytes.fromhex(raw[2:]) if isinstance(raw, str) else bytes(raw)
        values = decode(list(self.outputs), blob)
        return values[0] if len(values) == 1 else values


Call = tuple[View, Sequence[Any]]


class Reader:
    """Reads views at one block, batched when the provider is a `strikeline.rpc` pool."""

    def __init__(self, w3: Web3):
        self.w3 = w3
        self.pool = getattr(w3.provider, "pool", None)

    def raw_many(self, requests: Sequence[tuple[str, Sequence[Any]]]) -> list[dict[str, Any]]:
        """The whole JSON-RPC answers (`result` or `error`) of `requests`, in order: one
        batch per `BATCH_LIMIT` requests through a pool, else one request each."""
        answers: list[dict[str, Any]] = []
        if self.pool is not None and hasattr(self.pool, "request_batch"):
            for start in range(0, len(requests), BATCH_LIMIT):
                answers += self.pool.request_batch(requests[start : start + BATCH_LIMIT])
        else:
            for method, params in requests:
                answers.append(dict(self.w3.provider.make_request(method, params)))  # type: ignore[arg-type]
        return answers

    def call_many(self, calls: Sequence[Call], block: int) -> list[Any]:
        """The views' results at `block`, in order; raises `KeeperError` if any reverts."""
        tag = hex(block)
        requests = [
            ("eth_call", [{"to": view.address, "data": view.data(*args)}, tag])
            for view, args in calls
        ]
        answers = self.raw_many(requests)
        out = []
        for (view, _), answer in zip(calls, answers, strict=True):
            if "error" in answer or answer.get("result") in (None, "0x"):
                raise KeeperError(f"{view.name} at block {block}: the call failed")
            out.append(view.result(answer["result"]))
        return out


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
    if reader.pool is not None and hasattr(reader.pool, "request_batch"):
        answers = reader.pool.request_batch(requests)
    else:
        answers = [dict(reader.w3.provider.make_request(m, p)) for m, p in requests]  # type: ignore[arg-type]
    raw: list[dict[str, Any]] = []
    for answer in answers:
        if "error" in answer or not isinstance(answer.get("result"), list):
            raise KeeperError(f"eth_getLogs [{start}, {end}]: the node refused the range")
        raw += answer["result"]
    raw.sort(key=lambda log: (int(log["blockNumber"], 16), int(log["logIndex"], 16)))
    out = []
    for log in raw:
        event = by_address[to_checksum_address(log["address"])][log["topics"][0]]
        out.append((event.name, event.decode(log), log))
    return out
