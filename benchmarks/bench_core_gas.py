"""Gas of the Clearinghouse's core actions on anvil, each beside a first-principles floor.

Deploys the whole system on a fresh anvil node (OptionToken, a 2-of-3 Oracle,
Clearinghouse, MockERC20 USDC (6 decimals) and WETH (18 decimals), a call and a put
product), drives one scenario and reads `gasUsed` from each receipt.

The floor of an action is what any implementation of the same behaviour must pay:
the intrinsic cost of the transaction (base and calldata), the storage slots the
behaviour has to read and write, laid out tightly (fields that are always used
together share a slot), the contracts it has to call, the token transfer it has to
make and the events the interface defines. Code overhead (ABI decoding, mapping
keys, memory, jumps) is not in the floor: that is what the 1.30x allowance is for.
Every floor below is an itemised sum of named EVM costs; `--explain` prints the
items. docs/gas.md explains the model and the gaps.

Usage: python benchmarks/bench_core_gas.py [--explain] [--breakdown]
  --explain    print every floor as its itemised sum
  --breakdown  trace every measured transaction (debug_traceTransaction, struct
               logger) and print its gas per contract and opcode class

Always exits 0 once the figures are printed: a missed goal is a finding, not a failure.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from anvil_node import BenchNode, start_node
from eth_account import Account

from strikeline import ids
from strikeline.oracle_reports import ordered, sign_expiry

GOAL = 1.30

# ---------------------------------------------------------------------------
# EVM gas schedule (Prague): EIP-2028 calldata, EIP-2929 cold/warm access,
# EIP-2200/3529 SSTORE and refunds, EIP-1153 transient storage.
# ---------------------------------------------------------------------------
TX_BASE = 21_000
CALLDATA_ZERO_BYTE = 4
CALLDATA_NONZERO_BYTE = 16
COLD_SLOAD = 2_100
WARM_ACCESS = 100  # warm SLOAD, warm account, SSTORE to a slot already written in this tx
SSTORE_SET = 20_000  # clean slot, zero -> nonzero
SSTORE_RESET = 2_900  # clean slot, nonzero -> nonzero or zero
CLEAR_REFUND = 4_800  # a slot that was nonzero at the start of the tx is set to zero
COLD_ACCOUNT = 2_600  # first CALL/STATICCALL/EXTCODESIZE of another account
TRANSIENT = 100  # TLOAD / TSTORE
LOG_BASE = 375
LOG_TOPIC = 375
LOG_DATA_BYTE = 8
MAX_REFUND_QUOTIENT = 5  # refunds are capped at gas used / 5

# A slot touched once from cold, by kind of change:
SLOT_READ = COLD_SLOAD  # 2,100
SLOT_UPDATE = COLD_SLOAD + SSTORE_RESET  # 5,000: nonzero -> nonzero
SLOT_CREATE = COLD_SLOAD + SSTORE_SET  # 22,100: zero -> nonzero
SLOT_CLEAR = COLD_SLOAD + SSTORE_RESET  # 5,000 (and a 4,800 refund): nonzero -> zero
WARM_UPDATE = WARM_ACCESS + WARM_ACCESS  # read and write again a slot already written
REENTRANCY_LOCK = 3 * TRANSIENT  # TLOAD check, TSTORE lock, TSTORE unlock


def log_cost(topics: int, data_words: int) -> int:
    """LOGn: 375 + 375 per topic (the event signature is one) + 8 per data byte."""
    return LOG_BASE + LOG_TOPIC * topics + LOG_DATA_BYTE * 32 * data_words


def calldata_cost(data: bytes) -> tuple[int, int, int]:
    """(gas, zero bytes, nonzero bytes) of a transaction's input."""
    zeros = data.count(0)
    nonzeros = len(data) - zeros
    return zeros * CALLDATA_ZERO_BYTE + nonzeros * CALLDATA_NONZERO_BYTE, zeros, nonzeros


# Events of the interface: topics counting the signature, 32-byte data words.
LOG_ERC20_TRANSFER = log_cost(3, 1)  # Transfer(from, to | value)
LOG_ERC1155_SINGLE = log_cost(4, 2)  # TransferSingle(operator, from, to | id, value)
LOG_DEPOSIT = log_cost(3, 2)  # Deposit(account, token | amount, sender)
LOG_WITHDRAW = log_cost(3, 2)  # Withdraw(account, token | amount, recipient)
LOG_WRITTEN = log_cost(3, 3)  # Written(writer, series | amount, collateral, recipient)
LOG_REDEEMED = log_cost(3, 3)  # Redeemed(holder, series | amount, payout, caller)
LOG_SETTLED = log_cost(3, 4)  # Settled(writer, series | amount, obligation, returned, caller)
LOG_SETTLEMENT_PRICE = log_cost(2, 2)  # SeriesSettlementPrice(series | price, payout_pool)


@dataclass
class Floor:
    """An itemised lower bound: gross gas items and refund items."""

    items: list[tuple[str, int]] = field(default_factory=list)
    refunds: list[tuple[str, int]] = field(default_factory=list)

    def add(self, label: str, gas: int) -> Floor:
        """Add a gas item."""
        self.items.append((label, gas))
        return self

    def refund(self, label: str, gas: int) -> Floor:
        """Add a refund item (refunds are capped at gross / 5)."""
        self.refunds.append((label, gas))
        return self

    @property
    def gross(self) -> int:
        """Sum of the gas items."""
        return sum(g for _, g in self.items)

    @property
    def refunded(self) -> int:
        """Refund actually granted, after the gross / 5 cap."""
        return min(sum(g for _, g in self.refunds), self.gross // MAX_REFUND_QUOTIENT)

    @property
    def total(self) -> int:
        """The floor: gross less the granted refund."""
        return self.gross - self.refunded

    def explain(self) -> str:
        """The floor as an itemised sum, one item per line."""
        lines = [f"      {g:>9,}  {label}" for label, g in self.items]
        lines += [f"     -{g:>9,}  refund: {label}" for label, g in self.refunds]
        if self.refunded != sum(g for _, g in self.refunds):
            lines.append(f"      (refund capped at gross/5 = {self.refunded:,})")
        lines.append(f"      {self.total:>9,}  = floor")
        return "\n".join(lines)


def intrinsic(data: bytes) -> Floor:
    """21,000 base plus calldata, from the transaction's actual input."""
    gas, zeros, nonzeros = calldata_cost(data)
    return (
        Floor()
        .add("transaction base", TX_BASE)
        .add(f"calldata: {zeros} zero x 4 + {nonzeros} nonzero x 16", gas)
    )


def erc20_transfer(spender_allowance: bool) -> list[tuple[str, int]]:
    """MockERC20 transfer / transferFrom between two nonzero balances (infinite allowance)."""
    items = []
    if spender_allowance:
        items.append(("token: allowance[owner][clearinghouse] (max, not written)", SLOT_READ))
    items += [
        ("token: balanceOf[from] nonzero->nonzero", SLOT_UPDATE),
        ("token: balanceOf[to] nonzero->nonzero", SLOT_UPDATE),
        ("token: Transfer LOG3, 32 data bytes", LOG_ERC20_TRANSFER),
    ]
    return items


# ---------------------------------------------------------------------------
# Floors. "Tight layout": a series is two slots (product id; strike|expiry), a
# product one slot (collateral|is_put|enabled|decimals), a series' state two slots
# (open_interest|collateral; settlement_price|payout_pool), a position one slot
# (short|collateral), a balance one slot.
# ---------------------------------------------------------------------------


def floor_deposit(data: bytes, first: bool) -> Floor:
    """Deposit of MockERC20 (infinite allowance); `first`: the account had none of it free."""
    f = intrinsic(data).add("reentrancy lock (transient)", REENTRANCY_LOCK)
    f.add("token_unit[token]: accepted?", SLOT_READ)
    f.add("CALL token (cold account)", COLD_ACCOUNT)
    for label, gas in erc20_transfer(spender_allowance=True):
        f.add(label, gas)
    f.add("fee-on-transfer check: 2 warm STATICCALL balanceOf + 2 warm SLOAD", 4 * WARM_ACCESS)
    if first:
        f.add("free_collateral[account][token] zero->nonzero", SLOT_CREATE)
    else:
        f.add("free_collateral[account][token] nonzero->nonzero", SLOT_UPDATE)
    return f.add("Deposit LOG3, 64 data bytes", LOG_DEPOSIT)


def floor_withdraw(data: bytes) -> Floor:
    """Partial withdraw to a wallet that still holds some of the token."""
    f = intrinsic(data).add("reentrancy lock (transient)", REENTRANCY_LOCK)
    f.add("free_collateral[account][token] nonzero->nonzero", SLOT_UPDATE)
    f.add("Withdraw LOG3, 64 data bytes", LOG_WITHDRAW)
    f.add("CALL token (cold account)", COLD_ACCOUNT)
    for label, gas in erc20_transfer(spender_allowance=False):
        f.add(label, gas)
    return f


def floor_write(data: bytes, first: bool) -> Floor:
    """Write into a series with open interest, longs to another address.

    `first`: the writer has no short and the recipient no long of the series yet.
    """
    f = intrinsic(data).add("reentrancy lock (transient)", REENTRANCY_LOCK)
    f.add("paused flag", SLOT_READ)
    f.add("series: product_id; strike|expiry (2 slots)", 2 * SLOT_READ)
    f.add("product: collateral|is_put|enabled|decimals (1 slot)", SLOT_READ)
    f.add("free_collateral[writer][token] nonzero->nonzero", SLOT_UPDATE)
    if first:
        f.add("position[writer][series] short|collateral zero->nonzero", SLOT_CREATE)
    else:
        f.add("position[writer][series] short|collateral nonzero->nonzero", SLOT_UPDATE)
    f.add("series_state open_interest|collateral nonzero->nonzero", SLOT_UPDATE)
    f.add("Written LOG3, 96 data bytes", LOG_WRITTEN)
    f.add("CALL option token (cold account); caller check against an immutable", COLD_ACCOUNT)
    if first:
        f.add("option token: balanceOf[recipient][id] zero->nonzero", SLOT_CREATE)
    else:
        f.add("option token: balanceOf[recipient][id] nonzero->nonzero", SLOT_UPDATE)
    f.add("option token: total_supply[id] nonzero->nonzero", SLOT_UPDATE)
    f.add(
        "option token: recipient EXTCODESIZE (cold account, ERC-1155 receiver check)", COLD_ACCOUNT
    )
    return f.add("option token: TransferSingle LOG4, 64 data bytes", LOG_ERC1155_SINGLE)


def floor_redeem(data: bytes) -> Floor:
    """Redeem after the price is cached, the holder's first payout in the token."""
    f = intrinsic(data).add("reentrancy lock (transient)", REENTRANCY_LOCK)
    f.add("series: product_id; strike|expiry (2 slots)", 2 * SLOT_READ)
    f.add("product: collateral|is_put|enabled|decimals (1 slot)", SLOT_READ)
    f.add("series_state settlement_price|payout_pool nonzero->nonzero", SLOT_UPDATE)
    f.add("free_collateral[holder][token] zero->nonzero (first payout)", SLOT_CREATE)
    f.add("Redeemed LOG3, 96 data bytes", LOG_REDEEMED)
    f.add("CALL option token once: burn the whole balance (cold account)", COLD_ACCOUNT)
    f.add("option token: balanceOf[holder][id] nonzero->zero", SLOT_CLEAR)
    f.refund("option token: balanceOf[holder][id] cleared", CLEAR_REFUND)
    f.add("option token: total_supply[id] nonzero->nonzero", SLOT_UPDATE)
    return f.add("option token: TransferSingle LOG4, 64 data bytes", LOG_ERC1155_SINGLE)


def floor_settle(data: bytes) -> Floor:
    """Settle after the price is cached; the writer keeps a free balance."""
    f = intrinsic(data).add("reentrancy lock (transient)", REENTRANCY_LOCK)
    f.add("position[writer][series] short|collateral nonzero->zero", SLOT_CLEAR)
    f.refund("position cleared", CLEAR_REFUND)
    f.add("series: product_id; strike|expiry (2 slots)", 2 * SLOT_READ)
    f.add("product: collateral|is_put|enabled|decimals (1 slot)", SLOT_READ)
    f.add("series_state settlement_price|payout_pool (read the cached price)", SLOT_READ)
    f.add("series_state open_interest|collateral nonzero->nonzero", SLOT_UPDATE)
    f.add("free_collateral[writer][token] nonzero->nonzero", SLOT_UPDATE)
    return f.add("Settled LOG3, 128 data bytes", LOG_SETTLED)


def floor_settle_many(data: bytes, n: int) -> Floor:
    """n writers of one series; the first touch of the series after expiry."""
    f = intrinsic(data).add("reentrancy lock (transient)", REENTRANCY_LOCK)
    f.add("series: product_id; strike|expiry (2 slots)", 2 * SLOT_READ)
    f.add("product: collateral(=underlying of a call)|is_put|enabled|decimals", SLOT_READ)
    f.add("crystallise: oracle address", SLOT_READ)
    f.add("crystallise: STATICCALL oracle (cold account)", COLD_ACCOUNT)
    f.add("crystallise: oracle expiry record price|reported_at|disputed (1 slot)", SLOT_READ)
    f.add("crystallise: oracle dispute_period", SLOT_READ)
    f.add("crystallise: series_state settlement_price|payout_pool zero->nonzero", SLOT_CREATE)
    f.add("crystallise: series_state open_interest|collateral nonzero->nonzero", SLOT_UPDATE)
    f.add("crystallise: SeriesSettlementPrice LOG2, 64 data bytes", LOG_SETTLEMENT_PRICE)
    f.add(f"{n} x position[writer][series] short|collateral nonzero->zero", n * SLOT_CLEAR)
    f.refund(f"{n} positions cleared", n * CLEAR_REFUND)
    f.add(f"{n} x free_collateral[writer][token] nonzero->nonzero", n * SLOT_UPDATE)
    f.add(f"{n} x Settled LOG3, 128 data bytes", n * LOG_SETTLED)
    f.add(
        f"{n - 1} x warm re-read of series (2), product (1), price slot (1)",
        (n - 1) * 4 * WARM_ACCESS,
    )
    f.add(f"{n - 1} x warm update of open_interest|collateral", (n - 1) * WARM_UPDATE)
    return f


def floor_redeem_many(data: bytes, n: int) -> Floor:
    """n holders of one series whose price is already cached (other longs stay outstanding)."""
    f = intrinsic(data).add("reentrancy lock (transient)", REENTRANCY_LOCK)
    f.add("series: product_id; strike|expiry (2 slots)", 2 * SLOT_READ)
    f.add("product: collateral|is_put|enabled|decimals (1 slot)", SLOT_READ)
    f.add("series_state settlement_price|payout_pool nonzero->nonzero", SLOT_UPDATE)
    f.add("CALL option token (cold account)", COLD_ACCOUNT)
    f.add("option token: total_supply[id] first update", SLOT_UPDATE)
    f.add(f"{n} x free_collateral[holder][token] zero->nonzero", n * SLOT_CREATE)
    f.add(f"{n} x Redeemed LOG3, 96 data bytes", n * LOG_REDEEMED)
    f.add(f"{n} x option token: balanceOf[holder][id] nonzero->zero", n * SLOT_CLEAR)
    f.refund(f"{n} balances cleared", n * CLEAR_REFUND)
    f.add(f"{n} x option token: TransferSingle LOG4, 64 data bytes", n * LOG_ERC1155_SINGLE)
    f.add(f"{n - 1} x warm re-read of series (2), product (1)", (n - 1) * 3 * WARM_ACCESS)
    f.add(f"{n - 1} x warm update of price|payout_pool and total_supply", (n - 1) * 2 * WARM_UPDATE)
    f.add(f"{n - 1} x warm CALL option token", (n - 1) * WARM_ACCESS)
    return f


# ---------------------------------------------------------------------------
# Gas attribution from a struct-logger trace
# ---------------------------------------------------------------------------

CALL_OPS = {"CALL", "STATICCALL", "DELEGATECALL", "CALLCODE"}
ACCOUNT_OPS = {"EXTCODESIZE", "EXTCODEHASH", "EXTCODECOPY", "BALANCE"}


def _category(op: str) -> str:
    """The opcode class an opcode's gas is reported under."""
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
    """Gas spent by each (contract, opcode class); a call's own cost excludes its callee's."""
    logs = trace["structLogs"]
    n = len(logs)
    total = [0] * n
    for i, step in enumerate(logs):
        d = step["depth"]
        j = i + 1
        while j < n and logs[j]["depth"] > d:
            j += 1
        if j < n and logs[j]["depth"] == d:
            total[i] = step["gas"] - logs[j]["gas"]
        else:
            total[i] = step["gasCost"]
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
        key = (frames[d - 1], _category(op))
        out[key] += own
        if op == "SLOAD":
            out[(frames[d - 1], "SLOAD cold" if own >= COLD_SLOAD else "SLOAD warm")] += 1
    return out


def print_breakdown(label: str, receipt: Any, node: BenchNode, names: dict[str, str]) -> None:
    """Trace one receipt's transaction and print its gas per contract and opcode class."""
    tx = node.web3.eth.get_transaction(receipt["transactionHash"])
    trace = node.trace(receipt["transactionHash"])
    parts = attribute(trace, tx["to"], names)
    base = TX_BASE + calldata_cost(bytes(tx["input"]))[0]
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


# ---------------------------------------------------------------------------
# Scenario
# ---------------------------------------------------------------------------

QUORUM, MAX_AGE, MAX_DEVIATION_BPS, LOCKING_PERIOD, DISPUTE_PERIOD = 2, 3_600, 5_000, 300, 3_600
REPORTER_KEYS = [bytes([i]) * 32 for i in (0x11, 0x22, 0x33)]
STRIKE = 3_000 * 10**8
EXPIRY_PRICE = 3_600 * 10**8  # the call ends in the money, the put out of it
ONE = 10**8  # one contract
BATCH = 10
MAX_UINT = 2**256 - 1


@dataclass
class Measurement:
    """One measured transaction, its floor and how many positions it handled."""

    action: str
    receipt: Any
    floor: Floor
    per: int = 1


def deploy_core(
    node: BenchNode, admin: str, guardian: str, fee_recipient: str
) -> tuple[Any, Any, Any]:
    """Oracle (its reporters registered), OptionToken and Clearinghouse, deployed by `admin`.

    The token names the Clearinghouse, deployed right after it (the admin's next CREATE)."""
    oracle = node.deploy(
        "Oracle",
        admin,
        QUORUM,
        MAX_AGE,
        MAX_DEVIATION_BPS,
        LOCKING_PERIOD,
        DISPUTE_PERIOD,
        sender=admin,
    )
    nonce = node.web3.eth.get_transaction_count(admin)
    token = node.deploy(
        "OptionToken",
        "https://strikeline.example/series/",
        ids.create_address(admin, nonce + 1),
        sender=admin,
    )
    ch = node.deploy(
        "Clearinghouse", token.address, oracle.address, admin, guardian, fee_recipient, sender=admin
    )
    reporter_role = oracle.functions.REPORTER_ROLE().call()
    for key in REPORTER_KEYS:
        node.transact(
            oracle.functions.grantRole(reporter_role, Account.from_key(key).address), admin
        )
    return oracle, token, ch


def main() -> int:
    """Deploy, run the scenario, print the table (and items or traces if asked)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--explain", action="store_true", help="print each floor's items")
    parser.add_argument("--breakdown", action="store_true", help="trace and attribute gas")
    args = parser.parse_args()
    started = time.monotonic()
    results: list[Measurement] = []

    with start_node(accounts=8 + 2 * BATCH, steps_tracing=args.breakdown) as node:
        acct = node.accounts
        admin, guardian, fee_recipient, disputer, keeper, lp, writer, holder = acct[:8]
        writers, holders = acct[8 : 8 + BATCH], acct[8 + BATCH : 8 + 2 * BATCH]
        send = node.transact

        # --- deploy and wire ------------------------------------------------
        oracle, token, ch = deploy_core(node, admin, guardian, fee_recipient)
        send(oracle.functions.grantRole(oracle.functions.DISPUTER_ROLE().call(), disputer), admin)
        usdc = node.deploy("MockERC20", "USD Coin", "USDC", 6, sender=admin)
        weth = node.deploy("MockERC20", "Wrapped Ether", "WETH", 18, sender=admin)
        names = {
            c.address.lower(): n
            for c, n in [
                (ch, "Clearinghouse"),
                (token, "OptionToken"),
                (oracle, "Oracle"),
                (usdc, "USDC"),
                (weth, "WETH"),
            ]
        }
        products = {}
        for is_put in (False, True):
            collateral = usdc if is_put else weth
            fn = ch.functions.set_product(
                weth.address, usdc.address, collateral.address, is_put, True
            )
            products[is_put] = fn.call({"from": admin})
            send(fn, admin)
        expiry = ids.next_expiry(node.timestamp(), 7)
        series = {}
        for name, is_put in (("call", False), ("put", True), ("batch", False)):
            strike = STRIKE + (10**8 if name == "batch" else 0)
            fn = ch.functions.create_series(products[is_put], strike, expiry)
            series[name] = fn.call()
            send(fn, keeper)

        def fund(who: str, tok: Any, minted: int, deposited: int) -> None:
            send(tok.functions.mint(who, minted), admin)
            send(tok.functions.approve(ch.address, MAX_UINT), who)
            if deposited:
                send(ch.functions.deposit(tok.address, deposited, who), who)

        def measure(
            action: str, fn: Any, sender: str, make_floor: Callable[[bytes], Floor], per: int = 1
        ) -> None:
            receipt = send(fn, sender)
            data = bytes(node.web3.eth.get_transaction(receipt["transactionHash"])["input"])
            results.append(Measurement(action, receipt, make_floor(data), per))

        def expect(ok: bool, what: str) -> None:
            if not ok:
                raise AssertionError(f"scenario not as the floor assumes: {what}")

        free = ch.functions.free_collateral
        # the lp makes the clearinghouse's token balances nonzero and opens each series
        fund(lp, weth, 100 * 10**18, 50 * 10**18)
        fund(lp, usdc, 10**12, 10**11)
        for name in ("call", "put", "batch"):
            send(ch.functions.write(series[name], ONE, lp), lp)

        # --- accounts ------------------------------------------------------
        fund(writer, weth, 100 * 10**18, 0)
        expect(free(writer, weth.address).call() == 0, "writer has no free WETH")
        measure(
            "deposit (first of token by account)",
            ch.functions.deposit(weth.address, 10 * 10**18, writer),
            writer,
            lambda d: floor_deposit(d, first=True),
        )
        measure(
            "deposit (repeat)",
            ch.functions.deposit(weth.address, 5 * 10**18, writer),
            writer,
            lambda d: floor_deposit(d, first=False),
        )
        measure(
            "withdraw (partial)",
            ch.functions.withdraw(weth.address, 10**18, writer),
            writer,
            floor_withdraw,
        )
        expect(weth.functions.balanceOf(writer).call() > 0, "writer's wallet keeps WETH")

        # --- writing -------------------------------------------------------
        fund(writer, usdc, 10**11, 2 * 10**10)
        for name, label in (("call", "write call"), ("put", "write put")):
            expect(
                ch.functions.positions(writer, series[name]).call()[0] == 0
                and token.functions.balanceOf(holder, series[name]).call() == 0,
                "no short of the writer and no long of the holder yet",
            )
            measure(
                f"{label} (first of series by writer)",
                ch.functions.write(series[name], ONE, holder),
                writer,
                lambda d: floor_write(d, first=True),
            )
            measure(
                f"{label} (repeat)",
                ch.functions.write(series[name], ONE, holder),
                writer,
                lambda d: floor_write(d, first=False),
            )
        expect(free(writer, weth.address).call() > 0, "writer keeps free WETH")
        for w, h in zip(writers, holders, strict=True):
            fund(w, weth, 10 * 10**18, 5 * 10**18)
            send(ch.functions.write(series["batch"], ONE, h), w)
            expect(
                free(w, weth.address).call() > 0 and free(h, weth.address).call() == 0,
                "batch writers keep free WETH, batch holders have none",
            )

        # --- expiry: report, wait out the dispute window ---------------------
        node.mine_at(expiry + LOCKING_PERIOD)
        reports = [
            sign_expiry(k, node.chain_id, oracle.address, weth.address, expiry, EXPIRY_PRICE)
            for k in REPORTER_KEYS[:QUORUM]
        ]
        send(oracle.functions.report_expiry(weth.address, expiry, ordered(reports)), keeper)
        node.mine_at(expiry + LOCKING_PERIOD + DISPUTE_PERIOD + 1)

        # --- settlement ----------------------------------------------------
        send(ch.functions.settle(series["call"], lp), keeper)  # caches the price (unmeasured)
        expect(free(holder, weth.address).call() == 0, "holder has no free WETH")
        measure("redeem", ch.functions.redeem(series["call"], holder), keeper, floor_redeem)
        measure("settle", ch.functions.settle(series["call"], writer), keeper, floor_settle)
        expect(ch.functions.series_state(series["batch"]).call()[2] == 0, "batch not yet priced")
        measure(
            f"settle_many x{BATCH} (first touch)",
            ch.functions.settle_many([series["batch"]] * BATCH, writers),
            keeper,
            lambda d: floor_settle_many(d, BATCH),
            per=BATCH,
        )
        measure(
            f"redeem_many x{BATCH}",
            ch.functions.redeem_many([series["batch"]] * BATCH, holders),
            keeper,
            lambda d: floor_redeem_many(d, BATCH),
            per=BATCH,
        )
        # the lp's own long is the rest of the batch series: its last burn is not in the batch
        expect(
            token.functions.total_supply(series["batch"]).call() == ONE,
            "only the lp's long is left",
        )

        # --- report --------------------------------------------------------
        print(f"{'action':<40} {'gasUsed':>9} {'floor':>9} {'ratio':>6}  (goal ≤ {GOAL:.2f}×)")
        for m in results:
            used, floor = m.receipt["gasUsed"], m.floor.total
            ratio = used / floor
            status = "ok" if ratio <= GOAL else "over"
            note = f"   per position {used // m.per:,} / {floor // m.per:,}" if m.per > 1 else ""
            print(f"{m.action:<40} {used:>9,} {floor:>9,} {ratio:>5.2f}×  {status}{note}")
            if args.explain:
                print(m.floor.explain())
        if args.breakdown:
            print("\nper contract and opcode class (own cost; CALL excludes the callee):")
            for m in results:
                print_breakdown(m.action, m.receipt, node, names)
    missed = sum(1 for m in results if m.receipt["gasUsed"] > GOAL * m.floor.total)
    print(
        f"\n{len(results) - missed} of {len(results)} actions within {GOAL:.2f}× of the floor; "
        f"{time.monotonic() - started:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
