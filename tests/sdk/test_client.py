"""strikeline.client without a relayer: the WebSocket sequence checks against a scripted server
(a real websockets server that skips a sequence number, as a relayer that dropped a message
would), the error line, and that no secret reaches a repr or an error. The client against the
real relayer is tested in tests/relayer/test_e2e_client.py."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets

from strikeline.client import (
    Client,
    ClientError,
    RelayerApiError,
    Snapshot,
    Update,
    collect,
)
from strikeline.errors import StrikelineError

KEY = "0x" + "4c" * 32


async def scripted_server(script: list[list[dict[str, Any]]], received: list[dict[str, Any]]):
    """Answers the n-th subscribe with the n-th list of messages."""

    async def handler(ws: Any) -> None:
        async for raw in ws:
            msg = json.loads(raw)
            received.append(msg)
            if msg["op"] == "subscribe" and script:
                for out in script.pop(0):
                    await ws.send(json.dumps(out))
        await asyncio.sleep(0)

    return await websockets.serve(handler, "127.0.0.1", 0)


def msg(kind: str, seq: int, data: Any, channel: str = "orderbook.X") -> dict[str, Any]:
    return {"type": kind, "channel": channel, "seq": seq, "data": data}


def run_script(script: list[list[dict[str, Any]]], count: int) -> tuple[list[Any], list[Any]]:
    received: list[dict[str, Any]] = []

    async def main() -> list[Any]:
        server = await scripted_server(script, received)
        port = server.sockets[0].getsockname()[1]
        try:
            return await collect(f"http://127.0.0.1:{port}", ["orderbook.X"], count, timeout=10)
        finally:
            server.close()
            await server.wait_closed()

    return asyncio.run(main()), received


def test_updates_in_sequence_pass_through_and_heartbeats_are_swallowed() -> None:
    events, received = run_script(
        [
            [
                msg("snapshot", 5, "s5"),
                {"type": "heartbeat", "ts": 1},
                msg("update", 6, "u6"),
                msg("update", 7, "u7"),
            ]
        ],
        3,
    )
    assert events == [
        Snapshot(channel="orderbook.X", seq=5, data="s5"),
        Update(channel="orderbook.X", seq=6, data="u6"),
        Update(channel="orderbook.X", seq=7, data="u7"),
    ]
    assert received == [{"op": "subscribe", "channel": "orderbook.X"}]


def test_a_sequence_gap_resubscribes_and_yields_a_fresh_snapshot() -> None:
    events, received = run_script(
        [
            [msg("snapshot", 5, "s5"), msg("update", 6, "u6"), msg("update", 8, "u8-gap")],
            [msg("update", 9, "stale"), msg("snapshot", 9, "s9"), msg("update", 10, "u10")],
        ],
        4,
    )
    assert [(type(e).__name__, e.seq, e.data) for e in events] == [
        ("Snapshot", 5, "s5"),
        ("Update", 6, "u6"),
        ("Snapshot", 9, "s9"),  # u8 (after a gap) and u9 (before the new snapshot) never passed
        ("Update", 10, "u10"),
    ]
    assert events[2].resync is True and events[0].resync is False
    assert [m["op"] for m in received] == ["subscribe", "unsubscribe", "subscribe"]


def test_a_refused_channel_raises_the_api_code() -> None:
    with pytest.raises(RelayerApiError) as info:
        run_script(
            [
                [
                    {
                        "error": {
                            "code": "bad_channel",
                            "message": "unknown channel",
                            "field": "channel",
                        }
                    }
                ]
            ],
            1,
        )
    assert info.value.code == "bad_channel" and info.value.field == "channel"


def test_errors_are_one_line_strikeline_errors() -> None:
    err = RelayerApiError.from_body(
        409,
        {"error": {"code": "open_order_cap", "message": "too\nmany", "retryable": True}},
        2.0,
    )
    assert isinstance(err, StrikelineError)
    assert str(err) == "open_order_cap (409): too many"
    assert (err.status, err.retryable, err.retry_after) == (409, True, 2.0)
    assert RelayerApiError.from_body(502, "gateway html").code == "http_error"


def test_no_secret_in_repr_or_errors() -> None:
    client = Client("http://user:hunter2@127.0.0.1:9", signer=KEY)
    shown = repr(client)
    assert "4c4c" not in shown and "hunter2" not in shown
    assert "0x" in shown  # the signer's address is shown
    with pytest.raises(ClientError) as info:
        client.health()  # nothing listens on port 9
    assert "hunter2" not in str(info.value) and "4c4c" not in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(StrikelineError) as bad:
        Client("http://127.0.0.1:9", signer="0x" + "zz" * 32)
    assert "zz" not in str(bad.value)
    client.close()
