"""Gas of the core actions of the v2 system on anvil, each beside its floor and v1's figure.

Deploys the contracts-v2 system through the SDK (`strikeline.bindings`: the Oracle, the
Ledger and its Clearinghouse with `ClearinghouseBinding.deploy_with_ledger`, MockERC20 USDC
and WETH, a call and a put product) on a fresh anvil node (hardfork Prague), drives one
scenario and reads `gasUsed` from each receipt of:

- Ledger: deposit (first and repeat), withdraw, write (call and put, first and repeat),
  burn, ERC-1155 safeTransferFrom (to a holder and to a new holder);
- Clearinghouse: redeem, settle, settle_many x10 (the first touch of the series after
  expiry, which caches the price) and redeem_many x10.

After the table it prints `create_series` (not a core action): a series' settlement and
redemption words are created with it, so the first settle or redeem after expiry updates
them instead of creating them. The floors keep the reference layout below (the settlement
word created at the first touch; terms, product id and product read for every position).

Each figure is printed beside (1) its **floor** and the ratio to it, goal <= 1.30x, and
(2) the figure docs/gas.md gives for contracts v1, goal: not more expensive (issue 9);
burn and the transfer, which docs/gas.md lacks, beside v1 measured in this scenario (*).
Relayer trading (match_orders, fill) is measured by bench_ledger_gas.py, not here.

The floor (benchmarks/gas_common.py) is what any implementation of the same behaviour has
to pay: 21,000 + the calldata of the actual input + the cold/warm SLOADs, SSTOREs, calls
and logs the behaviour must make, costed by EIP-2929/2200/3529 as the EVM does (a slot or
account touched a second time is warm). Storage is counted in a tight layout, as in
docs/gas.md: a series is two slots (product id; terms), a product one word, a series'
book one word (open interest | collateral), its settlement one word (price | payout
pool), an account's position one word (long | short), a balance one slot. The v2 split is
taken as given: the Clearinghouse settles, the Ledger holds positions and tokens, so a
redeem or settle pays one cold call into the Ledger; the ERC-1155 receiver check is an
EXTCODESIZE of the recipient. What is not in a floor: code (ABI decoding, mapping keys,
memory, jumps), and bookkeeping beyond the behaviour (the Clearinghouse's series cash and
outstanding-longs counters, the margin-book check) -- the ratio shows those.
`--explain` prints each floor item by item, `--breakdown` traces each measured
transaction and prints its gas per contract and opcode class, `--trace ACTION` (an action's
name or its start, e.g. `settle_many`) prints one action's gas by contract source line.

Usage: python benchmarks/bench_core_gas.py [--explain] [--breakdown] [--trace ACTION]
Always exits 0 once the figures are printed: a missed goal is a finding, not a failure.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from anvil_node import BenchNode, start_node
from gas_common import (
    DISPUTE_PERIOD,
    GOAL,
    LOCKING_PERIOD,
    MAX_UINT,
    QUORUM,
    REPORTER_KEYS,
    Floor,
    contracts_state,
    deploy_system,
    input_of,
    print_breakdown,
)

from strikeline import ids
from strikeline.oracle_reports import ordered, sign_expiry

STRIKE = 3_000 * 10**8
EXPIRY_PRICE = 3_600 * 10**8  # the call ends in the money, the put out of it
ONE = 10**8  # one contract
BATCH = 10

# docs/gas.md, "Figures" (contracts v1: Clearinghouse + OptionToken, 2026-12-06).
V1_DOC = {
    "deposit (first of token by account)": 68_107,
    "deposit (repeat)": 51_007,
    "withdraw (partial)": 45_462,
    "write call (first of series by writer)": 104_668,
    "write call (repeat)": 70_468,
    "write put (first of series by writer)": 104_747,
    "write put (repeat)": 70_547,
    "redeem": 74_639,
    "settle": 46_604,
    f"settle_many x{BATCH} (first touch)": 200_697,
    f"redeem_many x{BATCH}": 374_267,
}
# docs/gas.md has no v1 figure for these: measured on contracts v1 (commit 8691a7c^, the
# last with v1 as the main layout) in this scenario, for reference (marked *)
V1_MEASURED = {
    "burn (part of own longs and short)": 64_232,
    "ERC-1155 transfer (to a holder)": 42_539,
    "ERC-1155 transfer (to a new holder)": 59_639,
}


# ---------------------------------------------------------------------------
# Floors. Slot names: contract.variable[keys]; "tok" is the ERC-20 of the action.
# ---------------------------------------------------------------------------


def floor_deposit(data: bytes, first: bool) -> Floor:
    """Deposit of MockERC20 (infinite allowance, not written), crediting what arrived."""
    f = Floor.of(data).warm("Ledger")
    f.read("Ledger.token_unit[tok] (accepted?)")
    f.account("tok", "STATICCALL balanceOf(Ledger) before:")
    f.read("tok.balanceOf[Ledger]")
    f.account("tok", "CALL transferFrom:")
    f.read("tok.allowance[account][Ledger] (infinite, not written)")
    f.update("tok.balanceOf[account]")
    f.update("tok.balanceOf[Ledger]")
    f.log("tok Transfer", 3, 1)
    f.account("tok", "STATICCALL balanceOf(Ledger) after:")
    f.read("tok.balanceOf[Ledger]")
    f.update("Ledger.free[account][tok]", was_zero=first)
    return f.log("Deposit", 3, 2)


def floor_withdraw(data: bytes) -> Floor:
    """Partial withdraw to a wallet that still holds some of the token."""
    f = Floor.of(data).warm("Ledger")
    f.update("Ledger.free[account][tok]")
    f.log("Withdraw", 3, 2)
    f.account("tok", "CALL transfer:")
    f.update("tok.balanceOf[Ledger]")
    f.update("tok.balanceOf[recipient]")
    return f.log("tok Transfer", 3, 1)


def floor_write(data: bytes, first: bool) -> Floor:
    """Write into a series with open interest, the longs to another address; `first`: the
    writer has no position and the recipient no long in the series yet."""
    f = Floor.of(data).warm("Ledger")
    f.read("Ledger.config (paused flag)")
    f.read("Ledger.series[id] terms (strike|expiry)")
    f.read("Ledger.series[id] product id")
    f.read("Ledger.product[pid] (collateral|is_put|enabled|decimals)")
    f.update("Ledger.free[writer][tok]")
    f.update("Ledger.position[writer][id] (long|short)", was_zero=first)
    f.update("Ledger.book[id] (open interest|collateral)")
    f.log("Written", 3, 3)
    f.update("Ledger.position[recipient][id] (long|short)", was_zero=first)
    f.account("recipient", "EXTCODESIZE (ERC-1155 receiver check):")
    return f.log("TransferSingle", 4, 2)


def floor_burn(data: bytes) -> Floor:
    """Burn part of the caller's longs against its own short (one position word)."""
    f = Floor.of(data).warm("Ledger")
    f.read("Ledger.series[id] terms (not expired)")
    f.read("Ledger.series[id] product id")
    f.read("Ledger.product[pid]")
    f.update("Ledger.position[writer][id] (long|short)")
    f.update("Ledger.free[writer][tok]")
    f.update("Ledger.book[id] (open interest|collateral)")
    f.log("Burned", 3, 2)
    return f.log("TransferSingle", 4, 2)


def floor_transfer(data: bytes, first: bool) -> Floor:
    """safeTransferFrom by the owner to an EOA; `first`: the recipient holds none yet."""
    f = Floor.of(data).warm("Ledger")
    f.update("Ledger.position[owner][id]")
    f.update("Ledger.position[to][id]", was_zero=first)
    f.log("TransferSingle", 4, 2)
    return f.account("to", "EXTCODESIZE (ERC-1155 receiver check):")


def _series_reads(f: Floor) -> Floor:
    f.read("Clearinghouse.series[id] terms")
    f.read("Clearinghouse.series[id] product id")
    return f.read("Clearinghouse.product[pid]")


def _redeem_one(f: Floor, holder: str) -> Floor:
    _series_reads(f)
    f.update("Clearinghouse.settlement[id] (price|payout pool)")
    f.account("Ledger", "CALL")
    f.update(f"Ledger.position[{holder}][id]", to_zero=True)
    f.update(f"Ledger.free[{holder}][tok] (first payout)", was_zero=True)
    f.log("Redeemed", 3, 3)
    return f.log("TransferSingle", 4, 2)


def floor_redeem(data: bytes) -> Floor:
    """Redeem after the price is cached: the holder's whole long, its first payout."""
    return _redeem_one(Floor.of(data).warm("Clearinghouse"), "holder")


def floor_redeem_many(data: bytes, n: int) -> Floor:
    """n holders of one series whose price is already cached."""
    f = Floor.of(data).warm("Clearinghouse")
    for i in range(n):
        _redeem_one(f, f"holder{i}")
    return f


def _settle_one(f: Floor, writer: str) -> Floor:
    f.account("Ledger", "CALL")
    f.update(f"Ledger.position[{writer}][id] (short)", to_zero=True)
    _series_reads(f)
    f.read("Clearinghouse.settlement[id] (cached price)")
    f.update("Ledger.book[id] (open interest|collateral)")
    f.update(f"Ledger.free[{writer}][tok]")
    return f.log("Settled", 3, 4)


def floor_settle(data: bytes) -> Floor:
    """Settle after the price is cached; the writer keeps a free balance."""
    return _settle_one(Floor.of(data).warm("Clearinghouse"), "writer")


def floor_settle_many(data: bytes, n: int) -> Floor:
    """n writers of one series, in the first transaction that touches it after expiry: it
    reads the Oracle and caches the price and the payout pool."""
    f = Floor.of(data).warm("Clearinghouse")
    _series_reads(f)
    f.read("Clearinghouse.oracle")
    f.account("Oracle", "STATICCALL")
    f.read("Oracle.expiry[asset][expiry] (price|final at, one word)")
    f.account("Ledger", "STATICCALL book:")
    f.read("Ledger.book[id] (open interest|collateral)")
    f.update("Clearinghouse.settlement[id] (price|payout pool)", was_zero=True)
    f.log("SeriesSettlementPrice", 2, 2)
    for i in range(n):
        _settle_one(f, f"writer{i}")
    return f


# ---------------------------------------------------------------------------
# Tracing by source line
# ---------------------------------------------------------------------------


def pc_lines(name: str) -> dict[int, int]:
    """A contract's runtime pc -> source line map (the compiler's `pc_pos_map`)."""
    import json
    import subprocess

    from strikeline.bindings import CONTRACTS_DIR, source_path, vyper_executable

    out = subprocess.run(
        [vyper_executable(), "-f", "source_map_runtime", str(source_path(name))],
        capture_output=True,
        text=True,
        check=True,
        cwd=CONTRACTS_DIR,
    ).stdout
    return {int(pc): pos[0] for pc, pos in json.loads(out)["pc_pos_map"].items()}


def print_trace(label: str, receipt: Any, node: BenchNode, names: dict[str, str]) -> None:
    """One transaction's execution gas by (contract, source line), largest first: each step
    counts at the line of the nearest mapped pc at or before it; a call's own cost (without
    its callee's) counts at the call."""
    import bisect

    from strikeline.bindings import source_path

    tx = node.web3.eth.get_transaction(receipt["transactionHash"])
    logs = node.trace(receipt["transactionHash"])["structLogs"]
    maps = {n: pc_lines(n) for n in set(names.values()) if n not in ("USDC", "WETH")}
    keys = {n: sorted(m) for n, m in maps.items()}
    sources = {n: source_path(n).read_text().splitlines() for n in maps}
    n = len(logs)
    spent = [0] * n  # gas from a step to the next step at its depth (its callee included)
    for i, step in enumerate(logs):
        j = i + 1
        while j < n and logs[j]["depth"] > step["depth"]:
            j += 1
        ends_here = j < n and logs[j]["depth"] == step["depth"]
        spent[i] = step["gas"] - logs[j]["gas"] if ends_here else step["gasCost"]
    frames = [names.get(tx["to"].lower(), tx["to"])]
    by_line: dict[tuple[str, int], int] = {}
    for i, step in enumerate(logs):
        d = step["depth"]
        del frames[d:]
        cost = step["gasCost"]
        if i + 1 < n and logs[i + 1]["depth"] > d:
            cost = spent[i]
            for k in range(i + 1, n):
                if logs[k]["depth"] <= d:
                    break
                if logs[k]["depth"] == d + 1:
                    cost -= spent[k]
            target = "0x" + step["stack"][-2][2:].rjust(40, "0")[-40:]
            frames.append(names.get(target.lower(), target))
        contract = frames[d - 1]
        line = 0
        if contract in maps:
            j = bisect.bisect_right(keys[contract], step["pc"]) - 1
            line = maps[contract][keys[contract][j]] if j >= 0 else 0
        by_line[(contract, line)] = by_line.get((contract, line), 0) + cost
    total = sum(by_line.values())
    print(f"\n{label}: execution gas by source line (total {total:,}; top 45)")
    for (contract, line), gas in sorted(by_line.items(), key=lambda kv: -kv[1])[:45]:
        text = sources.get(contract, [])
        shown = text[line - 1].strip()[:72] if 0 < line <= len(text) else "?"
        print(f"  {contract:<13} {line:>5} {gas:>8,}  {shown}")


# ---------------------------------------------------------------------------
# Scenario
# ---------------------------------------------------------------------------


@dataclass
class Measurement:
    """One measured transaction, its floor and how many positions it handled."""

    action: str
    receipt: Any
    floor: Floor
    per: int = 1


def main() -> int:
    """Deploy, run the scenario, print the table (and items or traces if asked)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--explain", action="store_true", help="print each floor's items")
    parser.add_argument("--breakdown", action="store_true", help="trace and attribute gas")
    parser.add_argument("--trace", metavar="ACTION", help="gas by source line of one action")
    args = parser.parse_args()
    started = time.monotonic()
    results: list[Measurement] = []

    tracing = args.breakdown or bool(args.trace)
    with start_node(accounts=9 + 2 * BATCH, steps_tracing=tracing) as node:
        acct = node.accounts
        admin, guardian, fee_recipient, keeper, lp, writer, holder, other, newcomer = acct[:9]
        writers, holders = acct[9 : 9 + BATCH], acct[9 + BATCH : 9 + 2 * BATCH]

        sys_ = deploy_system(node, admin, guardian, fee_recipient)
        ledger, ch, weth, usdc = sys_.ledger, sys_.ch, sys_.weth, sys_.usdc
        products = {
            is_put: ch.set_product(
                weth.address, usdc.address, (usdc if is_put else weth).address, is_put, sender=admin
            )
            for is_put in (False, True)
        }
        expiry = ids.next_expiry(node.timestamp(), 7)
        series = {
            name: ch.create_series(
                products[is_put], STRIKE + (ONE if name == "batch" else 0), expiry, sender=keeper
            )
            for name, is_put in (("call", False), ("put", True), ("batch", False))
        }

        # not a core action: printed after the table, since the series' settlement words
        # are created here (so that fixing the price at its first touch updates them)
        created = ch.send_fn(
            "create_series",
            keeper,
            product_id=products[False],
            strike=STRIKE + 2 * ONE,
            expiry=expiry,
        )

        def fund(who: str, tok: Any, minted: int, deposited: int) -> None:
            tok.mint(who, minted, sender=admin)
            tok.approve(ledger.address, MAX_UINT, sender=who)
            if deposited:
                ledger.deposit(tok.address, deposited, who, sender=who)

        def measure(
            action: str, receipt: Any, make_floor: Callable[[bytes], Floor], per: int = 1
        ) -> None:
            results.append(Measurement(action, receipt, make_floor(input_of(node, receipt)), per))

        def expect(ok: bool, what: str) -> None:
            if not ok:
                raise AssertionError(f"scenario not as the floor assumes: {what}")

        free = ledger.free_collateral
        # the lp makes the Ledger's token balances and every series' book nonzero, and
        # holds longs of the call (the recipient of a transfer that already holds some)
        fund(lp, weth, 100 * 10**18, 50 * 10**18)
        fund(lp, usdc, 10**12, 10**11)
        for name in ("call", "put", "batch"):
            ledger.write(series[name], ONE, lp, sender=lp)

        # --- accounts ------------------------------------------------------
        fund(writer, weth, 100 * 10**18, 0)
        expect(free(writer, weth.address) == 0, "writer has no free WETH")
        first, repeat = (
            ledger.deposit(weth.address, amount, writer, sender=writer)
            for amount in (10 * 10**18, 5 * 10**18)
        )
        measure("deposit (first of token by account)", first, lambda d: floor_deposit(d, True))
        measure("deposit (repeat)", repeat, lambda d: floor_deposit(d, False))
        measure(
            "withdraw (partial)",
            ledger.withdraw(weth.address, 10**18, writer, sender=writer),
            floor_withdraw,
        )
        expect(weth.balance_of(writer) > 0, "writer's wallet keeps WETH")

        # --- writing, burning, transferring ----------------------------------
        fund(writer, usdc, 10**11, 2 * 10**10)
        for name in ("call", "put"):
            expect(
                ledger.position(writer, series[name]) == (0, 0)
                and ledger.position(holder, series[name]) == (0, 0),
                "no position of the writer or the holder yet",
            )
            measure(
                f"write {name} (first of series by writer)",
                ledger.write(series[name], ONE, holder, sender=writer),
                lambda d: floor_write(d, True),
            )
            measure(
                f"write {name} (repeat)",
                ledger.write(series[name], ONE, holder, sender=writer),
                lambda d: floor_write(d, False),
            )
        expect(free(writer, weth.address) > 0, "writer keeps free WETH")
        # burn: the writer holds longs of its own put and closes part of them
        ledger.write(series["put"], 2 * ONE, writer, sender=writer)
        measure(
            "burn (part of own longs and short)",
            ledger.burn(series["put"], ONE, sender=writer),
            floor_burn,
        )
        expect(ledger.position(writer, series["put"]).long == ONE, "writer keeps a long")
        # ERC-1155: the holder moves call longs to the lp (holds some) and to a newcomer
        expect(ledger.position(newcomer, series["call"]) == (0, 0), "newcomer holds nothing")
        transfer = ledger.safe_transfer_from
        measure(
            "ERC-1155 transfer (to a holder)",
            transfer(holder, lp, series["call"], ONE // 2, sender=holder),
            lambda d: floor_transfer(d, False),
        )
        measure(
            "ERC-1155 transfer (to a new holder)",
            transfer(holder, newcomer, series["call"], ONE // 4, sender=holder),
            lambda d: floor_transfer(d, True),
        )
        for w, h in zip(writers, holders, strict=True):
            fund(w, weth, 10 * 10**18, 5 * 10**18)
            ledger.write(series["batch"], ONE, h, sender=w)
            expect(
                free(w, weth.address) > 0 and free(h, weth.address) == 0,
                "batch writers keep free WETH, batch holders have none",
            )

        # --- expiry: two of three reporters sign, a keeper relays, the window passes --
        node.mine_at(expiry + LOCKING_PERIOD)
        reports = [
            sign_expiry(k, node.chain_id, sys_.oracle.address, weth.address, expiry, EXPIRY_PRICE)
            for k in REPORTER_KEYS[:QUORUM]
        ]
        sys_.oracle.send_fn(
            "report_expiry", keeper, asset=weth.address, expiry=expiry, reports=ordered(reports)
        )
        node.mine_at(expiry + LOCKING_PERIOD + DISPUTE_PERIOD + 1)

        # --- settlement ----------------------------------------------------
        ch.settle(series["call"], lp, sender=keeper)  # caches the price (not measured)
        expect(free(holder, weth.address) == 0, "holder has no free WETH")
        expect(ledger.position(holder, series["call"]).short == 0, "holder has no short")
        measure("redeem", ch.redeem(series["call"], holder, sender=keeper), floor_redeem)
        expect(ledger.position(writer, series["call"]).long == 0, "writer holds no call long")
        measure("settle", ch.settle(series["call"], writer, sender=keeper), floor_settle)
        expect(ch.series_state(series["batch"]).settlement_price == 0, "batch not yet priced")
        measure(
            f"settle_many x{BATCH} (first touch)",
            ch.settle_many([series["batch"]] * BATCH, writers, sender=keeper),
            lambda d: floor_settle_many(d, BATCH),
            per=BATCH,
        )
        measure(
            f"redeem_many x{BATCH}",
            ch.redeem_many([series["batch"]] * BATCH, holders, sender=keeper),
            lambda d: floor_redeem_many(d, BATCH),
            per=BATCH,
        )
        expect(
            all(ledger.position(h, series["batch"]) == (0, 0) for h in holders)
            and free(holders[0], weth.address) > 0,
            "every batch holder redeemed and paid",
        )

        # --- report --------------------------------------------------------
        print(contracts_state())
        head = f"{'action':<40} {'gasUsed':>9} {'floor':>9} {'ratio':>6} {'v1 doc':>9}"
        print(f"{head}  (goals: ratio <= {GOAL:.2f}x, gasUsed <= v1 doc)")
        for m in results:
            used, floor = m.receipt["gasUsed"], m.floor.total
            old = V1_DOC.get(m.action)
            flags = [] if used <= GOAL * floor else [f"OVER {GOAL:.2f}x FLOOR"]
            if used < floor:  # a floor is a lower bound: below it, the model is wrong
                flags.append("BELOW THE FLOOR: floor model wrong")
            if old is not None and used > old:
                flags.append("MORE THAN V1")
            measured = V1_MEASURED.get(m.action)
            if old is not None:
                old_text = f"{old:>9,} "
            elif measured is not None:
                old_text = f"{measured:>9,}*"
            else:
                old_text = f"{'-':>9} "
            note = f"   per position {used // m.per:,} / {floor // m.per:,}" if m.per > 1 else ""
            status = ", ".join(flags) or "ok"
            print(
                f"{m.action:<40} {used:>9,} {floor:>9,} {used / floor:>5.2f}x {old_text}"
                f" {status}{note}"
            )
            if args.explain:
                print(m.floor.explain())
        if args.breakdown:
            print("\nper contract and opcode class (own cost; CALL excludes the callee):")
            for m in results:
                print_breakdown(m.action, m.receipt, node, sys_.names())
        for m in results:
            if args.trace and m.action.startswith(args.trace):
                print_trace(m.action, m.receipt, node, sys_.names())
                break
        print(
            f"{'create_series (not a core action)':<40} {created['gasUsed']:>9,}"
            "   creates the series' settlement and redemption words too"
        )
    print("* not in docs/gas.md: contracts v1 measured in this scenario (8691a7c^)")
    over = sum(1 for m in results if m.receipt["gasUsed"] > GOAL * m.floor.total)
    dearer = sum(
        1 for m in results if m.action in V1_DOC and m.receipt["gasUsed"] > V1_DOC[m.action]
    )
    print(
        f"\n{len(results) - over} of {len(results)} actions within {GOAL:.2f}x of the floor; "
        f"{dearer} more expensive than v1 (docs/gas.md); {time.monotonic() - started:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
