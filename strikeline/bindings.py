"""Typed web3.py bindings for the Strikeline contracts, used by scripts, benchmarks and the relayer.

ABIs and bytecode come from compiling `contracts/` with the virtualenv's own `vyper`
(`vyper -f abi,bytecode`), cached as JSON under `.build/bindings/`. A cache entry is keyed by
a fingerprint of the compiler version, every contract source and every source of the
installed snekmate the contracts import, so editing any of them recompiles on next use;
concurrent processes (pytest-xdist) write the cache atomically.

Transactions go out either from an address the node unlocks (anvil's dev accounts) or from an
eth-account `LocalAccount`, signed locally. Every sending method waits for the receipt and
raises `TransactionFailed` (one line: the call and its revert reason) if it reverts.

Arguments are checked against the contract's ABI before web3 sees them: a negative, float,
bool or too large amount, a malformed address or a wrong-length hash raises
`InvalidCallArgument`, one line naming the argument. No message ever shows a private key, even
one passed where an address or a sender belongs.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Self, cast

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import ContractLogicError, Web3RPCError
from web3.logs import DISCARD
from web3.types import TxParams, TxReceipt

from strikeline import ids
from strikeline.errors import (
    InvalidArgument,
    StrikelineError,
    check_address,
    check_bytes,
    check_uint,
    looks_like_private_key,
    shown,
)
from strikeline.oracle_reports import SignedReport, ordered
from strikeline.orders import Domain, Match, Order, SignedOrder

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS_DIR = ROOT / "contracts"
BUILD_DIR = ROOT / ".build" / "bindings"

#: Who sends a transaction: an address the node unlocks, or a local key.
Sender = str | LocalAccount


class BindingError(StrikelineError):
    """Base class of this module's errors."""


class CompileError(BindingError):
    """vyper failed on a contract; the message carries its output."""


class InvalidCallArgument(BindingError, InvalidArgument):
    """An argument does not fit the contract's ABI; the one-line message names it."""


class TransactionFailed(BindingError):
    """A transaction (or its gas estimate) reverted or the node refused it.

    `reason` is the revert string (or the node's message), `call` names the contract function
    ("Ledger.match_orders"), `receipt` is set when the transaction was mined and reverted.
    The message is one line: "<call>: <reason>".
    """

    def __init__(self, reason: str, receipt: TxReceipt | None = None, call: str = ""):
        super().__init__(f"{call}: {reason}" if call else reason)
        self.reason = reason
        self.receipt = receipt
        self.call = call


# --------------------------------------------------------------------------- compiling


@dataclass(frozen=True)
class Artifact:
    """A compiled contract."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str


def vyper_executable() -> str:
    """The `vyper` beside the running interpreter (the project's venv), else the one on PATH."""
    local = Path(sys.executable).parent / "vyper"
    if local.exists():
        return str(local)
    found = shutil.which("vyper")
    if found is None:
        raise CompileError("vyper not found: run `make install`")
    return found


def source_path(name: str) -> Path:
    """`contracts/<name>.vy`, or `contracts/test/<name>.vy` for test contracts."""
    for path in (CONTRACTS_DIR / f"{name}.vy", CONTRACTS_DIR / "test" / f"{name}.vy"):
        if path.exists():
            return path
    raise CompileError(f"no contract named {name} under {CONTRACTS_DIR}")


def source_roots() -> list[Path]:
    """Every directory whose Vyper sources the contracts compile from: `contracts/` and the
    installed `snekmate` package (found on `sys.path` as the compiler finds it)."""
    roots = [CONTRACTS_DIR]
    spec = importlib.util.find_spec("snekmate")
    if spec is not None and spec.submodule_search_locations:
        roots.extend(Path(p) for p in spec.submodule_search_locations)
    return roots


@functools.cache
def _fingerprint() -> str:
    """A hash of the compiler version and every Vyper source under `source_roots()`."""
    digest = hashlib.sha256()
    version = subprocess.run(
        [vyper_executable(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    digest.update(version.encode())
    for root in source_roots():
        digest.update(str(root.name).encode())
        for path in sorted(root.rglob("*.vy*")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


@functools.cache
def artifact(name: str) -> Artifact:
    """The ABI and deployment bytecode of contract `name`, compiled once and cached."""
    fingerprint = _fingerprint()
    cache = BUILD_DIR / f"{name}.json"
    if cache.exists():
        entry = json.loads(cache.read_text())
        if entry.get("fingerprint") == fingerprint:
            return Artifact(name, entry["abi"], entry["bytecode"])
    result = subprocess.run(
        [vyper_executable(), "-f", "abi,bytecode", str(source_path(name))],
        capture_output=True,
        text=True,
        cwd=CONTRACTS_DIR,
    )
    if result.returncode != 0:
        raise CompileError(f"vyper failed on {name}:\n{result.stderr}")
    abi_line, bytecode = result.stdout.strip().splitlines()
    entry = {"fingerprint": fingerprint, "abi": json.loads(abi_line), "bytecode": bytecode}
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=BUILD_DIR, delete=False, suffix=".tmp") as tmp:
        json.dump(entry, tmp)
    os.replace(tmp.name, cache)
    return Artifact(name, entry["abi"], entry["bytecode"])


# --------------------------------------------------------------------------- arguments


def check_sender(sender: Any, name: str = "sender") -> Sender:
    """`sender` if it is an eth-account `LocalAccount` or an address (checksummed).

    Raises:
        InvalidCallArgument: anything else; a private key is named as one and never shown
            (sign with `eth_account.Account.from_key(key)` instead).
    """
    if isinstance(sender, LocalAccount):
        return sender
    if looks_like_private_key(sender):
        raise InvalidCallArgument(
            f"{name}: got what looks like a private key (not shown); pass an address or "
            "eth_account.Account.from_key(key)"
        )
    if not isinstance(sender, str):
        raise InvalidCallArgument(
            f"{name}: expected an address or a LocalAccount, got {shown(sender)}"
        )
    return _checked(check_address, name, sender)


def _address(sender: Sender) -> str:
    """The address that sends for `sender` (checked)."""
    checked = check_sender(sender)
    return checked.address if isinstance(checked, LocalAccount) else checked


def _checked(check: Any, name: str, *args: Any) -> Any:
    """`check(name, *args)` from `strikeline.errors`, its error re-raised as this module's."""
    try:
        return check(name, *args)
    except InvalidArgument as exc:
        raise InvalidCallArgument(str(exc)) from None


def _as_type(name: str, value: Any, expected: type) -> Any:
    """`value` if it is an `expected` (an SDK object such as `Order`); else one clean line."""
    if not isinstance(value, expected):
        raise InvalidCallArgument(
            f"{name}: expected a strikeline {expected.__name__}, got {shown(value)}"
        )
    return value


def _as_tuple(name: str, value: Any, expected: type) -> tuple[Any, ...]:
    """The contract struct of an SDK object (`Order`, `Match`), checked to be one."""
    return cast(tuple[Any, ...], _as_type(name, value, expected).as_tuple())


def check_abi_value(name: str, abi_input: dict[str, Any], value: Any) -> Any:
    """`value` checked (and normalised: checksummed addresses, bytes) for one ABI input.

    Handles uintN, intN, address, bool, bytesN, bytes, string, tuples (structs) and arrays of
    them; nested values are named `name.field` and `name[i]`.

    Raises:
        InvalidCallArgument: naming the argument, e.g. "amount: must not be negative, got -1".
    """
    kind = abi_input["type"]
    if kind.endswith("]"):
        base, size = kind[: kind.rindex("[")], kind[kind.rindex("[") + 1 : -1]
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise InvalidCallArgument(f"{name}: expected a list, got {shown(value)}")
        if size and len(value) != int(size):
            raise InvalidCallArgument(f"{name}: expected {size} items, got {len(value)}")
        item = {**abi_input, "type": base}
        return [check_abi_value(f"{name}[{i}]", item, v) for i, v in enumerate(value)]
    if kind == "tuple":
        fields = abi_input["components"]
        if (
            isinstance(value, str | bytes)
            or not isinstance(value, Sequence)
            or len(value) != len(fields)
        ):
            raise InvalidCallArgument(f"{name}: expected a tuple of {len(fields)} fields")
        return tuple(
            check_abi_value(f"{name}.{f['name']}", f, v) for f, v in zip(fields, value, strict=True)
        )
    if kind.startswith("uint"):
        return _checked(check_uint, name, value, int(kind[4:] or 256))
    if kind.startswith("int"):
        bits = int(kind[3:] or 256)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidCallArgument(f"{name}: expected an integer, got {shown(value)}")
        if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
            raise InvalidCallArgument(f"{name}: does not fit in int{bits}")
        return value
    if kind == "address":
        return _checked(check_address, name, value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise InvalidCallArgument(f"{name}: expected a bool, got {shown(value)}")
        return value
    if kind == "string":
        if not isinstance(value, str):
            raise InvalidCallArgument(f"{name}: expected a string, got {shown(value)}")
        return value
    if kind == "bytes":
        if isinstance(value, str):
            value = _checked(check_bytes, name, value, len(value.removeprefix("0x")) // 2)
        if not isinstance(value, bytes | bytearray):
            raise InvalidCallArgument(f"{name}: expected bytes, got {shown(value)}")
        return bytes(value)
    if kind.startswith("bytes"):
        return _checked(check_bytes, name, value, int(kind[5:]))
    raise InvalidCallArgument(f"{name}: unsupported ABI type {kind}")  # pragma: no cover


def check_call(abi: Sequence[Any], label: str, name: str, named: dict[str, Any]) -> list[Any]:
    """The arguments `named` (in order; keys are the caller's names for them) checked against
    the ABI entry `name` ("constructor" for the constructor) with as many inputs.

    Raises:
        InvalidCallArgument: no such entry, or an argument that does not fit.
    """
    for entry in abi:
        kind = entry.get("type")
        if (entry.get("name") == name or kind == name == "constructor") and len(
            entry.get("inputs", [])
        ) == len(named):
            return [
                check_abi_value(arg, spec, value)
                for (arg, value), spec in zip(named.items(), entry["inputs"], strict=True)
            ]
    raise InvalidCallArgument(f"{label}: no function {name} taking {len(named)} arguments")


# --------------------------------------------------------------------------- sending


def send(
    w3: Web3,
    fn: ContractFunction | ContractConstructor,
    sender: Sender,
    access_list: bool = False,
    call: str = "",
) -> TxReceipt:
    """Send the call `fn` from `sender`, wait for its receipt and check that it succeeded.

    With `access_list`, the node's `eth_createAccessList` names every contract and storage
    slot the call touches and the transaction pre-declares them (EIP-2930): each costs 200 gas
    less than a cold access, about 4,000 gas on a relayer's match. The list is only used when
    it makes the transaction cheaper. `call` names the call in errors ("Ledger.fill").

    Raises:
        InvalidCallArgument: `sender` is neither an address nor a LocalAccount.
        TransactionFailed: the gas estimate or the mined transaction reverted, or the node
            refused the transaction (e.g. insufficient funds); one line, no web3 traceback.
    """
    sender = check_sender(sender)
    origin = _address(sender)
    call = call or getattr(fn, "fn_name", "") or "constructor"
    params: dict[str, Any] = {"from": origin}
    try:
        if access_list and isinstance(fn, ContractFunction):
            params.update(_access_list(w3, fn, params))
        if isinstance(sender, LocalAccount):
            params["nonce"] = w3.eth.get_transaction_count(sender.address, "pending")
            tx = fn.build_transaction(cast(TxParams, params))
            signed = sender.sign_transaction(cast(dict[str, Any], tx))
            tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        else:
            tx_hash = fn.transact(cast(TxParams, params))
    except ContractLogicError as exc:
        raise TransactionFailed(_reason(exc), call=call) from None
    except Web3RPCError as exc:
        raise TransactionFailed(f"{_rpc_message(exc)} (sender {origin})", call=call) from None
    except TransactionFailed as exc:
        raise TransactionFailed(exc.reason, call=call) from None
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    if receipt["status"] != 1:
        raise TransactionFailed(_replayed_reason(w3, tx_hash, receipt), receipt, call)
    return receipt


def _rpc_message(exc: Web3RPCError) -> str:
    """The node's error message alone (not web3's rendering of the whole response)."""
    error: Any = (exc.rpc_response or {}).get("error") or {}
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return str(exc.message or exc).splitlines()[0]


def _replayed_reason(w3: Web3, tx_hash: Any, receipt: TxReceipt) -> str:
    """Why a mined transaction reverted: replayed as a call on the state before its block
    (exact for anvil's one transaction per block); "reverted" if the replay succeeds."""
    tx = cast(dict[str, Any], w3.eth.get_transaction(tx_hash))
    replay: dict[str, Any] = {k: tx[k] for k in ("from", "to", "value", "gas") if k in tx}
    replay["data"] = tx.get("input", b"")
    try:
        w3.eth.call(cast(TxParams, replay), receipt["blockNumber"] - 1)
    except ContractLogicError as exc:
        return _reason(exc)
    except Web3RPCError as exc:
        return _rpc_message(exc)
    return f"reverted (gas used {receipt['gasUsed']} of {tx.get('gas')})"


def _access_list(w3: Web3, fn: ContractFunction, params: dict[str, Any]) -> dict[str, Any]:
    """The `accessList` (and a `gas` limit) for `fn`, from the node's `eth_createAccessList`,
    if it makes the call cheaper; else nothing.

    A listed address costs 2,400 and a listed slot 1,900 up front, then 100 per access: 100
    less than a cold access each. The called contract is warm anyway, so it is left out (its
    entry would cost 2,400 for nothing)."""
    call = cast(
        TxParams, {"from": params["from"], "to": fn.address, "data": fn._encode_transaction_data()}
    )
    try:
        created = cast(dict[str, Any], w3.eth.create_access_list(call))
    except Web3RPCError as exc:  # the node simulated the call and it reverted
        raise TransactionFailed(_revert_string(_rpc_message(exc))) from None
    if created.get("error"):
        raise TransactionFailed(_revert_string(str(created["error"])))
    target = Web3.to_checksum_address(fn.address)
    entries = [
        {
            "address": e["address"],
            "storageKeys": [k if isinstance(k, str) else Web3.to_hex(k) for k in e["storageKeys"]],
        }
        for e in created["accessList"]
        if Web3.to_checksum_address(e["address"]) != target
    ]
    if not entries:
        return {}
    plain = w3.eth.estimate_gas(call)
    listed = w3.eth.estimate_gas(cast(TxParams, {**call, "accessList": entries}))
    if listed >= plain:
        return {}
    return {"accessList": entries, "gas": listed * 6 // 5}


def _reason(exc: ContractLogicError) -> str:
    """The revert string of a failed call ("execution reverted: x" -> "x")."""
    return _revert_string(str(exc.message or exc))


def _revert_string(message: str) -> str:
    """The revert string alone: the node's "execution reverted: x" -> "x"."""
    return message.split("execution reverted: ", 1)[-1]


class ContractBinding:
    """A deployed contract: its web3 `Contract`, a default sender and helpers."""

    NAME: ClassVar[str] = ""

    def __init__(self, w3: Web3, address: str, sender: Sender | None = None, name: str = ""):
        self.w3 = w3
        self.name = name or self.NAME
        self.address = _checked(check_address, "address", address)
        self.contract: Contract = w3.eth.contract(address=self.address, abi=artifact(self.name).abi)
        self.sender = None if sender is None else check_sender(sender)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} at {self.address}>"

    @classmethod
    def deploy(cls, w3: Web3, *args: Any, sender: Sender, name: str = "") -> Self:
        """Deploy a fresh instance with constructor `args`; `sender` becomes the default sender.

        Raises:
            InvalidCallArgument: an argument does not fit the constructor (named as in the
                contract's constructor).
            TransactionFailed: the deployment reverted.
        """
        built = artifact(name or cls.NAME)
        constructor = next((e for e in built.abi if e.get("type") == "constructor"), None)
        names = [i["name"].rstrip("_") for i in (constructor or {}).get("inputs", [])]
        if len(names) != len(args):
            raise InvalidCallArgument(
                f"{built.name} constructor: expected {len(names)} arguments, got {len(args)}"
            )
        checked = check_call(
            built.abi, built.name, "constructor", dict(zip(names, args, strict=True))
        )
        factory = w3.eth.contract(abi=built.abi, bytecode=built.bytecode)
        receipt = send(w3, factory.constructor(*checked), sender, call=f"{built.name} deploy")
        address = receipt["contractAddress"]
        if address is None:  # pragma: no cover - a successful CREATE always has an address
            raise TransactionFailed("no contract address in the receipt", receipt)
        return cls(w3, address, sender, built.name)

    def fn(self, name: str, **args: Any) -> ContractFunction:
        """The contract function `name` with `args` checked against its ABI first (keyword
        names are how errors name them; their order is the ABI's)."""
        checked = check_call(self.contract.abi, self.name, name, args)
        return cast(ContractFunction, getattr(self.contract.functions, name)(*checked))

    def view(self, name: str, **args: Any) -> Any:
        """Call the view `name` with checked `args`."""
        return self.fn(name, **args).call()

    def transact(
        self, fn: ContractFunction, sender: Sender | None = None, access_list: bool = False
    ) -> TxReceipt:
        """Send `fn` from `sender` or the default sender (see `send` for `access_list`)."""
        chosen = sender or self.sender
        if chosen is None:
            raise BindingError(f"{self.name}: no sender given and no default sender")
        return send(self.w3, fn, chosen, access_list, f"{self.name}.{fn.fn_name}")

    def send_fn(
        self, name: str, sender: Sender | None = None, *, access_list: bool = False, **args: Any
    ) -> TxReceipt:
        """Send the function `name` with checked `args` (see `fn`) from `sender`."""
        return self.transact(self.fn(name, **args), sender, access_list)

    def _target(self, given: Any, sender: Sender | None) -> Any:
        """`given`, else the address of `sender` or the default sender (for recipients)."""
        if given is not None:
            return given
        chosen = sender or self.sender
        return _address(chosen) if chosen is not None else None

    def events(self, receipt: TxReceipt, event: str) -> list[dict[str, Any]]:
        """The decoded `event` logs this contract emitted in `receipt`, as dicts of arguments."""
        decoded = getattr(self.contract.events, event)().process_receipt(receipt, errors=DISCARD)
        return [dict(log["args"]) for log in decoded if log["address"] == self.address]


# --------------------------------------------------------------------------- contracts


class Position(NamedTuple):
    """An account's position in one series on the Ledger: the longs it holds and its fully
    collateralised short (which locks `ClearinghouseBinding.collateral_required(short)`)."""

    long: int
    short: int


class MarginPosition(NamedTuple):
    """A margined short in the Clearinghouse: its size and the collateral behind it."""

    short: int
    collateral: int


class Product(NamedTuple):
    """A whitelisted product (`Clearinghouse.products`)."""

    underlying: str
    quote: str
    collateral: str
    is_put: bool
    enabled: bool


class Series(NamedTuple):
    """A series' terms (`Clearinghouse.series`); strike in 8 decimals, expiry in unix s."""

    product_id: bytes
    strike: int
    expiry: int


class SeriesState(NamedTuple):
    """A series' settlement state (`Clearinghouse.series_state`)."""

    open_interest: int
    collateral: int
    settlement_price: int
    payout_pool: int


#: `Ledger.partial_fills` of an order cancelled by contents.
CANCELLED = 2**256 - 1


class ERC20Binding(ContractBinding):
    """An ERC-20 collateral token (`MockERC20` on devnets, where anyone may mint)."""

    NAME = "MockERC20"

    def approve(self, spender: str, amount: int, sender: Sender | None = None) -> TxReceipt:
        """Allow `spender` (the Ledger, which holds every token) to pull `amount`."""
        return self.send_fn("approve", sender, spender=spender, amount=amount)

    def mint(self, to: str, amount: int, sender: Sender | None = None) -> TxReceipt:
        """Mint test tokens (MockERC20 only)."""
        return self.send_fn("mint", sender, to=to, amount=amount)

    def balance_of(self, owner: str) -> int:
        """The token balance of `owner`."""
        return int(self.view("balanceOf", owner=owner))


class LedgerBinding(ContractBinding):
    """The Ledger, the trading hot path: free collateral (deposit, withdraw), fully
    collateralised shorts (write, burn), the ERC-1155 longs (one id per series) and signed
    orders matched by relayers or filled directly. It holds every token of the system."""

    NAME = "Ledger"

    def domain(self) -> Domain:
        """The EIP-712 domain orders for this Ledger are signed under."""
        return Domain(self.w3.eth.chain_id, self.address)

    # accounts
    def deposit(
        self, token: str, amount: int, account: str | None = None, sender: Sender | None = None
    ) -> TxReceipt:
        """Deposit `amount` of `token` (approved to the Ledger beforehand) for `account`
        (default: the sender); a fee-on-transfer token credits what arrived."""
        target = self._target(account, sender)
        return self.send_fn("deposit", sender, token=token, amount=amount, account=target)

    def withdraw(
        self, token: str, amount: int, recipient: str | None = None, sender: Sender | None = None
    ) -> TxReceipt:
        """Withdraw the sender's free collateral to `recipient` (default: the sender)."""
        target = self._target(recipient, sender)
        return self.send_fn("withdraw", sender, token=token, amount=amount, recipient=target)

    # writing and closing
    def write(
        self,
        series_id: int,
        amount: int,
        recipient: str | None = None,
        sender: Sender | None = None,
    ) -> TxReceipt:
        """Write `amount` options with full collateral from the sender's free balance; the
        longs go to `recipient` (default: the sender)."""
        target = self._target(recipient, sender)
        return self.send_fn("write", sender, series_id=series_id, amount=amount, recipient=target)

    def burn(self, series_id: int, amount: int, sender: Sender | None = None) -> TxReceipt:
        """Before expiry, burn `amount` of the sender's longs against its own short and free
        the collateral no longer needed."""
        return self.send_fn("burn", sender, series_id=series_id, amount=amount)

    # trading
    def match_orders(
        self, matches: Sequence[Match], sender: Sender | None = None, access_list: bool = False
    ) -> TxReceipt:
        """Settle one or more matches (relayers only; an order naming a `sender` only from
        that address); `access_list` pre-declares what the matches touch (EIP-2930), see
        `send`."""
        return self.send_fn(
            "match_orders",
            sender,
            access_list=access_list,
            matches=[_as_tuple("matches", m, Match) for m in matches],
        )

    def fill(
        self, signed: SignedOrder, amount: int, max_fee: int, sender: Sender | None = None
    ) -> TxReceipt:
        """Take the other side of `signed` for `amount` at its limit price, paying at most
        `max_fee` in taker fees."""
        signed = _as_type("signed", signed, SignedOrder)
        return self.send_fn(
            "fill",
            sender,
            order=signed.order.as_tuple(),
            signature=signed.signature,
            amount=amount,
            max_fee=max_fee,
        )

    def cancel(self, orders: Sequence[Order], sender: Sender | None = None) -> TxReceipt:
        """Cancel the sender's `orders` by contents (their nonces are used up)."""
        return self.send_fn(
            "cancel", sender, orders=[_as_tuple("orders", o, Order) for o in orders]
        )

    def cancel_by_hash(
        self, order_hashes: Sequence[bytes], sender: Sender | None = None
    ) -> TxReceipt:
        """Cancel the sender's orders by hash (the nonces stay usable)."""
        return self.send_fn("cancel_by_hash", sender, order_hashes=list(order_hashes))

    def raise_min_nonce(self, min_nonce: int, sender: Sender | None = None) -> TxReceipt:
        """Void all the sender's orders with a nonce below `min_nonce`."""
        return self.send_fn("raise_min_nonce", sender, min_nonce=min_nonce)

    # ERC-1155 longs
    def balance_of(self, owner: str, series_id: int) -> int:
        """The longs `owner` holds in `series_id`."""
        return int(self.view("balanceOf", owner=owner, series_id=series_id))

    def balance_of_batch(self, owners: Sequence[str], series_ids: Sequence[int]) -> list[int]:
        """`balance_of` for each (owner, series) pair of two lists of the same length."""
        if len(owners) != len(series_ids):
            raise InvalidCallArgument(f"series_ids: {len(series_ids)} ids for {len(owners)} owners")
        return [
            int(b)
            for b in self.view("balanceOfBatch", owners=list(owners), series_ids=list(series_ids))
        ]

    def is_approved_for_all(self, owner: str, operator: str) -> bool:
        """True if `operator` may move every long of `owner`."""
        return bool(self.view("isApprovedForAll", owner=owner, operator=operator))

    def set_approval_for_all(
        self, operator: str, approved: bool, sender: Sender | None = None
    ) -> TxReceipt:
        """Let `operator` move all the sender's longs (or stop it)."""
        return self.send_fn("setApprovalForAll", sender, operator=operator, approved=approved)

    def safe_transfer_from(
        self,
        owner: str,
        to: str,
        series_id: int,
        amount: int,
        data: bytes = b"",
        sender: Sender | None = None,
    ) -> TxReceipt:
        """Move `amount` longs of `series_id` from `owner` (the sender or an approved
        operator's principal) to `to`; a contract `to` must accept ERC-1155 transfers."""
        return self.send_fn(
            "safeTransferFrom",
            sender,
            owner=owner,
            to=to,
            series_id=series_id,
            amount=amount,
            data=data,
        )

    # governance (the admin, a timelock in production; fees and pause are the
    # Clearinghouse's, pushed here)
    def grant_role(self, role: bytes, account: str, sender: Sender | None = None) -> TxReceipt:
        """Grant `role` (admin)."""
        return self.send_fn("grantRole", sender, role=role, account=account)

    def grant_relayer(self, relayer: str, sender: Sender | None = None) -> TxReceipt:
        """Register a relayer (admin)."""
        return self.grant_role(self.view("RELAYER_ROLE"), relayer, sender)

    def revoke_relayer(self, relayer: str, sender: Sender | None = None) -> TxReceipt:
        """Deregister a relayer (admin)."""
        return self.send_fn("revokeRole", sender, role=self.view("RELAYER_ROLE"), account=relayer)

    def is_relayer(self, account: str) -> bool:
        """True if `account` may call `match_orders`."""
        return bool(self.view("hasRole", role=self.view("RELAYER_ROLE"), account=account))

    # views
    def free_collateral(self, account: str, token: str) -> int:
        """Free collateral of `account` in `token`."""
        return int(self.view("free_collateral", account=account, token=token))

    def position(self, account: str, series_id: int) -> Position:
        """The longs and fully collateralised short of `account` in `series_id`."""
        long, short = self.view("positions", account=account, series_id=series_id)
        return Position(int(long), int(short))

    def book(self, series_id: int) -> tuple[int, int]:
        """(fully collateralised open interest, collateral locked for it) of a series."""
        interest, collateral = self.view("book", series_id=series_id)
        return int(interest), int(collateral)

    def token_unit(self, token: str) -> int:
        """10**decimals of an accepted token; 0 if the Ledger does not accept it."""
        return int(self.view("token_unit", token=token))

    def remaining(self, order: Order, now: int | None = None) -> int:
        """What `match_orders` or `fill` could still take of `order` (the signature and the
        parties' balances are not checked), from the Ledger's order views; `now` defaults to
        the latest block's time. `strikeline.indexer.LedgerIndex` computes the same from the
        events."""
        order = _as_type("order", order, Order)
        if now is None:
            now = int(self.w3.eth.get_block("latest")["timestamp"])
        if now > order.deadline or order.nonce < self.min_nonce(order.maker):
            return 0
        order_hash = order.hash(self.domain())
        if self.cancelled(order.maker, order_hash):
            return 0
        if not self.nonce_used(order.maker, order.nonce):
            return order.amount
        filled = self.partial_fills(order_hash)
        # zero: filled completely, or another order used the nonce
        return 0 if filled in (0, CANCELLED) else order.amount - filled

    def partial_fills(self, order_hash: bytes) -> int:
        """Filled amount of a partly filled order, `CANCELLED` once cancelled by contents,
        else zero (fresh, fully filled, or its nonce used by another order)."""
        return int(self.view("partial_fills", order_hash=order_hash))

    def min_nonce(self, maker: str) -> int:
        """The maker's minimum valid nonce."""
        return int(self.view("min_nonce", maker=maker))

    def cancelled(self, maker: str, order_hash: bytes) -> bool:
        """True once `maker` cancelled the order `order_hash` by hash."""
        return bool(self.view("cancelled", maker=maker, order_hash=order_hash))

    def nonce_used(self, maker: str, nonce: int) -> bool:
        """True once an order of `maker` with `nonce` filled (in part) or was cancelled."""
        return bool(self.view("nonce_used", maker=maker, nonce=nonce))

    def domain_separator(self) -> bytes:
        """The EIP-712 domain separator as the contract computes it (equals
        `self.domain().separator`)."""
        return bytes(self.view("domain_separator"))

    def fees(self) -> tuple[int, int]:
        """(maker, taker) fees in basis points."""
        return int(self.view("maker_fee_bps")), int(self.view("taker_fee_bps"))

    def fee_recipient(self) -> str:
        """Who receives fees and rounding dust."""
        return str(self.view("fee_recipient"))

    def paused(self) -> bool:
        """True while writing, matching and fills are paused."""
        return bool(self.view("paused"))

    def clearinghouse(self) -> str:
        """The Clearinghouse this Ledger is bound to."""
        return str(self.view("clearinghouse"))


class ClearinghouseBinding(ContractBinding):
    """The Clearinghouse, the cold paths beside the Ledger: products and series, fees and
    pause (pushed to the Ledger), settlement after expiry, margined shorts (through the
    MarginEngine) and the insurance fund. It holds no token: the Ledger does."""

    NAME = "Clearinghouse"

    @classmethod
    def deploy_with_ledger(
        cls,
        w3: Web3,
        oracle: str,
        admin: str,
        guardian: str,
        fee_recipient: str,
        maker_fee_bps: int,
        taker_fee_bps: int,
        sender: Sender,
    ) -> tuple[LedgerBinding, Self]:
        """Deploy the Ledger and the Clearinghouse it names, back to back from `sender`.

        The Ledger takes the Clearinghouse's address before it exists: the address of
        `sender`'s next CREATE (`ids.create_address`); the Clearinghouse's constructor checks
        the binding, so any transaction of `sender` slipping in between fails the deploy
        instead of binding the wrong contract. `admin` gets the admin role of both."""
        nonce = w3.eth.get_transaction_count(Web3.to_checksum_address(_address(sender)), "pending")
        next_address = ids.create_address(_address(sender), nonce + 1)
        ledger = LedgerBinding.deploy(
            w3, next_address, admin, fee_recipient, maker_fee_bps, taker_fee_bps, sender=sender
        )
        ch = cls.deploy(w3, ledger.address, oracle, admin, guardian, sender=sender)
        return ledger, ch

    # series
    def set_product(
        self,
        underlying: str,
        quote: str,
        collateral: str,
        is_put: bool,
        enabled: bool = True,
        sender: Sender | None = None,
    ) -> bytes:
        """Whitelist (or disable) a product (admin); the Ledger then accepts its tokens.
        Returns its id."""
        terms: dict[str, Any] = {
            "underlying": underlying,
            "quote": quote,
            "collateral": collateral,
            "is_put": is_put,
        }
        self.send_fn("set_product", sender, **terms, enabled=enabled)
        return bytes(self.view("product_id", **terms))

    def create_series(
        self, product_id: bytes, strike: int, expiry: int, sender: Sender | None = None
    ) -> int:
        """Create a series (anyone; expiry at 08:00 UTC); returns its id."""
        terms: dict[str, Any] = {"product_id": product_id, "strike": strike, "expiry": expiry}
        self.send_fn("create_series", sender, **terms)
        return int(self.view("series_id", **terms))

    # settlement (anyone, on a holder's or writer's behalf)
    def redeem(self, series_id: int, holder: str, sender: Sender | None = None) -> TxReceipt:
        """Pay `holder` the cash payoff of its longs after the expiry price is final."""
        return self.send_fn("redeem", sender, series_id=series_id, holder=holder)

    def settle(self, series_id: int, writer: str, sender: Sender | None = None) -> TxReceipt:
        """Settle `writer`'s short(s) in `series_id` and return what its collateral keeps."""
        return self.send_fn("settle", sender, series_id=series_id, writer=writer)

    def redeem_many(
        self, series_ids: Sequence[int], holders: Sequence[str], sender: Sender | None = None
    ) -> TxReceipt:
        """`redeem` for each (series, holder) pair."""
        return self.send_fn(
            "redeem_many", sender, series_ids=list(series_ids), holders=list(holders)
        )

    def settle_many(
        self, series_ids: Sequence[int], writers: Sequence[str], sender: Sender | None = None
    ) -> TxReceipt:
        """`settle` for each (series, writer) pair."""
        return self.send_fn(
            "settle_many", sender, series_ids=list(series_ids), writers=list(writers)
        )

    def sweep_dust(self, series_id: int, sender: Sender | None = None) -> TxReceipt:
        """Send a fully settled series' rounding dust to the fee recipient."""
        return self.send_fn("sweep_dust", sender, series_id=series_id)

    # margined shorts and insurance
    def burn_margined(self, series_id: int, amount: int, sender: Sender | None = None) -> TxReceipt:
        """Before expiry, close `amount` of the sender's margined short with its own longs."""
        return self.send_fn("burn_margined", sender, series_id=series_id, amount=amount)

    def fund_insurance(self, token: str, amount: int, sender: Sender | None = None) -> TxReceipt:
        """Move `amount` of the sender's free `token` (on the Ledger) into the insurance fund."""
        return self.send_fn("fund_insurance", sender, token=token, amount=amount)

    # governance
    def grant_role(self, role: bytes, account: str, sender: Sender | None = None) -> TxReceipt:
        """Grant `role` (admin)."""
        return self.send_fn("grantRole", sender, role=role, account=account)

    def set_fees(self, maker_bps: int, taker_bps: int, sender: Sender | None = None) -> TxReceipt:
        """Set the Ledger's maker and taker fees (admin)."""
        return self.send_fn("set_fees", sender, maker_bps=maker_bps, taker_bps=taker_bps)

    def set_fee_recipient(self, fee_recipient: str, sender: Sender | None = None) -> TxReceipt:
        """Set who receives the Ledger's fees and rounding dust (admin)."""
        return self.send_fn("set_fee_recipient", sender, fee_recipient=fee_recipient)

    def set_oracle(self, oracle: str, sender: Sender | None = None) -> TxReceipt:
        """Replace the Oracle (admin)."""
        return self.send_fn("set_oracle", sender, oracle=oracle)

    def pause(self, sender: Sender | None = None) -> TxReceipt:
        """Stop writing, matching, fills and margined writing (guardian)."""
        return self.send_fn("pause", sender)

    def unpause(self, sender: Sender | None = None) -> TxReceipt:
        """Resume them (guardian)."""
        return self.send_fn("unpause", sender)

    # views
    def collateral_required(self, series_id: int, amount: int) -> int:
        """Full collateral for writing `amount` of `series_id`."""
        return int(self.view("collateral_required", series_id=series_id, amount=amount))

    def payoff(self, series_id: int, price: int, amount: int) -> int:
        """The cash payoff of `amount` longs at settlement price `price` (rounded down)."""
        return int(self.view("payoff", series_id=series_id, price=price, amount=amount))

    def product(self, product_id: bytes) -> Product:
        """A product's tokens and flags (all zero if unknown)."""
        return Product(*self.view("products", product_id=product_id))

    def series(self, series_id: int) -> Series:
        """A series' terms (zero if unknown)."""
        product_id, strike, expiry = self.view("series", series_id=series_id)
        return Series(bytes(product_id), int(strike), int(expiry))

    def series_state(self, series_id: int) -> SeriesState:
        """Open interest, collateral, settlement price and payout pool of a series."""
        return SeriesState(*(int(v) for v in self.view("series_state", series_id=series_id)))

    def margin_position(self, account: str, series_id: int) -> MarginPosition:
        """The margined short of `account` in `series_id` and its collateral."""
        short, collateral = self.view("margin_positions", account=account, series_id=series_id)
        return MarginPosition(int(short), int(collateral))

    def margin_reserve(self, account: str, token: str) -> int:
        """The account's margin reserve in `token`."""
        return int(self.view("margin_reserve", account=account, token=token))

    def insurance(self, token: str) -> int:
        """The insurance fund's balance in `token`."""
        return int(self.view("insurance", token=token))

    def ledger(self) -> str:
        """The Ledger this Clearinghouse is bound to."""
        return str(self.view("ledger"))


class OracleBinding(ContractBinding):
    """The Oracle: m-of-n signed spot reports, relayed by anyone (a keeper)."""

    NAME = "Oracle"

    def grant_reporter(self, reporter: str, sender: Sender | None = None) -> TxReceipt:
        """Register a price reporter (admin)."""
        return self.send_fn("grantRole", sender, role=self.view("REPORTER_ROLE"), reporter=reporter)

    def report_spot(
        self, asset: str, reports: Sequence[SignedReport], sender: Sender | None = None
    ) -> TxReceipt:
        """Relay reporters' signed spot reports for `asset` (sorted by signer, as required)."""
        return self.send_fn("report_spot", sender, asset=asset, reports=ordered(list(reports)))

    def spot_price(self, asset: str) -> int:
        """The median of the last accepted reports; reverts if none or stale."""
        return int(self.view("spot_price", asset=asset))


class MarginParams(NamedTuple):
    """A product's margin parameters (`margin.MarginParams`), all in basis points."""

    spot_shock_bps: int
    time_shock_bps: int
    min_bps: int
    maintenance_bps: int


class AuctionParams(NamedTuple):
    """The liquidation auction (`margin.AuctionParams`): discounts in bps, duration in s."""

    start_bps: int
    max_bps: int
    duration: int


class AccountMargin(NamedTuple):
    """An account's margin in one collateral token, at the Oracle's spot."""

    collateral: int
    initial: int
    maintenance: int


class MarginEngineBinding(ContractBinding):
    """The MarginEngine: partially collateralised shorts, margin checks, liquidation."""

    NAME = "MarginEngine"

    # governance (the admin, a timelock in production)
    def set_margin_params(
        self, product_id: bytes, params: MarginParams, sender: Sender | None = None
    ) -> TxReceipt:
        """Enable margined writing of a product with `params` (admin)."""
        return self.send_fn(
            "set_margin_params",
            sender,
            product_id=product_id,
            params=tuple(_as_type("params", params, MarginParams)),
        )

    def set_auction_params(self, params: AuctionParams, sender: Sender | None = None) -> TxReceipt:
        """Set the liquidation auction's curve (admin)."""
        return self.send_fn(
            "set_auction_params", sender, params=tuple(_as_type("params", params, AuctionParams))
        )

    # writers
    def write_margined(
        self,
        series_id: int,
        amount: int,
        collateral: int,
        recipient: str | None = None,
        sender: Sender | None = None,
    ) -> TxReceipt:
        """Write `amount` with `collateral` moved from free collateral into the margin; the
        longs go to `recipient` (default: the sender). Reverts below initial margin."""
        target = self._target(recipient, sender)
        return self.send_fn(
            "write_margined",
            sender,
            series_id=series_id,
            amount=amount,
            recipient=target,
            collateral=collateral,
        )

    def add_collateral(
        self, series_id: int, amount: int, sender: Sender | None = None
    ) -> TxReceipt:
        """Move free collateral into a margined short."""
        return self.send_fn("add_collateral", sender, series_id=series_id, amount=amount)

    def remove_collateral(
        self, series_id: int, amount: int, sender: Sender | None = None
    ) -> TxReceipt:
        """Move collateral out of a margined short (initial margin must still hold)."""
        return self.send_fn("remove_collateral", sender, series_id=series_id, amount=amount)

    def release_reserve(self, token: str, amount: int, sender: Sender | None = None) -> TxReceipt:
        """Move margin reserve back to free collateral (initial margin must still hold)."""
        return self.send_fn("release_reserve", sender, token=token, amount=amount)

    # keepers
    def start_liquidation(
        self, account: str, token: str, sender: Sender | None = None
    ) -> TxReceipt:
        """Start the auction clock of an account under maintenance."""
        return self.send_fn("start_liquidation", sender, account=account, token=token)

    def liquidate(
        self,
        account: str,
        token: str,
        series_id: int,
        max_amount: int,
        sender: Sender | None = None,
    ) -> TxReceipt:
        """Take over up to `max_amount` of the account's short in `series_id` with full
        collateral, for the auction's reward; only what restores maintenance is taken."""
        return self.send_fn(
            "liquidate",
            sender,
            account=account,
            token=token,
            series_id=series_id,
            max_amount=max_amount,
        )

    # views
    def account_margin(self, account: str, token: str) -> AccountMargin:
        """(collateral, initial, maintenance) of the account's margin in `token`."""
        return AccountMargin(*self.view("account_margin", account=account, token=token))

    def free_margin(self, account: str, token: str) -> int:
        """Collateral above the initial requirement (what may be removed)."""
        return int(self.view("free_margin", account=account, token=token))

    def is_liquidatable(self, account: str, token: str) -> bool:
        """True while the account's collateral is below its maintenance requirement."""
        return bool(self.view("is_liquidatable", account=account, token=token))

    def margined_series(self, account: str, token: str) -> list[int]:
        """The series of the account's margined shorts in `token`."""
        return [int(s) for s in self.view("margined_series", account=account, token=token)]

    def margin_params(self, product_id: bytes) -> MarginParams:
        """A product's margin parameters (all zero while margined writing is off)."""
        return MarginParams(*self.view("margin_params", product_id=product_id))
