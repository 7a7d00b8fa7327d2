"""The transaction manager shared by the relayer's submitter and every keeper.

A caller hands over an *intent*: a call (`to`, `data`, `value`) from one of the manager's
signers under an idempotency key of its choosing (`"settle:ETH-27DEC24-3000-C"`,
`"match-batch:1234"`). The manager gets it mined exactly once and reports its status:

    queued ──> sent ──> mined ──> confirmed          (receipt status 1, N blocks deep)
      │          │        │  └──> reverted           (receipt status 0, N blocks deep)
      │          │        └─────> sent               (its block was reorged away: re-broadcast)
      │          └──────────────> replaced           (its nonce was used by a transaction
      │                                               this journal never signed)
      └─────────────────────────> failed             (every node refused it for good; its
                                                      nonce goes to a no-op filler)

Guarantees, and how:

- *Nothing is sent twice.* An intent owns one nonce for life; every transaction ever signed
  for it (the first and each fee bump) carries that nonce, so at most one of them can be mined.
  `submit` with a key already in the journal returns the journaled intent instead of sending
  (the key is the table's primary key, so two processes racing on one key cannot both win).
- *Journal before broadcast.* The nonce, the intent and the signed raw transaction are
  committed in one database transaction before any node sees the transaction. A process killed
  anywhere re-broadcasts the journaled bytes on restart (`recover`, run at construction), and a
  re-broadcast of bytes a node already has is harmless.
- *One nonce sequence per signer, no gaps.* Nonces come from a journal row per (chain, signer)
  incremented in the same database transaction; at boot the row is raised to the chain's
  pending count if the key was used elsewhere; a nonce the journal assigned but holds no
  transaction for (or whose transaction no node accepts) is filled with a zero-value transfer
  to self, so later nonces are never stuck behind a hole.
- *Fees.* EIP-1559 (type 2). First attempt: `max_fee = 2 * base_fee + tip`, `tip` the node's
  suggestion (at least `min_priority_fee`), both capped by `max_fee_cap`. A transaction that
  waited `bump_after_blocks` blocks since its last attempt is re-signed on the same nonce with
  both fees raised by at least `bump_permille` (125 = 12.5%, the floor, which also clears
  geth's 10% replacement rule) or to the market's level if higher, never above the cap. At the
  cap the last attempt is re-broadcast as it is.
- *Confirmations and reorgs.* An intent is `mined` once any attempt has a receipt, `confirmed`
  (or `reverted`) when it is `confirmations` blocks deep. A mined intent whose receipt vanished
  (a reorg dropped it) goes back to `sent` and is sent again at the current fee market: its
  mined bytes if their fees still clear it, else a replacement on its nonce at the market's
  level and at least `bump_permille` above every earlier attempt; a receipt that moved to
  another block is followed. Reorgs deeper than `confirmations` are not undone.
- *Simulation.* `submit` first runs `eth_estimateGas` from the signer; a revert raises
  `SimulationFailed` with the revert reason on one line and records nothing (nothing was sent,
  so the key stays free for a later try). A caller that already estimated the call passes
  `gas_estimate` and it is not simulated twice; `submit_many` submits several calls with one
  simulation batch, one fee read, one journal transaction and one broadcast batch.
- *Secrets.* Signers are `Signer` objects wrapping an eth-account key loaded from an encrypted
  keystore (`load_keystore`, passphrase as `SecretStr`) or, on local chains only, an anvil
  test account (`anvil_signer`). No key or passphrase appears in a repr, log line or error.

The manager is driven by its owner: call `tick()` once per block (or every second); it
advances every open intent. Calls are thread-safe (one lock). Storage is `strikeline.db`
(SQLite by default, PostgreSQL when several processes share a signer); the schema is in
`docs/transactions.md`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from hexbytes import HexBytes
from pydantic import SecretStr
from web3.contract.contract import ContractFunction

from strikeline import db as dbmod
from strikeline.chain import DEFAULT_MNEMONIC
from strikeline.errors import StrikelineError
from strikeline.rpc import NodeError, NoNodeAvailable, RpcError, RpcPool

log = logging.getLogger("strikeline.txmanager")

#: Chain ids of local development nodes (anvil, hardhat, ganache): the only chains on which the
#: public anvil test keys may sign.
LOCAL_CHAIN_IDS = frozenset({31337, 1337})
SCHEMA_NAME = "txmanager"
SCHEMA_VERSION = 1
_FILLER_PREFIX = "filler:"
_GWEI = 10**9


class TxError(StrikelineError):
    """Base class of this module's errors (messages are one line and carry no secrets)."""


class SimulationFailed(TxError):
    """The call fails in simulation (reverts, or the node refuses it); `reason` is one line."""

    def __init__(self, reason: str):
        super().__init__(f"simulation failed: {reason}")
        self.reason = reason


class IdempotencyConflict(TxError):
    """The key is already journaled for a different call."""


class KeystoreError(TxError):
    """A keystore could not be read or decrypted (wrong passphrase, bad file)."""


class UnknownSigner(TxError):
    """The manager holds no signer with that address."""


class NotLocalChain(TxError):
    """Public test keys were asked for on a chain that is not a local devnet."""


class Status(StrEnum):
    """Where an intent stands (see the module docstring for the transitions)."""

    QUEUED = "queued"  # journaled and signed; no node has accepted it yet
    SENT = "sent"  # a node accepted it; not mined
    MINED = "mined"  # in a block, fewer than `confirmations` deep
    CONFIRMED = "confirmed"  # succeeded, `confirmations` deep (final)
    REVERTED = "reverted"  # mined with status 0, `confirmations` deep (final)
    FAILED = "failed"  # no node would ever accept it; its nonce went to a filler (final)
    REPLACED = "replaced"  # its nonce was consumed by a transaction not in the journal (final)


OPEN = (Status.QUEUED, Status.SENT, Status.MINED)
FINAL = frozenset({Status.CONFIRMED, Status.REVERTED, Status.FAILED, Status.REPLACED})


# --------------------------------------------------------------------------- signers


class Signer:
    """A local signing key. Its repr, str and errors show the address only; it cannot be pickled."""

    __slots__ = ("_account", "address", "devnet_only")

    def __init__(self, account: LocalAccount, devnet_only: bool = False):
        self._account = account
        self.address: str = to_checksum_address(account.address)
        #: a public test key: a TxManager refuses it unless its nodes serve a local chain
        self.devnet_only = devnet_only

    def sign(self, transaction: dict[str, Any]) -> tuple[bytes, str]:
        """The signed raw transaction and its hash (0x hex)."""
        signed = self._account.sign_transaction(transaction)
        return bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex()

    def __repr__(self) -> str:
        return f"Signer({self.address})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a Signer holds a private key and cannot be pickled")


def load_keystore(path: str | Path, passphrase: SecretStr) -> Signer:
    """Decrypt an Ethereum keystore (V3 JSON, as geth, ape and eth-account write them).

    Raises:
        KeystoreError: the file is missing or malformed, or the passphrase is wrong.
    """
    name = Path(path).name
    try:
        keyfile = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        raise KeystoreError(f"keystore {name}: cannot read it as JSON") from None
    try:
        key = Account.decrypt(keyfile, passphrase.get_secret_value())
    except ValueError:
        raise KeystoreError(f"keystore {name}: wrong passphrase or corrupt file") from None
    except Exception as exc:  # eth-keyfile raises assorted types for malformed files
        raise KeystoreError(f"keystore {name}: unreadable ({type(exc).__name__})") from None
    return Signer(Account.from_key(key))


def anvil_signer(index: int, chain_id: int, mnemonic: str = DEFAULT_MNEMONIC) -> Signer:
    """Anvil's public test account `index`, refused unless `chain_id` is a local devnet's.

    Raises:
        NotLocalChain: `chain_id` is not in `LOCAL_CHAIN_IDS`.
    """
    if chain_id not in LOCAL_CHAIN_IDS:
        raise NotLocalChain(f"anvil test keys are public: refused on chain {chain_id}")
    Account.enable_unaudited_hdwallet_features()
    account = Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/0'/0/{index}")
    return Signer(account, devnet_only=True)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class TxConfig:
    """How the manager prices, bumps and confirms. Fees are in wei (integers)."""

    confirmations: int = 3
    bump_after_blocks: int = 3
    bump_permille: int = 125  # at least 125 (12.5%)
    max_fee_cap: int = 500 * _GWEI
    min_priority_fee: int = 1 * _GWEI
    gas_margin_percent: int = 20  # added to the estimate

    def __post_init__(self) -> None:
        if self.bump_permille < 125:
            raise TxError("bump_permille must be at least 125 (12.5%)")
        if self.confirmations < 1 or self.bump_after_blocks < 1:
            raise TxError("confirmations and bump_after_blocks must be at least 1")


@dataclass(frozen=True)
class Intent:
    """A journaled intent as it stands now."""

    key: str
    signer: str
    nonce: int | None
    status: Status
    to: str | None
    value: int
    data: bytes
    gas_limit: int
    tx_hash: str | None  # the mined attempt's hash once mined, else the latest attempt's
    block_number: int | None
    block_hash: str | None
    error: str
    attempts: int
    max_fee: int  # the latest attempt's fees
    priority_fee: int
    created_ms: int

    @property
    def final(self) -> bool:
        return self.status in FINAL


@dataclass(frozen=True)
class Attempt:
    """One signed transaction of an intent (the first, or a fee bump)."""

    seq: int
    tx_hash: str
    max_fee: int
    priority_fee: int
    raw: bytes
    sent_block: int | None  # the head at its first broadcast try; None: not tried yet
    accepted: bool  # a node took it into its pool at least once


@dataclass(frozen=True)
class Request:
    """One call for `TxManager.submit_many` (the arguments of `submit`)."""

    key: str
    signer: str
    to: str | None
    data: bytes = b""
    value: int = 0
    gas_limit: int | None = None
    gas_estimate: int | None = None

    @classmethod
    def of_call(
        cls, key: str, signer: str, call: ContractFunction, gas_estimate: int | None = None
    ) -> Request:
        """The request of a web3 contract call (as `submit_call`)."""
        data = bytes(HexBytes(call._encode_transaction_data()))
        return cls(key, signer, call.address, data, gas_estimate=gas_estimate)


SCHEMA = [
    """CREATE TABLE IF NOT EXISTS txm_nonce (
        chain_id {bigint} NOT NULL,
        signer TEXT NOT NULL,
        next_nonce {bigint} NOT NULL,
        PRIMARY KEY (chain_id, signer))""",
    """CREATE TABLE IF NOT EXISTS txm_intent (
        key TEXT PRIMARY KEY,
        chain_id {bigint} NOT NULL,
        signer TEXT NOT NULL,
        nonce {bigint},
        to_address TEXT,
        value TEXT NOT NULL,
        data {blob} NOT NULL,
        gas_limit {bigint} NOT NULL,
        payload_hash TEXT NOT NULL,
        status TEXT NOT NULL,
        error TEXT NOT NULL DEFAULT '',
        tx_hash TEXT,
        block_number {bigint},
        block_hash TEXT,
        created_ms {bigint} NOT NULL,
        updated_ms {bigint} NOT NULL,
        UNIQUE (chain_id, signer, nonce))""",
    """CREATE TABLE IF NOT EXISTS txm_attempt (
        seq {autoid},
        tx_hash TEXT NOT NULL UNIQUE,
        intent_key TEXT NOT NULL REFERENCES txm_intent (key),
        max_fee TEXT NOT NULL,
        priority_fee TEXT NOT NULL,
        raw {blob} NOT NULL,
        sent_block {bigint},
        accepted {bigint} NOT NULL DEFAULT 0,
        created_ms {bigint} NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS txm_intent_open ON txm_intent (chain_id, signer, status)",
    "CREATE INDEX IF NOT EXISTS txm_attempt_intent ON txm_attempt (intent_key, seq)",
]

_INTENT_COLUMNS = (
    "i.key, i.signer, i.nonce, i.status, i.to_address, i.value, i.data, i.gas_limit, i.tx_hash, "
    "i.block_number, i.block_hash, i.error, i.created_ms"
)


def bump_fees(
    max_fee: int,
    priority_fee: int,
    base_fee: int,
    market_tip: int,
    cap: int,
    permille: int = 125,
) -> tuple[int, int] | None:
    """The fees of a replacement on the same nonce, or None if the cap leaves no room.

    Both fees rise by at least `permille`/1000 (rounded up), or to the market's level
    (`2 * base_fee + tip`) if that is higher; neither exceeds `cap`.
    """
    min_max = -(-max_fee * (1000 + permille) // 1000)
    min_tip = -(-priority_fee * (1000 + permille) // 1000)
    tip = max(min_tip, market_tip)
    new_max = min(max(min_max, 2 * base_fee + tip), cap)
    tip = min(tip, new_max)
    if new_max < min_max or tip < min_tip:
        return None
    return new_max, tip


def revert_reason(error: NodeError) -> str:
    """The revert reason of a failed call, on one line ("reverted" if the node gave none)."""
    data = error.data
    if isinstance(data, dict):  # some nodes nest it
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
        payload = bytes.fromhex(data[10:]) if len(data) % 2 == 0 else b""
        try:
            if data[:10] == "0x08c379a0":  # Error(string)
                return " ".join(str(abi_decode(["string"], payload)[0]).split()) or "reverted"
            if data[:10] == "0x4e487b71":  # Panic(uint256)
                return f"panic 0x{abi_decode(['uint256'], payload)[0]:02x}"
        except Exception:  # malformed revert data: fall back to the message
            pass
        if error.message.strip() in ("execution reverted", ""):
            return f"custom error {data[:10]}"
    message = " ".join(error.message.split())
    return message.split("execution reverted: ", 1)[-1] or "reverted"


_ATTEMPT_COLUMNS = "seq, tx_hash, max_fee, priority_fee, raw, sent_block, accepted"


def _to_attempt(row: Sequence[Any]) -> Attempt:
    return Attempt(
        seq=int(row[0]),
        tx_hash=row[1],
        max_fee=int(row[2]),
        priority_fee=int(row[3]),
        raw=bytes(row[4]),
        sent_block=None if row[5] is None else int(row[5]),
        accepted=bool(row[6]),
    )


def _now_ms() -> int:
    return int(time.time() * 1000)


def _payload_hash(to: str | None, value: int, data: bytes) -> str:
    return hashlib.sha256(f"{to}|{value}|".encode() + data).hexdigest()


def _hex(value: int) -> str:
    return hex(value)


# Broadcast answers, by what they mean for us (matched on the lowercased message).
_ACCEPTED = ("already known", "known transaction", "already imported", "already exists")
_NONCE_USED = ("nonce too low", "nonce has already been used", "oldnonce", "nonce is too low")
_TRANSIENT = (
    "underpriced",
    "fee too low",
    "base fee",
    "insufficient funds",
    "txpool is full",
    "pool is full",
    "too many",
    "rate limit",
    "nonce too high",
)


def _refusal(error: NodeError) -> bool:
    """True if a node's answer to a broadcast refuses the transaction for good."""
    message = error.message.lower()
    return not any(s in message for s in _ACCEPTED + _NONCE_USED + _TRANSIENT)


class TxManager:
    """Journals, signs, sends, bumps and follows the transactions of a set of signers."""

    def __init__(
        self,
        rpc: RpcPool,
        database: dbmod.Database,
        signers: Iterable[Signer],
        config: TxConfig | None = None,
        chain_id: int | None = None,
    ):
        """Open the journal, check the chain, reconcile nonces with it and resume open intents.

        Raises:
            TxError: the node's chain id differs from `chain_id`, or no node answers.
            NotLocalChain: an anvil test key was given for a chain that is not a devnet.
            dbmod.DatabaseError: the journal cannot be opened or written.
        """
        self.rpc = rpc
        self.db = database
        self.config = config or TxConfig()
        signers = list(signers)
        self._signers = {s.address: s for s in signers}
        self._lock = threading.RLock()
        self._market_head: int | None = None  # the head `_market` last read (under the lock)
        try:
            node_chain = int(self.rpc.request("eth_chainId"), 16)
        except RpcError as exc:
            raise TxError(f"cannot read the chain id: {exc}") from None
        if chain_id is not None and node_chain != chain_id:
            raise TxError(f"the RPC nodes serve chain {node_chain}, expected {chain_id}")
        self.chain_id = node_chain
        if node_chain not in LOCAL_CHAIN_IDS and any(s.devnet_only for s in signers):
            raise NotLocalChain(f"anvil test keys are public: refused on chain {node_chain}")
        self.db.ensure_schema(SCHEMA_NAME, SCHEMA_VERSION, SCHEMA)
        try:
            self.recover()
        except RpcError as exc:
            raise TxError(f"cannot reconcile nonces with the chain: {exc}") from None

    def __repr__(self) -> str:
        return f"TxManager(chain {self.chain_id}, signers {sorted(self._signers)}, {self.db!r})"

    # ----------------------------------------------------------------------------- submit

    def submit(
        self,
        key: str,
        signer: str,
        to: str | None,
        data: bytes = b"",
        value: int = 0,
        gas_limit: int | None = None,
        gas_estimate: int | None = None,
    ) -> Intent:
        """Send a call once under `key`; return its intent (the journaled one if `key` exists).

        Args:
            key: the caller's idempotency key; the same key never sends twice.
            signer: the address of one of this manager's signers.
            to: the called address (None deploys `data` as a contract).
            data: calldata.
            value: wei sent with the call.
            gas_limit: a fixed gas limit; by default the estimate plus `gas_margin_percent`.
            gas_estimate: the node's `eth_estimateGas` of this very call from `signer`, when
                the caller already ran it (a keeper that priced the gas before deciding):
                the call is then not simulated again. The caller vouches that it did not
                revert; `gas_margin_percent` is added as to the manager's own estimate.

        Raises:
            IdempotencyConflict: `key` is journaled for another call.
            SimulationFailed: the call reverts now (nothing is recorded).
            UnknownSigner: `signer` is not one of this manager's.
            TxError: no node answered the simulation.
        """
        sender = self._signer(signer)
        target = to_checksum_address(to) if to else None
        payload = _payload_hash(target, value, data)
        with self._lock:
            existing = self._existing(key, payload)
            if existing is not None:
                return existing
            if gas_estimate is None:  # always, even with a fixed limit: a revert must not
                estimate = self._simulate(sender.address, target, data, value)  # be sent
            else:
                estimate = self._with_margin(gas_estimate)
            gas = gas_limit or estimate
            self._market_head = None
            max_fee, tip = self._initial_fees()
            head = self._market_head  # the head the fee read saw: no extra eth_blockNumber
            try:
                with self.db.transaction():
                    nonce = self._allocate_nonce(sender.address)
                    self._journal_new(
                        key, sender, nonce, target, value, data, gas, payload, max_fee, tip
                    )
            except dbmod.IntegrityError:
                existing = self._existing(key, payload)  # another process journaled the key
                if existing is None:
                    raise
                return existing
            log.info(
                "journaled %s: nonce %d from %s, max fee %d, tip %d",
                key,
                nonce,
                sender.address,
                max_fee,
                tip,
            )
            self._broadcast_latest(self._intent(key), head=head)
            return self._intent(key)

    def submit_call(
        self,
        key: str,
        signer: str,
        call: ContractFunction,
        value: int = 0,
        gas_estimate: int | None = None,
    ) -> Intent:
        """`submit` a web3 contract call built from a `strikeline.bindings` contract."""
        data = bytes(HexBytes(call._encode_transaction_data()))
        return self.submit(key, signer, call.address, data, value, gas_estimate=gas_estimate)

    def submit_many(self, requests: Sequence[Request]) -> list[Intent | TxError]:
        """`submit` several calls at once: the same guarantees, fewer round trips.

        The calls without a `gas_estimate` are simulated in one JSON-RPC batch, the fees are
        read once, every new intent is journaled in one database transaction (nonces in the
        order of `requests`) and the signed transactions are broadcast in one batch. Each
        slot of the answer is the request's intent (the journaled one if its key exists), or
        the error `submit` would have raised for it (`SimulationFailed`,
        `IdempotencyConflict`, `UnknownSigner`): one bad call does not hold the others back.

        Raises:
            TxError: no node answered the simulations or the fee read (nothing journaled).
        """
        out: list[Intent | TxError | None] = [None] * len(requests)
        with self._lock:
            todo: list[tuple[int, Request, Signer, str | None, str]] = []
            for i, request in enumerate(requests):
                try:
                    sender = self._signer(request.signer)
                    target: str | None = to_checksum_address(request.to) if request.to else None
                    payload = _payload_hash(target, request.value, request.data)
                    out[i] = self._existing(request.key, payload)
                except TxError as exc:
                    out[i] = exc
                    continue
                if out[i] is None:
                    todo.append((i, request, sender, target, payload))
            keys = [r.key for _, r, *_ in todo]
            if len(set(keys)) != len(keys):
                raise TxError("submit_many: a key appears twice in one call")
            estimates = self._simulate_many(
                [
                    (s.address, t, r.data, r.value)
                    for _, r, s, t, _ in todo
                    if r.gas_estimate is None
                ]
            )
            ready = []
            for i, request, sender, target, payload in todo:
                if request.gas_estimate is not None:
                    gas: int | TxError = self._with_margin(request.gas_estimate)
                else:
                    gas = estimates.pop(0)
                if isinstance(gas, TxError):
                    out[i] = gas
                    continue
                ready.append((i, request, sender, target, payload, request.gas_limit or gas))
            if ready:
                self._market_head = None
                max_fee, tip = self._initial_fees()
                head = self._market_head
                for tries in range(3):
                    journaled: list[int] = []
                    try:
                        with self.db.transaction():
                            for i, request, sender, target, payload, gas in ready:
                                try:
                                    existing = self._existing(request.key, payload)
                                except IdempotencyConflict as exc:
                                    out[i] = exc
                                    continue
                                if existing is not None:
                                    out[i] = existing
                                    continue
                                nonce = self._allocate_nonce(sender.address)
                                self._journal_new(
                                    request.key, sender, nonce, target, request.value,
                                    request.data, gas, payload, max_fee, tip,
                                )  # fmt: skip
                                journaled.append(i)
                        break
                    except dbmod.IntegrityError:
                        # another process journaled one of the keys between the check and
                        # the insert: everything rolled back (nonces too); check again
                        if tries == 2:
                            raise
                log.info("journaled %d intents, max fee %d, tip %d", len(journaled), max_fee, tip)
                intents = [self._intent(requests[i].key) for i in journaled]
                self._broadcast_many(intents, head)
                for i in journaled:
                    out[i] = self._intent(requests[i].key)
        assert all(o is not None for o in out)
        return out  # type: ignore[return-value]

    # ----------------------------------------------------------------------------- queries

    def intent(self, key: str) -> Intent | None:
        """The intent journaled under `key`, or None."""
        found = self._select("i.key = ?", (key,))
        return found[0] if found else None

    def intents(self, statuses: Sequence[Status] | None = None) -> list[Intent]:
        """This chain's intents (all, or those in `statuses`), ordered by signer and nonce."""
        if not statuses:
            return self._select("i.chain_id = ?", (self.chain_id,))
        marks = ", ".join("?" for _ in statuses)
        return self._select(
            f"i.chain_id = ? AND i.status IN ({marks})",
            (self.chain_id, *(s.value for s in statuses)),
        )

    def statuses(self, prefix: str) -> dict[str, Status]:
        """The status of every intent of this chain whose key starts with `prefix` (one light
        query: no attempts joined)."""
        rows = self.db.fetchall(
            "SELECT key, status FROM txm_intent WHERE chain_id = ? AND substr(key, 1, ?) = ?",
            (self.chain_id, len(prefix), prefix),
        )
        return {str(k): Status(v) for k, v in rows}

    def attempts(self, key: str) -> list[Attempt]:
        """Every transaction signed for intent `key`, oldest first."""
        rows = self.db.fetchall(
            f"SELECT {_ATTEMPT_COLUMNS} FROM txm_attempt WHERE intent_key = ? ORDER BY seq",
            (key,),
        )
        return [_to_attempt(r) for r in rows]

    def next_nonce(self, signer: str) -> int | None:
        """The nonce the next intent of `signer` will take (None before the first boot)."""
        value = self.db.fetchval(
            "SELECT next_nonce FROM txm_nonce WHERE chain_id = ? AND signer = ?",
            (self.chain_id, to_checksum_address(signer)),
        )
        return None if value is None else int(value)

    def oldest_open_age(self) -> float:
        """Seconds since the oldest open (queued, sent or mined) intent was journaled; 0 if none."""
        oldest = self.db.fetchval(
            "SELECT MIN(created_ms) FROM txm_intent WHERE chain_id = ? AND status IN (?, ?, ?)",
            (self.chain_id, *OPEN),
        )
        return 0.0 if oldest is None else max(0.0, (_now_ms() - int(oldest)) / 1000)

    # ----------------------------------------------------------------------------- driving

    def recover(self) -> None:
        """Reconcile each signer's nonces with the chain, fill gaps, resume open intents.

        Runs at construction; safe to run again at any time.
        """
        with self._lock:
            for address in self._signers:
                self._reconcile_nonces(address)
            self.tick()

    def tick(self) -> list[Intent]:
        """Advance every open intent one step; return those whose status changed.

        Never raises for a node failure: what could not be done now is retried next tick.
        """
        with self._lock:
            try:
                head = int(self.rpc.request("eth_blockNumber"), 16)
            except RpcError as exc:
                log.warning("tick skipped: %s", exc)
                return []
            changed: list[Intent] = []
            for intent in self.intents(OPEN):
                if intent.signer not in self._signers:
                    continue  # another manager's signer sharing this journal
                try:
                    after = self._advance(intent, head)
                except RpcError as exc:
                    log.warning("intent %s: %s; retrying next tick", intent.key, exc)
                    continue
                if after.status != intent.status:
                    changed.append(after)
            return changed

    # ----------------------------------------------------------------------------- internals

    def _signer(self, address: str) -> Signer:
        try:
            return self._signers[to_checksum_address(address)]
        except (KeyError, ValueError):
            raise UnknownSigner(f"no signer {address} in this manager") from None

    def _existing(self, key: str, payload: str) -> Intent | None:
        row = self.db.fetchone("SELECT payload_hash FROM txm_intent WHERE key = ?", (key,))
        if row is None:
            return None
        if row[0] != payload:
            raise IdempotencyConflict(f"key {key!r} is already journaled for a different call")
        return self.intent(key)

    def _simulate(self, sender: str, to: str | None, data: bytes, value: int) -> int:
        call: dict[str, Any] = {"from": sender, "data": "0x" + data.hex(), "value": _hex(value)}
        if to:
            call["to"] = to
        try:
            estimate = int(self.rpc.request("eth_estimateGas", [call, "pending"]), 16)
        except NodeError as exc:
            raise SimulationFailed(revert_reason(exc)) from None
        except NoNodeAvailable as exc:
            raise TxError(f"cannot simulate: {exc}") from None
        return self._with_margin(estimate)

    def _with_margin(self, estimate: int) -> int:
        return estimate + estimate * self.config.gas_margin_percent // 100

    def _simulate_many(
        self, calls: Sequence[tuple[str, str | None, bytes, int]]
    ) -> list[int | TxError]:
        """`_simulate` of each (sender, to, data, value) in one batch: a gas limit each, or
        the `SimulationFailed` of a call that reverts."""
        if not calls:
            return []
        requests = []
        for sender, to, data, value in calls:
            call: dict[str, Any] = {"from": sender, "data": "0x" + data.hex(), "value": _hex(value)}
            if to:
                call["to"] = to
            requests.append(("eth_estimateGas", [call, "pending"]))
        try:
            answers = self.rpc.request_batch(requests)
        except NoNodeAvailable as exc:
            raise TxError(f"cannot simulate: {exc}") from None
        out: list[int | TxError] = []
        for answer in answers:
            if "error" in answer:
                out.append(
                    SimulationFailed(revert_reason(NodeError("eth_estimateGas", answer["error"])))
                )
            else:
                out.append(self._with_margin(int(answer["result"], 16)))
        return out

    def _market(self) -> tuple[int, int]:
        """(base fee of the latest block, suggested tip), read in one batch from the node.

        Also records the latest block's number in `_market_head` (a send made right after
        uses it as its head instead of asking again)."""
        block, tip_answer = self.rpc.request_batch(
            [("eth_getBlockByNumber", ["latest", False]), ("eth_maxPriorityFeePerGas", [])]
        )
        if "error" in block:
            raise NodeError("eth_getBlockByNumber", block["error"])
        base = int(block["result"].get("baseFeePerGas", "0x0"), 16)
        self._market_head = int(block["result"]["number"], 16)
        # a node without the method answers an error: the configured minimum applies
        tip = 0 if "error" in tip_answer else int(tip_answer["result"], 16)
        return base, max(tip, self.config.min_priority_fee)

    def _initial_fees(self) -> tuple[int, int]:
        try:
            base, tip = self._market()
        except RpcError as exc:
            raise TxError(f"cannot price the transaction: {exc}") from None
        cap = self.config.max_fee_cap
        max_fee = min(2 * base + tip, cap)
        return max_fee, min(tip, max_fee)

    def _allocate_nonce(self, signer: str) -> int:
        """Take the signer's next nonce (inside the caller's database transaction)."""
        nonce = self.db.fetchval(
            "UPDATE txm_nonce SET next_nonce = next_nonce + 1 WHERE chain_id = ? AND signer = ? "
            "RETURNING next_nonce - 1",
            (self.chain_id, signer),
        )
        if nonce is None:
            raise TxError(f"no nonce row for {signer}: recover() has not run")
        return int(nonce)

    def _sign(
        self,
        signer: Signer,
        nonce: int,
        to: str | None,
        value: int,
        data: bytes,
        gas: int,
        max_fee: int,
        tip: int,
    ) -> tuple[bytes, str]:
        transaction: dict[str, Any] = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": nonce,
            "value": value,
            "data": data,
            "gas": gas,
            "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": tip,
            "accessList": [],
        }
        if to:
            transaction["to"] = to
        return signer.sign(transaction)

    def _journal_new(
        self,
        key: str,
        signer: Signer,
        nonce: int,
        to: str | None,
        value: int,
        data: bytes,
        gas: int,
        payload: str,
        max_fee: int,
        tip: int,
    ) -> None:
        raw, tx_hash = self._sign(signer, nonce, to, value, data, gas, max_fee, tip)
        now = _now_ms()
        self.db.execute(
            "INSERT INTO txm_intent (key, chain_id, signer, nonce, to_address, value, data, "
            "gas_limit, payload_hash, status, tx_hash, created_ms, updated_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key, self.chain_id, signer.address, nonce, to, str(value), data, gas, payload,
             Status.QUEUED.value, tx_hash, now, now),
        )  # fmt: skip
        self._journal_attempt(key, tx_hash, max_fee, tip, raw)

    def _journal_attempt(self, key: str, tx_hash: str, max_fee: int, tip: int, raw: bytes) -> None:
        self.db.execute(
            "INSERT INTO txm_attempt (tx_hash, intent_key, max_fee, priority_fee, raw, "
            "created_ms) VALUES (?, ?, ?, ?, ?, ?)",
            (tx_hash, key, str(max_fee), str(tip), raw, _now_ms()),
        )

    def _set(self, key: str, **fields: Any) -> None:
        fields["updated_ms"] = _now_ms()
        columns = ", ".join(f"{name} = ?" for name in fields)
        values = [v.value if isinstance(v, Status) else v for v in fields.values()]
        self.db.execute(f"UPDATE txm_intent SET {columns} WHERE key = ?", (*values, key))

    def _intent(self, key: str) -> Intent:
        found = self.intent(key)
        assert found is not None, key
        return found

    def _select(self, where: str, params: Sequence[Any]) -> list[Intent]:
        """Intents matching `where`, each with its attempt count and latest fees."""
        rows = self.db.fetchall(
            f"SELECT {_INTENT_COLUMNS}, "
            "(SELECT COUNT(*) FROM txm_attempt c WHERE c.intent_key = i.key), "
            "a.max_fee, a.priority_fee "
            "FROM txm_intent i LEFT JOIN txm_attempt a ON a.seq = "
            "(SELECT MAX(m.seq) FROM txm_attempt m WHERE m.intent_key = i.key) "
            f"WHERE {where} ORDER BY i.signer, i.nonce, i.created_ms",
            params,
        )
        return [self._to_intent(row) for row in rows]

    @staticmethod
    def _to_intent(row: tuple[Any, ...]) -> Intent:
        return Intent(
            key=row[0],
            signer=row[1],
            nonce=None if row[2] is None else int(row[2]),
            status=Status(row[3]),
            to=row[4],
            value=int(row[5]),
            data=bytes(row[6]),
            gas_limit=int(row[7]),
            tx_hash=row[8],
            block_number=None if row[9] is None else int(row[9]),
            block_hash=row[10],
            error=row[11],
            created_ms=int(row[12]),
            attempts=int(row[13]),
            max_fee=int(row[14] or 0),
            priority_fee=int(row[15] or 0),
        )

    # --- nonces

    def _reconcile_nonces(self, signer: str) -> None:
        latest = int(self.rpc.request("eth_getTransactionCount", [signer, "latest"]), 16)
        pending = int(self.rpc.request("eth_getTransactionCount", [signer, "pending"]), 16)
        with self.db.transaction():
            journaled = self.next_nonce(signer)
            if journaled is None:
                self.db.execute(
                    "INSERT INTO txm_nonce (chain_id, signer, next_nonce) VALUES (?, ?, ?) "
                    "ON CONFLICT (chain_id, signer) DO NOTHING",
                    (self.chain_id, signer, pending),
                )
                log.info("signer %s starts at nonce %d", signer, pending)
                return
            if pending > journaled:
                log.warning(
                    "signer %s: nonces %d..%d were used outside this journal; skipping them",
                    signer,
                    journaled,
                    pending - 1,
                )
                self.db.execute(
                    "UPDATE txm_nonce SET next_nonce = ? WHERE chain_id = ? AND signer = ? "
                    "AND next_nonce < ?",
                    (pending, self.chain_id, signer, pending),
                )
                journaled = pending
            held = {
                int(r[0])
                for r in self.db.fetchall(
                    "SELECT nonce FROM txm_intent WHERE chain_id = ? AND signer = ? "
                    "AND nonce >= ? AND nonce < ?",
                    (self.chain_id, signer, latest, journaled),
                )
            }
            for nonce in range(latest, journaled):
                if nonce not in held:
                    log.warning("signer %s: nonce %d has no transaction; filling it", signer, nonce)
                    self._journal_filler(signer, nonce)

    def _journal_filler(self, signer: str, nonce: int) -> str:
        """Journal a zero-value transfer to self on `nonce` (inside a database transaction)."""
        key = f"{_FILLER_PREFIX}{self.chain_id}:{signer}:{nonce}"
        try:
            max_fee, tip = self._initial_fees()
        except TxError:
            max_fee, tip = self.config.max_fee_cap, self.config.min_priority_fee
        self._journal_new(
            key, self._signers[signer], nonce, signer, 0, b"", 21_000,
            _payload_hash(signer, 0, b""), max_fee, min(tip, max_fee),
        )  # fmt: skip
        return key

    # --- one step of one intent

    def _advance(self, intent: Intent, head: int) -> Intent:
        if intent.status in (Status.QUEUED, Status.SENT):
            intent = self._look_for_receipt(intent, head)
        if intent.status == Status.MINED:
            return self._follow_mined(intent, head)
        if intent.status in (Status.QUEUED, Status.SENT):
            self._bump_or_rebroadcast(intent, head)
        return self._intent(intent.key)

    def _receipt(self, tx_hash: str) -> dict[str, Any] | None:
        receipt = self.rpc.request("eth_getTransactionReceipt", [tx_hash])
        if not receipt or receipt.get("blockHash") is None:
            return None
        return dict(receipt)

    def _look_for_receipt(self, intent: Intent, head: int) -> Intent:
        if self._find_mined_attempt(intent):
            return self._intent(intent.key)
        # The nonce count is read after the receipts: look once more before calling the
        # intent replaced, so that a receipt the node indexed in between (or a node behind
        # a load balancer that answered the count from a fresher replica) is not mistaken
        # for someone else's transaction. Replaced is final: it must be certain.
        if (
            intent.nonce is not None
            and self._nonce_consumed_deeply(intent, head)
            and not self._find_mined_attempt(intent)
        ):
            self._set(
                intent.key,
                status=Status.REPLACED,
                error=f"nonce {intent.nonce} was used by a transaction this journal did not sign",
            )
            log.error(
                "intent %s replaced: its nonce %d was used elsewhere", intent.key, intent.nonce
            )
            return self._intent(intent.key)
        return intent

    def _find_mined_attempt(self, intent: Intent) -> bool:
        """Record the newest attempt of `intent` that has a receipt; False if none has."""
        for attempt in reversed(self.attempts(intent.key)):
            receipt = self._receipt(attempt.tx_hash)
            if receipt is not None:
                self._record_mined(intent, attempt.tx_hash, receipt)
                return True
        return False

    def _nonce_consumed_deeply(self, intent: Intent, head: int) -> bool:
        """True if the chain used `intent.nonce` at least `confirmations` blocks ago.

        Only then is a missing receipt conclusive: any of our attempts mined that deep would
        have shown its receipt above.
        """
        depth_block = head - self.config.confirmations + 1
        if depth_block < 0:
            return False
        count = int(
            self.rpc.request("eth_getTransactionCount", [intent.signer, _hex(depth_block)]), 16
        )
        return count > (intent.nonce or 0)

    def _record_mined(self, intent: Intent, tx_hash: str, receipt: dict[str, Any]) -> None:
        block = int(receipt["blockNumber"], 16)
        self._set(
            intent.key,
            status=Status.MINED,
            tx_hash=tx_hash,
            block_number=block,
            block_hash=receipt["blockHash"],
            error="",
        )
        log.info("intent %s mined in block %d (%s)", intent.key, block, tx_hash)

    def _follow_mined(self, intent: Intent, head: int) -> Intent:
        assert intent.tx_hash is not None and intent.block_number is not None
        receipt = self._receipt(intent.tx_hash)
        if receipt is None:
            # A reorg took the block away (anvil_reorg and real reorgs drop the transaction
            # back out): send the same bytes again; the nonce is still ours.
            log.warning(
                "intent %s: block %d reorged away; re-broadcasting %s",
                intent.key,
                intent.block_number,
                intent.tx_hash,
            )
            self._set(
                intent.key,
                status=Status.SENT,
                block_number=None,
                block_hash=None,
                error=f"reorged out of block {intent.block_number}",
            )
            self.db.execute(
                "UPDATE txm_attempt SET sent_block = NULL WHERE tx_hash = ?", (intent.tx_hash,)
            )  # the bump timer restarts from this re-broadcast
            back = self._intent(intent.key)
            fees = self._repriced(back)
            if fees is not None:
                self._bump(back, fees, head)
            else:
                self._broadcast(back, self._attempt(intent.tx_hash), head)
            return self._intent(intent.key)
        if receipt["blockHash"] != intent.block_hash:
            self._record_mined(intent, intent.tx_hash, receipt)  # re-mined in another block
            intent = self._intent(intent.key)
        assert intent.block_number is not None
        if head - intent.block_number + 1 >= self.config.confirmations:
            if int(receipt.get("status", "0x1"), 16) == 1:
                self._set(intent.key, status=Status.CONFIRMED)
                log.info("intent %s confirmed", intent.key)
            else:
                reason = self._mined_revert_reason(intent)
                self._set(intent.key, status=Status.REVERTED, error=reason)
                log.warning("intent %s reverted on chain: %s", intent.key, reason)
        return self._intent(intent.key)

    def _repriced(self, intent: Intent) -> tuple[int, int] | None:
        """The fees a transaction a reorg dropped is re-sent with, or None to re-send its
        mined bytes as they are.

        The reorg may have come many blocks after the fees were set: if the market's price
        (`2 * base_fee + tip`, or its tip) is now above the highest attempt's, the intent is
        re-signed on its nonce at the market's level and at least `bump_permille` above every
        earlier attempt (a node may still hold one of them: a replacement must outbid it).
        The cap still applies; at the cap the old bytes go out again."""
        attempts = self.attempts(intent.key)
        top = max(attempts, key=lambda a: (a.max_fee, a.priority_fee))
        try:
            base, tip = self._market()
        except RpcError as exc:
            log.warning("intent %s: cannot read the fee market (%s); re-sending", intent.key, exc)
            return None
        if top.max_fee >= 2 * base + tip and top.priority_fee >= tip:
            return None  # its price still clears the market
        fees = bump_fees(
            top.max_fee,
            top.priority_fee,
            base,
            tip,
            self.config.max_fee_cap,
            self.config.bump_permille,
        )
        if fees is None:
            log.warning(
                "intent %s: at the fee cap %d; re-sending as it was", intent.key, top.max_fee
            )
        return fees

    def _mined_revert_reason(self, intent: Intent) -> str:
        """Best effort: replay the call on the state before its block."""
        assert intent.block_number is not None
        call: dict[str, Any] = {
            "from": intent.signer,
            "data": "0x" + intent.data.hex(),
            "value": _hex(intent.value),
            "gas": _hex(intent.gas_limit),
        }
        if intent.to:
            call["to"] = intent.to
        try:
            self.rpc.request("eth_call", [call, _hex(max(intent.block_number - 1, 0))])
        except NodeError as exc:
            return f"reverted on chain: {revert_reason(exc)}"
        except RpcError:
            pass
        return "reverted on chain"

    def _attempt(self, tx_hash: str) -> Attempt:
        row = self.db.fetchone(
            f"SELECT {_ATTEMPT_COLUMNS} FROM txm_attempt WHERE tx_hash = ?", (tx_hash,)
        )
        assert row is not None, tx_hash
        return _to_attempt(row)

    def _bump_or_rebroadcast(self, intent: Intent, head: int) -> None:
        """Re-send the latest attempt, or replace it if it waited `bump_after_blocks` blocks.

        The wait counts from the latest attempt's first broadcast try, accepted or not: an
        attempt a node refused as underpriced is bumped on the same schedule.
        """
        latest = self.attempts(intent.key)[-1]
        if (
            latest.sent_block is not None
            and head - latest.sent_block >= self.config.bump_after_blocks
        ):
            try:
                base, market_tip = self._market()
            except NodeError:
                base, market_tip = 0, self.config.min_priority_fee
            fees = bump_fees(
                latest.max_fee,
                latest.priority_fee,
                base,
                market_tip,
                self.config.max_fee_cap,
                self.config.bump_permille,
            )
            if fees is not None:
                self._bump(intent, fees, head)
                return
            log.warning("intent %s: at the fee cap %d; waiting", intent.key, latest.max_fee)
        self._broadcast(intent, latest, head)

    def _bump(self, intent: Intent, fees: tuple[int, int], head: int) -> None:
        assert intent.nonce is not None
        max_fee, tip = fees
        signer = self._signers[intent.signer]
        raw, tx_hash = self._sign(
            signer, intent.nonce, intent.to, intent.value, intent.data, intent.gas_limit,
            max_fee, tip,
        )  # fmt: skip
        with self.db.transaction():
            self._journal_attempt(intent.key, tx_hash, max_fee, tip, raw)
            self._set(intent.key, tx_hash=tx_hash)
        log.info(
            "intent %s: bumped on nonce %d to max fee %d, tip %d (%s)",
            intent.key,
            intent.nonce,
            max_fee,
            tip,
            tx_hash,
        )
        self._broadcast(self._intent(intent.key), self._attempt(tx_hash), head)

    # --- broadcasting

    def _broadcast_latest(self, intent: Intent, head: int | None) -> None:
        attempts = self.attempts(intent.key)
        if attempts:
            self._broadcast(intent, attempts[-1], head)

    def _send_raw(self, raw: bytes) -> None:
        """Hand signed bytes to a node (the one place a transaction leaves the process)."""
        self.rpc.request("eth_sendRawTransaction", ["0x" + raw.hex()])

    def _send_raw_many(self, raws: Sequence[bytes]) -> list[NodeError | None]:
        """Hand several signed transactions to a node in one batch (the other place a
        transaction leaves the process): each one's refusal, or None if taken."""
        answers = self.rpc.request_batch(
            [("eth_sendRawTransaction", ["0x" + raw.hex()]) for raw in raws]
        )
        return [
            NodeError("eth_sendRawTransaction", a["error"]) if "error" in a else None
            for a in answers
        ]

    def _broadcast_many(self, intents: Sequence[Intent], head: int | None) -> None:
        """Broadcast the latest attempt of each of `intents` in one batch; each answer is
        recorded as `_broadcast` records it."""
        pairs = [(i, self.attempts(i.key)[-1]) for i in intents]
        if not pairs:
            return
        try:
            answers = self._send_raw_many([a.raw for _, a in pairs])
        except NoNodeAvailable as exc:
            log.warning("%d intents: broadcast failed: %s", len(pairs), exc)
            return  # not a try: the next tick re-broadcasts them
        refused = []
        with self.db.transaction():  # one commit (one fsync) for the whole batch's records
            for (intent, attempt), error in zip(pairs, answers, strict=True):
                if error is not None and _refusal(error):
                    refused.append((intent, attempt, error))
                else:
                    self._after_send(intent, attempt, head, error)
        for intent, attempt, error in refused:  # these journal and send a filler: each on
            self._after_send(intent, attempt, head, error)  # its own, committed first

    def _broadcast(self, intent: Intent, attempt: Attempt, head: int | None) -> None:
        """Send `attempt`; record the try, and that a node holds it or why none took it."""
        try:
            self._send_raw(attempt.raw)
        except NoNodeAvailable as exc:
            log.warning("intent %s: broadcast failed: %s", intent.key, exc)
            return  # not a try: no node heard it, the bump timer does not start
        except NodeError as exc:
            self._after_send(intent, attempt, head, exc)
            return
        self._after_send(intent, attempt, head, None)

    def _after_send(
        self, intent: Intent, attempt: Attempt, head: int | None, exc: NodeError | None
    ) -> None:
        """Record a broadcast's answer: taken (`exc` None), or the node's refusal."""
        if exc is not None:
            message = exc.message.lower()
            if any(s in message for s in _ACCEPTED + _NONCE_USED):
                pass  # a node has it already, or a transaction on this nonce is mined
            elif not _refusal(exc):
                log.warning("intent %s: node refused for now: %s", intent.key, exc.message)
                self._mark_tried(attempt, head)
                return
            else:
                self._refused(intent, attempt, " ".join(exc.message.split()))
                return
        self._mark_tried(attempt, head, accepted=True)
        if intent.status == Status.QUEUED:
            self._set(intent.key, status=Status.SENT)
            log.info("intent %s sent (%s)", intent.key, attempt.tx_hash)

    def _mark_tried(self, attempt: Attempt, head: int | None, accepted: bool = False) -> None:
        if attempt.sent_block is not None and (attempt.accepted or not accepted):
            return
        if head is None:
            head = int(self.rpc.request("eth_blockNumber"), 16)
        self.db.execute(
            "UPDATE txm_attempt SET sent_block = COALESCE(sent_block, ?), "
            "accepted = CASE WHEN ? = 1 THEN 1 ELSE accepted END WHERE seq = ?",
            (head, int(accepted), attempt.seq),
        )

    def _refused(self, intent: Intent, attempt: Attempt, reason: str) -> None:
        """A node rejected `attempt` for good. A bump is dropped; a first send fails the intent."""
        accepted_before = any(a.accepted for a in self.attempts(intent.key))
        if accepted_before or intent.key.startswith(_FILLER_PREFIX):
            log.error("intent %s: node refused %s: %s", intent.key, attempt.tx_hash, reason)
            self._mark_tried(attempt, head=None)
            return
        assert intent.nonce is not None
        with self.db.transaction():
            self._set(
                intent.key,
                status=Status.FAILED,
                nonce=None,
                error=f"refused by the node: {reason} (nonce {intent.nonce} went to a filler)",
            )
            filler = self._journal_filler(intent.signer, intent.nonce)
        log.error("intent %s failed: refused by the node: %s", intent.key, reason)
        self._broadcast_latest(self._intent(filler), head=None)
