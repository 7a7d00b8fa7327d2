"""Gas of settling signed orders through the Exchange on a real anvil node.

Deploys the system with `strikeline.bindings` on a fresh anvil node (hardfork Prague),
gives every party balances and positions and one earlier trade (so balances, long
positions, nonce-bitmap words and the fee recipient's balance are already nonzero, as for
anyone who trades), then measures `gasUsed` from the receipts of:

- a single match of two fresh orders where the seller delivers longs it holds to a buyer
  who already holds some (the plain secondary trade), beside its anchors: a 0x v4 RFQ
  fill (111,684 gas, USDC/WETH, 0x-settler README; goal 0.8x = 89,000) and a 1inch v4
  limit-order full fill (99,228);
- the same trade as a direct fill by the taker (no relayer);
- sell to open (the seller writes from free collateral) and buy to close (the buyer's
  short is netted and its collateral released), each beside a floor;
- a batch of 8 matches, amortised per match (goal 55,000; CoW Protocol settles large
  batches at under 60,000 per trade), for 8 distinct pairs and for one market maker
  against 8 takers.

A floor is what any implementation of the same behaviour, with the same three contracts
(Exchange, Clearinghouse, OptionToken) and events, must pay: the transaction's intrinsic
gas (base and its actual calldata), every storage slot the behaviour has to read or write
in a tight layout (fields used together share a slot), the cold contracts it must call,
the two signature recoveries and the events. Computation (ABI decoding, hashing, memory,
jumps) is not in it. `--explain` prints each floor item by item; `--breakdown` traces each
measured transaction (`debug_traceTransaction`, call tracer) and prints the gas spent in
each contract.

Usage: python benchmarks/bench_exchange_gas.py [--explain] [--breakdown]
Exits 0 once the figures are printed: a missed goal is a finding, not a failure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anvil_node import start_node  # noqa: E402
from bench_core_gas import (  # noqa: E402
    COLD_ACCOUNT,
    COLD_SLOAD,
    REENTRANCY_LOCK,
    SLOT_CREATE,
    SSTORE_RESET,
    SSTORE_SET,
    WARM_ACCESS,
    Floor,
    intrinsic,
    log_cost,
)
from eth_account import Account  # noqa: E402
from eth_account.signers.local import LocalAccount  # noqa: E402
from web3 import Web3  # noqa: E402
from web3.types import TxReceipt  # noqa: E402

from strikeline import ids  # noqa: E402
from strikeline.bindings import (  # noqa: E402
    ClearinghouseBinding,
    ContractBinding,
    ERC20Binding,
    ExchangeBinding,
)
from strikeline.chain import DEFAULT_MNEMONIC  # noqa: E402
from strikeline.orders import Match, Order, SignedOrder  # noqa: E402

UNIT = 10**8
STRIKE = 3_000 * UNIT
PRICE = 150 * 10**6
MAKER_BPS, TAKER_BPS = 10, 30
BATCH = 8
PARTIES = 2 * BATCH + 4  # 16 batch parties, a spare holder, a seller to open, a closer, a writer

ANCHOR_0X_RFQ = 111_684
ANCHOR_1INCH = 99_228
ANCHOR_COW = 60_000
GOAL_SINGLE = 89_000
GOAL_BATCH = 55_000

# The EVM gas schedule, the itemised `Floor`, `log_cost` and `intrinsic` are the core bench's.
ECRECOVER = 3_000
READ = COLD_SLOAD  # a slot only read
UPDATE = COLD_SLOAD + SSTORE_RESET  # a nonzero slot rewritten (nonzero or zero)
WARM = WARM_ACCESS
LOCK = REENTRANCY_LOCK  # transient reentrancy lock: TLOAD, TSTORE, TSTORE


LOG_FILL = log_cost(4, 11)  # Fill(maker_order, taker_order, series | 11 words, nonces included)
LOG_TRADE = log_cost(4, 6)  # Trade(series, buyer, seller | 6 words)
LOG_TRANSFER_SINGLE = log_cost(4, 2)  # TransferSingle(operator, from, to | id, value)


def match_floor(data: bytes, kind: str, relayed: bool = True) -> Floor:
    """The floor of one match (or direct fill) of two fresh orders; `kind` is
    "deliver" (seller's longs to a buyer with longs), "open" (sell to open) or "close"
    (buy to close, the seller delivering longs it holds)."""
    f = intrinsic(data).add("exchange: reentrancy lock", LOCK)
    if relayed:
        f.add("exchange: RELAYER_ROLE[relayer]", READ)
    f.add("exchange: fees and pause flag (one slot)", READ)
    orders = 2 if relayed else 1
    f.add(f"exchange: {orders} x min_nonce[maker]", orders * READ)
    f.add(f"exchange: {orders} x nonce-bitmap word, one bit set", orders * UPDATE)
    f.add(f"exchange: {orders} x ecrecover (warm precompile)", orders * (ECRECOVER + WARM))
    f.add("exchange: Fill LOG4, 11 words", LOG_FILL)
    f.add("CALL clearinghouse (cold account)", COLD_ACCOUNT)
    f.add("clearinghouse: reentrancy lock", LOCK)
    f.add("clearinghouse: fee recipient|paused; EXCHANGE_ROLE[exchange]", 2 * READ)
    f.add("clearinghouse: series quote|expiry|strike", READ)
    f.add("clearinghouse: free[buyer][quote], free[seller][quote]", 2 * UPDATE)
    f.add("clearinghouse: free[fee_recipient][quote]", UPDATE)
    f.add("clearinghouse: position[buyer][series].short (netting check)", READ)
    f.add("clearinghouse: Trade LOG4, 6 words", LOG_TRADE)
    f.add("CALL option token (cold account), caller check against an immutable", COLD_ACCOUNT)
    f.add("option token: balanceOf[seller][id] (delivery check)", READ)
    if kind == "deliver":
        f.add("option token: balanceOf[seller] rewritten", SSTORE_RESET)
        f.add("option token: balanceOf[buyer]", UPDATE)
    if kind != "deliver":  # a short opens or closes: the product is read
        f.add(
            "clearinghouse: series product id; product collateral|is_put|enabled|decimals", 2 * READ
        )
    if kind == "open":
        f.add("clearinghouse: free[seller][collateral]", UPDATE)
        f.add("clearinghouse: position[seller][series].short", UPDATE)
        f.add("clearinghouse: series open_interest|collateral", UPDATE)
        f.add("option token: balanceOf[buyer] (mint)", UPDATE)
        f.add("option token: total_supply[id]", UPDATE)
    elif kind == "close":
        f.add("clearinghouse: position[buyer][series].short rewritten", SSTORE_RESET)
        f.add("clearinghouse: free[buyer][collateral]", UPDATE)
        f.add("clearinghouse: series open_interest|collateral", UPDATE)
        f.add("option token: balanceOf[seller] rewritten (burn)", SSTORE_RESET)
        f.add("option token: total_supply[id]", UPDATE)
    if kind != "close":
        f.add(
            "option token: buyer EXTCODESIZE (cold account, ERC-1155 receiver check)", COLD_ACCOUNT
        )
    return f.add("option token: TransferSingle LOG4, 2 words", LOG_TRANSFER_SINGLE)


def batch_floor(data: bytes, n: int, shared_maker: bool) -> Floor:
    """n delivering matches in one transaction, the per-transaction reads paid once."""
    f = intrinsic(data).add("exchange + clearinghouse locks", 2 * LOCK)
    f.add("exchange: relayer role, fees and pause flag", 2 * READ)
    f.add("clearinghouse: fee recipient|paused, role, series terms", 3 * READ)
    f.add("clearinghouse: free[fee_recipient][quote], then warm", UPDATE + (n - 1) * 2 * WARM)
    f.add("CALL clearinghouse, option token (cold once)", 2 * COLD_ACCOUNT)
    makers = 1 if shared_maker else n
    f.add(f"exchange: {makers + n} x min_nonce (distinct makers and takers)", (makers + n) * READ)
    f.add(
        f"exchange: {makers + n} x nonce word, then warm",
        (makers + n) * UPDATE + (2 * n - makers - n) * 2 * WARM,
    )
    f.add(f"exchange: {2 * n} x ecrecover", 2 * n * (ECRECOVER + WARM))
    f.add(
        f"{n} x Fill, Trade, TransferSingle logs", n * (LOG_FILL + LOG_TRADE + LOG_TRANSFER_SINGLE)
    )
    f.add(f"{makers + n} x free[party][quote]", (makers + n) * UPDATE)
    f.add(f"{n} x buyer short (netting check)", n * READ)
    f.add(
        f"{makers + n} x long balances (read, then rewritten)",
        (makers + n) * UPDATE + (2 * n - makers - n) * 2 * WARM,
    )
    f.add(f"{n} x buyer EXTCODESIZE (cold)", n * COLD_ACCOUNT)
    f.add(f"{n - 1} x warm calls (clearinghouse, option token twice)", (n - 1) * 3 * WARM)
    return f


def sweep_floor(data: bytes, n: int) -> Floor:
    """One resting sell order of n contracts taken by n buyers in one batch: the order is
    verified once, its fill is tracked in one slot that is cleared when it completes (the
    refund of that clearing is taken off, as the receipt's gasUsed does)."""
    f = intrinsic(data).add("exchange + clearinghouse locks", 2 * LOCK)
    f.add("exchange: relayer role, fees and pause flag", 2 * READ)
    f.add("clearinghouse: fee recipient|paused, role, series terms", 3 * READ)
    f.add("clearinghouse: free[fee_recipient][quote], then warm", UPDATE + (n - 1) * 2 * WARM)
    f.add("CALL clearinghouse, option token (cold once)", 2 * COLD_ACCOUNT)
    f.add(f"exchange: {n + 1} x min_nonce, maker's then warm", (n + 1) * READ + (n - 1) * WARM)
    f.add(f"exchange: {n + 1} x nonce word (the maker's set once)", (n + 1) * UPDATE)
    f.add(
        "exchange: partial_fills[order] set, updated, cleared (net of its refund)",
        SLOT_CREATE + (n - 1) * WARM - (SSTORE_SET - WARM),
    )
    f.add(f"exchange: {n + 1} x ecrecover", (n + 1) * (ECRECOVER + WARM))
    f.add(
        f"{n} x Fill, Trade, TransferSingle logs", n * (LOG_FILL + LOG_TRADE + LOG_TRANSFER_SINGLE)
    )
    f.add(
        f"{n + 1} x free[party][quote], the maker's then warm",
        (n + 1) * UPDATE + (n - 1) * 2 * WARM,
    )
    f.add(f"{n} x buyer short (netting check)", n * READ)
    f.add(f"{n + 1} x long balances, the maker's then warm", (n + 1) * UPDATE + (n - 1) * 2 * WARM)
    f.add(f"{n} x buyer EXTCODESIZE (cold)", n * COLD_ACCOUNT)
    f.add(f"{n - 1} x warm calls (clearinghouse, option token twice)", (n - 1) * 3 * WARM)
    return f


# ---------------------------------------------------------------------------
#                                   Setup
# ---------------------------------------------------------------------------


class Bench:
    """A deployed system on anvil with funded, positioned parties."""

    def __init__(self, w3: Web3, keys: list[LocalAccount]):
        self.w3 = w3
        self.admin, self.guardian, self.fee_recipient, self.relayer = (k.address for k in keys[:4])
        self.parties = keys[4:]
        self.nonces: dict[str, int] = {}
        admin = self.admin
        oracle = ContractBinding.deploy(
            w3, admin, 2, 3_600, 5_000, 300, 3_600, sender=admin, name="Oracle"
        )
        token, self.ch = ClearinghouseBinding.deploy_with_token(
            w3,
            "https://strikeline.example/series/",
            oracle.address,
            admin,
            self.guardian,
            self.fee_recipient,
            sender=admin,
        )
        self.option = token
        self.usdc = ERC20Binding.deploy(w3, "USD Coin", "USDC", 6, sender=admin)
        self.weth = ERC20Binding.deploy(w3, "Wrapped Ether", "WETH", 18, sender=admin)
        product = self.ch.set_product(
            self.weth.address, self.usdc.address, self.weth.address, False
        )
        now = w3.eth.get_block("latest")["timestamp"]
        self.series = self.ch.create_series(product, STRIKE, ids.next_expiry(now, 7))
        self.ex = ExchangeBinding.deploy(
            w3, self.ch.address, admin, self.guardian, MAKER_BPS, TAKER_BPS, sender=admin
        )
        self.ch.grant_exchange(self.ex.address)
        self.ex.grant_relayer(self.relayer)
        self.domain = self.ex.domain()

    def fund(self, who: str, usdc: int, weth: int) -> None:
        """Deposit free collateral for `who`."""
        for token, amount in ((self.usdc, usdc), (self.weth, weth)):
            if amount:
                token.mint(who, amount)
                token.approve(self.ch.address, 2**256 - 1, sender=who)
                self.ch.deposit(token.address, amount, who, sender=who)

    def order(self, maker: LocalAccount, is_buy: bool, amount: int = UNIT) -> SignedOrder:
        """A fresh signed order (next nonce of `maker`, so the bitmap word is in use)."""
        nonce = self.nonces.get(maker.address, 0)
        self.nonces[maker.address] = nonce + 1
        order = Order(
            maker=maker.address,
            series_id=self.series,
            is_buy=is_buy,
            amount=amount,
            limit_price=PRICE,
            max_fee=10**9,
            nonce=nonce,
            deadline=2**40,
        )
        return order.sign(maker, self.domain)

    def trade(self, buyer: LocalAccount, seller: LocalAccount, amount: int = UNIT) -> Match:
        """A match of fresh orders, the sell order resting."""
        return Match(
            self.order(buyer, True, amount), self.order(seller, False, amount), amount, False
        )


def calldata(w3: Web3, receipt: TxReceipt) -> bytes:
    """The input of the transaction of `receipt`."""
    return bytes(w3.eth.get_transaction(receipt["transactionHash"])["input"])


def breakdown(w3: Web3, receipt: TxReceipt, names: dict[str, str]) -> str:
    """Gas spent inside each contract (own frames, children excluded), from the call tracer."""
    trace = w3.provider.make_request(
        "debug_traceTransaction", [receipt["transactionHash"].hex(), {"tracer": "callTracer"}]
    )["result"]
    spent: dict[str, int] = {}

    def walk(frame: dict[str, Any]) -> None:
        children = frame.get("calls", [])
        own = int(frame["gasUsed"], 16) - sum(int(c["gasUsed"], 16) for c in children)
        name = names.get(Web3.to_checksum_address(frame["to"]), frame["to"])
        spent[name] = spent.get(name, 0) + own
        for child in children:
            walk(child)

    walk(trace)
    return ", ".join(f"{name} {gas:,}" for name, gas in spent.items())


def main() -> int:
    """Run every scenario and print gasUsed beside its anchor, goal and floor."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--explain", action="store_true", help="print each floor item by item")
    parser.add_argument("--breakdown", action="store_true", help="gas per contract, traced")
    args = parser.parse_args()

    Account.enable_unaudited_hdwallet_features()
    keys = [
        Account.from_mnemonic(DEFAULT_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
        for i in range(4 + PARTIES)
    ]
    with start_node(accounts=len(keys)) as node:
        w3 = node.web3
        b = Bench(w3, keys)
        names = {
            b.ex.address: "exchange",
            b.ch.address: "clearinghouse",
            b.option.address: "option token",
            "0x" + "0" * 39 + "1": "ecrecover",
        }
        parties = b.parties
        writer, closer, opener, spare = parties[-1], parties[-2], parties[-3], parties[-4]
        traders = parties[: 2 * BATCH]

        # balances and positions: everyone holds USDC and longs; the writer, the opener and
        # the closer hold shorts; the opener and the closer hold no longs.
        for p in parties:
            b.fund(p.address, 10**12, 10**24)
        for p in [*traders, spare]:
            b.ch.write(b.series, 100 * UNIT, p.address, sender=writer.address)
        b.ch.write(b.series, 50 * UNIT, spare.address, sender=opener.address)
        b.ch.write(b.series, 50 * UNIT, spare.address, sender=closer.address)
        # one earlier trade each, so every nonce word and the fee balance are in use
        for i in range(0, len(traders), 2):
            b.ex.match_orders([b.trade(traders[i], traders[i + 1])], sender=b.relayer)
        b.ex.match_orders([b.trade(closer, spare)], sender=b.relayer)
        b.ex.match_orders([b.trade(spare, opener)], sender=b.relayer)

        rows: list[tuple[str, int, str, Floor | None]] = []

        def record(
            label: str, receipt: TxReceipt, anchor: str, floor: Floor | None, per: int = 1
        ) -> None:
            rows.append((label, receipt["gasUsed"] // per, anchor, floor))
            if args.breakdown:
                print(f"  [{label}] {breakdown(w3, receipt, names)}")

        alice, bob = traders[0], traders[1]
        r = b.ex.match_orders([b.trade(bob, alice)], sender=b.relayer)
        record(
            "match: seller delivers held longs",
            r,
            f"goal {GOAL_SINGLE:,}; 0x RFQ {ANCHOR_0X_RFQ:,}; 1inch {ANCHOR_1INCH:,}",
            match_floor(calldata(w3, r), "deliver"),
        )

        r = b.ex.match_orders([b.trade(bob, alice)], sender=b.relayer, access_list=True)
        record(
            "match: the same, with an EIP-2930 access list",
            r,
            f"goal {GOAL_SINGLE:,}; 0x RFQ {ANCHOR_0X_RFQ:,}; 1inch {ANCHOR_1INCH:,}",
            match_floor(calldata(w3, r), "deliver"),
        )

        resting = b.order(alice, False)
        r = b.ex.fill(resting, UNIT, 10**9, sender=bob.address)
        record(
            "direct fill by the taker",
            r,
            f"0x RFQ {ANCHOR_0X_RFQ:,}",
            match_floor(calldata(w3, r), "deliver", relayed=False),
        )

        assert b.option.contract.functions.balanceOf(opener.address, b.series).call() == 0
        r = b.ex.match_orders([b.trade(bob, opener)], sender=b.relayer)
        record("match: sell to open", r, "floor", match_floor(calldata(w3, r), "open"))

        assert b.ch.position(closer.address, b.series).short > UNIT
        r = b.ex.match_orders([b.trade(closer, alice)], sender=b.relayer)
        record("match: buy to close", r, "floor", match_floor(calldata(w3, r), "close"))

        pairs = [b.trade(traders[2 * i + 1], traders[2 * i]) for i in range(BATCH)]
        r = b.ex.match_orders(pairs, sender=b.relayer)
        record(
            f"batch of {BATCH}, distinct pairs, per match",
            r,
            f"goal {GOAL_BATCH:,}; CoW < {ANCHOR_COW:,}",
            batch_floor(calldata(w3, r), BATCH, shared_maker=False),
            per=BATCH,
        )

        maker = traders[0]
        fan = [b.trade(traders[i], maker) for i in range(1, BATCH + 1)]
        r = b.ex.match_orders(fan, sender=b.relayer)
        record(
            f"batch of {BATCH}, one maker vs {BATCH} takers, per match",
            r,
            f"goal {GOAL_BATCH:,}; CoW < {ANCHOR_COW:,}",
            batch_floor(calldata(w3, r), BATCH, shared_maker=True),
            per=BATCH,
        )

        # one resting order of BATCH contracts taken by BATCH takers: the order's signature is
        # checked once, its fill amount is tracked in `partial_fills` until it completes
        quote = b.order(maker, False, BATCH * UNIT)
        sweep = [Match(b.order(traders[i], True), quote, UNIT, False) for i in range(1, BATCH + 1)]
        r = b.ex.match_orders(sweep, sender=b.relayer)
        record(
            f"batch of {BATCH}, one order taken by {BATCH} takers, per match",
            r,
            f"goal {GOAL_BATCH:,}; CoW < {ANCHOR_COW:,}",
            sweep_floor(calldata(w3, r), BATCH),
            per=BATCH,
        )

    print(f"{'action':<52} {'gasUsed':>9} {'floor':>9} {'x floor':>8}  anchor")
    for label, gas, anchor, floor in rows:
        per = 8 if label.startswith("batch") else 1
        fl = floor.total // per if floor else 0
        print(f"{label:<52} {gas:>9,} {fl:>9,} {gas / fl:>8.2f}  {anchor}")
        if args.explain and floor:
            print(floor.explain())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
