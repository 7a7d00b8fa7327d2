"""Gas of the v2 MarginEngine on anvil: margined writes, margin checks, a liquidation and
the settlement of margined shorts, each beside a floor and v1's figure in docs/margin.md.

Deploys the contracts-v2 system through the SDK (gas_common.deploy_system: Oracle, Ledger
and Clearinghouse) plus a MarginEngine (`MarginEngineBinding`) holding MARGIN_ROLE, the
docs/margin.md example parameters on the WETH/USDC put product and a fresh ETH spot. One
writer margins 16 put series (one product, one expiry, strikes 2,000-3,500), then:

- `write_margined` when it lists the writer's 1st, 8th and 16th series;
- `remove_collateral` (a margin check that must pass) with 1, 8 and 16 series listed;
- `liquidate` of a second writer's only short after a 20% spot drop (restores the account);
- after expiry: `Clearinghouse.settle` of one margined short of the writer (a keeper's
  `settle_many` does this per writer; the price already cached), and `MarginEngine.settle`
  of the liquidated writer's short (its one listed series, the series' first touch).

The floor (gas_common.Floor: EIP-2929/2200/3529 costs of the accesses, warm after the first)
counts the storage the behaviour has to touch in a tight layout, the calls between the
three contracts (engine -> Clearinghouse -> Ledger) and the events. For a margin check: per
listed series its list entry, margined position word, terms and product id, per product
its margin parameters and underlying, the Oracle's spot (one word). The series cache the
engine keeps and the margin maths (about 3.6k gas per series per requirement, docs/margin.md)
are not in it: the ratio shows how far each action is above the cost of its storage. Each
measured write and removal is mined in a later second than the action before it (`later`).

Usage: python benchmarks/bench_margin_gas.py [--explain] [--breakdown]
  --explain    print every floor as its itemised sum
  --breakdown  trace every measured transaction and print its gas per contract and opcode class
Always exits 0 once the figures are printed: a ratio is a finding, not a failure.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from anvil_node import start_node
from gas_common import (
    DISPUTE_PERIOD,
    LOCKING_PERIOD,
    MAX_UINT,
    QUORUM,
    REENTRANCY_LOCK,
    REPORTER_KEYS,
    Floor,
    contracts_state,
    deploy_system,
    input_of,
    print_breakdown,
)

from strikeline import ids
from strikeline.bindings import AuctionParams, MarginEngineBinding, MarginParams
from strikeline.oracle_reports import ordered, sign_expiry, sign_spot

ONE = 10**8
USDC = 10**6
SPOT = 3_000 * ONE
PARAMS = MarginParams(1_500, 5_000, 1_000, 6_000)
AUCTION = AuctionParams(500, 3_000, 3_600)
SERIES = 16

# docs/margin.md, "Gas" (contracts v1, 2026-12-06)
V1_DOC = {
    "write_margined (1 series listed)": 306_640,
    "remove_collateral (1 series listed)": 99_301,
    "write_margined (8 series listed)": 419_355,
    "remove_collateral (8 series listed)": 217_894,
    "write_margined (16 series listed)": 566_082,
    "remove_collateral (16 series listed)": 353_632,
    "liquidate (1 series, restores)": 172_798,
}


def margin_reads(f: Floor, account: str, listed: list[int]) -> Floor:
    """What a margin check of `account` must read for its `listed` series (one product)."""
    f.read(f"list[{account}] length")
    for s in listed:
        f.read(f"list[{account}][{s}]")
        f.read(f"margin position[{account}][s{s}]")
        f.read(f"series[s{s}] terms")
        f.read(f"series[s{s}] product id")
    f.read("margin params[put product]")
    f.read("product underlying|is_put")
    f.read("Clearinghouse.oracle")
    f.account("Oracle", "STATICCALL spot:")
    return f.read("Oracle.spot[WETH] (price|timestamp)")


def engine_to_clearinghouse(f: Floor) -> Floor:
    """The engine's call into the Clearinghouse, its role check and lock."""
    f.account("Clearinghouse", "CALL")
    f.read("Clearinghouse.MARGIN_ROLE[engine]")
    return f.add("Clearinghouse reentrancy lock", REENTRANCY_LOCK)


def floor_write(data: bytes, n: int) -> Floor:
    """write_margined of a new series, the writer's n-th, longs to the writer itself."""
    f = Floor.of(data).warm("MarginEngine")
    f.read("margin params[put product]")
    f.read("list[writer] length")
    for s in range(1, n):
        f.read(f"list[writer][{s}]")
    f.write(f"list[writer][{n}]", was_zero=True)
    f.update("list[writer] length", was_zero=n == 1)
    f.log("SeriesListed", 4, 0)
    engine_to_clearinghouse(f)
    f.read(f"series[s{n}] terms")
    f.read(f"series[s{n}] product id")
    f.read("product word (collateral|enabled)")
    f.account("Ledger", "STATICCALL paused:")
    f.read("Ledger.config (paused)")
    f.update(f"margin position[writer][s{n}]", was_zero=True)
    f.update(f"margin book[s{n}]", was_zero=True)
    f.log("MarginUpdated", 4, 3)
    f.account("Ledger", "CALL")
    f.update("Ledger.free[writer][USDC]")
    f.update(f"Ledger.position[writer][s{n}] (longs)", was_zero=True)
    f.account("writer", "EXTCODESIZE (receiver check):")
    f.log("TransferSingle", 4, 2)
    margin_reads(f, "writer", list(range(1, n + 1)))
    # one word: auction start (none) | last change | auction seen
    return f.update("clock[writer] (last change)", was_zero=n == 1)


def floor_remove(data: bytes, n: int) -> Floor:
    """remove_collateral of part of the n-th series' collateral, n series listed."""
    f = Floor.of(data).warm("MarginEngine")
    f.read(f"series[s{n}] product id")
    f.read("product word (collateral|enabled)")
    engine_to_clearinghouse(f)
    f.read(f"series[s{n}] terms")
    f.update(f"margin position[writer][s{n}]")
    f.log("MarginUpdated", 4, 3)
    f.account("Ledger", "CALL")
    f.update("Ledger.free[writer][USDC]")
    margin_reads(f, "writer", list(range(1, n + 1)))
    return f.update("clock[writer] (last change)")


def floor_liquidate(data: bytes, s: int) -> Floor:
    """liquidate of an account's only short, restoring it: the auction clock is set and
    cleared in the same transaction; the liquidator takes the short with full collateral."""
    f = Floor.of(data).warm("MarginEngine")
    margin_reads(f, "victim", [s])
    f.read("Oracle.spot_updates[WETH]")
    # one word (last change | auction start | seen), stored once: started and
    # cleared in the same transaction
    f.update("clock[victim] (start | last change | seen)")
    f.read("auction params")
    f.read("Clearinghouse.insurance[USDC]")
    engine_to_clearinghouse(f)
    f.update(f"margin position[victim][s{s}] (collateral out, short down)")
    f.update(f"margin book[s{s}]")
    f.log("MarginUpdated", 4, 3)
    f.account("Ledger", "CALL")
    f.update("Ledger.free[victim][USDC] (paid out of its margin)")
    f.update("Ledger.free[victim][USDC] (paid out of its margin)")
    f.read("Ledger.config (paused)")
    f.update(f"Ledger.position[liquidator][s{s}] (short)", was_zero=True)
    f.update(f"Ledger.book[s{s}] (full open interest|collateral)")
    f.update("Ledger.free[liquidator][USDC] (collateral locked, reward paid)")
    f.log("MarginLiquidated", 4, 3)
    f.log("LiquidationStarted", 3, 1)
    f.log("LiquidationCleared", 3, 0)
    return f.log("Liquidated", 4, 8)


def settle_margined(f: Floor, writer: str, s: int, cached: bool) -> Floor:
    """The Clearinghouse's part: a margined short whose own collateral covers it."""
    f.account("Ledger", "STATICCALL positions:")
    f.read(f"Ledger.position[{writer}][s{s}] (no full short)")
    f.update(f"margin position[{writer}][s{s}]", to_zero=True)
    # the terms word carries the collateral token and the settlement word (created with the
    # series) carries is_put and decimals: two series words, no product word (3d4d818)
    f.read(f"series[s{s}] terms (quote, expiry, collateral token)")
    if not cached:
        f.read("Clearinghouse.oracle")
        f.account("Oracle", "STATICCALL expiry price:")
        f.read("Oracle.expiry[WETH][expiry] (price|final at)")
        f.read(f"Ledger.book[s{s}] (full open interest)")
        f.log("SeriesSettlementPrice", 2, 2)
    f.update(f"settlement[s{s}] (price|payout pool|put|decimals)")
    f.update(f"margin book[s{s}]")
    f.log("Settled", 3, 4)
    f.account("Ledger", "CALL")
    return f.update(f"Ledger.free[{writer}][USDC] (returned)")


def floor_settle(data: bytes, s: int) -> Floor:
    """Clearinghouse.settle of one margined short, the series' price already cached."""
    return settle_margined(Floor.of(data).warm("Clearinghouse"), "writer", s, cached=True)


def floor_engine_settle(data: bytes, s: int) -> Floor:
    """MarginEngine.settle of an account's one listed series, the series' first touch."""
    f = Floor.of(data).warm("MarginEngine")
    f.read(f"series[s{s}] product id")
    f.read("list[victim] length")
    f.read(f"list[victim][{s}]")
    engine_to_clearinghouse(f)
    return settle_margined(f, "victim", s, cached=False)


def main() -> int:
    """Deploy, run the scenario, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--explain", action="store_true", help="print each floor's items")
    parser.add_argument("--breakdown", action="store_true", help="trace and attribute gas")
    args = parser.parse_args()
    started = time.monotonic()
    rows: list[tuple[str, int, Floor]] = []
    receipts: list[Any] = []

    with start_node(accounts=8, steps_tracing=args.breakdown) as node:
        admin, guardian, fee_recipient, keeper, lp, writer, victim, _ = node.accounts[:8]
        sys_ = deploy_system(node, admin, guardian, fee_recipient)
        ledger, ch, usdc, weth, oracle = sys_.ledger, sys_.ch, sys_.usdc, sys_.weth, sys_.oracle
        product = ch.set_product(weth.address, usdc.address, usdc.address, True, sender=admin)
        engine = MarginEngineBinding.deploy(node.web3, ch.address, admin, sender=admin)
        sys_.engine = engine
        ch.grant_role(ch.view("MARGIN_ROLE"), engine.address, sender=admin)
        engine.set_margin_params(product, PARAMS, sender=admin)
        engine.set_auction_params(AUCTION, sender=admin)

        def push_spot(price: int) -> None:
            now = node.timestamp()
            reports = [
                sign_spot(k, node.chain_id, oracle.address, weth.address, price, now)
                for k in REPORTER_KEYS[:QUORUM]
            ]
            oracle.send_fn("report_spot", keeper, asset=weth.address, reports=ordered(reports))

        push_spot(SPOT)
        expiry = ids.next_expiry(node.timestamp(), 7)
        sids = [
            ch.create_series(product, (2_000 + 100 * i) * ONE, expiry, sender=keeper)
            for i in range(SERIES + 1)
        ]
        for who in (lp, writer, victim, keeper):
            usdc.mint(who, 10**15, sender=admin)
            usdc.approve(ledger.address, MAX_UINT, sender=who)
            ledger.deposit(usdc.address, 10**14, who, sender=who)
        # the lp opens every series so the benchmark's writes meet nonzero books
        for sid in sids:
            ledger.write(sid, ONE, lp, sender=lp)

        def measure(action: str, receipt: Any, floor: Any) -> None:
            rows.append((action, receipt["gasUsed"], floor(input_of(node, receipt))))
            receipts.append(receipt)

        def later() -> None:
            """Mine a block one second on: the next transaction is in a later second than the
            last one, as a user's next action is (in the same second the engine's clock word
            would be stored unchanged, 2,800 gas less, and the figure would depend on timing)."""
            node.mine_at(node.timestamp() + 1)

        for n, sid in enumerate(sids[:SERIES], start=1):
            if n in (1, 8, 16):
                later()
            receipt = engine.write_margined(sid, ONE, 2_000 * USDC, writer, sender=writer)
            if n in (1, 8, 16):
                measure(
                    f"write_margined ({n} series listed)", receipt, lambda d, n=n: floor_write(d, n)
                )
                later()
                measure(
                    f"remove_collateral ({n} series listed)",
                    engine.remove_collateral(sid, USDC, sender=writer),
                    lambda d, n=n: floor_remove(d, n),
                )

        # liquidation: one put written at its initial requirement, spot down 20%
        victim_sid = sids[SERIES]
        need = 700 * USDC
        while True:
            call = engine.fn(
                "write_margined",
                series_id=victim_sid,
                amount=ONE,
                recipient=victim,
                collateral=need,
            )
            try:
                call.call({"from": victim})
                break
            except Exception:  # below initial margin: add 10 USDC and retry
                need += 10 * USDC
        engine.write_margined(victim_sid, ONE, need, victim, sender=victim)
        node.mine_at(node.timestamp() + 60)
        push_spot(SPOT * 8 // 10)
        if not engine.is_liquidatable(victim, usdc.address):
            raise AssertionError("scenario not as the floor assumes: victim not liquidatable")
        measure(
            "liquidate (1 series, restores)",
            engine.liquidate(victim, usdc.address, victim_sid, 10 * ONE, sender=keeper),
            lambda d: floor_liquidate(d, SERIES + 1),
        )
        if engine.is_liquidatable(victim, usdc.address):
            raise AssertionError("scenario not as the floor assumes: victim not restored")

        # settlement: expiry price 2,400 (every put in the money, each margined short's own
        # collateral covers it); the lp's full short caches the 16th series' price first
        node.mine_at(expiry + LOCKING_PERIOD)
        reports = [
            sign_expiry(k, node.chain_id, oracle.address, weth.address, expiry, SPOT * 8 // 10)
            for k in REPORTER_KEYS[:QUORUM]
        ]
        oracle.send_fn(
            "report_expiry", keeper, asset=weth.address, expiry=expiry, reports=ordered(reports)
        )
        node.mine_at(expiry + LOCKING_PERIOD + DISPUTE_PERIOD + 1)
        last = sids[SERIES - 1]
        ch.settle(last, lp, sender=keeper)
        measure(
            "settle margined short (Clearinghouse.settle, price cached)",
            ch.settle(last, writer, sender=keeper),
            lambda d: floor_settle(d, SERIES),
        )
        measure(
            "settle margined short (MarginEngine.settle, first touch)",
            engine.send_fn("settle", keeper, account=victim, series_id=victim_sid),
            lambda d: floor_engine_settle(d, SERIES + 1),
        )
        if ch.margin_position(victim, victim_sid).short != 0:
            raise AssertionError("scenario not as the floor assumes: victim's short unsettled")
        if args.breakdown:
            print("per contract and opcode class (own cost; CALL excludes the callee):")
            for (action, _, _), receipt in zip(rows, receipts, strict=True):
                print_breakdown(action, receipt, node, sys_.names())

    print(contracts_state())
    print(f"{'action':<58} {'gasUsed':>9} {'floor':>9} {'ratio':>6} {'v1 doc':>9}")
    for action, used, floor in rows:
        old = V1_DOC.get(action)
        old_text = f"{old:>9,}" if old is not None else f"{'-':>9}"
        flag = "  MORE THAN V1" if old is not None and used > old else ""
        if used < floor.total:  # a floor is a lower bound: below it, the model is wrong
            flag += "  BELOW THE FLOOR: floor model wrong"
        print(
            f"{action:<58} {used:>9,} {floor.total:>9,} {used / floor.total:>5.2f}x"
            f" {old_text}{flag}"
        )
        if args.explain:
            print(floor.explain())
    print(f"\n{time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
