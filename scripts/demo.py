"""`make demo`: a whole option lifecycle on a private anvil, printed step by step, then checked.

    .venv/bin/python scripts/demo.py

It starts its own anvil (from node_modules, on a free port), deploys through
`strikeline.deploy.deploy_system` with ape, whitelists the ETH/USD put through the timelock
(schedule, wait out the delay, execute), creates a call and a put series, has a writer deposit
in the Ledger and write them, hand the longs to a holder (ERC-1155 transfer on the Ledger), has
the holder sell one call back to the writer on the Ledger (EIP-712 orders signed by both and
posted to the relayer, so they name it as `sender`: a direct fill by anyone else is refused;
matched by the relayer: buy to close, premium and fees in USDC), lets reporters push signed
spot and expiry prices, has
the disputer correct the expiry price, settles everything with a keeper's batch calls, and has
everyone withdraw. It then checks that no token was created or lost and that the holder
received exactly the payoff `strikeline.units` computes plus the premium it sold for. It exits
0 when every check holds, else 1 with one line saying which check failed.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from strikeline import ids, units
from strikeline.bindings import LedgerBinding
from strikeline.chain import ChainError, anvil_binary, start_anvil, warp
from strikeline.deploy import (
    DEVNET_ACCOUNTS,
    DEVNET_REPORTERS,
    DEVNET_ROLES,
    Deployment,
    deploy_system,
    devnet_config,
    execute_call,
    schedule_call,
)
from strikeline.indexer import LedgerIndex
from strikeline.oracle_reports import ordered, sign_expiry, sign_spot
from strikeline.orders import Domain, Match, Order, settlement

if TYPE_CHECKING:
    from ape.api import AccountAPI
    from ape.managers import ChainManager

ROOT = Path(__file__).resolve().parents[1]

# the demo's market: strikes, amounts and prices carry 8 decimals
CALL_STRIKE = 3_000 * 10**8
PUT_STRIKE = 3_600 * 10**8
CALLS = 2 * 10**8  # two contracts, each on 1 WETH
PUTS = 3 * 10**8
SPOT_REPORTS = (3_390 * 10**8, 3_400 * 10**8, 3_410 * 10**8)
EXPIRY_REPORTS = (3_481 * 10**8, 3_482 * 10**8)  # one reporter's feed glitched upwards
EXPIRY_PRICE = 345_012_345_678  # the disputer's correction: 3,450.12345678
WRITER_WETH = 5 * 10**18
WRITER_USDC = 20_000 * 10**6
TRADED = 1 * 10**8  # the call the holder sells back to the writer on the Ledger
TRADE_PRICE = 480 * 10**6  # 480 USDC per contract


class DemoFailure(Exception):
    """A check of the demo failed; the message is the one line printed."""


def _prepare_environment() -> None:
    """Run from the checkout with the virtualenv's tools first on PATH (before importing ape).

    ape reads `ape-config.yaml` from the working directory and ape-vyper compiles with the
    `vyper` on PATH; the pydantic warning ape-vyper triggers at import is noise.
    """
    os.chdir(ROOT)
    venv_bin = str(Path(sys.executable).parent)
    os.environ["PATH"] = os.pathsep.join([venv_bin, os.environ.get("PATH", "")])
    warnings.filterwarnings(
        "ignore", message="Field 'import_remapping' has an incomplete definition"
    )


def amount_text(value: int, decimals: int) -> str:
    """An integer amount in base units as an exact decimal string, trailing zeros trimmed."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**decimals)
    text = f"{whole:,}"
    if frac:
        text += "." + f"{frac:0{decimals}d}".rstrip("0")
    return sign + text


def check(condition: bool, message: str) -> None:
    """Raise `DemoFailure(message)` unless `condition` holds."""
    if not condition:
        raise DemoFailure(message)


class Demo:
    """The lifecycle, one method per step, with named actors (devnet test accounts)."""

    def __init__(
        self, say: Callable[[str], None], chain: ChainManager, test: list[AccountAPI]
    ) -> None:
        self.say = say
        self.chain = chain
        self.test_accounts = test
        self.deployer: AccountAPI = test[DEVNET_ROLES["deployer"]]
        self.guardian: AccountAPI = test[DEVNET_ROLES["guardian"]]
        self.disputer: AccountAPI = test[DEVNET_ROLES["disputer"]]
        self.fee_recipient: AccountAPI = test[DEVNET_ROLES["fee_recipient"]]
        self.writer: AccountAPI = test[DEVNET_ROLES["writer"]]
        self.holder: AccountAPI = test[DEVNET_ROLES["holder"]]
        self.keeper: AccountAPI = test[DEVNET_ROLES["keeper"]]
        self.relayer: AccountAPI = test[DEVNET_ROLES["relayer"]]
        self.reporters: list[AccountAPI] = [test[i] for i in DEVNET_REPORTERS]
        self.d: Deployment
        self.expiry = 0
        self.call_id = 0
        self.put_id = 0
        self.supply_before: dict[str, int] = {}
        self.trade_debit = 0  # what the writer paid for the call it bought back
        self.trade_credit = 0  # what the holder received for it

    # ------------------------------------------------------------------ helpers

    def now(self) -> int:
        """The latest block's timestamp."""
        return int(self.chain.blocks.head.timestamp)

    def warp(self, timestamp: int) -> None:
        """Mine a block at `timestamp` (evm_setNextBlockTimestamp + evm_mine)."""
        warp(self.chain.provider.make_request, timestamp)
        check(self.now() == timestamp, f"chain did not move to {timestamp}")

    def participants(self) -> dict[str, str]:
        """Every address that may hold a demo token, by name."""
        d = self.d
        people = {
            "deployer": self.deployer,
            "guardian": self.guardian,
            "disputer": self.disputer,
            "fee recipient": self.fee_recipient,
            "writer": self.writer,
            "holder": self.holder,
            "keeper": self.keeper,
        }
        named = {name: account.address for name, account in people.items()}
        named.update({f"reporter {i + 1}": r.address for i, r in enumerate(self.reporters)})
        named.update(
            {
                "Timelock": d.timelock.address,
                "Ledger": d.ledger.address,
                "Clearinghouse": d.clearinghouse.address,
            }
        )
        return named

    def token_sums(self) -> dict[str, int]:
        """Per token: the sum of every participant's wallet balance."""
        d = self.d
        sums = {}
        for symbol, token in (("WETH", d.weth), ("USDC", d.usdc)):
            sums[symbol] = sum(token.balanceOf(a) for a in self.participants().values())
            check(
                sums[symbol] == token.totalSupply(),
                f"{symbol} held outside the demo's participants",
            )
        return sums

    def balances(self, title: str) -> None:
        """Print wallets, free and locked collateral and longs of the main actors."""
        d = self.d
        ledger = d.ledger
        self.say(f"   balances {title}:")
        rows = (
            ("writer", self.writer.address),
            ("holder", self.holder.address),
            ("fee recipient", self.fee_recipient.address),
            ("Ledger", ledger.address),
        )
        for name, address in rows:
            # locked: the collateral of the address's short in the call (WETH) and put (USDC)
            weth = (
                d.weth.balanceOf(address),
                ledger.free_collateral(address, d.weth),
                self.locked(address, self.call_id),
            )
            usdc = (
                d.usdc.balanceOf(address),
                ledger.free_collateral(address, d.usdc),
                self.locked(address, self.put_id),
            )
            longs = (
                ledger.balanceOf(address, self.call_id) if self.call_id else 0,
                ledger.balanceOf(address, self.put_id) if self.put_id else 0,
            )
            self.say(
                f"     {name:<14} wallet {amount_text(weth[0], 18):>22} WETH "
                f"{amount_text(usdc[0], 6):>15} USDC | free {amount_text(weth[1], 18)} WETH "
                f"{amount_text(usdc[1], 6)} USDC | locked {amount_text(weth[2], 18)} WETH "
                f"{amount_text(usdc[2], 6)} USDC | longs {amount_text(longs[0], 8)} C "
                f"{amount_text(longs[1], 8)} P"
            )

    def locked(self, address: str, series_id: int) -> int:
        """The collateral the Ledger locks for `address`'s short in `series_id`: exactly the
        full collateral of the short."""
        if not series_id:
            return 0
        short = self.d.ledger.positions(address, series_id).short
        return int(self.d.clearinghouse.collateral_required(series_id, short)) if short else 0

    def sign_spot(self, prices: tuple[int, ...]) -> list[tuple[int, int, bytes]]:
        """Each reporter signs one spot price at the latest block's time."""
        now = self.now()
        reports = [
            sign_spot(
                r.private_key,
                self.chain.chain_id,
                self.d.oracle.address,
                self.d.weth.address,
                price,
                now,
            )
            for r, price in zip(self.reporters, prices, strict=False)
        ]
        return ordered(reports)

    def sign_expiry(self, prices: tuple[int, ...]) -> list[tuple[int, int, bytes]]:
        """Reporters sign the expiry price of WETH for the demo's expiry."""
        reports = [
            sign_expiry(
                r.private_key,
                self.chain.chain_id,
                self.d.oracle.address,
                self.d.weth.address,
                self.expiry,
                price,
            )
            for r, price in zip(self.reporters, prices, strict=False)
        ]
        return ordered(reports)

    # ------------------------------------------------------------------ steps

    def deploy(self) -> None:
        """Step 1: deploy with only the call whitelisted; admin goes to the timelock."""
        self.say(
            "1. deploy (test tokens, Oracle 2-of-3, Ledger, Clearinghouse, MarginEngine, Timelock)"
        )
        config = devnet_config(self.test_accounts, products=("call",))
        self.d = deploy_system(self.deployer, config, log=lambda line: self.say(f"   {line}"))
        admin = self.d.clearinghouse.DEFAULT_ADMIN_ROLE()
        for governed in (self.d.clearinghouse, self.d.ledger):
            check(
                not governed.hasRole(admin, self.deployer),
                f"deployer still holds the admin role of {governed.address}",
            )
        check(
            self.d.ledger.clearinghouse() == self.d.clearinghouse.address,
            "the Ledger is not bound to the Clearinghouse",
        )

    def whitelist_put_through_timelock(self) -> None:
        """Step 2: schedule set_product(put), show it cannot run early, wait, execute."""
        d = self.d
        self.say("2. whitelist the ETH/USD put through the timelock")
        op = schedule_call(
            d.timelock, self.deployer, d.clearinghouse, "set_product", *d.product_args("put"), True
        )
        delay = op.ready_at - self.now()
        self.say(
            f"   proposer scheduled operation 0x{op.operation_id.hex()[:16]}…, ready in {delay} s"
        )
        check(
            not d.timelock.is_operation_ready(op.operation_id),
            "the timelock operation is ready before its delay",
        )
        self.warp(op.ready_at - 1)
        check(
            not d.timelock.is_operation_ready(op.operation_id),
            "the timelock operation is ready a second before its delay",
        )
        self.say("   one second before the delay ends it is still not ready to execute")
        self.warp(op.ready_at)
        execute_call(d.timelock, self.keeper, op)
        put = d.clearinghouse.products(d.product_id("put"))
        check(bool(put.enabled), "put product not enabled after the timelock executed")
        self.say(
            f"   chain time +{delay} s; executed by the keeper (open executor): "
            f"put product 0x{d.product_id('put').hex()} enabled"
        )

    def create_series(self) -> None:
        """Step 3: a call and a put at the 08:00 UTC expiry three days out."""
        d = self.d
        self.say("3. create series")
        self.expiry = ids.next_expiry(self.now(), days_ahead=3)
        for kind, strike in (("call", CALL_STRIKE), ("put", PUT_STRIKE)):
            d.clearinghouse.create_series(
                d.product_id(kind), strike, self.expiry, sender=self.writer
            )
            sid = ids.series_id(d.product_id(kind), strike, self.expiry)
            check(
                d.clearinghouse.series(sid).expiry == self.expiry,
                f"{kind} series {sid} not created",
            )
            if kind == "call":
                self.call_id = sid
            else:
                self.put_id = sid
            name = ids.instrument_name("ETH", strike, self.expiry, kind == "put")
            self.say(f"   {name:<18} id {hex(sid)[:18]}…")

    def write(self) -> None:
        """Step 4: the writer gets test tokens, deposits exactly the collateral, writes."""
        d = self.d
        ch, ledger = d.clearinghouse, d.ledger
        self.say("4. writer deposits in the Ledger and writes 2 calls and 3 puts")
        d.weth.mint(self.writer, WRITER_WETH, sender=self.deployer)
        d.usdc.mint(self.writer, WRITER_USDC, sender=self.deployer)
        self.supply_before = self.token_sums()
        for sid, amount, token in ((self.call_id, CALLS, d.weth), (self.put_id, PUTS, d.usdc)):
            need = ch.collateral_required(sid, amount)
            token.approve(ledger, need, sender=self.writer)
            ledger.deposit(token, need, self.writer, sender=self.writer)
            ledger.write(sid, amount, self.writer, sender=self.writer)
            check(
                tuple(ledger.book(sid)) == (amount, need),
                "locked collateral differs from collateral_required",
            )
            check(ledger.free_collateral(self.writer, token) == 0, "collateral left free")
            check(ledger.balanceOf(self.writer, sid) == amount, "longs not minted")
            self.say(
                f"   deposited and locked {amount_text(need, token.decimals())} "
                f"{token.symbol()} for {amount_text(amount, 8)} contracts"
            )
        self.balances("after writing")

    def transfer_longs(self) -> None:
        """Step 5: the writer hands its longs to the holder (ERC-1155 safeTransferFrom)."""
        d = self.d
        self.say("5. writer transfers the longs to the holder (ERC-1155 safeTransferFrom)")
        for sid, amount in ((self.call_id, CALLS), (self.put_id, PUTS)):
            d.ledger.safeTransferFrom(
                self.writer, self.holder, sid, amount, b"", sender=self.writer
            )
            check(d.ledger.balanceOf(self.holder, sid) == amount, "longs not transferred")
            check(d.ledger.positions(self.writer, sid).short == amount, "the short moved")
        self.balances("after the transfer")

    def trade_on_the_ledger(self) -> None:
        """Step 6: the holder sells one call back to the writer through signed orders."""
        from web3.exceptions import ContractLogicError

        d = self.d
        ledger = d.ledger
        self.say("6. the holder sells one call back to the writer on the Ledger")
        domain = Domain(self.chain.chain_id, ledger.address)
        check(domain.separator == bytes(ledger.domain_separator()), "EIP-712 domain mismatch")
        # both post to the relayer, so both orders name it as the only allowed sender
        fields = {
            "sender": self.relayer.address,
            "series_id": self.call_id,
            "amount": TRADED,
            "limit_price": TRADE_PRICE,
            "max_fee": 10**6,
            "nonce": 1,
            "deadline": self.expiry,
        }
        bid = Order(maker=self.writer.address, is_buy=True, **fields).sign(self.writer, domain)
        ask = Order(maker=self.holder.address, is_buy=False, **fields).sign(self.holder, domain)
        self.say(
            f"   writer bids {amount_text(TRADED, 8)} call at "
            f"{amount_text(TRADE_PRICE, 6)} USDC (order 0x{bid.hash.hex()[:16]}…), "
            f"holder offers at the same price; both sign EIP-712 orders naming the relayer "
            "as sender"
        )
        # simulated (eth_call through the SDK's binding): the keeper's direct fill is refused
        views = LedgerBinding(self.chain.provider.web3, ledger.address)
        refused = views.fn(
            "fill", order=ask.order.as_tuple(), signature=ask.signature, amount=TRADED, max_fee=0
        )
        try:
            refused.call({"from": self.keeper.address})
            reason = "accepted"
        except ContractLogicError as exc:
            reason = str(exc.message)
        check(reason.endswith("ledger: sender not allowed"), f"keeper's direct fill: {reason}")
        self.say("   a direct fill of the holder's offer by the keeper is refused (sender)")
        # the writer's bid rested: it pays the maker fee, the holder the taker fee
        s = settlement(TRADED, TRADE_PRICE, ledger.maker_fee_bps(), ledger.taker_fee_bps())
        self.trade_debit, self.trade_credit = s.buyer_debit, s.seller_credit
        d.usdc.approve(ledger, s.buyer_debit, sender=self.writer)
        ledger.deposit(d.usdc, s.buyer_debit, self.writer, sender=self.writer)
        short_before = ledger.positions(self.writer, self.call_id).short
        receipt = ledger.match_orders(
            [Match(bid, ask, TRADED, True).as_tuple()], sender=self.relayer
        )
        check(
            ledger.positions(self.writer, self.call_id).short == short_before - TRADED,
            "the writer's bought call did not close its short",
        )
        check(
            ledger.balanceOf(self.holder, self.call_id) == CALLS - TRADED,
            "the holder's call was not delivered",
        )
        check(
            ledger.free_collateral(self.holder, d.usdc) == s.seller_credit,
            "the holder was not paid the premium less its fee",
        )
        index = LedgerIndex()
        index.apply_logs(receipt.events, ledger.address)
        check(
            index.remaining(bid.order, bid.hash, self.now()) == 0
            and views.remaining(bid.order) == 0,
            "the filled bid still shows open",
        )
        self.say(
            f"   relayer matched them ({receipt.gas_used:,} gas): the writer's short "
            f"closed (buy to close, 1 WETH released), the holder got "
            f"{amount_text(s.seller_credit, 6)} USDC, fees "
            f"{amount_text(s.buyer_debit - s.seller_credit, 6)} USDC"
        )
        self.balances("after the trade")

    def push_spot(self) -> None:
        """Step 6: three reporters sign spot prices; the keeper relays them."""
        d = self.d
        self.say("7. reporters push ETH/USD spot (EIP-712 signed, relayed by the keeper)")
        d.oracle.report_spot(d.weth, self.sign_spot(SPOT_REPORTS), sender=self.keeper)
        spot = d.oracle.spot_price(d.weth)
        check(spot == sorted(SPOT_REPORTS)[1], f"spot {spot} is not the median of the reports")
        self.say(
            f"   reports {', '.join(amount_text(p, 8) for p in SPOT_REPORTS)} -> "
            f"spot {amount_text(spot, 8)}"
        )

    def expire(self) -> None:
        """Step 7: time moves past expiry and the Oracle's locking period."""
        d = self.d
        self.say("8. time moves to expiry")
        unlock = self.expiry + d.config.oracle.locking_period
        self.warp(unlock)
        price, final = d.oracle.expiry_price(d.weth, self.expiry)
        check(price == 0 and not final, "expiry price present before any report")
        self.say(
            f"   chain time is expiry + {d.config.oracle.locking_period} s (locking period over)"
        )

    def settle_price(self) -> None:
        """Step 8: expiry price reported, disputed once, final after the dispute window."""
        d = self.d
        oracle = d.oracle
        self.say("9. expiry price: reported, disputed, finalised")
        oracle.report_expiry(
            d.weth, self.expiry, self.sign_expiry(EXPIRY_REPORTS), sender=self.keeper
        )
        reported = oracle.expiry_prices(d.weth, self.expiry)
        check(reported.price == sum(EXPIRY_REPORTS) // 2, "reported price is not the median")
        self.say(
            f"   reporters signed {', '.join(amount_text(p, 8) for p in EXPIRY_REPORTS)}"
            f" -> {amount_text(reported.price, 8)}"
        )
        oracle.dispute_expiry(d.weth, self.expiry, EXPIRY_PRICE, sender=self.disputer)
        price, final = oracle.expiry_price(d.weth, self.expiry)
        check(price == EXPIRY_PRICE and not final, "dispute did not replace the price")
        self.say(f"   disputer corrected it to {amount_text(EXPIRY_PRICE, 8)} (not final yet)")
        self.warp(reported.reported_at + d.config.oracle.dispute_period)
        price, final = oracle.expiry_price(d.weth, self.expiry)
        check(price == EXPIRY_PRICE and final, "expiry price not final after the window")
        self.say(f"   dispute window over: {amount_text(price, 8)} is final")

    def settle_positions(self) -> None:
        """Step 9: the keeper redeems and settles in batches, then sweeps the dust."""
        d = self.d
        ch = d.clearinghouse
        self.say("10. keeper: redeem_many for the holder, settle_many for the writer, sweep_dust")
        ch.redeem_many([self.call_id, self.put_id], [self.holder, self.holder], sender=self.keeper)
        ch.settle_many([self.call_id, self.put_id], [self.writer, self.writer], sender=self.keeper)
        for sid in (self.call_id, self.put_id):
            check(d.ledger.balanceOf(self.holder, sid) == 0, f"longs of {sid} left after redeem")
            check(
                tuple(d.ledger.positions(self.writer, sid)) == (0, 0),
                f"short of {sid} left after settle",
            )
            check(ch.series_state(sid).open_interest == 0, f"open interest left in {sid}")
            ch.sweep_dust(sid, sender=self.keeper)
        self.balances("after settlement")

    def withdraw(self) -> None:
        """Step 10: holder, writer and fee recipient withdraw all their free collateral."""
        d = self.d
        ledger = d.ledger
        self.say("11. everyone withdraws their free collateral from the Ledger")
        for account in (self.holder, self.writer, self.fee_recipient):
            for token in (d.weth, d.usdc):
                free = ledger.free_collateral(account, token)
                if free:
                    ledger.withdraw(token, free, account, sender=account)
        self.balances("at the end")

    def verify(self) -> None:
        """Step 11: nothing created or lost; the holder got exactly `strikeline.units`' payoff."""
        d = self.d
        self.say("12. checks")
        after = self.token_sums()
        for symbol, before in self.supply_before.items():
            check(
                after[symbol] == before,
                f"{symbol}: {before} before, {after[symbol]} after across all participants",
            )
            self.say(
                f"   {symbol}: {amount_text(before, 18 if symbol == 'WETH' else 6)} "
                "before and after across all participants: nothing created or lost"
            )
        # the call leg is what stayed open after the trade; the trade's USDC rides on the put
        fees = self.trade_debit - self.trade_credit
        legs = (
            ("call", d.weth, 10**18, False, CALL_STRIKE, CALLS - TRADED, WRITER_WETH, 0, 0, 0),
            (
                "put",
                d.usdc,
                10**6,
                True,
                PUT_STRIKE,
                PUTS,
                WRITER_USDC,
                self.trade_credit,
                self.trade_debit,
                fees,
            ),
        )
        for kind, token, unit, is_put, strike, amount, minted, traded_in, traded_out, fee in legs:
            payout = units.payoff(is_put, unit, strike, EXPIRY_PRICE, amount, False)
            obligation = units.payoff(is_put, unit, strike, EXPIRY_PRICE, amount, True)
            decimals = 18 if token == d.weth else 6
            symbol = token.symbol()
            got = token.balanceOf(self.holder)
            check(
                got == payout + traded_in,
                f"holder got {got} {symbol} base units for the {kind}, "
                f"expected {payout + traded_in}",
            )
            check(payout > 0, f"the {kind} expired worthless: the demo's prices are wrong")
            writer_left = token.balanceOf(self.writer)
            check(
                writer_left == minted - obligation - traded_out,
                f"writer ended with {writer_left} {symbol} base units, "
                f"expected {minted - obligation - traded_out}",
            )
            dust = token.balanceOf(self.fee_recipient) - fee
            check(
                dust == obligation - payout,
                f"fee recipient got {dust} {symbol} base units of dust, "
                f"expected {obligation - payout}",
            )
            check(token.balanceOf(d.ledger) == 0, f"{symbol} left in the Ledger")
            check(token.balanceOf(d.clearinghouse) == 0, f"{symbol} in the Clearinghouse")
            self.say(
                f"   {kind}: holder received exactly {amount_text(payout, decimals)} "
                f"{symbol} (strikeline.units), writer kept the rest, "
                f"rounding dust {amount_text(dust, decimals)} {symbol} to the fee recipient"
            )


def run(say: Callable[[str], None] = print) -> int:
    """Run the demo; 0 if every check holds, 1 (and one line on stderr) otherwise."""
    started = time.monotonic()
    _prepare_environment()
    node = None
    try:
        import ape
        from ape.exceptions import ApeException
        from ape.logging import logger

        logger.set_level("ERROR")
        say("compiling the contracts (vyper 0.4.3; cached in .build/ after the first run)")
        ape.project.load_contracts()
        test_config = ape.config.get_config("test")
        # fund every devnet role, the relayer (test account 10) included
        node = start_anvil(
            mnemonic=test_config.mnemonic,
            accounts=max(test_config.number_of_accounts, DEVNET_ACCOUNTS),
        )
        say(f"anvil {anvil_binary()} on {node.url}")
        os.environ["APE_FOUNDRY_HOST"] = node.url
        with ape.networks.parse_network_choice("ethereum:local:foundry"):
            demo = Demo(say, ape.chain, list(ape.accounts.test_accounts))
            for step in (
                demo.deploy,
                demo.whitelist_put_through_timelock,
                demo.create_series,
                demo.write,
                demo.transfer_longs,
                demo.trade_on_the_ledger,
                demo.push_spot,
                demo.expire,
                demo.settle_price,
                demo.settle_positions,
                demo.withdraw,
                demo.verify,
            ):
                step()
    except DemoFailure as exc:
        print(f"demo: FAILED: {exc}", file=sys.stderr)
        return 1
    except (ApeException, ChainError) as exc:
        line = " ".join(str(exc).split())
        print(f"demo: FAILED: {type(exc).__name__}: {line}", file=sys.stderr)
        return 1
    finally:
        if node is not None:
            node.stop()
    say(f"demo: OK in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(run())
