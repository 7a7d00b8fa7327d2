"""Typed web3.py bindings for the Strikeline contracts, used by scripts, benchmarks and the relayer.

ABIs and bytecode come from compiling `contracts/` with the virtualenv's own `vyper`
(`vyper -f abi,bytecode`), cached as JSON under `.build/bindings/`. A cache entry is keyed by
a fingerprint of every contract source and the compiler version, so editing any contract or
interface recompiles on next use; concurrent processes (pytest-xdist) write the cache
atomically.

Transactions go out either from an address the node unlocks (anvil's dev accounts) or from an
eth-account `LocalAccount`, signed locally. Every sending method waits for the receipt and
raises `TransactionFailed` (with the revert reason when the node gives one) if it reverts.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Self

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, Web3RPCError
from web3.logs import DISCARD
from web3.types import TxReceipt

from strikeline import ids
from strikeline.oracle_reports import SignedReport, ordered
from strikeline.orders import Domain, Match, Order, SignedOrder

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS_DIR = ROOT / "contracts"
BUILD_DIR = ROOT / ".build" / "bindings"

#: Who sends a transaction: an address the node unlocks, or a local key.
Sender = str | LocalAccount


class BindingError(Exception):
    """Base class of this module's errors."""


class CompileError(BindingError):
    """vyper failed on a contract; the message carries its output."""


class TransactionFailed(BindingError):
    """A transaction (or its gas estimate) reverted; `reason` is the revert string if known."""

    def __init__(self, reason: str, receipt: TxReceipt | None = None):
        super().__init__(reason)
        self.reason = reason
        self.receipt = receipt


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


@functools.cache
def _fingerprint() -> str:
    """A hash of the compiler version and every source under `contracts/`."""
    digest = hashlib.sha256()
    version = subprocess.run(
        [vyper_executable(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    digest.update(version.encode())
    for path in sorted(CONTRACTS_DIR.rglob("*.vy*")):
        digest.update(str(path.relative_to(CONTRACTS_DIR)).encode())
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


# --------------------------------------------------------------------------- sending


def _address(sender: Sender) -> str:
    return sender.address if isinstance(sender, LocalAccount) else Web3.to_checksum_address(sender)


def send(w3: Web3, fn: ContractFunction, sender: Sender, access_list: bool = False
         ) -> TxReceipt:
    """Send the call `fn` from `sender`, wait for its receipt and check that it succeeded.

    With `access_list`, the node's `eth_createAccessList` names every contract and storage
    slot the call touches and the transaction pre-declares them (EIP-2930): each costs 200 gas
    less than a cold access, about 4,000 gas on a relayer's match. The list is only used when
    it makes the transaction cheaper.

    Raises:
        TransactionFailed: the gas estimate or the mined transaction reverted.
    """
    params: dict[str, Any] = {"from": _address(sender)}
    try:
        if access_list:
            params.update(_access_list(w3, fn, params))
        if isinstance(sender, LocalAccount):
            params["nonce"] = w3.eth.get_transaction_count(sender.address, "pending")
            signed = sender.sign_transaction(fn.build_transaction(params))
            tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        else:
            tx_hash = fn.transact(params)
    except ContractLogicError as exc:
        raise TransactionFailed(_reason(exc)) from exc
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    if receipt["status"] != 1:
        raise TransactionFailed("reverted", receipt)
    return receipt


def _access_list(w3: Web3, fn: ContractFunction, params: dict[str, Any]) -> dict[str, Any]:
    """The `accessList` (and a `gas` limit) for `fn`, from the node's `eth_createAccessList`,
    if it makes the call cheaper; else nothing.

    A listed address costs 2,400 and a listed slot 1,900 up front, then 100 per access: 100
    less than a cold access each. The called contract is warm anyway, so it is left out (its
    entry would cost 2,400 for nothing)."""
    call = {"from": params["from"], "to": fn.address, "data": fn._encode_transaction_data()}
    try:
        created = w3.eth.create_access_list(call)
    except Web3RPCError as exc:  # the node simulated the call and it reverted
        error = (exc.rpc_response or {}).get("error") or {}
        raise TransactionFailed(_revert_string(str(error.get("message", exc)))) from exc
    if created.get("error"):
        raise TransactionFailed(_revert_string(str(created["error"])))
    target = Web3.to_checksum_address(fn.address)
    entries = [
        {"address": e["address"],
         "storageKeys": [k if isinstance(k, str) else Web3.to_hex(k) for k in e["storageKeys"]]}
        for e in created["accessList"]
        if Web3.to_checksum_address(e["address"]) != target
    ]
    if not entries:
        return {}
    plain = w3.eth.estimate_gas(call)
    listed = w3.eth.estimate_gas({**call, "accessList": entries})
    if listed >= plain:
        return {}
    return {"accessList": entries, "gas": listed * 6 // 5}


def _reason(exc: ContractLogicError) -> str:
    """The revert string of a failed call ("execution reverted: x" -> "x")."""
    return _revert_string(str(exc.message or exc))


def _revert_string(message: str) -> str:
    """"execution reverted: x" -> "x"."""
    return message.split("execution reverted: ", 1)[-1]


class ContractBinding:
    """A deployed contract: its web3 `Contract`, a default sender and helpers."""

    NAME: ClassVar[str] = ""

    def __init__(self, w3: Web3, address: str, sender: Sender | None = None, name: str = ""):
        self.w3 = w3
        self.name = name or self.NAME
        self.address = Web3.to_checksum_address(address)
        self.contract: Contract = w3.eth.contract(address=self.address, abi=artifact(self.name).abi)
        self.sender = sender

    @classmethod
    def deploy(cls, w3: Web3, *args: Any, sender: Sender, name: str = "") -> Self:
        """Deploy a fresh instance with constructor `args`; `sender` becomes the default sender."""
        built = artifact(name or cls.NAME)
        factory = w3.eth.contract(abi=built.abi, bytecode=built.bytecode)
        receipt = send(w3, factory.constructor(*args), sender)
        return cls(w3, receipt["contractAddress"], sender, built.name)

    def transact(self, fn: ContractFunction, sender: Sender | None = None,
                 access_list: bool = False) -> TxReceipt:
        """Send `fn` from `sender` or the default sender (see `send` for `access_list`)."""
        chosen = sender or self.sender
        if chosen is None:
            raise BindingError(f"{self.name}: no sender given and no default sender")
        return send(self.w3, fn, chosen, access_list)

    def events(self, receipt: TxReceipt, event: str) -> list[dict[str, Any]]:
        """The decoded `event` logs this contract emitted in `receipt`, as dicts of arguments."""
        decoded = getattr(self.contract.events, event)().process_receipt(receipt, errors=DISCARD)
        return [dict(log["args"]) for log in decoded if log["address"] == self.address]


# --------------------------------------------------------------------------- contracts


class Position(NamedTuple):
    """A short position in the Clearinghouse."""

    short: int
    collateral: int


class ERC20Binding(ContractBinding):
    """An ERC-20 collateral token (`MockERC20` on devnets, where anyone may mint)."""

    NAME = "MockERC20"

    def approve(self, spender: str, amount: int, sender: Sender | None = None) -> TxReceipt:
        """Allow `spender` (the Clearinghouse) to pull `amount`."""
        return self.transact(self.contract.functions.approve(spender, amount), sender)

    def mint(self, to: str, amount: int, sender: Sender | None = None) -> TxReceipt:
        """Mint test tokens (MockERC20 only)."""
        return self.transact(self.contract.functions.mint(to, amount), sender)

    def balance_of(self, owner: str) -> int:
        """The token balance of `owner`."""
        return int(self.contract.functions.balanceOf(owner).call())


class ClearinghouseBinding(ContractBinding):
    """The Clearinghouse: collateral, series, writing and the trade settlement."""

    NAME = "Clearinghouse"

    @classmethod
    def deploy_with_token(cls, w3: Web3, base_uri: str, oracle: str, admin: str, guardian: str,
                          fee_recipient: str, sender: Sender) -> tuple[ContractBinding, Self]:
        """Deploy the OptionToken and the Clearinghouse it names, back to back from `sender`.

        The token takes the Clearinghouse's address before it exists: the address of
        `sender`'s next CREATE (`ids.create_address`); the Clearinghouse's constructor checks
        the binding, so any transaction of `sender` slipping in between fails the deploy
        instead of binding the wrong contract."""
        nonce = w3.eth.get_transaction_count(_address(sender), "pending")
        next_address = ids.create_address(_address(sender), nonce + 1)
        token = ContractBinding.deploy(w3, base_uri, next_address, sender=sender,
                                       name="OptionToken")
        ch = cls.deploy(w3, token.address, oracle, admin, guardian, fee_recipient, sender=sender)
        return token, ch

    # accounts
    def deposit(self, token: str, amount: int, account: str | None = None,
                sender: Sender | None = None) -> TxReceipt:
        """Deposit `amount` of `token` (approved beforehand) for `account` (default: sender)."""
        chosen = sender or self.sender
        target = account or (_address(chosen) if chosen is not None else None)
        return self.transact(self.contract.functions.deposit(token, amount, target), sender)

    def withdraw(self, token: str, amount: int, recipient: str | None = None,
                 sender: Sender | None = None) -> TxReceipt:
        """Withdraw free collateral to `recipient` (default: the sender)."""
        chosen = sender or self.sender
        target = recipient or (_address(chosen) if chosen is not None else None)
        return self.transact(self.contract.functions.withdraw(token, amount, target), sender)

    # series and positions
    def set_product(self, underlying: str, quote: str, collateral: str, is_put: bool,
                    enabled: bool = True, sender: Sender | None = None) -> bytes:
        """Whitelist a product (admin); returns its id."""
        fn = self.contract.functions.set_product(underlying, quote, collateral, is_put, enabled)
        self.transact(fn, sender)
        product = self.contract.functions.product_id(underlying, quote, collateral, is_put)
        return bytes(product.call())

    def create_series(self, product_id: bytes, strike: int, expiry: int,
                      sender: Sender | None = None) -> int:
        """Create a series (anyone); returns its id."""
        self.transact(self.contract.functions.create_series(product_id, strike, expiry), sender)
        return int(self.contract.functions.series_id(product_id, strike, expiry).call())

    def write(self, series_id: int, amount: int, recipient: str | None = None,
              sender: Sender | None = None) -> TxReceipt:
        """Write `amount` options from free collateral, longs to `recipient` (default: sender)."""
        chosen = sender or self.sender
        target = recipient or (_address(chosen) if chosen is not None else None)
        return self.transact(self.contract.functions.write(series_id, amount, target), sender)

    def grant_role(self, role: bytes, account: str, sender: Sender | None = None) -> TxReceipt:
        """Grant `role` (admin)."""
        return self.transact(self.contract.functions.grantRole(role, account), sender)

    def grant_exchange(self, exchange: str, sender: Sender | None = None) -> TxReceipt:
        """Let `exchange` settle trades (admin)."""
        return self.grant_role(self.contract.functions.EXCHANGE_ROLE().call(), exchange, sender)

    # views
    def free_collateral(self, account: str, token: str) -> int:
        """Free collateral of `account` in `token`."""
        return int(self.contract.functions.free_collateral(account, token).call())

    def position(self, account: str, series_id: int) -> Position:
        """The short position of `account` in `series_id`."""
        short, collateral = self.contract.functions.positions(account, series_id).call()
        return Position(int(short), int(collateral))

    def collateral_required(self, series_id: int, amount: int) -> int:
        """Full collateral for writing `amount` of `series_id`."""
        return int(self.contract.functions.collateral_required(series_id, amount).call())

    def fee_recipient(self) -> str:
        """Who receives fees and rounding dust."""
        return str(self.contract.functions.fee_recipient().call())


class ExchangeBinding(ContractBinding):
    """The Exchange: signed orders matched by relayers or filled directly."""

    NAME = "Exchange"

    def domain(self) -> Domain:
        """The EIP-712 domain orders for this Exchange are signed under."""
        return Domain(self.w3.eth.chain_id, self.address)

    # trading
    def match_orders(self, matches: Sequence[Match], sender: Sender | None = None,
                     access_list: bool = False) -> TxReceipt:
        """Settle one or more matches (relayers only); `access_list` pre-declares what the
        matches touch (EIP-2930), see `send`."""
        return self.transact(
            self.contract.functions.match_orders([m.as_tuple() for m in matches]), sender,
            access_list,
        )

    def fill(self, signed: SignedOrder, amount: int, max_fee: int,
             sender: Sender | None = None) -> TxReceipt:
        """Take the other side of `signed` for `amount`, paying at most `max_fee` in fees."""
        order = signed.order.as_tuple()
        fn = self.contract.functions.fill(order, signed.signature, amount, max_fee)
        return self.transact(fn, sender)

    def cancel(self, orders: Sequence[Order], sender: Sender | None = None) -> TxReceipt:
        """Cancel the sender's `orders`."""
        return self.transact(self.contract.functions.cancel([o.as_tuple() for o in orders]), sender)

    def cancel_by_hash(self, order_hashes: Sequence[bytes], sender: Sender | None = None
                       ) -> TxReceipt:
        """Cancel the sender's orders by hash (the nonces stay usable)."""
        return self.transact(
            self.contract.functions.cancel_by_hash([bytes(h) for h in order_hashes]), sender
        )

    def raise_min_nonce(self, min_nonce: int, sender: Sender | None = None) -> TxReceipt:
        """Void all the sender's orders with a nonce below `min_nonce`."""
        return self.transact(self.contract.functions.raise_min_nonce(min_nonce), sender)

    # governance
    def set_fees(self, maker_bps: int, taker_bps: int, sender: Sender | None = None) -> TxReceipt:
        """Set the maker and taker fees (admin)."""
        return self.transact(self.contract.functions.set_fees(maker_bps, taker_bps), sender)

    def grant_relayer(self, relayer: str, sender: Sender | None = None) -> TxReceipt:
        """Register a relayer (admin)."""
        role = self.contract.functions.RELAYER_ROLE().call()
        return self.transact(self.contract.functions.grantRole(role, relayer), sender)

    def pause(self, sender: Sender | None = None) -> TxReceipt:
        """Stop matching and fills (guardian)."""
        return self.transact(self.contract.functions.pause(), sender)

    def unpause(self, sender: Sender | None = None) -> TxReceipt:
        """Resume matching and fills (guardian)."""
        return self.transact(self.contract.functions.unpause(), sender)

    # views
    def hash_order(self, order: Order) -> bytes:
        """The order hash as the contract computes it."""
        return bytes(self.contract.functions.hash_order(order.as_tuple()).call())

    def remaining(self, order: Order) -> int:
        """What can still be filled of `order` (signature not checked)."""
        return int(self.contract.functions.remaining(order.as_tuple()).call())

    def min_nonce(self, maker: str) -> int:
        """The maker's minimum valid nonce."""
        return int(self.contract.functions.min_nonce(maker).call())

    def cancelled(self, maker: str, order_hash: bytes) -> bool:
        """True once `maker` cancelled the order `order_hash` by hash."""
        return bool(self.contract.functions.cancelled(maker, bytes(order_hash)).call())

    def nonce_used(self, maker: str, nonce: int) -> bool:
        """True once an order of `maker` with `nonce` filled (in part) or was cancelled."""
        return bool(self.contract.functions.nonce_used(maker, nonce).call())

    def fees(self) -> tuple[int, int]:
        """(maker, taker) fees in basis points."""
        functions = self.contract.functions
        return int(functions.maker_fee_bps().call()), int(functions.taker_fee_bps().call())


class OracleBinding(ContractBinding):
    """The Oracle: m-of-n signed spot reports, relayed by anyone (a keeper)."""

    NAME = "Oracle"

    def grant_reporter(self, reporter: str, sender: Sender | None = None) -> TxReceipt:
        """Register a price reporter (admin)."""
        role = self.contract.functions.REPORTER_ROLE().call()
        return self.transact(self.contract.functions.grantRole(role, reporter), sender)

    def report_spot(self, asset: str, reports: Sequence[SignedReport],
                    sender: Sender | None = None) -> TxReceipt:
        """Relay reporters' signed spot reports for `asset` (sorted by signer, as required)."""
        return self.transact(
            self.contract.functions.report_spot(asset, ordered(list(reports))), sender
        )

    def spot_price(self, asset: str) -> int:
        """The median of the last accepted reports; reverts if none or stale."""
        return int(self.contract.functions.spot_price(asset).call())


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
    def set_margin_params(self, product_id: bytes, params: MarginParams,
                          sender: Sender | None = None) -> TxReceipt:
        """Enable margined writing of a product with `params` (admin)."""
        fn = self.contract.functions.set_margin_params(product_id, tuple(params))
        return self.transact(fn, sender)

    def set_auction_params(self, params: AuctionParams, sender: Sender | None = None
                           ) -> TxReceipt:
        """Set the liquidation auction's curve (admin)."""
        return self.transact(self.contract.functions.set_auction_params(tuple(params)), sender)

    # writers
    def write_margined(self, series_id: int, amount: int, collateral: int,
                       recipient: str | None = None, sender: Sender | None = None
                       ) -> TxReceipt:
        """Write `amount` with `collateral` moved from free collateral into the margin; the
        longs go to `recipient` (default: the sender). Reverts below initial margin."""
        chosen = sender or self.sender
        target = recipient or (_address(chosen) if chosen is not None else None)
        fn = self.contract.functions.write_margined(series_id, amount, target, collateral)
        return self.transact(fn, sender)

    def add_collateral(self, series_id: int, amount: int, sender: Sender | None = None
                       ) -> TxReceipt:
        """Move free collateral into a margined short."""
        return self.transact(self.contract.functions.add_collateral(series_id, amount), sender)

    def remove_collateral(self, series_id: int, amount: int, sender: Sender | None = None
                          ) -> TxReceipt:
        """Move collateral out of a margined short (initial margin must still hold)."""
        fn = self.contract.functions.remove_collateral(series_id, amount)
        return self.transact(fn, sender)

    def release_reserve(self, token: str, amount: int, sender: Sender | None = None
                        ) -> TxReceipt:
        """Move margin reserve back to free collateral (initial margin must still hold)."""
        return self.transact(self.contract.functions.release_reserve(token, amount), sender)

    # keepers
    def start_liquidation(self, account: str, token: str, sender: Sender | None = None
                          ) -> TxReceipt:
        """Start the auction clock of an account under maintenance."""
        return self.transact(self.contract.functions.start_liquidation(account, token), sender)

    def liquidate(self, account: str, token: str, series_id: int, max_amount: int,
                  sender: Sender | None = None) -> TxReceipt:
        """Take over up to `max_amount` of the account's short in `series_id` with full
        collateral, for the auction's reward; only what restores maintenance is taken."""
        fn = self.contract.functions.liquidate(account, token, series_id, max_amount)
        return self.transact(fn, sender)

    # views
    def account_margin(self, account: str, token: str) -> AccountMargin:
        """(collateral, initial, maintenance) of the account's margin in `token`."""
        return AccountMargin(*self.contract.functions.account_margin(account, token).call())

    def free_margin(self, account: str, token: str) -> int:
        """Collateral above the initial requirement (what may be removed)."""
        return int(self.contract.functions.free_margin(account, token).call())

    def is_liquidatable(self, account: str, token: str) -> bool:
        """True while the account's collateral is below its maintenance requirement."""
        return bool(self.contract.functions.is_liquidatable(account, token).call())

    def margined_series(self, account: str, token: str) -> list[int]:
        """The series of the account's margined shorts in `token`."""
        return [int(s) for s in self.contract.functions.margined_series(account, token).call()]

    def margin_params(self, product_id: bytes) -> MarginParams:
        """A product's margin parameters (all zero while margined writing is off)."""
        return MarginParams(*self.contract.functions.margin_params(product_id).call())
