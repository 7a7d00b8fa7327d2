"""The ONE builder of the deployed Strikeline system for the titanoboa tests.

`System` deploys what production wires: the Oracle; the Ledger, bound to the Clearinghouse's
predicted address (the admin's next CREATE), with fees `MAKER_BPS` / `TAKER_BPS` and the fee
recipient; the Clearinghouse beside it (it refuses a Ledger bound elsewhere); reporters and a
disputer on the Oracle; USDC (6 decimals) and WETH (18) with a WETH/USDC call product (WETH
collateral) and put product (USDC collateral). With `margin=True` (the v2 tests' session
system) it adds the MarginEngine holding MARGIN_ROLE, the docs/margin.md example margin
parameters on both products, an auction from 5% to 30% over an hour and an ETH spot of
3,000 USD; `relayer`, when given, holds RELAYER_ROLE on the Ledger.
"""

from __future__ import annotations

from dataclasses import astuple
from typing import NamedTuple

import boa

from strikeline import ids, risk
from strikeline.oracle_reports import ordered, sign_expiry, sign_spot

from .chain import next_create
from .contracts import EIP170_HEADROOM

UNIT = 10**8
USDC = 10**6
WETH = 10**18
SPOT = 3_000 * UNIT
MAKER_BPS = 10
TAKER_BPS = 30
# Oracle parameters
QUORUM = 2
MAX_AGE = 3_600
MAX_DEVIATION_BPS = 5_000
LOCKING_PERIOD = 300
DISPUTE_PERIOD = 3_600
# deterministic reporter keys (test only)
REPORTER_KEYS = [bytes([i]) * 32 for i in (0x11, 0x22, 0x33)]
MARGIN_PARAMS = risk.MarginParams(
    spot_shock_bps=1_500, time_shock_bps=5_000, min_bps=1_000, maintenance_bps=6_000
)
AUCTION = risk.AuctionParams(start_bps=500, max_bps=3_000, duration=3_600)


class FullPosition(NamedTuple):
    short: int
    collateral: int


class System:
    """The deployed system and helpers to drive it (see the module docstring). Constants
    ride along as attributes, since test modules cannot import a conftest reliably."""

    UNIT = UNIT
    USDC = USDC
    WETH = WETH
    SPOT = SPOT
    MAKER_BPS = MAKER_FEE_BPS = MAKER_BPS
    TAKER_BPS = TAKER_FEE_BPS = TAKER_BPS
    EIP170_HEADROOM = EIP170_HEADROOM
    LOCKING_PERIOD = LOCKING_PERIOD
    DISPUTE_PERIOD = DISPUTE_PERIOD
    MARGIN_PARAMS = MARGIN_PARAMS
    AUCTION = AUCTION

    def __init__(
        self,
        deployers,
        admin,
        guardian,
        disputer,
        fee_recipient,
        relayer,
        reporters,
        *,
        margin: bool = True,
    ):
        self.deployers = deployers
        self.admin, self.guardian, self.disputer = admin, guardian, disputer
        self.fee_recipient, self.relayer, self.reporters = fee_recipient, relayer, reporters
        self.engine = None
        with boa.env.prank(admin):
            self.oracle = deployers["Oracle"].deploy(
                admin, QUORUM, MAX_AGE, MAX_DEVIATION_BPS, LOCKING_PERIOD, DISPUTE_PERIOD
            )
            # the Ledger names the Clearinghouse deployed right after it
            self.ledger = deployers["Ledger"].deploy(
                next_create(admin, 1), admin, fee_recipient, MAKER_BPS, TAKER_BPS
            )
            self.ch = deployers["Clearinghouse"].deploy(
                self.ledger.address, self.oracle.address, admin, guardian
            )
            if margin:
                self.engine = deployers["MarginEngine"].deploy(self.ch.address, admin)
                self.ch.grantRole(self.ch.MARGIN_ROLE(), self.engine.address)
            if relayer is not None:
                self.ledger.grantRole(self.ledger.RELAYER_ROLE(), relayer)
            for r in reporters:
                self.oracle.grantRole(self.oracle.REPORTER_ROLE(), r.address)
            self.oracle.grantRole(self.oracle.DISPUTER_ROLE(), disputer)
            self.usdc = deployers["MockERC20"].deploy("USD Coin", "USDC", 6)
            self.weth = deployers["MockERC20"].deploy("Wrapped Ether", "WETH", 18)
        self.call_product = self.whitelist(self.weth, self.usdc, is_put=False)
        self.put_product = self.whitelist(self.weth, self.usdc, is_put=True)
        if margin:
            with boa.env.prank(admin):
                for product in (self.call_product, self.put_product):
                    self.engine.set_margin_params(product, astuple(MARGIN_PARAMS))
                self.engine.set_auction_params(astuple(AUCTION))
            self.push_spot(self.weth, SPOT)

    # -- set-up -----------------------------------------------------------------------------

    def whitelist(self, underlying, quote, is_put: bool, enabled: bool = True) -> bytes:
        collateral = quote if is_put else underlying
        with boa.env.prank(self.admin):
            return self.ch.set_product(
                underlying.address, quote.address, collateral.address, is_put, enabled
            )

    def token(self, address: str):
        return self.deployers["MockERC20"].at(address)

    def collateral_token(self, series_id: int):
        """The collateral token contract of a series."""
        return self.token(self.ch.products(self.ch.series(series_id)[0])[2])

    @staticmethod
    def now() -> int:
        return boa.env.evm.patch.timestamp

    def expiry(self, days_ahead: int = 7) -> int:
        return ids.next_expiry(self.now(), days_ahead)

    def series(self, product: bytes, strike: int, expiry: int | None = None) -> int:
        return self.ch.create_series(product, strike, expiry or self.expiry())

    # -- money ------------------------------------------------------------------------------

    def fund(self, token, account: str, amount: int, deposit: bool = True) -> None:
        """Mint `amount` of `token` to `account` and (by default) deposit it in the Ledger."""
        token.mint(account, amount)
        if deposit:
            with boa.env.prank(account):
                token.approve(self.ledger.address, amount)
                self.ledger.deposit(token.address, amount, account)

    def free(self, account: str, token) -> int:
        return self.ledger.free_collateral(account, token.address)

    def write(self, writer: str, sid: int, amount: int, recipient: str | None = None) -> int:
        """Deposit exactly the full collateral needed and write `amount` of `sid` in the Ledger."""
        need = self.ch.collateral_required(sid, amount)
        self.fund(self.collateral_token(sid), writer, need)
        with boa.env.prank(writer):
            return self.ledger.write(sid, amount, recipient or writer)

    def write_margined(
        self,
        writer: str,
        sid: int,
        amount: int,
        collateral: int,
        deposit: int | None = None,
        recipient: str | None = None,
    ) -> int:
        """Deposit `deposit` (default `collateral`) and write margined through the engine."""
        funded = collateral if deposit is None else deposit
        if funded:
            self.fund(self.collateral_token(sid), writer, funded)
        with boa.env.prank(writer):
            return self.engine.write_margined(sid, amount, recipient or writer, collateral)

    def margined_position(
        self, sid: int, strike: int, amount: int, is_put: bool, spot: int = SPOT
    ) -> risk.ShortPosition:
        """The `risk` mirror of a live margined short at `spot`."""
        return risk.ShortPosition(
            is_put=is_put,
            strike=strike,
            spot=spot,
            amount=amount,
            time_to_expiry=self.ch.series(sid)[2] - self.now(),
            params=MARGIN_PARAMS,
        )

    def full_position(self, account: str, sid: int) -> FullPosition:
        """v1's (short, collateral) view of an account's fully collateralised short in the
        Ledger, which locks exactly `collateral_required(short)`."""
        short = self.ledger.positions(account, sid).short
        return FullPosition(short, self.ch.collateral_required(sid, short) if short else 0)

    def supply(self, sid: int) -> int:
        """Longs outstanding: every short (full and margined) before settlement starts, then
        what is left to redeem."""
        if self.ch.series_state(sid).settlement_price == 0:
            return self.ledger.book(sid)[0] + self.ch.margin_book(sid)[0]
        return self.ch.settlement_cash(sid)[2]

    def custody(self, token, accounts, series_ids=()) -> tuple[int, int]:
        """(the Ledger's balance of `token`, what the accounting says it holds): free balances
        of `accounts`, full shorts' collateral, margined collateral and reserves, insurance and
        each series' collateral and payout pool (`series_state`). Pass every account that ever
        held `token` and every series collateralised in it."""
        accounts = set(accounts) | {self.fee_recipient}
        held = sum(self.ledger.free_collateral(a, token.address) for a in accounts)
        held += sum(self.ch.margin_reserve(a, token.address) for a in accounts)
        held += self.ch.insurance(token.address)
        for sid in set(series_ids):
            state = self.ch.series_state(sid)
            held += state.collateral + state.payout_pool
        return token.balanceOf(self.ledger.address), held

    # -- oracle -----------------------------------------------------------------------------

    def chain_id(self) -> int:
        return boa.env.evm.patch.chain_id

    def push_spot(self, asset, price: int, signers=None) -> int:
        reports = [
            sign_spot(r.key, self.chain_id(), self.oracle.address, asset.address, price, self.now())
            for r in (signers or self.reporters[:QUORUM])
        ]
        return self.oracle.report_spot(asset.address, ordered(reports))

    def report_expiry(self, asset, expiry: int, price: int, signers=None) -> int:
        reports = [
            sign_expiry(r.key, self.chain_id(), self.oracle.address, asset.address, expiry, price)
            for r in (signers or self.reporters[:QUORUM])
        ]
        return self.oracle.report_expiry(asset.address, expiry, ordered(reports))

    def finalise_expiry(self, asset, expiry: int, price: int) -> None:
        """Warp past expiry + locking, report, warp past the dispute window."""
        now = self.now()
        if now < expiry + LOCKING_PERIOD:
            boa.env.time_travel(seconds=expiry + LOCKING_PERIOD - now)
        self.report_expiry(asset, expiry, price)
        boa.env.time_travel(seconds=DISPUTE_PERIOD)
