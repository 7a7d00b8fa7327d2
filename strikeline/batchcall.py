"""Many contract calls sent as one JSON-RPC batch: encoded and decoded with the bindings' ABIs.

A keeper pass reads dozens of views at one block (every account's position, every margined
short). Through web3, each `eth_call` is a round trip plus web3's per-call formatting (about
15 ms a position on a loaded machine); here the ABI is looked at once per function
(`BoundFunction.of`), the calls of a pass go out together and a 64-read pass costs one round
trip.

    balance = BoundFunction.of(usdc, "balanceOf")        # usdc: a strikeline.bindings binding
    values = call_many(pool, [balance.call(a, block=n) for a in holders])

`Batch` mixes contract calls with `eth_estimateGas` of the same calls and any other request
(`eth_gasPrice`, `eth_getLogs`) in the same round trip; each gives an `Answer` whose `value`
is the decoded result, or raises the call's own `CallFailed`: a revert (with its reason,
decoded as `strikeline.txmanager.revert_reason` decodes it), any other error the node
answered, or no return data where the function returns some (no contract at the address:
never read as a silent zero). One call failing never hides the others' answers.

Through an `RpcPool` (or a `Web3` on one, `pool.web3()`) a batch is one `request_batch` per
`BATCH_LIMIT` requests; through any other web3 provider (a script on a plain HTTP provider)
it is one request each, with the same answers. A transport failure (`NoNodeAvailable`)
raises from `send` for the whole batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import decode, encode
from eth_abi.exceptions import DecodingError, EncodingError
from eth_utils import function_abi_to_4byte_selector, to_checksum_address
from eth_utils.abi import collapse_if_tuple
from web3 import Web3

from strikeline.bindings import InvalidCallArgument
from strikeline.errors import StrikelineError
from strikeline.rpc import NodeError, RpcPool
from strikeline.txmanager import revert_reason

#: requests per JSON-RPC batch (nodes cap batches; geth's default limit is 1000)
BATCH_LIMIT = 500
#: a block number, a tag ("latest", "pending", ...) or a block hash
Block = int | str | bytes


class CallFailed(StrikelineError):
    """One request of a batch gave no value; `reason` says why, on one line.

    `code` and `data` are the node's JSON-RPC error fields (None when the node answered but
    the result was unusable, e.g. no return data); `reverted` tells a revert from any other
    refusal."""

    def __init__(self, label: str, reason: str, error: NodeError | None = None):
        self.label = label
        self.reason = reason
        self.code = error.code if error is not None else None
        self.data = error.data if error is not None else None
        message = error.message.lower() if error is not None else ""
        self.reverted = error is not None and (error.code == 3 or "revert" in message)
        super().__init__(f"{label}: {reason}")


@dataclass(frozen=True)
class BoundFunction:
    """One function of one deployed contract: its selector and ABI types, worked out once."""

    address: str
    name: str
    selector: bytes
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    @classmethod
    def of(cls, contract: Any, name: str) -> BoundFunction:
        """`name` of a `strikeline.bindings` binding (or of its web3 `contract`).

        Raises:
            InvalidCallArgument: the ABI has no function `name`, or several (overloads).
        """
        abi = getattr(contract, "contract", contract).abi
        found = [e for e in abi if e.get("type") == "function" and e.get("name") == name]
        if len(found) != 1:
            raise InvalidCallArgument(f"{name}: {len(found)} functions of that name in the ABI")
        [entry] = found
        return cls(
            to_checksum_address(contract.address),
            name,
            function_abi_to_4byte_selector(entry),
            tuple(collapse_if_tuple(i) for i in entry["inputs"]),
            tuple(collapse_if_tuple(o) for o in entry.get("outputs", [])),
        )

    def data(self, *args: Any) -> str:
        """The calldata of a call with `args` (ABI order), 0x-prefixed hex.

        Raises:
            InvalidCallArgument: the arguments do not fit the inputs.
        """
        try:
            return "0x" + (self.selector + encode(list(self.inputs), list(args))).hex()
        except (EncodingError, TypeError, ValueError) as exc:
            raise InvalidCallArgument(
                f"{self.name}: arguments do not fit ({', '.join(self.inputs)}): "
                f"{type(exc).__name__}"
            ) from None

    def result(self, raw: str | bytes) -> Any:
        """The decoded return value; a single output is unwrapped, as web3 does."""
        blob = bytes.fromhex(raw[2:]) if isinstance(raw, str) else bytes(raw)
        values = decode(list(self.outputs), blob)
        return values[0] if len(values) == 1 else values

    def call(self, *args: Any, block: Block = "latest", sender: str | None = None) -> ContractCall:
        """This function with `args`, to run at `block` (a number, a tag such as "pending", or
        a block hash as bytes: EIP-1898, so that the read is of that block even if another
        took its number), from `sender` when it matters (a simulated transaction)."""
        return ContractCall(self, args, block, sender)


@dataclass(frozen=True)
class ContractCall:
    """A bound function with its arguments, block and optional sender."""

    function: BoundFunction
    args: tuple[Any, ...]
    block: Block = "latest"
    sender: str | None = None

    @property
    def label(self) -> str:
        """How errors name it: "balanceOf at block 12", "liquidate at block pending",
        "balanceOf at block 0x3a9f…" (a hash)."""
        block = "0x" + self.block.hex() if isinstance(self.block, bytes) else self.block
        return f"{self.function.name} at block {block}"

    def tx(self) -> dict[str, str]:
        """The call object of `eth_call` / `eth_estimateGas`."""
        tx = {"to": self.function.address, "data": self.function.data(*self.args)}
        if self.sender is not None:
            tx = {"from": self.sender, **tx}
        return tx

    def tag(self) -> str | dict[str, str]:
        if isinstance(self.block, bytes):
            return {"blockHash": "0x" + self.block.hex()}
        return hex(self.block) if isinstance(self.block, int) else self.block


_CALL, _ESTIMATE, _RAW = "call", "estimate", "raw"


class Answer:
    """What one request of a `Batch` gave, once the batch is sent."""

    def __init__(self, kind: str, label: str, call: ContractCall | None):
        self._kind = kind
        self._call = call
        self.label = label
        #: the node's whole JSON-RPC answer (`result` or `error`); None until sent
        self.answer: dict[str, Any] | None = None
        self._decoded = False
        self._value: Any = None
        self._error: CallFailed | None = None

    def _settle(self) -> None:
        if self._decoded:
            return
        if self.answer is None:
            raise StrikelineError(f"{self.label}: the batch has not been sent")
        self._decoded = True
        method = {"call": "eth_call", "estimate": "eth_estimateGas"}.get(self._kind, self.label)
        if "error" in self.answer:
            error = NodeError(method, self.answer["error"] or {})
            self._error = CallFailed(self.label, revert_reason(error), error)
            return
        result = self.answer.get("result")
        if self._kind == _RAW:
            self._value = result
        elif self._kind == _ESTIMATE:
            try:
                self._value = int(result, 16)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                self._error = CallFailed(self.label, "the gas estimate is not a number")
        else:
            assert self._call is not None
            function = self._call.function
            if function.outputs and result in (None, "0x"):
                # a call to an address without code answers "0x": never a silent zero
                self._error = CallFailed(
                    self.label, f"no return data (no contract at {function.address}?)"
                )
                return
            try:
                self._value = function.result(result)  # type: ignore[arg-type]
            except (DecodingError, TypeError, ValueError):
                self._error = CallFailed(
                    self.label, f"the result does not decode as ({', '.join(function.outputs)})"
                )

    @property
    def error(self) -> CallFailed | None:
        """Why this request gave no value, or None when it gave one."""
        self._settle()
        return self._error

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def value(self) -> Any:
        """The decoded result: a call's return value, an estimate's gas, a raw request's
        `result`.

        Raises:
            CallFailed: this request failed (reverted, refused, no or undecodable data).
        """
        self._settle()
        if self._error is not None:
            raise self._error
        return self._value


class Batch:
    """Requests gathered, then sent together by `send` (one round trip per `BATCH_LIMIT`)."""

    def __init__(self, rpc: RpcPool | Web3):
        pool = rpc if isinstance(rpc, RpcPool) else getattr(rpc.provider, "pool", None)
        self._pool: RpcPool | None = pool if isinstance(pool, RpcPool) else None
        self._w3 = rpc if isinstance(rpc, Web3) else None
        self._requests: list[tuple[str, list[Any]]] = []
        self._answers: list[Answer] = []

    def __len__(self) -> int:
        return len(self._requests)

    def call(self, call: ContractCall) -> Answer:
        """`eth_call` of `call`; its `value` is the decoded return value."""
        return self._add(_CALL, call.label, call, "eth_call", [call.tx(), call.tag()])

    def estimate_gas(self, call: ContractCall) -> Answer:
        """`eth_estimateGas` of `call`; its `value` is the gas, an int."""
        label = f"{call.label} (gas estimate)"
        return self._add(_ESTIMATE, label, call, "eth_estimateGas", [call.tx(), call.tag()])

    def request(self, method: str, params: Sequence[Any] = ()) -> Answer:
        """Any other JSON-RPC request; its `value` is the raw `result`."""
        return self._add(_RAW, method, None, method, list(params))

    def _add(
        self, kind: str, label: str, call: ContractCall | None, method: str, params: list[Any]
    ) -> Answer:
        answer = Answer(kind, label, call)
        self._requests.append((method, params))
        self._answers.append(answer)
        return answer

    def send(self) -> None:
        """Send every request added since the last `send`; their `Answer`s are then read.

        Raises:
            NoNodeAvailable: through a pool, every node failed (no answer is set).
        """
        requests, answers = self._requests, self._answers
        self._requests, self._answers = [], []
        got: list[dict[str, Any]] = []
        if self._pool is not None:
            for start in range(0, len(requests), BATCH_LIMIT):
                got += self._pool.request_batch(requests[start : start + BATCH_LIMIT])
        else:
            assert self._w3 is not None
            for method, params in requests:
                got.append(dict(self._w3.provider.make_request(method, params)))  # type: ignore[arg-type]
        for answer, raw in zip(answers, got, strict=True):
            answer.answer = raw


def call_many(rpc: RpcPool | Web3, calls: Sequence[ContractCall]) -> list[Any]:
    """The decoded results of `calls`, in order, read in one batch (per `BATCH_LIMIT`).

    Raises:
        CallFailed: the first call (in order) that failed; all were sent.
        NoNodeAvailable: through a pool, every node failed.
    """
    batch = Batch(rpc)
    answers = [batch.call(c) for c in calls]
    batch.send()
    return [a.value for a in answers]
