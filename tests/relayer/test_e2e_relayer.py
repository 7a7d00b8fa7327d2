"""The relayer end to end on a real anvil with the v2 system deployed, started as an operator
starts it (`python -m relayer`, settings in the environment), on SQLite and on PostgreSQL.

- two signed orders posted over HTTP are matched, settled on chain in a `match_orders`
  transaction, and reported filled; the relayer's view equals the chain's;
- kill -9 in the middle of a batch, restart: no acknowledged order lost, no match settled twice;
- a fault: an order whose maker withdrew its collateral after the match is cancelled with
  `insufficient_funds` while the innocent order goes back to the book and trades later.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from relayer_helpers import new_postgres_url
from system import (
    ONE,
    PRICE,
    RelayerProcess,
    body,
    cancel_body,
    deploy,
    fund,
    new_maker,
    signed,
    wait_for,
)

from strikeline import db
from strikeline.chain import start_anvil


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    workdir = tmp_path_factory.mktemp("e2e")
    with start_anvil(accounts=10) as node:
        c = deploy(node, workdir)
        c.workdir = workdir
        yield c


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'relayer.db'}"
        return
    url = new_postgres_url()
    try:
        yield url
    finally:
        db.drop_postgres_database(url)


@pytest.fixture
def relayer(system: SimpleNamespace, database_url: str, tmp_path: Path) -> Iterator[RelayerProcess]:
    proc = RelayerProcess(system, database_url, tmp_path)
    # blocks every 0.5 s from now on, so confirmations come without the test mining
    system.w3.provider.make_request("evm_setIntervalMining", [1])
    try:
        yield proc.start()
    finally:
        proc.stop()
        system.w3.provider.make_request("evm_setAutomine", [True])


def order_state(r: RelayerProcess, h: bytes) -> dict:
    resp = r.get(f"/v1/orders/0x{h.hex()}")
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_two_orders_match_settle_and_fill(system: SimpleNamespace, relayer: RelayerProcess) -> None:
    c = system
    seller, buyer = new_maker(c), new_maker(c)
    fund(c, seller, c.weth, 10 * 10**18)
    fund(c, buyer, c.usdc, 10_000 * 10**6)
    name = relayer.get("/v1/instruments").json()["instruments"][0]["instrument"]
    assert name.startswith("ETH-") and name.endswith("-3000-C")

    sell = signed(c, seller, False, 1, 2 * ONE)
    buy = signed(c, buyer, True, 1, ONE, limit_price=PRICE + 5 * 10**6)
    r1 = relayer.post("/v1/orders", body(sell, client_order_id="s-1"))
    assert r1.status_code == 201, r1.text
    assert r1.json()["status"] == "open" and r1.json()["open"] == str(2 * ONE)
    assert (
        relayer.post("/v1/orders", body(sell, client_order_id="s-1")).status_code == 200
    )  # re-post
    other = signed(c, seller, False, 2, ONE)
    conflict = relayer.post("/v1/orders", body(other, client_order_id="s-1"))
    assert (
        conflict.status_code == 409
        and conflict.json()["error"]["code"] == "client_order_id_conflict"
    )
    book = relayer.get(f"/v1/orderbook/{name}").json()
    assert book["asks"] == [[str(PRICE), str(2 * ONE), 1]]

    r2 = relayer.post("/v1/orders", body(buy))
    assert r2.status_code == 201, r2.text
    taken = r2.json()
    assert (
        taken["matched"] == str(ONE) or taken["pending"] == str(ONE) or taken["filled"] == str(ONE)
    )
    assert taken["fills"][0]["price"] == str(PRICE)  # the resting order's price

    filled = wait_for(
        lambda: (
            order_state(relayer, buy.hash)["status"] == "filled" and order_state(relayer, buy.hash)
        ),
        60,
        what="buy filled",
    )
    fill = filled["fills"][0]
    assert fill["state"] == "confirmed" and fill["txHash"] and fill["block"]
    s = order_state(relayer, sell.hash)
    assert (s["status"], s["filled"], s["open"]) == ("partially_filled", str(ONE), str(ONE))
    # the chain agrees
    assert c.ledger.balance_of(buyer.address, c.series) == ONE
    assert c.ledger.position(seller.address, c.series).short == ONE
    assert c.ledger.remaining(sell.order) == ONE and c.ledger.remaining(buy.order) == 0
    receipt = c.w3.eth.get_transaction_receipt(fill["txHash"])
    assert receipt["status"] == 1 and receipt["blockNumber"] == fill["block"]
    assert receipt["to"] == c.ledger.address and receipt["from"] == c.relayer
    trades = relayer.get(f"/v1/trades/{name}").json()["trades"]
    assert [t["status"] for t in trades] == ["confirmed"]
    fills = relayer.get(f"/v1/fills?maker={buyer.address}").json()["fills"]
    assert [f["txHash"] for f in fills] == [fill["txHash"]]

    # a signed Cancel takes the rest off; the book is empty
    resp = relayer.delete(f"/v1/orders/0x{sell.hash.hex()}", cancel_body(c, seller, sell.hash))
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "cancelled" and resp.json()["filled"] == str(ONE)
    assert relayer.get(f"/v1/orderbook/{name}").json()["asks"] == []
