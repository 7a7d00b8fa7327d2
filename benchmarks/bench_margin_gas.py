"""Gas of margin checks and of a liquidation on anvil, each beside a floor from its slots.

Deploys the system as bench_core_gas.py does, plus a MarginEngine with MARGIN_ROLE, the
docs/margin.md example parameters on the WETH/USDC put product and a fresh ETH spot. One
writer then margins 16 put series (one product, one expiry, strikes 2,000-3,500) and the
benchmark measures:

- `write_margined` when it lists the writer's 1st, 8th and 16th series;
- `remove_collateral` (a margin check that must pass) with 1, 8 and 16 series listed;
- `liquidate` of a second writer's only short after a 20% spot drop (restores the account).

The floor of an action is the cost of the storage it has to touch, laid out tightly, the
calls it has to make and the events it defines (see bench_core_gas.py for the model): for a
margin check, per listed series its list entry, position word, terms and product id, per
product its margin parameters and underlying, one Oracle read; then the collateral move.
The margin maths itself (about 3.6k gas per series per requirement, docs/margin.md) is code,
so it is not in the floor: the ratio shows how far the check is above pure storage cost.

Usage: python benchmarks/bench_margin_gas.py [--explain]
Always exits 0 once the figures are printed: a ratio is a finding, not a failure.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from anvil_node import start_node
from bench_core_gas import (
    COLD_ACCOUNT,
    MAX_UINT,
    QUORUM,
    REENTRANCY_LOCK,
    REPORTER_KEYS,
    SLOT_CREATE,
    SLOT_READ,
    SLOT_UPDATE,
    SSTORE_SET,
    WARM_ACCESS,
    Floor,
    deploy_core,
    intrinsic,
    log_cost,
)

from strikeline import ids
from strikeline.oracle_reports import ordered, sign_spot

ONE = 10**8
USDC = 10**6
SPOT = 3_000 * ONE
PARAMS = (1_500, 5_000, 1_000, 6_000)
AUCTION = (500, 3_000, 3_600)
SERIES = 16

# MarginUpdated(account, token, series | amount, collateral, added)
LOG_MARGIN_UPDATED = log_cost(4, 3)
LOG_SERIES_LISTED = log_cost(4, 0)  # SeriesListed(account, token, series)
LOG_ERC1155_SINGLE = log_cost(4, 2)
LOG_LIQUIDATED = log_cost(4, 8)  # Liquidated(account, liquidator, series | 8 words)
LOG_MARGIN_LIQUIDATED = log_cost(4, 3)
LOG_AUCTION = log_cost(3, 1)  # LiquidationStarted(account, token | started)
LOG_CLEARED = log_cost(3, 0)


def margin_reads(floor: Floor, listed: int, products: int = 1) -> Floor:
    """What an account margin check must read for `listed` series of `products` products."""
    floor.add(f"engine: list length + {listed} entries", (1 + listed) * SLOT_READ)
    floor.add(f"{listed} x position word (short|flag|collateral)", listed * SLOT_READ)
    floor.add(f"{listed} x series terms (strike|expiry)", listed * SLOT_READ)
    floor.add(f"{listed} x series product id", listed * SLOT_READ)
    floor.add(
        f"{products} x margin params (1 slot) + underlying|is_put (1 slot)",
        products * 2 * SLOT_READ,
    )
    floor.add(
        "Oracle: STATICCALL (cold account) + spot price|timestamp (1 slot)",
        COLD_ACCOUNT + SLOT_READ,
    )
    return floor


def custody(floor: Floor) -> Floor:
    """The engine's call into the Clearinghouse and its role check."""
    floor.add("CALL clearinghouse (cold account) + MARGIN_ROLE slot", COLD_ACCOUNT + SLOT_READ)
    return floor.add("reentrancy locks (engine, clearinghouse)", 2 * REENTRANCY_LOCK)


def floor_write(data: bytes, listed: int) -> Floor:
    """write_margined of a new series for a writer that then lists `listed` series."""
    f = custody(intrinsic(data))
    f.add("paused flag", SLOT_READ)
    f.add("product word (collateral|is_put|enabled|decimals)", SLOT_READ)
    f.add("engine: series cache (terms, product, underlying, token) zero->nonzero", 4 * SLOT_CREATE)
    f.add("engine: new list entry + length", SSTORE_SET + SLOT_UPDATE - SLOT_READ)
    f.add("position zero->nonzero, book (OI|collateral) zero->nonzero", 2 * SLOT_CREATE)
    f.add("margin book zero->nonzero, free collateral nonzero->nonzero", SLOT_CREATE + SLOT_UPDATE)
    f.add(
        "mint: OptionToken CALL (cold) + balance zero->nonzero + supply",
        COLD_ACCOUNT + 2 * SLOT_CREATE,
    )
    f.add(
        "SeriesListed, MarginUpdated, TransferSingle",
        LOG_SERIES_LISTED + LOG_MARGIN_UPDATED + LOG_ERC1155_SINGLE,
    )
    return margin_reads(f, listed)


def floor_remove(data: bytes, listed: int) -> Floor:
    """remove_collateral of part of one series' collateral with `listed` series listed."""
    f = custody(intrinsic(data))
    f.add("product word (token check)", SLOT_READ)
    f.add("position word, book, free collateral nonzero->nonzero", 3 * SLOT_UPDATE)
    f.add("MarginUpdated", LOG_MARGIN_UPDATED)
    f = margin_reads(f, listed)
    f.add("auction clock (read)", SLOT_READ)
    return f


def floor_liquidate(data: bytes) -> Floor:
    """liquidate of an account's only short, restoring it; clock set and cleared in the tx."""
    f = custody(intrinsic(data))
    f.add(
        "paused flag, product word, series terms on the clearinghouse (warm)",
        SLOT_READ + 2 * WARM_ACCESS,
    )
    f = margin_reads(f, 1)
    f.add(
        "auction params (1 slot) + clock set and cleared in the tx (net)",
        SLOT_READ + SLOT_READ + 2 * WARM_ACCESS,
    )
    f.add("insurance fund (read)", SLOT_READ)
    f.add("account: position, book, margin book nonzero->nonzero", 3 * SLOT_UPDATE)
    f.add("account free (paid out through it)", SLOT_UPDATE)
    f.add("liquidator: position zero->nonzero, free nonzero->nonzero", SLOT_CREATE + SLOT_UPDATE)
    f.add(
        "Liquidated, MarginLiquidated, MarginUpdated, clock events",
        LOG_LIQUIDATED + LOG_MARGIN_LIQUIDATED + LOG_MARGIN_UPDATED + LOG_AUCTION + LOG_CLEARED,
    )
    return f


def main() -> int:
    """Deploy, run the scenario, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--explain", action="store_true", help="print each floor's items")
    args = parser.parse_args()
    started = time.monotonic()
    rows: list[tuple[str, int, Floor]] = []

    with start_node(accounts=8) as node:
        admin, guardian, fee_recipient, keeper, lp, writer, victim, _ = node.accounts[:8]
        send = node.transact
        oracle, _, ch = deploy_core(node, admin, guardian, fee_recipient)
        usdc = node.deploy("MockERC20", "USD Coin", "USDC", 6, sender=admin)
        weth = node.deploy("MockERC20", "Wrapped Ether", "WETH", 18, sender=admin)
        fn = ch.functions.set_product(weth.address, usdc.address, usdc.address, True, True)
        product = fn.call({"from": admin})
        send(fn, admin)
        engine = node.deploy("MarginEngine", ch.address, admin, sender=admin)
        send(ch.functions.grantRole(ch.functions.MARGIN_ROLE().call(), engine.address), admin)
        send(engine.functions.set_margin_params(product, PARAMS), admin)
        send(engine.functions.set_auction_params(AUCTION), admin)

        def push_spot(price: int) -> None:
            now = node.timestamp()
            reports = [
                sign_spot(k, node.chain_id, oracle.address, weth.address, price, now)
                for k in REPORTER_KEYS[:QUORUM]
            ]
            send(oracle.functions.report_spot(weth.address, ordered(reports)), keeper)

        push_spot(SPOT)
        expiry = ids.next_expiry(node.timestamp(), 7)
        sids = []
        for i in range(SERIES + 1):
            fn = ch.functions.create_series(product, (2_000 + 100 * i) * ONE, expiry)
            sids.append(fn.call())
            send(fn, keeper)
        for who in (lp, writer, victim, keeper):
            send(usdc.functions.mint(who, 10**15), admin)
            send(usdc.functions.approve(ch.address, MAX_UINT), who)
            send(ch.functions.deposit(usdc.address, 10**14, who), who)
        # the lp opens every series so the benchmark's writes meet nonzero books
        for sid in sids:
            send(ch.functions.write(sid, ONE, lp), lp)

        def measure(action: str, call: Any, sender: str, floor) -> None:
            receipt = send(call, sender)
            data = bytes(node.web3.eth.get_transaction(receipt["transactionHash"])["input"])
            rows.append((action, receipt["gasUsed"], floor(data)))

        for n, sid in enumerate(sids[:SERIES], start=1):
            call = engine.functions.write_margined(sid, ONE, writer, 2_000 * USDC)
            if n in (1, 8, 16):
                measure(
                    f"write_margined ({n} series listed)",
                    call,
                    writer,
                    lambda d, n=n: floor_write(d, n),
                )
                measure(
                    f"remove_collateral ({n} series listed)",
                    engine.functions.remove_collateral(sid, USDC),
                    writer,
                    lambda d, n=n: floor_remove(d, n),
                )
            else:
                send(call, writer)

        # liquidation: one put written at its initial requirement, spot down 20%
        victim_sid = sids[SERIES]
        need = 700 * USDC
        while True:
            try:
                call = engine.functions.write_margined(victim_sid, ONE, victim, need)
                call.call({"from": victim})
                break
            except Exception:  # below initial margin: add 10 USDC and retry
                need += 10 * USDC
        send(engine.functions.write_margined(victim_sid, ONE, victim, need), victim)
        node.mine_at(node.timestamp() + 60)
        push_spot(SPOT * 8 // 10)
        if not engine.functions.is_liquidatable(victim, usdc.address).call():
            raise AssertionError("scenario not as the floor assumes: victim not liquidatable")
        measure(
            "liquidate (1 series, restores)",
            engine.functions.liquidate(victim, usdc.address, victim_sid, 10 * ONE),
            keeper,
            floor_liquidate,
        )

    print(f"{'action':<40} {'gasUsed':>9} {'floor':>9} {'ratio':>6}")
    for action, used, floor in rows:
        print(f"{action:<40} {used:>9,} {floor.total:>9,} {used / floor.total:>5.2f}×")
        if args.explain:
            print(floor.explain())
    print(f"\n{time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
