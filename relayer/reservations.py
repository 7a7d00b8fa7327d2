"""Collateral reserved across matched-but-unconfirmed fills, so no match reverts for lack of funds.

The chain knows each maker's free collateral per token and the longs it holds per series (the
chain follower keeps a `Funds` view of them). A match only settles later, so between the match and
its confirmation the relayer must count what that match will take:

- the buyer pays the premium rounded up plus its fee. The fee is bounded by what the buyer signed
  (``maxFee`` pro rata: ``fee * order.amount <= maxFee * amount``) and by the most the ledger can
  ever charge (`MAX_FEE_BPS`); the smaller bound is reserved, so a fee change cannot make a
  reserved match revert;
- the seller delivers longs it holds first and writes the rest from free collateral (a call locks
  one unit of the underlying per contract, a put strike x amount of quote, rounded up per trade as
  the ledger does: `strikeline.units.full_collateral`).

Nothing a match will pay back (the seller's premium, a buyer's released short collateral) is
counted before it is confirmed. Reservations are released when the match is confirmed or
reverted. A match whose `Fill` the chain follower saw at the head is `land`ed: the follower
re-read its makers' funds at that block, so the `Funds` view already carries the payment and its
reservation stops counting (else the fill would count twice until it is confirmed); if that
block leaves the chain, `unland` counts it again. Pure logic: no I/O, inputs are the `Funds` view.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from relayer.model import BookOrder, Instrument
from strikeline.orders import BPS, MAX_FEE_BPS
from strikeline.units import UNIT, UNIT_SQ, full_collateral, mul_div_up

_FEE_DENOMINATOR = UNIT * BPS  # fees are bps of the premium, amount * price / UNIT


class Funds(Protocol):
    """What the chain says a maker holds at the current block."""

    def free(self, account: str, token: str) -> int:
        """Free (unlocked) collateral of `account` in `token`, in base units."""
        ...

    def longs(self, account: str, series_id: int) -> int:
        """Longs of `series_id` that `account` holds, in option units."""
        ...


class Requirement(msgspec.Struct, frozen=True, gc=False):
    """What one match takes from its two makers until it is confirmed or reverted (a msgspec
    struct: one is built per candidate match, five times faster than a frozen dataclass)."""

    buyer: str
    quote_token: str
    buyer_quote: int
    seller: str
    series_id: int
    seller_longs: int
    collateral_token: str
    seller_collateral: int


def buyer_fee_bound(order: BookOrder, amount: int, price: int) -> int:
    """The largest fee the ledger can take from buy `order` for a fill of `amount` at `price`:
    its signed share, or `strikeline.orders.fee` at `MAX_FEE_BPS` if that is smaller (computed
    with `mul_div_up`, as `fee` does, without re-validating the book's integers)."""
    ceiling = mul_div_up(amount * price, MAX_FEE_BPS, UNIT * BPS)
    return min(ceiling, order.max_fee * amount // order.amount)


def _plain_terms(instrument: Instrument) -> bool:
    """Whether `full_collateral` accepts the instrument's terms (a positive unit, a strike that
    is a non-negative int), so the book may compute the collateral inline."""
    unit, strike = instrument.collateral_unit, instrument.strike
    return type(unit) is int and unit > 0 and type(strike) is int and strike >= 0


class Reservations:
    """Per maker and token, what matched-but-unconfirmed fills will take; per match, what it
    reserved (so it is released exactly)."""

    def __init__(self, funds: Funds):
        self.funds = funds
        self._quote: dict[tuple[str, str], int] = {}  # (maker, token) -> reserved base units
        self._longs: dict[tuple[str, int], int] = {}  # (maker, series) -> reserved longs
        self._by_match: dict[int, Requirement] = {}
        self._landed: dict[int, int] = {}  # match id -> block of its Fill (reservation suspended)
        self._plain: Instrument | None = None  # the last instrument `_plain_terms` accepted

    # ------------------------------------------------------------------------------ queries

    def reserved(self, maker: str, token: str) -> int:
        """Collateral of `maker` in `token` held back for unconfirmed matches."""
        return self._quote.get((maker, token), 0)

    def reserved_longs(self, maker: str, series_id: int) -> int:
        """Longs of `maker` in `series_id` promised to unconfirmed matches."""
        return self._longs.get((maker, series_id), 0)

    def available(self, maker: str, token: str) -> int:
        """Free collateral on chain less what unconfirmed matches will take (may be negative when
        the chain view dropped below the reservations, e.g. after a withdrawal)."""
        return self.funds.free(maker, token) - self.reserved(maker, token)

    def available_longs(self, maker: str, series_id: int) -> int:
        """Longs held on chain less those promised to unconfirmed matches."""
        return self.funds.longs(maker, series_id) - self.reserved_longs(maker, series_id)

    def of_match(self, match_id: int) -> Requirement | None:
        """What match `match_id` reserved, if it still holds a reservation."""
        return self._by_match.get(match_id)

    def landed_in(self, match_id: int) -> int | None:
        """The block `match_id`'s `Fill` landed in while its reservation is suspended (the
        `Funds` view shows the fill), else None."""
        return self._landed.get(match_id)

    def total(self) -> dict[tuple[str, str], int]:
        """Every non-zero reservation per (maker, token); for tests and metrics."""
        return {k: v for k, v in self._quote.items() if v}

    def total_longs(self) -> dict[tuple[str, int], int]:
        """Every non-zero reservation of longs per (maker, series)."""
        return {k: v for k, v in self._longs.items() if v}

    # ------------------------------------------------------------------------------ pricing

    def requirement(
        self, instrument: Instrument, buy: BookOrder, sell: BookOrder, amount: int, price: int
    ) -> Requirement:
        """What a match of `amount` at `price` between `buy` and `sell` would take now, whether
        or not the makers can pay for it (`check` with the funds left out)."""
        req = self.check(instrument, buy, sell, amount, price, funds_checked=False)
        assert isinstance(req, Requirement)
        return req

    def check(
        self,
        instrument: Instrument,
        buy: BookOrder,
        sell: BookOrder,
        amount: int,
        price: int,
        funds_checked: bool = True,
    ) -> Requirement | str:
        """What a match of `amount` at `price` between `buy` and `sell` would take now, or, when
        the available funds of a maker do not cover it, that maker (buyer first), a str:
        `requirement` then `short_of` in one call, the same `Funds` reads in the same order.

        Called for every candidate match: one call instead of two, no `Requirement` built for a
        refused match, and the ceilings computed inline (the integers are the book's, already
        validated), with the same roundings as `mul_div_up`, `full_collateral` and
        `buyer_fee_bound`."""
        series_id = instrument.series_id
        seller = sell.maker
        funds, quote = self.funds, self._quote
        held = funds.longs(seller, series_id) - self._longs.get((seller, series_id), 0)
        delivered = amount if held >= amount else held if held > 0 else 0
        written = amount - delivered
        if not written:
            collateral = 0
        elif instrument is self._plain or _plain_terms(instrument):
            self._plain = instrument
            unit = instrument.collateral_unit
            if instrument.is_put:
                collateral = -((-written * instrument.strike * unit) // UNIT_SQ)
            else:
                collateral = -((-written * unit) // UNIT)
        else:  # refuses the terms as `full_collateral` does
            collateral = full_collateral(
                instrument.is_put, instrument.collateral_unit, instrument.strike, written
            )
        premium = amount * price
        fee = -((-premium * MAX_FEE_BPS) // _FEE_DENOMINATOR)
        cap = buy.max_fee * amount
        if fee * buy.amount > cap:  # the signed share, max_fee * amount // order.amount, is less
            fee = cap // buy.amount
        buyer_quote = -(-premium // UNIT) + fee
        buyer, quote_token = buy.maker, instrument.quote_token
        collateral_token = instrument.collateral_token
        if funds_checked:  # `short_of`, inline
            if (
                buyer_quote
                and funds.free(buyer, quote_token) - quote.get((buyer, quote_token), 0)
                < buyer_quote
            ):
                return buyer
            if (
                collateral
                and funds.free(seller, collateral_token) - quote.get((seller, collateral_token), 0)
                < collateral
            ):
                return seller
        return Requirement(
            buyer,
            quote_token,
            buyer_quote,
            seller,
            series_id,
            delivered,
            collateral_token,
            collateral,
        )

    def short_of(self, req: Requirement) -> str | None:
        """The maker (buyer first) whose available funds do not cover `req`, or None."""
        # `available`, inline: this runs for every candidate match
        quote, free = self._quote, self.funds.free
        need = req.buyer_quote
        if need:
            buyer, token = req.buyer, req.quote_token
            if free(buyer, token) - quote.get((buyer, token), 0) < need:
                return buyer
        need = req.seller_collateral
        if need:
            seller, token = req.seller, req.collateral_token
            if free(seller, token) - quote.get((seller, token), 0) < need:
                return seller
        return None

    # ------------------------------------------------------------------------------ changes

    def reserve(self, match_id: int, req: Requirement) -> None:
        """Hold `req` back for `match_id` (idempotent per match id)."""
        if match_id in self._by_match:
            return
        self._by_match[match_id] = req
        # `_add(req, 1)`, inline: every match reserves
        quote = self._quote
        if req.buyer_quote:
            key = (req.buyer, req.quote_token)
            quote[key] = quote.get(key, 0) + req.buyer_quote
        if req.seller_collateral:
            key = (req.seller, req.collateral_token)
            quote[key] = quote.get(key, 0) + req.seller_collateral
        if req.seller_longs:
            lkey = (req.seller, req.series_id)
            self._longs[lkey] = self._longs.get(lkey, 0) + req.seller_longs

    def release(self, match_id: int) -> Requirement | None:
        """Give back what `match_id` reserved (confirmed or reverted); None if it held nothing."""
        req = self._by_match.pop(match_id, None)
        if req is not None and self._landed.pop(match_id, None) is None:
            self._add(req, -1)  # a landed match no longer counts: nothing more to give back
        return req

    def land(self, match_id: int, block: int) -> bool:
        """The match's `Fill` is in `block` and the `Funds` view was re-read there: what the
        match takes is in it, so its reservation stops counting until the match is confirmed or
        reverted (`release`) or `block` leaves the chain (`unland`). Returns whether it changed
        anything (False for a match holding no reservation or already landed)."""
        req = self._by_match.get(match_id)
        if req is None or match_id in self._landed:
            return False
        self._landed[match_id] = block
        self._add(req, -1)
        return True

    def unland(self, from_block: int) -> list[int]:
        """Blocks from `from_block` on left the chain: matches that landed in them count again.
        Returns their ids."""
        ids = [i for i, block in self._landed.items() if block >= from_block]
        for match_id in ids:
            del self._landed[match_id]
            self._add(self._by_match[match_id], 1)
        return ids

    def _add(self, req: Requirement, sign: int) -> None:
        if req.buyer_quote:
            key = (req.buyer, req.quote_token)
            self._quote[key] = self._quote.get(key, 0) + sign * req.buyer_quote
        if req.seller_collateral:
            key = (req.seller, req.collateral_token)
            self._quote[key] = self._quote.get(key, 0) + sign * req.seller_collateral
        if req.seller_longs:
            lkey = (req.seller, req.series_id)
            self._longs[lkey] = self._longs.get(lkey, 0) + sign * req.seller_longs


_PLENTY = 2**255  # a module constant: the compiler does not fold powers this large


class UnlimitedFunds:
    """A `Funds` view in which every maker can pay for anything (benchmarks, model tests)."""

    def free(self, account: str, token: str) -> int:
        return _PLENTY

    def longs(self, account: str, series_id: int) -> int:
        return 0
