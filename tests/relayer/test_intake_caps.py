"""Per-maker limits under concurrent intake (`python -m relayer` on anvil, SQLite journal): orders
of one maker that are in flight together are admitted one after the other on the engine's thread
(`Gateway._admit`), so the open-order cap and the maker's token bucket hold exactly, not once per
order that happened to be checked before the others were placed; a maker whose funds are not
cached yet is read once and admitted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from system import PRICE, RelayerProcess, body, fund, new_maker, signed

CAP = 3
ORDERS = 24


@pytest.fixture(scope="module")
def relayer(
    system: SimpleNamespace, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RelayerProcess]:
    workdir = tmp_path_factory.mktemp("caps")
    proc = RelayerProcess(
        system,
        f"sqlite:///{workdir / 'relayer.db'}",
        workdir,
        max_open_per_instrument=CAP,
        max_open_per_maker=CAP + 1,
        rate_maker_per_s=0.001,
        rate_maker_burst=CAP + 2,
        rate_ip_burst=100_000,
        rate_ip_per_s=100_000,
    )
    try:
        yield proc.start(timeout=180)  # a loaded machine (other suites) slows the boot
    finally:
        proc.stop()


async def _post_all(port: int, bodies: list[bytes]) -> list[tuple[int, str]]:
    """Every body on its own keep-alive connection, all written before any answer is read."""
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in bodies]
    for (_, writer), payload in zip(conns, bodies, strict=True):
        writer.write(
            b"POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload)
        )
    answers = []
    for reader, writer in conns:
        status = int((await reader.readline()).split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        data = json.loads(await reader.readexactly(length))
        answers.append((status, data["error"]["code"] if status >= 400 else "ok"))
        writer.close()
    return answers


def test_the_open_order_cap_holds_for_orders_in_flight_together(
    system: SimpleNamespace, relayer: RelayerProcess
) -> None:
    c = system
    maker = new_maker(c)
    fund(c, maker, c.weth, 100 * 10**18)
    bodies = [
        json.dumps(body(signed(c, maker, False, n, limit_price=PRICE + n))).encode()
        for n in range(ORDERS)
    ]
    answers = asyncio.run(_post_all(relayer.port, bodies))
    codes = [code for _, code in answers]
    # CAP rest; the bucket (burst CAP + 2, no refill) lets two more reach the cap; the rest 429
    assert codes.count("ok") == CAP, answers
    assert codes.count("open_order_cap") == 2, answers
    assert codes.count("rate_limited") == ORDERS - CAP - 2, answers
    live = relayer.get(f"/v1/orders?maker={maker.address}").json()["orders"]
    assert len(live) == CAP


def test_the_maker_bucket_is_taken_once_per_new_order(
    system: SimpleNamespace, relayer: RelayerProcess
) -> None:
    """Burst CAP + 2 and no refill: CAP orders rest, the next two are refused by the cap (each
    takes a token), every later one by the empty bucket; re-posts take none and stay 200."""
    c = system
    maker = new_maker(c)
    fund(c, maker, c.weth, 100 * 10**18)
    orders = [signed(c, maker, False, n, limit_price=PRICE + n) for n in range(CAP + 4)]
    first = [relayer.post("/v1/orders", body(s)) for s in orders]
    codes = ["ok" if a.status_code < 400 else a.json()["error"]["code"] for a in first]
    assert codes == ["ok"] * CAP + ["open_order_cap"] * 2 + ["rate_limited"] * 2
    again = [relayer.post("/v1/orders", body(s)) for s in orders[:CAP]]
    assert [a.status_code for a in again] == [200] * CAP
    assert all(a.json()["duplicate"] for a in again)
