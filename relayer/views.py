"""JSON views of orders, matches and books, as the REST API and the WebSocket channels show them.

Amounts are decimal strings of on-chain units (docs/architecture.md, "Units"); hashes and
addresses are 0x hex. Each order carries its amounts kept apart (`open`, `matched` off chain,
`pending` sent, `filled` confirmed on chain, `cancelled`), and each match its state
(`matched | pending | confirmed | reverted`) and, for trade lists, its status
(`pending | confirmed | reverted`: a match made and not yet confirmed is pending settlement).

Views are built on the engine's thread (`EngineWorker.render`) or under `EngineWorker.call`, never
while the engine changes the objects they read.
"""

from __future__ import annotations

from typing import Any

from relayer.engine import Engine, PlaceResult
from relayer.model import BookOrder, Instrument, MatchRecord, MatchState


def hex0x(value: bytes | None) -> str | None:
    return None if value is None else "0x" + value.hex()


def trade_status(state: MatchState) -> str:
    if state is MatchState.CONFIRMED:
        return "confirmed"
    if state is MatchState.REVERTED:
        return "reverted"
    return "pending"


def match_view(m: MatchRecord, names: dict[int, str]) -> dict[str, Any]:
    return {
        "id": m.id,
        "instrument": names.get(m.series_id, str(m.series_id)),
        "seriesId": str(m.series_id),
        "buyOrder": hex0x(m.buy),
        "sellOrder": hex0x(m.sell),
        "amount": str(m.amount),
        "price": str(m.price),
        "aggressor": "sell" if m.buy_is_maker else "buy",
        "state": m.state.value,
        "status": trade_status(m.state),
        "txHash": hex0x(m.tx_hash),
        "block": m.block,
    }


def order_view(o: BookOrder, names: dict[int, str]) -> dict[str, Any]:
    return {
        "hash": hex0x(o.hash),
        "maker": o.maker,
        "instrument": names.get(o.series_id, str(o.series_id)),
        "seriesId": str(o.series_id),
        "side": "buy" if o.is_buy else "sell",
        "amount": str(o.amount),
        "limitPrice": str(o.price),
        "maxFee": str(o.max_fee),
        "nonce": str(o.nonce),
        "deadline": str(o.deadline),
        "timeInForce": o.tif.value,
        "clientOrderId": o.client_order_id,
        "status": o.status.value,
        "reason": o.reason,
        "open": str(o.open),
        "matched": str(o.matched),
        "pending": str(o.pending),
        "filled": str(o.filled),
        "cancelled": str(o.cancelled),
        "sequence": o.seq,
    }


def order_with_fills(engine: Engine, o: BookOrder, names: dict[int, str]) -> dict[str, Any]:
    view = order_view(o, names)
    view["fills"] = [match_view(m, names) for m in engine.matches_of(o.hash)]
    return view


def depth_view(engine: Engine, inst: Instrument, levels: int = 20) -> dict[str, Any]:
    bids, asks = engine.books[inst.series_id].depth(levels)
    return {
        "instrument": inst.name,
        "seriesId": str(inst.series_id),
        "bids": [[str(p), str(q), n] for p, q, n in bids],
        "asks": [[str(p), str(q), n] for p, q, n in asks],
    }


def instrument_view(inst: Instrument) -> dict[str, Any]:
    return {
        "instrument": inst.name,
        "seriesId": str(inst.series_id),
        "isPut": inst.is_put,
        "strike": str(inst.strike),
        "expiry": inst.expiry,
        "quoteToken": inst.quote_token,
        "collateralToken": inst.collateral_token,
        "tick": str(inst.tick),
        "lot": str(inst.lot),
    }


def render_results(
    engine: Engine, results: list[PlaceResult], names: dict[int, str]
) -> list[dict[str, Any] | None]:
    """Views of placed orders (None for refused ones), built on the engine thread."""
    return [
        None if r.error is not None else order_with_fills(engine, r.order, names) for r in results
    ]
