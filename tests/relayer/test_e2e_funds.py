"""A maker's available funds right after its fill lands (both journal backends, anvil, the relayer
as `python -m relayer`, blocks mined by the test).

Between a match's `Fill` at the head and its confirmation `CONFIRMATIONS` blocks later, the funds
the follower re-read at the head already carry the payment: the match's reservation must not count
on top of them. An order that fits exactly what the chain says is free is accepted then; a block
reorg that takes the fill away counts the reservation again.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from system import (
    ONE,
    PRICE,
    RelayerProcess,
    body,
    fund_manually,
    match_mined,
    mine,
    new_maker,
    rpc,
    settle_until,
    signed,
    wait_for,
)

from relayer.model import BookOrder
from relayer.reservations import buyer_fee_bound
from strikeline.orders import fee
from strikeline.units import UNIT, mul_div_up

SECOND_PRICE = 100 * 10**6  # below every ask: the second buy rests


def buy_needs(amount: int, price: int, max_fee: int) -> int:
    """What the intake asks a buyer to hold free for a buy order: premium up + fee bound."""
    probe = BookOrder(
        hash=b"",
        maker="",
        series_id=0,
        is_buy=True,
        amount=amount,
        price=price,
        max_fee=max_fee,
        nonce=0,
        deadline=0,
    )
    return mul_div_up(amount, price, UNIT) + buyer_fee_bound(probe, amount, price)


def test_an_order_that_fits_exactly_is_accepted_once_the_fill_lands(
    system: SimpleNamespace, manual_mining: None, journal_url: str, tmp_path: Path
) -> None:
    c = system
    proc = RelayerProcess(c, journal_url, tmp_path, confirmations=12, poll_interval=0.1)
    taker_bps = c.ledger.fees()[1]  # the buy arrives second: it is the taker
    exact = buy_needs(ONE, SECOND_PRICE, 10**9)
    seller, buyer = new_maker(c), new_maker(c)
    fund_manually(c, seller, c.weth, 10**18)
    fund_manually(c, buyer, c.usdc, PRICE + fee(ONE, PRICE, taker_bps) + exact)
    try:
        proc.start()
        assert proc.post("/v1/orders", body(signed(c, seller, False, 1))).status_code == 201
        first = signed(c, buyer, True, 1)
        assert proc.post("/v1/orders", body(first)).status_code == 201  # matched

        def place(nonce: int, price: int = SECOND_PRICE) -> tuple[int, str]:
            resp = proc.post("/v1/orders", body(signed(c, buyer, True, nonce, limit_price=price)))
            return resp.status_code, resp.json().get("error", {}).get("code", "")

        # matched, not mined: the reservation (premium + the largest fee) holds the funds back
        assert place(2) == (400, "insufficient_funds")
        with proc.client() as client:
            receipt = match_mined(c, client, first)
        assert receipt["status"] == 1
        block = receipt["blockNumber"]
        wait_for(lambda: proc.get("/v1/health").json()["followerBlock"] >= block, 20, 0.05)
        assert c.ledger.free_collateral(buyer.address, c.usdc.address) == exact
        assert proc.get(f"/v1/orders/0x{first.hash.hex()}").json()["status"] != "filled"
        # landed, 11 confirmations to go: the chain's funds count, the reservation no more
        assert place(3, SECOND_PRICE + 1) == (400, "insufficient_funds")  # one unit over
        assert place(4) == (201, "")  # exactly what is free

        # the fill's block leaves the chain: the reservation counts again
        rpc(c, "anvil_reorg", 1, [])
        wait_for(lambda: "fills left the chain" in proc.log_path.read_text(), 20, 0.05)
        assert place(5) == (400, "insufficient_funds")

        # mined again and confirmed: the reservation is gone, the chain's funds remain
        settle_until(
            c,
            lambda: proc.get(f"/v1/orders/0x{first.hash.hex()}").json()["status"] == "filled",
            90,
            "confirmed",
        )
        mine(c)
        wait_for(lambda: place(6) == (201, ""), 10, 0.1, "fits after confirmation")
    finally:
        proc.stop()
