"""What the gas benchmarks share: the floor model, trace attribution and the v2 system.

Not a benchmark itself (`make bench` runs `bench_*.py` only).

**Floor.** A floor is what any implementation of an action has to pay on Prague: the
transaction's intrinsic gas (21,000 + 4 per zero and 16 per nonzero calldata byte of the
actual input), then every storage slot, account and event the behaviour must touch, in a
tight layout (fields always used together share one slot), costed by the EVM's own rules:

- EIP-2929: first access of a slot 2,100 (cold SLOAD), later 100; first CALL, STATICCALL
  or EXTCODESIZE of an account 2,600, later 100 (the sender and the called contract start
  warm);
- EIP-2200/3529 SSTORE on top of the access: a clean slot zero->nonzero 20,000,
  nonzero->anything 2,900, a slot already written in the transaction 100; clearing a slot
  that was nonzero refunds 4,800, and refunds are capped at a fifth of the gas used;
- EIP-1153: a reentrancy lock is TLOAD + two TSTORE, 300;
- LOGn: 375 + 375 per topic (the event signature is one) + 8 per data byte.

`Floor` applies these rules itself: a floor is written as the sequence of accesses the
behaviour needs (`read`, `write`, `update`, `account`, `log`), and a slot or account
touched twice costs the warm price the second time, as in the EVM (a slot is named by its
label up to any parenthesised note). Code (ABI decoding,
mapping-key hashing, memory, jumps) is not in a floor: the 1.30x allowance pays for it.
`explain()` prints the floor as its itemised sum.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anvil_node import BenchNode

from strikeline.bindings import (
    ClearinghouseBinding,
    ERC20Binding,
    LedgerBinding,
    MarginEngineBinding,
    OracleBinding,
)

ROOT = Path(__file__).resolve().parents[1]

TX_BASE = 21_000
CALLDATA_ZERO_BYTE = 4
CALLDATA_NONZERO_BYTE = 16
COLD_SLOAD = 2_100
WARM_ACCESS = 100
SSTORE_SET = 20_000
SSTORE_RESET = 2_900
CLEAR_REFUND = 4_800
SET_UNDONE_REFUND = 19_900  # zero -> nonzero -> zero in one transaction
COLD_ACCOUNT = 2_600
REENTRANCY_LOCK = 300
MAX_REFUND_QUOTIENT = 5
GOAL = 1.30


def log_cost(topics: int, data_words: int) -> int:
    """LOGn: 375 + 375 per topic (the event signature counts) + 8 per data byte."""
    return 375 + 375 * topics + 8 * 32 * data_words


@dataclass
class _Slot:
    original_zero: bool
    current_zero: bool
    written: bool = False


@dataclass
class Floor:
    """An itemised lower bound built from the accesses an action must make, costed with
    EIP-2929 warm/cold and EIP-2200/3529 SSTORE rules (see the module docstring)."""

    items: list[tuple[str, int]] = field(default_factory=list)
    refunds: list[tuple[str, int]] = field(default_factory=list)
    _slots: dict[str, _Slot] = field(default_factory=dict)
    _accounts: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, data: bytes, lock: bool = True) -> Floor:
        """A floor starting with the transaction base, its calldata and (by default) the
        entry point's reentrancy lock."""
        zeros = data.count(0)
        nonzeros = len(data) - zeros
        f = cls()
        f.add("transaction base", TX_BASE)
        f.add(
            f"calldata: {zeros} zero x 4 + {nonzeros} nonzero x 16",
            zeros * CALLDATA_ZERO_BYTE + nonzeros * CALLDATA_NONZERO_BYTE,
        )
        if lock:
            f.add("reentrancy lock (TLOAD + 2 TSTORE)", REENTRANCY_LOCK)
        return f

    def add(self, label: str, gas: int) -> Floor:
        """A fixed item."""
        self.items.append((label, gas))
        return self

    def _access(self, slot: str, zero: bool) -> tuple[_Slot, int]:
        # a slot is named by its label up to any " (note)": "book[id] (open interest)" and
        # "book[id]" are the same slot
        key = slot.split(" (", 1)[0]
        state = self._slots.get(key)
        if state is None:
            state = self._slots[key] = _Slot(original_zero=zero, current_zero=zero)
            return state, COLD_SLOAD
        return state, 0

    def read(self, slot: str, zero: bool = False) -> Floor:
        """SLOAD of `slot` (cold the first time); `zero`: the slot holds zero."""
        _, cold = self._access(slot, zero)
        return self.add(f"read {slot}" + (" (cold)" if cold else " (warm)"), cold or WARM_ACCESS)

    def write(self, slot: str, to_zero: bool = False, was_zero: bool = False) -> Floor:
        """SSTORE of a new value into `slot` (its first access may be this store);
        `was_zero`: the slot held zero before the transaction."""
        state, cold = self._access(slot, was_zero)
        refund = 0
        if state.written:
            gas, kind = WARM_ACCESS, "dirty"
            if state.original_zero and to_zero:
                refund = SET_UNDONE_REFUND
            elif not state.original_zero and state.current_zero and not to_zero:
                refund = -CLEAR_REFUND
            elif not state.original_zero and to_zero:
                refund = CLEAR_REFUND
        elif state.original_zero:
            gas, kind = SSTORE_SET, "zero->nonzero"
        else:
            gas, kind = SSTORE_RESET, "nonzero->zero" if to_zero else "nonzero->nonzero"
            if to_zero:
                refund = CLEAR_REFUND
        state.written, state.current_zero = True, to_zero
        self.add(f"write {slot} {kind}" + (" (cold)" if cold else ""), cold + gas)
        if refund:
            self.refunds.append((f"{slot} {kind}", refund))
        return self

    def update(self, slot: str, to_zero: bool = False, was_zero: bool = False) -> Floor:
        """Read-modify-write of `slot` (one item: the read, then the store)."""
        _, cold = self._access(slot, was_zero)
        self.write(slot, to_zero=to_zero, was_zero=was_zero)  # the slot is warm now
        label, gas = self.items.pop()
        # the SLOAD before the store: 2,100 if the slot was cold (EIP-2929 charges the
        # cold access once), else 100
        label = label.replace("write", "update", 1) + (" (cold)" if cold else "")
        self.items.append((label, gas + (cold or WARM_ACCESS)))
        return self

    def account(self, name: str, what: str = "CALL") -> Floor:
        """CALL / STATICCALL / EXTCODESIZE of account `name` (cold the first time)."""
        cold = name not in self._accounts
        self._accounts.add(name)
        return self.add(
            f"{what} {name}" + (" (cold account)" if cold else " (warm)"),
            COLD_ACCOUNT if cold else WARM_ACCESS,
        )

    def warm(self, *names: str) -> Floor:
        """Accounts warm from the start (the called contract; the sender is tx.origin)."""
        self._accounts.update(names)
        return self

    def log(self, event: str, topics: int, data_words: int) -> Floor:
        """An event: `topics` counting the signature, `data_words` 32-byte words."""
        return self.add(
            f"{event} LOG{topics}, {32 * data_words} data bytes", log_cost(topics, data_words)
        )

    @property
    def gross(self) -> int:
        """Sum of the gas items."""
        return sum(g for _, g in self.items)

    @property
    def refunded(self) -> int:
        """The refund granted, after the gross / 5 cap."""
        return max(0, min(sum(g for _, g in self.refunds), self.gross // MAX_REFUND_QUOTIENT))

    @property
    def total(self) -> int:
        """The floor: gross less the granted refund."""
        return self.gross - self.refunded

    def explain(self) -> str:
        """The floor as an itemised sum, one item per line (repeats folded)."""
        folded: dict[str, list[int]] = {}
        for label, gas in self.items:
            entry = folded.setdefault(label, [0, 0])
            entry[0] += 1
            entry[1] += gas
        lines = [
            f"      {g:>9,}  {(f'{n} x ' if n > 1 else '') + label}"
            for label, (n, g) in folded.items()
        ]
        refunds = sum(g for _, g in self.refunds)
        if refunds:
            lines.append(f"     -{refunds:>9,}  refunds: {len(self.refunds)} slot(s) cleared")
            if self.refunded != refunds:
                lines.append(f"      (refund capped at gross/5 = {self.refunded:,})")
        lines.append(f"      {self.total:>9,}  = floor")
        return "\n".join(lines)


# ---------------------------------------------------------------------------
# Where the gas goes: a struct-logger trace attributed per contract and opcode class
# ---------------------------------------------------------------------------

CALL_OPS = {"CALL", "STATICCALL", "DELEGATECALL", "CALLCODE"}
ACCOUNT_OPS = {"EXTCODESIZE", "EXTCODEHASH", "EXTCODECOPY", "BALANCE"}


def _category(op: str) -> str:
    if op in ("SLOAD", "SSTORE"):
        return op
    if op in ("TLOAD", "TSTORE"):
        return "TLOAD/TSTORE"
    if op.startswith("LOG"):
        return "LOG"
    if op in CALL_OPS:
        return "CALL"
    if op in ACCOUNT_OPS:
        return "EXTCODE*"
    if op in ("KECCAK256", "SHA3"):
        return "KECCAK256"
    return "other"


def attribute(trace: dict[str, Any], tx_to: str, names: dict[str, str]) -> Counter[tuple[str, str]]:
    """Gas by (contract, opcode class); a call's own cost excludes its callee's. Also counts
    cold and warm SLOADs per contract (keys "SLOAD cold" / "SLOAD warm")."""
    logs = trace["structLogs"]
    n = len(logs)
    total = [0] * n
    for i, step in enumerate(logs):
        d = step["depth"]
        j = i + 1
        while j < n and logs[j]["depth"] > d:
            j += 1
        total[i] = (
            step["gas"] - logs[j]["gas"] if j < n and logs[j]["depth"] == d else step["gasCost"]
        )
    out: Counter[tuple[str, str]] = Counter()
    frames = [names.get(tx_to.lower(), tx_to)]
    for i, step in enumerate(logs):
        d = step["depth"]
        del frames[d:]
        own = total[i]
        if i + 1 < n and logs[i + 1]["depth"] > d:
            callee = logs[i + 1]["depth"]
            k = i + 1
            while k < n and logs[k]["depth"] >= callee:
                if logs[k]["depth"] == callee:
                    own -= total[k]
                k += 1
            target = "0x" + step["stack"][-2][2:].rjust(40, "0")[-40:]
            frames.append(names.get(target.lower(), target))
        op = step["op"]
        out[(frames[d - 1], _category(op))] += own
        if op == "SLOAD":
            out[(frames[d - 1], "SLOAD cold" if own >= COLD_SLOAD else "SLOAD warm")] += 1
    return out


def print_breakdown(label: str, receipt: Any, node: BenchNode, names: dict[str, str]) -> None:
    """Trace one receipt's transaction and print its gas per contract and opcode class."""
    tx = node.web3.eth.get_transaction(receipt["transactionHash"])
    data = bytes(tx["input"])
    base = Floor.of(data, lock=False).gross
    parts = attribute(node.trace(receipt["transactionHash"]), tx["to"], names)
    executed = sum(v for (_, cat), v in parts.items() if not cat.startswith("SLOAD "))
    refund = base + executed - receipt["gasUsed"]
    print(
        f"  {label}: gasUsed {receipt['gasUsed']:,} = intrinsic {base:,} "
        f"+ execution {executed:,} - refund {refund:,}"
    )
    for contract in dict.fromkeys(c for c, _ in parts):
        cats = {cat: v for (c, cat), v in parts.items() if c == contract}
        counts = f"{cats.pop('SLOAD cold', 0)} cold / {cats.pop('SLOAD warm', 0)} warm SLOAD"
        body = ", ".join(f"{cat} {v:,}" for cat, v in sorted(cats.items(), key=lambda x: -x[1]))
        print(f"      {contract:<14} {body}  [{counts}]")


def contracts_state() -> str:
    """Which contract sources were measured: HEAD's short hash, and the contracts that
    differ from it in the working tree (benchmarks compile the working tree)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "diff", "--name-only", "HEAD", "--", "contracts"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        ).stdout.split()
    except OSError:
        return "contracts: (no git)"
    return f"contracts at {head or '?'}" + (
        f", uncommitted changes in {', '.join(dirty)}" if dirty else ""
    )


# ---------------------------------------------------------------------------
# The v2 system on a bench node, through the SDK
# ---------------------------------------------------------------------------

QUORUM, MAX_AGE, MAX_DEVIATION_BPS, LOCKING_PERIOD, DISPUTE_PERIOD = 2, 3_600, 5_000, 300, 3_600
REPORTER_KEYS = [bytes([i]) * 32 for i in (0x11, 0x22, 0x33)]
MAKER_BPS, TAKER_BPS = 10, 30
MAX_UINT = 2**256 - 1


@dataclass
class System:
    """The v2 contracts deployed by `admin` (SDK bindings), and two MockERC20 tokens."""

    oracle: OracleBinding
    ledger: LedgerBinding
    ch: ClearinghouseBinding
    usdc: ERC20Binding
    weth: ERC20Binding
    engine: MarginEngineBinding | None = None

    def names(self) -> dict[str, str]:
        """Address (lowercase) -> contract name, for trace attribution."""
        pairs = [
            (self.oracle, "Oracle"),
            (self.ledger, "Ledger"),
            (self.ch, "Clearinghouse"),
            (self.usdc, "USDC"),
            (self.weth, "WETH"),
        ]
        if self.engine is not None:
            pairs.append((self.engine, "MarginEngine"))
        return {b.address.lower(): n for b, n in pairs}


def deploy_system(node: BenchNode, admin: str, guardian: str, fee_recipient: str) -> System:
    """Oracle (three reporters, quorum two), the Ledger and its Clearinghouse
    (`ClearinghouseBinding.deploy_with_ledger`), USDC (6 decimals) and WETH (18)."""
    from eth_account import Account

    w3 = node.web3
    oracle = OracleBinding.deploy(
        w3,
        admin,
        QUORUM,
        MAX_AGE,
        MAX_DEVIATION_BPS,
        LOCKING_PERIOD,
        DISPUTE_PERIOD,
        sender=admin,
    )
    for key in REPORTER_KEYS:
        oracle.grant_reporter(Account.from_key(key).address, sender=admin)
    ledger, ch = ClearinghouseBinding.deploy_with_ledger(
        w3, oracle.address, admin, guardian, fee_recipient, MAKER_BPS, TAKER_BPS, sender=admin
    )
    usdc = ERC20Binding.deploy(w3, "USD Coin", "USDC", 6, sender=admin)
    weth = ERC20Binding.deploy(w3, "Wrapped Ether", "WETH", 18, sender=admin)
    return System(oracle, ledger, ch, usdc, weth)


def input_of(node: BenchNode, receipt: Any) -> bytes:
    """The input (calldata) of a receipt's transaction."""
    return bytes(node.web3.eth.get_transaction(receipt["transactionHash"])["input"])
