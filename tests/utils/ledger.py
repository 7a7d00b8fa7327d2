"""A Ledger on its own (contracts/Ledger.vy) with a plain account (`clearing`) standing in for
the Clearinghouse: the account drives the Clearinghouse-only hooks exactly as the
Clearinghouse does: it lists products and series (`clearing_set_product`,
`clearing_set_series`) and pushes fees, fee recipient and pause (`clearing_set_config`).
`Market` is the Ledger tests' world; makers and takers sign, so they are eth-account keys
(`utils.chain.signer`), and `relayer` holds RELAYER_ROLE and is the `sender` orders name by
default.
"""

from __future__ import annotations

import boa

from strikeline import ids, units
from strikeline.orders import Domain

from .orders import FAR, ZERO, Match, Order, SignedOrder

MAKER_BPS = 10
TAKER_BPS = 30
STRIKE = 3_000 * 10**8
PRICE = 150 * 10**6  # 150 USDC per contract
ONE = 10**8  # one contract
CANCELLED = 2**256 - 1
PUT_BIT, ENABLED_BIT, DECIMALS_SHIFT, PAUSED_BIT = 1 << 160, 1 << 161, 168, 1 << 192


class Market:
    """A Ledger bound to the `clearing` account, a call (WETH collateral) and a put (USDC
    collateral) series, and helpers to trade them. Test constants ride along as attributes,
    since test modules cannot import a conftest."""

    MAKER_BPS = MAKER_BPS
    TAKER_BPS = TAKER_BPS
    STRIKE = STRIKE
    PRICE = PRICE
    ONE = ONE
    FAR = FAR
    ZERO = ZERO
    CANCELLED = CANCELLED
    Order = Order
    SignedOrder = SignedOrder
    Match = Match

    def __init__(self, deployers: dict, admin: str, fee_recipient: str):
        self.deployers = deployers
        self.admin, self.fee_recipient = admin, fee_recipient
        self.clearing = boa.env.generate_address("clearinghouse stand-in")
        self.relayer = boa.env.generate_address("relayer")
        self.other_relayer = boa.env.generate_address("other relayer")
        self.usdc = deployers["MockERC20"].deploy("USD Coin", "USDC", 6)
        self.weth = deployers["MockERC20"].deploy("Wrapped Ether", "WETH", 18)
        self.ledger = deployers["Ledger"].deploy(
            self.clearing, admin, fee_recipient, MAKER_BPS, TAKER_BPS
        )
        with boa.env.prank(admin):
            self.ledger.grantRole(self.ledger.RELAYER_ROLE(), self.relayer)
            self.ledger.grantRole(self.ledger.RELAYER_ROLE(), self.other_relayer)
        self.chain_id = boa.env.evm.patch.chain_id
        self.domain = Domain(self.chain_id, self.ledger.address)
        # product id -> (is_put, collateral token, quote token, collateral unit)
        self.products: dict[bytes, tuple[bool, str, str, int]] = {}
        self.series_product: dict[int, bytes] = {}
        self.call_product = self.list_product(self.weth, self.usdc, is_put=False)
        self.put_product = self.list_product(self.weth, self.usdc, is_put=True)
        self.expiry = self.next_expiry(7)
        self.series = self.new_series(self.call_product, STRIKE, self.expiry)
        self.put_series = self.new_series(self.put_product, STRIKE, self.expiry)

    # ------------------------------------------------------------------ the Clearinghouse

    @staticmethod
    def next_expiry(days_ahead: int = 7) -> int:
        return ids.next_expiry(boa.env.evm.patch.timestamp, days_ahead)

    def list_product(self, underlying, quote, is_put: bool, enabled: bool = True) -> bytes:
        """What the Clearinghouse's `set_product` pushes: the product word and both tokens'
        units (both become depositable). Listing again with enabled=False disables it."""
        collateral = quote if is_put else underlying
        decimals = collateral.decimals()
        pid = ids.product_id(underlying.address, quote.address, collateral.address, is_put)
        word = int(collateral.address, 16) | (decimals << DECIMALS_SHIFT)
        word |= (PUT_BIT if is_put else 0) | (ENABLED_BIT if enabled else 0)
        with boa.env.prank(self.clearing):
            self.ledger.clearing_set_product(
                pid,
                word,
                underlying.address,
                10 ** underlying.decimals(),
                quote.address,
                10 ** quote.decimals(),
            )
        self.products[pid] = (is_put, collateral.address, quote.address, 10**decimals)
        return pid

    def new_series(self, product: bytes, strike: int, expiry: int | None = None) -> int:
        """What the Clearinghouse's `create_series` pushes: the series' terms word."""
        expiry = expiry or self.next_expiry(7)
        quote = self.products[product][2]
        terms = int(quote, 16) | ((expiry // 86_400) << 160) | (strike << 184)
        sid = ids.series_id(product, strike, expiry)
        with boa.env.prank(self.clearing):
            self.ledger.clearing_set_series(sid, product, terms)
        self.series_product[sid] = product
        return sid

    def config(self) -> dict:
        """The Ledger's current fees, fee recipient and pause."""
        return {
            "maker_bps": self.ledger.maker_fee_bps(),
            "taker_bps": self.ledger.taker_fee_bps(),
            "fee_recipient": self.ledger.fee_recipient(),
            "paused": self.ledger.paused(),
        }

    @staticmethod
    def config_word(maker_bps: int, taker_bps: int, fee_recipient: str, paused: bool) -> int:
        word = int(fee_recipient, 16) | (maker_bps << 160) | (taker_bps << 176)
        return word | (PAUSED_BIT if paused else 0)

    def set_config(self, **changes) -> None:
        """Push fees, fee recipient or pause, keeping what is not named (the Clearinghouse's
        governance does this through `clearing_set_config`)."""
        values = self.config() | changes
        with boa.env.prank(self.clearing):
            self.ledger.clearing_set_config(self.config_word(**values))

    def pause(self, paused: bool = True) -> None:
        self.set_config(paused=paused)

    # ------------------------------------------------------------------ orders

    def order(self, maker, is_buy: bool, **fields) -> Order:
        """An order by `maker` (an account or an address) naming the relayer as its sender."""
        values = {
            "maker": getattr(maker, "address", maker),
            "sender": self.relayer,
            "series_id": self.series,
            "is_buy": is_buy,
            "amount": ONE,
            "limit_price": PRICE,
            "max_fee": 10**9,
            "nonce": 0,
            "deadline": FAR,
        }
        values.update(fields)
        return Order(**values)

    def sign(self, signer, order: Order, domain: Domain | None = None) -> SignedOrder:
        """`order` signed by `signer` under the Ledger's domain (or `domain`)."""
        return order.sign(signer, domain or self.domain)

    def buy(self, signer, **fields) -> SignedOrder:
        return self.sign(signer, self.order(signer, True, **fields))

    def sell(self, signer, **fields) -> SignedOrder:
        return self.sign(signer, self.order(signer, False, **fields))

    @staticmethod
    def match(
        buy: SignedOrder, sell: SignedOrder, amount: int | None = None, buy_is_maker: bool = False
    ) -> Match:
        """A match of `amount` (default: the buy order's whole amount)."""
        return Match(buy, sell, buy.order.amount if amount is None else amount, buy_is_maker)

    def submit(self, *matches: Match, sender: str | None = None) -> None:
        """`match_orders` from the relayer (or `sender`)."""
        with boa.env.prank(sender or self.relayer):
            self.ledger.match_orders([m.as_tuple() for m in matches])

    def fill(self, taker, signed: SignedOrder, amount: int, max_fee: int = 10**12) -> int:
        """`taker` fills `signed` directly; returns what is left of the order."""
        with boa.env.prank(getattr(taker, "address", taker)):
            return self.ledger.fill(signed.order.as_tuple(), signed.signature, amount, max_fee)

    def cancel(self, maker, *signed: SignedOrder) -> None:
        with boa.env.prank(getattr(maker, "address", maker)):
            self.ledger.cancel([s.order.as_tuple() for s in signed])

    def cancel_hashes(self, maker, *hashes: bytes) -> None:
        with boa.env.prank(getattr(maker, "address", maker)):
            self.ledger.cancel_by_hash(list(hashes))

    def remaining(self, signed: SignedOrder | Order) -> int:
        """What can still be filled of an order, read from the Ledger's state (v1's on-chain
        `Exchange.remaining`, which the Ledger no longer has: deadline, minimum nonce, cancel
        by hash, nonce bit, partial fill)."""
        order = signed.order if isinstance(signed, SignedOrder) else signed
        digest = order.hash(self.domain)
        if boa.env.evm.patch.timestamp > order.deadline:
            return 0
        if order.nonce < self.ledger.min_nonce(order.maker):
            return 0
        if self.ledger.cancelled(order.maker, digest):
            return 0
        if not self.ledger.nonce_used(order.maker, order.nonce):
            return order.amount
        filled = self.ledger.partial_fills(digest)
        return 0 if filled in (0, CANCELLED) else order.amount - filled

    # ------------------------------------------------------------------ balances

    def fund(self, who, usdc: int = 0, weth: int = 0) -> None:
        """Deposit free collateral for `who` (an account or an address)."""
        address = getattr(who, "address", who)
        for token, amount in ((self.usdc, usdc), (self.weth, weth)):
            if amount:
                self.deposit(token, address, amount)

    def deposit(self, token, account: str, amount: int) -> int:
        token.mint(account, amount)
        with boa.env.prank(account):
            token.approve(self.ledger.address, amount)
            return self.ledger.deposit(token.address, amount, account)

    def required(self, series: int, short: int) -> int:
        """full_collateral(short) of `series`: what a short of that size locks."""
        is_put, _, _, unit = self.products[self.series_product[series]]
        strike = self.ledger.series_words(series)[0] >> 184
        return units.full_collateral(is_put, unit, strike, short)

    def collateral_token(self, series: int | None = None):
        address = self.products[self.series_product[series or self.series]][1]
        return self.usdc if address == self.usdc.address else self.weth

    def write(self, who, amount: int, recipient=None, series: int | None = None) -> int:
        """`who` deposits exactly the collateral it lacks and writes `amount`."""
        writer = getattr(who, "address", who)
        series = series or self.series
        short = self.short(writer, series)
        need = self.required(series, short + amount) - self.required(series, short)
        token_address = self.products[self.series_product[series]][1]
        token = self.deployers["MockERC20"].at(token_address)
        if need:
            self.deposit(token, writer, need)
        with boa.env.prank(writer):
            return self.ledger.write(
                series, amount, getattr(recipient, "address", recipient) or writer
            )

    def free(self, who, token=None) -> int:
        """Free collateral of `who` in `token` (default USDC)."""
        return self.ledger.free_collateral(
            getattr(who, "address", who), (token or self.usdc).address
        )

    def longs(self, who, series: int | None = None) -> int:
        return self.ledger.balanceOf(getattr(who, "address", who), series or self.series)

    def short(self, who, series: int | None = None) -> int:
        return self.ledger.positions(getattr(who, "address", who), series or self.series)[1]

    def locked(self, who, series: int | None = None) -> int:
        """The collateral `who`'s short locks: exactly full_collateral(short)."""
        series = series or self.series
        return self.required(series, self.short(who, series))

    def events(self, name: str, contract=None) -> list:
        """The decoded `name` events of the last call (default: to the Ledger)."""
        return [e for e in (contract or self.ledger).get_logs() if type(e).__name__ == name]

    def transfers(self) -> list[tuple]:
        """(operator, from, to, id, value) of each TransferSingle of the last call."""
        return [tuple(e)[1:] for e in self.events("TransferSingle")]
