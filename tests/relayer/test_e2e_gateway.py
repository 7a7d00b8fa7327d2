"""The gateway's intake and interfaces against a running relayer (`python -m relayer` on anvil
with the v2 system, SQLite journal): every refusal is a 4xx with its code and field, limits and
caps answer 429/409, the debug endpoint shows the EIP-712 digest, WebSocket channels carry a
snapshot then numbered updates, OpenAPI and metrics are served, bad settings stop the boot with
one line, and a burst of malformed requests never gets a 5xx."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from eth_account import Account
from system import ONE, PRICE, ROOT, RelayerProcess, body, fund, new_maker, signed, wait_for


@pytest.fixture(scope="module")
def gw(
    system: SimpleNamespace, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RelayerProcess]:
    workdir = tmp_path_factory.mktemp("gateway")
    proc = RelayerProcess(
        system,
        f"sqlite:///{workdir / 'relayer.db'}",
        workdir,
        rate_maker_per_s=0.2,
        rate_maker_burst=4,
        max_open_per_instrument=3,
        max_body_bytes=4096,
        rate_ip_burst=100_000,
        rate_ip_per_s=100_000,
    )
    try:
        yield proc.start()
    finally:
        proc.stop()


def code_of(resp: httpx.Response) -> tuple[int, str, Any]:
    err = resp.json()["error"]
    return resp.status_code, err["code"], err["field"]


def test_refusals_are_4xx_with_code_and_field(system: SimpleNamespace, gw: RelayerProcess) -> None:
    c = system
    maker = new_maker(c)
    fund(c, maker, c.weth, 10**18)
    good = body(signed(c, maker, False, 1, ONE))

    def with_order(**fields: Any) -> dict[str, Any]:
        return {**good, "order": {**good["order"], **fields}}

    post = gw.post
    assert code_of(httpx.post(gw.url + "/v1/orders", content=b"{nope", timeout=10))[:2] == (
        400,
        "bad_json",
    )
    assert code_of(post("/v1/orders", with_order(amount=100)))[::2] == (400, "order.amount")
    assert code_of(post("/v1/orders", with_order(amount="1" + "0" * 78)))[:2] == (
        400,
        "bad_request",
    )
    assert code_of(post("/v1/orders", with_order(amount="-5")))[:2] == (400, "bad_request")
    assert code_of(post("/v1/orders", with_order(maker="0x1234")))[::2] == (400, "order.maker")
    assert code_of(post("/v1/orders", {**good, "signature": "0xzz"}))[::2] == (400, "signature")
    assert code_of(post("/v1/orders", {**good, "extra": 1}))[:2] == (400, "bad_request")
    # the signature no longer fits a changed field
    assert code_of(post("/v1/orders", with_order(amount=str(2 * ONE))))[:2] == (
        400,
        "bad_signature",
    )
    other = Account.create()
    assert code_of(post("/v1/orders", body(signed(c, maker, False, 2, sender=other.address))))[
        :2
    ] == (
        400,
        "sender_not_allowed",
    )
    assert code_of(post("/v1/orders", body(signed(c, maker, False, 3, taker=other.address))))[
        :2
    ] == (
        400,
        "taker_not_supported",
    )
    assert code_of(post("/v1/orders", body(signed(c, maker, False, 4, deadline=1))))[:2] == (
        400,
        "deadline_passed",
    )
    assert code_of(post("/v1/orders", body(signed(c, maker, False, 5, series_id=12345))))[:2] == (
        404,
        "unknown_instrument",
    )
    poor = new_maker(c)
    assert code_of(post("/v1/orders", body(signed(c, poor, True, 1))))[:2] == (
        400,
        "insufficient_funds",
    )
    assert code_of(post("/v1/orders", body(signed(c, maker, False, 6, limit_price=0))))[:2] == (
        400,
        "price_not_on_tick",
    )
    huge = httpx.post(gw.url + "/v1/orders", content=b" " * 10_000, timeout=10)
    assert code_of(huge)[:2] == (413, "body_too_large")
    assert code_of(gw.get("/v1/orders/0x1234"))[:2] == (400, "bad_request")
    assert code_of(gw.get("/v1/orders/0x" + "ab" * 32))[:2] == (404, "unknown_order")
    assert code_of(gw.get("/v1/nothing"))[:2] == (404, "not_found")
    ok = post("/v1/orders", good)
    assert ok.status_code == 201, ok.text


def test_rate_limit_and_open_order_cap(system: SimpleNamespace, gw: RelayerProcess) -> None:
    c = system
    maker = new_maker(c)
    fund(c, maker, c.weth, 10 * 10**18)
    answers = [
        gw.post("/v1/orders", body(signed(c, maker, False, n, limit_price=PRICE + n)))
        for n in range(5)
    ]
    codes = [a.status_code for a in answers]
    assert codes[:3] == [201, 201, 201]
    assert code_of(answers[3])[:2] == (409, "open_order_cap")
    assert code_of(answers[4])[:2] == (429, "rate_limited")
    assert int(answers[4].headers["Retry-After"]) >= 1
    assert answers[4].json()["error"]["retryable"] is True
    # a re-post of a known order is idempotent, not limited
    again = gw.post("/v1/orders", body(signed(c, maker, False, 0, limit_price=PRICE)))
    assert again.status_code == 200 and again.json()["duplicate"] is True


def test_debug_endpoint_shows_the_eip712_digest(
    system: SimpleNamespace, gw: RelayerProcess
) -> None:
    c = system
    maker = new_maker(c)
    s = signed(c, maker, True, 1)
    got = gw.post("/v1/debug/order", body(s)).json()
    assert got["digest"] == "0x" + s.hash.hex()
    assert got["structHash"] == "0x" + s.order.struct_hash().hex()
    assert got["domainSeparator"] == "0x" + c.ledger.domain_separator().hex()
    assert got["recoveredSigner"] == maker.address and got["matchesMaker"] is True
    forged = {**body(s), "signature": "0x" + signed(c, new_maker(c), True, 1).signature.hex()}
    got = gw.post("/v1/debug/order", forged).json()
    assert got["matchesMaker"] is False


def test_websocket_snapshot_then_numbered_updates(
    system: SimpleNamespace, gw: RelayerProcess
) -> None:
    from websockets.sync.client import connect

    c = system
    name = gw.get("/v1/instruments").json()["instruments"][0]["instrument"]
    maker = new_maker(c)
    fund(c, maker, c.weth, 10**18)
    with connect(gw.url.replace("http", "ws") + "/v1/ws") as ws:
        ws.send(json.dumps({"op": "subscribe", "channel": f"orderbook.{name}"}))
        snap = json.loads(ws.recv(timeout=10))
        assert snap["type"] == "snapshot" and snap["channel"] == f"orderbook.{name}"
        ws.send(json.dumps({"op": "subscribe", "channel": f"orders.{maker.address}"}))
        mine = json.loads(ws.recv(timeout=10))
        assert mine["type"] == "snapshot" and mine["data"] == []
        s = signed(c, maker, False, 1, limit_price=PRICE * 3)
        assert gw.post("/v1/orders", body(s)).status_code == 201
        updates = [json.loads(ws.recv(timeout=10)) for _ in range(2)]
        by_channel = {u["channel"]: u for u in updates}
        book = by_channel[f"orderbook.{name}"]
        assert book["type"] == "update" and book["seq"] == snap["seq"] + 1
        assert [str(PRICE * 3), str(ONE), 1] in book["data"]["asks"]
        order = by_channel[f"orders.{maker.address}"]
        assert order["seq"] == 1 and order["data"]["hash"] == "0x" + s.hash.hex()
        ws.send(json.dumps({"op": "subscribe", "channel": "nonsense.x"}))
        assert json.loads(ws.recv(timeout=10))["error"]["code"] == "bad_channel"


def test_openapi_metrics_health(gw: RelayerProcess) -> None:
    doc = gw.get("/openapi.json").json()
    assert {"/v1/orders", "/v1/orders/{hash}", "/v1/orderbook/{instrument}"} <= set(doc["paths"])
    assert "PlaceRequest" in doc["components"]["schemas"]
    metrics = gw.get("/metrics").text
    assert "relayer_orders_total" in metrics and "relayer_intake_seconds_bucket" in metrics
    health = gw.get("/v1/health").json()
    assert health["status"] == "ok" and health["accepting"] is True


def test_malformed_requests_never_get_a_5xx(system: SimpleNamespace, gw: RelayerProcess) -> None:
    """2,000 mutated bodies (bad JSON, wrong types, huge and negative numbers, bad hex,
    duplicate keys, truncations) and paths: every answer is below 500."""
    rng = random.Random(7)
    maker = new_maker(system)
    base = json.dumps(body(signed(system, maker, True, 1)))
    junk = [
        "-1",
        "1e400",
        '"0x"',
        "null",
        "[]",
        "{}",
        '"' + "f" * 5000 + '"',
        str(2**300),
        "true",
        '"\\u0000"',
    ]
    statuses = []
    with httpx.Client(timeout=10) as client:
        for i in range(2_000):
            kind = i % 5
            if kind == 0:  # truncate
                payload = base[: rng.randrange(len(base))]
            elif kind == 1:  # replace a value
                key = rng.choice(
                    ["amount", "nonce", "seriesId", "maker", "isBuy", "signature", "deadline"]
                )
                payload = base.replace(f'"{key}": ', f'"{key}": {rng.choice(junk)}, "_{key}": ', 1)
            elif kind == 2:  # duplicate keys
                payload = base[:-1] + ', "signature": ' + rng.choice(junk) + "}"
            elif kind == 3:  # random bytes
                payload = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))).decode(
                    "latin-1"
                )
            else:  # a byte flipped
                pos = rng.randrange(len(base))
                payload = base[:pos] + chr(rng.randrange(32, 127)) + base[pos + 1 :]
            path = rng.choice(["/v1/orders", "/v1/orders/batch", "/v1/debug/order"])
            statuses.append(
                client.post(gw.url + path, content=payload.encode("utf-8", "replace")).status_code
            )
            if i % 100 == 0:
                statuses.append(client.get(gw.url + f"/v1/orders/{payload[:70]}").status_code)
    assert max(statuses) < 500, sorted(set(statuses))
    assert gw.get("/v1/health").status_code == 200


def run_relayer(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STRIKELINE_RELAYER_")}
    clean.update(env, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "relayer", *args],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )


def test_help_lists_every_setting() -> None:
    from relayer.settings import RelayerSettings

    out = run_relayer({}, "--help").stdout
    for name in RelayerSettings.model_fields:
        assert f"--{name.replace('_', '-')}" in out and f"STRIKELINE_RELAYER_{name.upper()}" in out


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({}, "STRIKELINE_RELAYER_RPC_URLS"),
        ({"CHAIN_ID": "abc"}, "STRIKELINE_RELAYER_CHAIN_ID"),
        ({"CHAIN_ID": "999"}, "STRIKELINE_RELAYER_DEPLOYMENT"),  # the file is for 31337
        ({"DEPLOYMENT": "/nonexistent.json"}, "STRIKELINE_RELAYER_DEPLOYMENT"),
        ({"BATCH_SIZE": "17"}, "STRIKELINE_RELAYER_BATCH_SIZE"),
        ({"DATABASE_URL": "mysql://x"}, "STRIKELINE_RELAYER_DATABASE_URL"),
        ({"ANVIL_ACCOUNT": "5"}, "STRIKELINE_RELAYER_ANVIL_ACCOUNT"),  # not a registered relayer
        (
            {
                "ANVIL_ACCOUNT": "",
                "KEYSTORE": "/tmp/nokey.json",
                "KEYSTORE_PASSPHRASE": "hunter2-secret",
            },
            "STRIKELINE_RELAYER_KEYSTORE",
        ),
        ({"RPC_URLS": "http://127.0.0.1:1"}, "STRIKELINE_RELAYER_RPC_URLS"),
    ],
)
def test_bad_setting_stops_the_boot_with_one_line(
    system: SimpleNamespace, tmp_path: Path, env: dict[str, str], names: str
) -> None:
    base = {
        "RPC_URLS": system.node.url,
        "CHAIN_ID": "31337",
        "DEPLOYMENT": str(system.deployment),
        "ANVIL_ACCOUNT": "3",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}",
        "PORT": "0",
    }
    if env == {}:
        base = {}
    merged = {k: v for k, v in {**base, **env}.items() if v != ""}
    done = run_relayer({f"STRIKELINE_RELAYER_{k}": v for k, v in merged.items()})
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0], done.stderr
    assert "Traceback" not in done.stderr and "hunter2" not in done.stderr


def test_sigterm_drains_and_exits(system: SimpleNamespace, tmp_path: Path) -> None:
    proc = RelayerProcess(system, f"sqlite:///{tmp_path / 'r.db'}", tmp_path).start()
    try:
        assert proc.terminate() == 0, proc.logs()
        assert "stopped" in proc.logs()
    finally:
        proc.stop()
    again = RelayerProcess(system, f"sqlite:///{tmp_path / 'r.db'}", tmp_path).start()  # resumes
    try:
        wait_for(lambda: again.get("/v1/health").status_code == 200, 10)
    finally:
        again.stop()
