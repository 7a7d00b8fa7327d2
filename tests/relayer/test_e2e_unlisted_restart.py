"""A relayer restarts after a reorg removed a series its journal has orders on (both journal
backends): the engine's replay needs a book for every series the journal names, and the chain no
longer lists that one. `relayer_books` remembers every instrument when it is listed, so boot
gives the engine a book for it (`ChainView.retired`), lists it nowhere, and the follower cancels
its orders with `instrument_unlisted`."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from system import (
    ONE,
    STRIKE,
    RelayerProcess,
    body,
    fund_manually,
    mine,
    new_maker,
    rpc,
    signed,
    wait_for,
)


@pytest.mark.parametrize("reorg_while", ["down", "running"])
def test_the_relayer_restarts_after_a_series_with_orders_left_the_chain(
    system: SimpleNamespace,
    manual_mining: None,
    journal_url: str,
    tmp_path: Path,
    reorg_while: str,
) -> None:
    c = system
    proc = RelayerProcess(c, journal_url, tmp_path, confirmations=2, poll_interval=0.1)
    maker = new_maker(c)
    fund_manually(c, maker, c.usdc, 1_000 * 10**6)
    strike = STRIKE + (c.w3.eth.block_number + 7) * ONE  # no other test's series (one anvil)

    def listed() -> set[int]:
        return {int(i["seriesId"]) for i in proc.get("/v1/instruments").json()["instruments"]}

    try:
        proc.start()
        rpc(c, "evm_setAutomine", True)
        try:
            sid = int(c.ch.create_series(c.product, strike, c.expiry, sender=c.admin))
        finally:
            rpc(c, "evm_setAutomine", False)
        mine(c)
        wait_for(lambda: sid in listed(), 20, 0.05, "the series listed")
        resting = signed(c, maker, True, 1, ONE, series_id=sid)
        placed = proc.post("/v1/orders", body(resting))
        assert placed.status_code == 201 and placed.json()["status"] == "open", placed.text
        if reorg_while == "running":
            rpc(c, "anvil_reorg", 2, [])
            wait_for(lambda: sid not in listed(), 20, 0.05, "the series unlisted")
            assert proc.terminate() == 0
        else:
            assert proc.terminate() == 0
            rpc(c, "anvil_reorg", 2, [])
        assert int(c.ch.series(sid).expiry) == 0  # the final chain has no such series
        proc.start()  # waits until healthy: the journal replayed
        assert sid not in listed() and c.series in listed()
        with proc.client() as client:
            gone = wait_for(
                lambda: (o := client.order(resting.hash)).status == "cancelled" and o,
                20,
                0.05,
                "the resting order cancelled",
            )
        assert gone.reason == "instrument_unlisted" and gone.open == 0
        refused = proc.post("/v1/orders", body(signed(c, maker, True, 2, ONE, series_id=sid)))
        assert refused.status_code == 404, refused.text
        assert refused.json()["error"]["code"] == "unknown_instrument"
    finally:
        proc.stop()
