"""`strikeline.client` against a running relayer (`python -m relayer` on anvil, SQLite): place
(signed by the client), re-post, batch, a signed cancel, the queries, every refusal as a
`RelayerApiError` with the API's code, and a WebSocket subscription whose updates follow the
snapshot in sequence."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from system import ONE, PRICE, RelayerProcess, fund, new_maker, signed, wait_for

from strikeline.client import Client, RelayerApiError, Snapshot, Update, subscribe
from strikeline.orders import Order


@pytest.fixture(scope="module")
def relayer(
    system: SimpleNamespace, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RelayerProcess]:
    workdir = tmp_path_factory.mktemp("client")
    proc = RelayerProcess(system, f"sqlite:///{workdir / 'relayer.db'}", workdir)
    system.w3.provider.make_request("evm_setIntervalMining", [1])
    try:
        yield proc.start()
    finally:
        proc.stop()
        system.w3.provider.make_request("evm_setAutomine", [True])


def unsigned(c: SimpleNamespace, maker, is_buy: bool, nonce: int, amount: int = ONE, **kw) -> Order:
    return Order(
        maker=maker.address,
        sender=c.relayer,
        series_id=c.series,
        is_buy=is_buy,
        amount=amount,
        limit_price=kw.get("limit_price", PRICE),
        max_fee=10**9,
        nonce=nonce,
        deadline=2**40,
    )


def test_place_query_cancel_and_refusals(system: SimpleNamespace, relayer: RelayerProcess) -> None:
    c = system
    seller, buyer = new_maker(c), new_maker(c)
    fund(c, seller, c.weth, 10 * 10**18)
    fund(c, buyer, c.usdc, 10_000 * 10**6)
    with Client(relayer.url, signer=seller) as s_client, relayer.client(buyer) as b_client:
        assert s_client.domain == c.domain  # read from /v1/health
        (inst,) = [i for i in s_client.instruments() if i.series_id == c.series]
        sell = s_client.place(unsigned(c, seller, False, 1, 3 * ONE), client_order_id="c-1")
        assert (sell.status, sell.open, sell.duplicate) == ("open", 3 * ONE, False)
        again = s_client.place(unsigned(c, seller, False, 1, 3 * ONE), client_order_id="c-1")
        assert again.duplicate and again.hash == sell.hash
        with pytest.raises(RelayerApiError) as conflict:
            s_client.place(unsigned(c, seller, False, 2, ONE), client_order_id="c-1")
        assert (conflict.value.status, conflict.value.code) == (409, "client_order_id_conflict")
        assert s_client.orderbook(inst.instrument).asks == [(PRICE, 3 * ONE, 1)]

        buy = b_client.place(unsigned(c, buyer, True, 1, ONE))
        assert buy.fills and buy.fills[0].price == PRICE and buy.fills[0].amount == ONE
        # batch: one good order, one the buyer cannot pay for
        results = b_client.place_many(
            [
                unsigned(c, buyer, True, 2, ONE, limit_price=PRICE - 10**6),
                unsigned(c, buyer, True, 3, 100 * ONE, limit_price=PRICE - 10**6),
            ]
        )
        assert results[0].ok and results[0].order is not None
        assert not results[1].ok and results[1].error.code == "insufficient_funds"
        # a cancel signed by someone else is refused; the maker's goes through
        with pytest.raises(RelayerApiError) as not_maker:
            b_client.cancel(sell.hash)
        assert (not_maker.value.status, not_maker.value.code) == (403, "not_maker")
        wait_for(lambda: s_client.order(sell.hash).filled == ONE, 60, what="first fill confirmed")
        gone = s_client.cancel(sell.hash)
        assert (gone.status, gone.filled, gone.cancelled) == ("cancelled", ONE, 2 * ONE)
        assert s_client.orders(seller.address) == []
        assert [o.hash for o in s_client.orders(seller.address, live_only=False)] == [sell.hash]
        (fill,) = s_client.fills(seller.address)
        assert fill.state == "confirmed" and fill.tx_hash and fill.block
        assert any(t.id == fill.id for t in s_client.trades(inst.instrument))
        (tick,) = [t for t in s_client.tickers() if t.series_id == c.series]
        assert tick.last_price == PRICE and tick.best_bid == PRICE - 10**6
        with pytest.raises(RelayerApiError) as unknown:
            s_client.order(b"\x01" * 32)
        assert (unknown.value.status, unknown.value.code) == (404, "unknown_order")
        with pytest.raises(RelayerApiError) as unknown_inst:
            s_client.orderbook("ETH-1JAN99-1-C")
        assert unknown_inst.value.status == 404
        debug = s_client.debug_order(signed(c, seller, False, 9, ONE))
        assert debug["matchesMaker"] is True


def test_subscription_snapshot_then_updates_in_sequence(
    system: SimpleNamespace, relayer: RelayerProcess
) -> None:
    c = system
    maker = new_maker(c)
    fund(c, maker, c.weth, 10 * 10**18)
    client = relayer.client(maker)
    name = next(i.instrument for i in client.instruments() if i.series_id == c.series)
    channel = f"orders.{maker.address}"

    async def run() -> list:
        events: list = []
        agen = subscribe(relayer.url, [channel])
        events.append(await asyncio.wait_for(agen.__anext__(), 10))
        for n in range(3):
            await asyncio.to_thread(
                client.place, unsigned(c, maker, False, 50 + n, ONE, limit_price=PRICE + 10**8)
            )
            events.append(await asyncio.wait_for(agen.__anext__(), 10))
        await agen.aclose()
        return events

    events = asyncio.run(run())
    assert isinstance(events[0], Snapshot) and events[0].data == []
    assert all(isinstance(e, Update) for e in events[1:])
    assert [e.seq for e in events] == list(range(events[0].seq, events[0].seq + 4))
    assert [e.data["nonce"] for e in events[1:]] == ["50", "51", "52"]
    assert client.orderbook(name).asks[-1][0] == PRICE + 10**8
    client.close()
