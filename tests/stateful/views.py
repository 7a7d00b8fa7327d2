"""Replaying a computed view's output while nothing it read has changed.

The stateful machines compare every getter with the model after every step, and most getters
are computed views over packed storage (a position, a series' state, an expiry price), each a
whole EVM call: reading them all made the snapshot most of a machine's run time, although one
step changes few of them. A view's output is a function of what it read: calldata, code,
storage words, the block's timestamp and number and code sizes (Vyper checks a call target's
code size); the code at an address never changes while a machine runs (nothing is deployed or
destroyed in one). `ViewMemo` runs a view once with those reads recorded, nested calls
included, and returns the same output again only while every recorded read still gives the
same value (storage words are checked straight from the state, microseconds each); any change
runs the view again. A view that reads anything else (its caller, balances, block hashes,
transient storage...) is never replayed.

So the value compared with the model is exactly what the call returns at that moment: the
checks are unchanged, only calls that could not return anything new are skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import boa
from boa.contracts.vyper.vyper_contract import vyper_object
from boa.util.abi import abi_decode
from boa.vm.utils import to_int
from vyper.codegen.core import calculate_type_for_external_return
from vyper.semantics.types import TupleT

SLOAD, EXTCODESIZE, TIMESTAMP, NUMBER = 0x54, 0x3B, 0x42, 0x43
# Opcodes whose result the memo does not re-check: a view using one is always called.
UNCHECKED = (
    0x31,  # BALANCE
    0x32,  # ORIGIN
    0x33,  # CALLER
    0x3A,  # GASPRICE
    0x3C,  # EXTCODECOPY
    0x3F,  # EXTCODEHASH
    0x40,  # BLOCKHASH
    0x41,  # COINBASE
    0x44,  # PREVRANDAO
    0x45,  # GASLIMIT
    0x46,  # CHAINID
    0x47,  # SELFBALANCE
    0x48,  # BASEFEE
    0x49,  # BLOBHASH
    0x4A,  # BLOBBASEFEE
    0x5C,  # TLOAD
    0xF0,  # CREATE
    0xF5,  # CREATE2
)
Read = tuple  # ("storage", address, slot) | ("codesize", address) | ("timestamp",) | ...


class _Recording:
    """What one traced call read, in first-read order."""

    def __init__(self) -> None:
        self.reads: dict[Read, int] = {}
        self.checkable = True


class _Traced:
    """An opcode that records the word it pushes under a key read from the stack first."""

    def __init__(self, opcode: Any, recording: _Recording, key: Callable[[Any], Read | None]):
        self._opcode, self._recording, self._key = opcode, recording, key
        self.mnemonic = opcode.mnemonic

    def __call__(self, computation: Any) -> None:
        key = self._key(computation)
        self._opcode(computation)
        if key is None:
            self._recording.checkable = False
        else:
            self._recording.reads.setdefault(key, to_int(computation._stack.values[-1]))


def _storage_key(computation: Any) -> Read:
    slot = to_int(computation._stack.values[-1])
    return ("storage", computation.msg.storage_address, slot)


def _codesize_key(computation: Any) -> Read:
    address = to_int(computation._stack.values[-1]) & (2**160 - 1)
    return ("codesize", address.to_bytes(20, "big"))


@contextmanager
def _recorded(recording: _Recording) -> Iterator[None]:
    """Trace the reads of every call made inside, into `recording` (the opcode table is
    py-evm's, shared by every computation: it is put back afterwards whatever happens)."""
    table = boa.env.evm.vm.state.computation_class.opcodes
    saved = {op: table[op] for op in (SLOAD, EXTCODESIZE, TIMESTAMP, NUMBER, *UNCHECKED)}
    try:
        table[SLOAD] = _Traced(saved[SLOAD], recording, _storage_key)
        table[EXTCODESIZE] = _Traced(saved[EXTCODESIZE], recording, _codesize_key)
        table[TIMESTAMP] = _Traced(saved[TIMESTAMP], recording, lambda _: ("timestamp",))
        table[NUMBER] = _Traced(saved[NUMBER], recording, lambda _: ("number",))
        for op in UNCHECKED:
            table[op] = _Traced(saved[op], recording, lambda _: None)
        yield
    finally:
        table.update(saved)


def _current(read: Read) -> int:
    """What `read` gives now."""
    state = boa.env.evm.vm.state
    kind = read[0]
    if kind == "storage":
        return state.get_storage(read[1], read[2])
    if kind == "codesize":
        return len(state.get_code(read[1]))
    if kind == "timestamp":
        return state.timestamp
    return state.block_number


class ViewMemo:
    """Outputs of view calls, by target and calldata, with the reads each depended on.

    Every `AUDIT_EVERY`th replay also makes the call and asserts that it returns the replayed
    output: a read the memo failed to record would show as a stale output there."""

    AUDIT_EVERY = 32

    def __init__(self) -> None:
        self._entries: dict[tuple[Any, bytes], tuple[bytes, tuple[tuple[Read, int], ...]]] = {}
        self.calls = self.replays = 0

    def call(self, address: Any, calldata: bytes) -> bytes:
        """`address`'s output for `calldata` as a static call now (a revert raises)."""
        entry = self._entries.get((address, calldata))
        if entry is not None:
            output, reads = entry
            if all(_current(read) == value for read, value in reads):
                self.replays += 1
                if self.replays % self.AUDIT_EVERY:
                    return output
                fresh = self._execute(address, calldata)
                assert fresh == output, f"replayed a stale view {calldata[:4].hex()}"
                return output
        return self._execute(address, calldata)

    def _execute(self, address: Any, calldata: bytes) -> bytes:
        """Make the call, recording what it reads, and remember its output if it can be
        replayed."""
        recording = _Recording()
        with _recorded(recording):
            computation = boa.env.execute_code(
                to_address=address, data=calldata, is_modifying=False
            )
        assert not computation.is_error, f"view call to {address} reverted"
        self.calls += 1
        output = computation.output
        if recording.checkable:
            self._entries[(address, calldata)] = (output, tuple(recording.reads.items()))
        else:
            self._entries.pop((address, calldata), None)
        return output


class Views:
    """Calls a boa contract's view functions through a `ViewMemo` and decodes the output as
    boa does (structs keep their field names): `views(s.ch.margin_positions, account, sid)`
    returns what `s.ch.margin_positions(account, sid)` would."""

    def __init__(self, memo: ViewMemo | None = None) -> None:
        self.memo = memo or ViewMemo()
        self._calls: dict[tuple, tuple[Any, bytes, Any]] = {}

    def __call__(self, function: Any, *args: Any) -> Any:
        """`function(*args)`, replayed while nothing it read has changed."""
        # arguments that are lists are not hashable: their calldata is encoded every time
        hashable = not any(isinstance(arg, list) for arg in args)
        key = (function.contract.address, function.func_t.name, args) if hashable else None
        plan = self._calls.get(key) if hashable else None
        if plan is None:
            assert not function.func_t.is_mutable, f"{function.func_t.name} is not a view"
            return_type = function.func_t.return_type
            plan = (function.contract.address, function.prepare_calldata(*args), return_type)
            if hashable:
                self._calls[key] = plan
        address, calldata, return_type = plan
        output = self.memo.call(address, calldata)
        # as boa's `marshal_to_python`
        abi_type = calculate_type_for_external_return(return_type)
        value = abi_decode(abi_type.abi_type.selector_name(), output)
        if not isinstance(return_type, TupleT):
            (value,) = value
        return vyper_object(value, return_type)

    def bind(self, contract: Any) -> Bound:
        """`contract` with its view functions called through this memo."""
        return Bound(self, contract)


class Bound:
    """A contract whose functions are called through `Views` (views only: a function that
    changes state is refused)."""

    def __init__(self, views: Views, contract: Any) -> None:
        self._views, self._contract = views, contract
        self.address = contract.address

    def __getattr__(self, name: str) -> Callable[..., Any]:
        return partial(self._views, getattr(self._contract, name))
