"""Fixtures for the Exchange tests: the system and an Exchange, deployed once per session.

The deployment is session-scoped (pytest sets up wider-scoped fixtures first, so it happens
before the per-test `boa.env.anchor()` of `tests/conftest.py`) and every test's changes are
rolled back by that anchor. Makers and takers sign, so they are eth-account keys (boa pranks
their addresses). The Exchange holds EXCHANGE_ROLE on the Clearinghouse and `relayer` holds
RELAYER_ROLE.
"""

from __future__ import annotations

from pathlib import Path

import boa
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from strikeline import ids
from strikeline.orders import Domain, Match, Order, SignedOrder

CONTRACTS = Path(__file__).resolve().parents[3] / "contracts"
MAKER_BPS = 10
TAKER_BPS = 30
STRIKE = 3_000 * 10**8
PRICE = 150 * 10**6  # 150 USDC per contract
ONE = 10**8  # one contract
FAR = 2**40  # a deadline far in the future


def _signer(seed: int) -> LocalAccount:
    account = Account.from_key(bytes([seed]) * 32)
    boa.env.set_balance(account.address, 10**21)
    return account


@pytest.fixture(scope="session")
def exchange_deployer():
    """The Exchange, compiled once per session."""
    return boa.load_partial(str(CONTRACTS / "v1" / "Exchange.vy"))


@pytest.fixture(scope="session")
def wallet_deployer():
    """The EIP-1271 test wallet, compiled once per session."""
    return boa.load_partial(str(CONTRACTS / "test" / "MockSafeWallet.vy"))


@pytest.fixture(scope="session")
def alice() -> LocalAccount:
    """A market maker who signs orders."""
    return _signer(0xA1)


@pytest.fixture(scope="session")
def bob() -> LocalAccount:
    """A trader who signs orders."""
    return _signer(0xB0)


@pytest.fixture(scope="session")
def carol() -> LocalAccount:
    """A third trader (the wrong signer, a third-party taker)."""
    return _signer(0xC0)


@pytest.fixture(scope="session")
def relayer() -> str:
    """A registered relayer."""
    return boa.env.generate_address("relayer")


class Market:
    """The core contracts, an Exchange, a call and a put series, and helpers to trade them.

    The test constants ride along as attributes, since test modules cannot import a conftest.
    """

    MAKER_BPS = MAKER_BPS
    TAKER_BPS = TAKER_BPS
    STRIKE = STRIKE
    PRICE = PRICE
    ONE = ONE
    FAR = FAR

    def __init__(
        self,
        deployers,
        exchange_deployer,
        admin: str,
        guardian: str,
        fee_recipient: str,
        relayer: str,
        predict_create,
    ):
        self.admin, self.guardian = admin, guardian
        self.fee_recipient, self.relayer = fee_recipient, relayer
        with boa.env.prank(admin):
            oracle = deployers["Oracle"].deploy(admin, 2, 3_600, 5_000, 300, 3_600)
            self.token = deployers["OptionToken"].deploy(
                "https://strikeline.example/series/", predict_create(admin, 1)
            )
            self.ch = deployers["Clearinghouse"].deploy(
                self.token.address, oracle.address, admin, guardian, fee_recipient
            )
            self.usdc = deployers["MockERC20"].deploy("USD Coin", "USDC", 6)
            self.weth = deployers["MockERC20"].deploy("Wrapped Ether", "WETH", 18)
            self.call_product = self.ch.set_product(
                self.weth.address, self.usdc.address, self.weth.address, False, True
            )
            self.put_product = self.ch.set_product(
                self.weth.address, self.usdc.address, self.usdc.address, True, True
            )
            self.ex = exchange_deployer.deploy(
                self.ch.address, admin, guardian, MAKER_BPS, TAKER_BPS
            )
            self.ch.grantRole(self.ch.EXCHANGE_ROLE(), self.ex.address)
            self.ex.grantRole(self.ex.RELAYER_ROLE(), relayer)
        self.chain_id = boa.env.evm.patch.chain_id
        self.domain = Domain(self.chain_id, self.ex.address)
        self.expiry = ids.next_expiry(boa.env.evm.patch.timestamp, 7)
        self.series = self.ch.create_series(self.call_product, STRIKE, self.expiry)
        self.put_series = self.ch.create_series(self.put_product, STRIKE, self.expiry)

    # ------------------------------------------------------------------ orders

    def order(self, maker, is_buy: bool, **fields) -> Order:
        """An order by `maker` (an account or an address) with sensible defaults."""
        values = {
            "maker": getattr(maker, "address", maker),
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
        """`order` signed by `signer` (a key or account) under the Exchange's domain."""
        return order.sign(signer, domain or self.domain)

    def buy(self, signer, **fields) -> SignedOrder:
        """A signed buy order of `signer`."""
        return self.sign(signer, self.order(signer, True, **fields))

    def sell(self, signer, **fields) -> SignedOrder:
        """A signed sell order of `signer`."""
        return self.sign(signer, self.order(signer, False, **fields))

    @staticmethod
    def match(
        buy: SignedOrder, sell: SignedOrder, amount: int | None = None, buy_is_maker: bool = False
    ) -> Match:
        """A match of `amount` (default: the buy order's whole amount)."""
        return Match(buy, sell, buy.order.amount if amount is None else amount, buy_is_maker)

    def submit(self, *matches: Match, sender: str | None = None) -> None:
        """Send `match_orders` from the relayer (or `sender`)."""
        with boa.env.prank(sender or self.relayer):
            self.ex.match_orders([m.as_tuple() for m in matches])

    def fill(self, taker, signed: SignedOrder, amount: int, max_fee: int = 10**12) -> int:
        """`taker` fills `signed` directly; returns what is left of the order."""
        with boa.env.prank(getattr(taker, "address", taker)):
            return self.ex.fill(signed.order.as_tuple(), signed.signature, amount, max_fee)

    # ------------------------------------------------------------------ balances

    def fund(self, who, usdc: int = 0, weth: int = 0) -> None:
        """Deposit free collateral for `who` (an account or an address)."""
        address = getattr(who, "address", who)
        for token, amount in ((self.usdc, usdc), (self.weth, weth)):
            if amount:
                token.mint(address, amount)
                with boa.env.prank(address):
                    token.approve(self.ch.address, amount)
                    self.ch.deposit(token.address, amount, address)

    def write(self, who, amount: int, recipient=None, series: int | None = None) -> None:
        """`who` deposits exactly the collateral and writes `amount` (longs to `recipient`)."""
        writer = getattr(who, "address", who)
        series = series or self.series
        is_put = self.ch.products(self.ch.series(series)[0])[3]
        need = self.ch.collateral_required(series, amount)
        self.fund(writer, **({"usdc": need} if is_put else {"weth": need}))
        with boa.env.prank(writer):
            self.ch.write(series, amount, getattr(recipient, "address", recipient) or writer)

    def free(self, who, token=None) -> int:
        """Free collateral of `who` in `token` (default USDC)."""
        return self.ch.free_collateral(getattr(who, "address", who), (token or self.usdc).address)

    def longs(self, who, series: int | None = None) -> int:
        """Long balance of `who`."""
        return self.token.balanceOf(getattr(who, "address", who), series or self.series)

    def short(self, who, series: int | None = None) -> int:
        """Short position of `who`."""
        return self.ch.positions(getattr(who, "address", who), series or self.series)[0]

    def events(self, name: str, contract=None) -> list:
        """The decoded `name` events of the last call to `contract` (default: the Exchange),
        child calls included, whichever contract emitted them."""
        return [e for e in (contract or self.ex).get_logs() if type(e).__name__ == name]


@pytest.fixture(scope="session")
def market(
    deployers, exchange_deployer, admin, guardian, fee_recipient, relayer, predict_create
) -> Market:
    """The deployed market; each test's changes are rolled back by the per-test anchor."""
    return Market(
        deployers, exchange_deployer, admin, guardian, fee_recipient, relayer, predict_create
    )
