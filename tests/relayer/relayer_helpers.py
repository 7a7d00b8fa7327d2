"""Helpers of the relayer tests: instruments, makers named by role, an order factory, a `Funds`
view set by hand, and fresh PostgreSQL databases."""

from __future__ import annotations

import itertools
import uuid

from relayer.model import BookOrder, Instrument, TimeInForce
from strikeline import db

POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432"
UNIT = 10**8
USDC = "0x" + "a0" * 20
WETH = "0x" + "c0" * 20
FAR = 2**40  # a deadline that never passes in these tests
NOW = 1_700_000_000

CALL = Instrument(
    series_id=2**255 + 7,  # series ids are keccak outputs: wider than 64 bits
    name="ETH-27DEC24-3000-C",
    quote_token=USDC,
    collateral_token=WETH,
    is_put=False,
    strike=3000 * UNIT,
    expiry=1_735_286_400,
    collateral_unit=10**18,
)
PUT = Instrument(
    series_id=2**255 + 8,
    name="ETH-27DEC24-3000-P",
    quote_token=USDC,
    collateral_token=USDC,
    is_put=True,
    strike=3000 * UNIT,
    expiry=1_735_286_400,
    collateral_unit=10**6,
)

MAKER = "0x" + "11" * 20
TAKER = "0x" + "22" * 20
WRITER = "0x" + "33" * 20
HOLDER = "0x" + "44" * 20


def new_postgres_url() -> str:
    url = f"{POSTGRES_SERVER}/strikeline_relayer_test_{uuid.uuid4().hex[:12]}"
    db.create_postgres_database(url)
    return url


_hashes = itertools.count(1)


def order(
    maker: str,
    is_buy: bool,
    amount: int,
    price: int,
    *,
    tif: TimeInForce = TimeInForce.GTC,
    max_fee: int = 2**200,
    deadline: int = FAR,
    nonce: int | None = None,
    client_order_id: str | None = None,
    instrument: Instrument = CALL,
) -> BookOrder:
    """A fresh order (a unique hash; the book never checks signatures, the intake does)."""
    n = next(_hashes)
    return BookOrder(
        hash=n.to_bytes(32, "big"),
        maker=maker,
        series_id=instrument.series_id,
        is_buy=is_buy,
        amount=amount,
        price=price,
        max_fee=max_fee,
        nonce=n if nonce is None else nonce,
        deadline=deadline,
        tif=tif,
        client_order_id=client_order_id,
        payload=b'{"signed": "order"}',
    )


class ChainFunds:
    """A `Funds` view the tests set by hand, as the chain follower would from the chain."""

    def __init__(self) -> None:
        self.balances: dict[tuple[str, str], int] = {}
        self.held: dict[tuple[str, int], int] = {}

    def free(self, account: str, token: str) -> int:
        return self.balances.get((account, token), 0)

    def longs(self, account: str, series_id: int) -> int:
        return self.held.get((account, series_id), 0)
