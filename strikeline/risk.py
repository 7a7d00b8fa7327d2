"""Margin and liquidation maths of `contracts/modules/margin.vy`, mirrored exactly.

Integers only. Every function returns what the module returns for the same inputs and
raises `MarginError` with the module's revert string wherever the module reverts (for
parameters that pass `check_margin_params` / `check_auction_params`, as the module
assumes). Requirements round up; payments to liquidators and holders round down.

Per-contract rates are integers: puts in quote price units (8 decimals) over `PUT_DEN`,
calls in 18-decimal fractions of one unit of the underlying over `CALL_DEN`; a quantity in
collateral units is `amount * rate * token_unit / DEN`. `docs/margin.md` has the rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import isqrt

from strikeline.errors import StrikelineError

BPS = 10_000
UNIT = 10**8
WAD = 10**18
PUT_DEN = UNIT * UNIT
CALL_DEN = UNIT * WAD
YEAR = 31_536_000
MAX_TIME_TO_EXPIRY = 4 * YEAR
MAX_PRICE = 10**20
MAX_AMOUNT = 10**20
MAX_TOKEN_UNIT = 10**36
MAX_SERIES_PER_ACCOUNT = 16
MAX_AUCTION_DURATION = 7 * 86_400
# a liquidation leaves no margined short below this (0.01 contract): it takes the whole short
DUST_AMOUNT = 10**6


class MarginError(StrikelineError, ValueError):
    """An input the margin module rejects; the message is the module's revert string."""


@dataclass(frozen=True)
class MarginParams:
    """Margin parameters of a product, all in basis points.

    `spot_shock_bps` (0 < x <= BPS) is the instantaneous spot move, `time_shock_bps`
    (<= BPS) the extra move per sqrt(year) to expiry, `min_bps` (0 < x <= BPS) the floor of
    the initial requirement as a share of full collateral, and `maintenance_bps`
    (0 < x < BPS) scales the shock and the floor for maintenance.
    """

    spot_shock_bps: int
    time_shock_bps: int
    min_bps: int
    maintenance_bps: int


@dataclass(frozen=True)
class ShortPosition:
    """One short of an account: series terms, its spot, amount and time to expiry."""

    is_put: bool
    strike: int
    spot: int
    amount: int
    time_to_expiry: int
    params: MarginParams


@dataclass(frozen=True)
class AuctionParams:
    """Dutch auction: discount from `start_bps` to `max_bps` (< BPS) over `duration` s.

    `duration` is at most `MAX_AUCTION_DURATION`.
    """

    start_bps: int
    max_bps: int
    duration: int


@dataclass(frozen=True)
class Liquidation:
    """The outcome of `liquidate`; field meanings as in the module's struct."""

    amount: int
    base: int
    reward: int
    from_account: int
    from_insurance: int
    bad_debt: int
    restored: bool


def _require(condition: bool, reason: str) -> None:
    """Raise `MarginError(reason)` unless `condition`, as the module's `assert` does."""
    if not condition:
        raise MarginError(reason)


def _div_up(a: int, b: int) -> int:
    """ceil(a / b) for a >= 0, b > 0."""
    return -(-a // b)


def check_margin_params(params: MarginParams) -> None:
    """Raise unless `params` are in range (the module's set-time check)."""
    _require(0 < params.spot_shock_bps <= BPS, "margin: spot shock out of range")
    _require(params.time_shock_bps <= BPS, "margin: time shock out of range")
    _require(0 < params.min_bps <= BPS, "margin: floor out of range")
    _require(0 < params.maintenance_bps < BPS, "margin: maintenance out of range")


def check_auction_params(auction: AuctionParams) -> None:
    """Raise unless max discount < 100%, start <= max and duration <= a week."""
    _require(auction.max_bps < BPS, "margin: auction max out of range")
    _require(auction.start_bps <= auction.max_bps, "margin: auction start above max")
    _require(auction.duration <= MAX_AUCTION_DURATION, "margin: auction duration out of range")


def check_domain(token_unit: int, strike: int, spot: int, amount: int) -> None:
    """Raise unless the inputs lie in the domain where the module cannot overflow."""
    _require(0 < token_unit <= MAX_TOKEN_UNIT, "margin: token unit out of range")
    _require(strike <= MAX_PRICE, "margin: strike out of range")
    _require(spot <= MAX_PRICE, "margin: spot out of range")
    _require(amount <= MAX_AMOUNT, "margin: amount out of range")


def sqrt_time_bps(time_to_expiry: int) -> int:
    """ceil(sqrt(ceil(min(t, MAX_TIME_TO_EXPIRY) * BPS**2 / YEAR))): sqrt(years) in bps."""
    n = _div_up(min(time_to_expiry, MAX_TIME_TO_EXPIRY) * BPS * BPS, YEAR)
    root = isqrt(n)
    return root + 1 if root * root < n else root


def shock_bps(time_to_expiry: int, params: MarginParams, maintenance: bool) -> int:
    """Spot shock in bps: spot shock plus the time part; scaled for maintenance."""
    shock = params.spot_shock_bps + _div_up(
        params.time_shock_bps * sqrt_time_bps(time_to_expiry), BPS
    )
    if maintenance:
        return _div_up(shock * params.maintenance_bps, BPS)
    return shock


def requirement_rate(
    is_put: bool,
    strike: int,
    spot: int,
    time_to_expiry: int,
    params: MarginParams,
    maintenance: bool,
) -> int:
    """Requirement per contract as a rate.

    put:  min(K, max(K - floor(S * (1 - shock)), ceil(K * floor_bps)))
    call: min(WAD, max(ceil(WAD * (S' - K) / S'), WAD * floor_bps)), S' = ceil(S * (1 + shock))
    """
    shock = shock_bps(time_to_expiry, params, maintenance)
    floor_bps = params.min_bps
    if maintenance:
        floor_bps = _div_up(params.min_bps * params.maintenance_bps, BPS)
    if is_put:
        shocked_spot = spot * (BPS - shock) // BPS if shock < BPS else 0
        loss = strike - shocked_spot if strike > shocked_spot else 0
        return min(strike, max(loss, _div_up(strike * floor_bps, BPS)))
    shocked_spot = _div_up(spot * (BPS + shock), BPS)
    loss = _div_up((shocked_spot - strike) * WAD, shocked_spot) if shocked_spot > strike else 0
    return min(WAD, max(loss, floor_bps * (WAD // BPS)))


def intrinsic_rate(is_put: bool, strike: int, spot: int, round_up: bool) -> int:
    """Payoff per contract at `spot` as a rate: put K - S, call (S - K) / S in WAD."""
    if is_put:
        return strike - spot if strike > spot else 0
    if spot <= strike:
        return 0
    num = (spot - strike) * WAD
    return _div_up(num, spot) if round_up else num // spot


def rate_den(is_put: bool) -> int:
    """The denominator of a rate: `PUT_DEN` for puts, `CALL_DEN` for calls."""
    return PUT_DEN if is_put else CALL_DEN


def scale(is_put: bool, token_unit: int, amount: int, rate: int, round_up: bool) -> int:
    """Collateral units of `amount` contracts at `rate`, rounded as asked."""
    num = amount * rate * token_unit
    return _div_up(num, rate_den(is_put)) if round_up else num // rate_den(is_put)


def requirement(
    is_put: bool,
    token_unit: int,
    strike: int,
    spot: int,
    amount: int,
    time_to_expiry: int,
    params: MarginParams,
    maintenance: bool,
) -> int:
    """Initial or maintenance requirement of a short, in collateral units, rounded up."""
    check_domain(token_unit, strike, spot, amount)
    rate = requirement_rate(is_put, strike, spot, time_to_expiry, params, maintenance)
    return scale(is_put, token_unit, amount, rate, True)


def initial_requirement(
    is_put: bool,
    token_unit: int,
    strike: int,
    spot: int,
    amount: int,
    time_to_expiry: int,
    params: MarginParams,
) -> int:
    """Collateral a short needs to be opened (or to withdraw), rounded up."""
    return requirement(is_put, token_unit, strike, spot, amount, time_to_expiry, params, False)


def maintenance_requirement(
    is_put: bool,
    token_unit: int,
    strike: int,
    spot: int,
    amount: int,
    time_to_expiry: int,
    params: MarginParams,
) -> int:
    """Collateral below which a short can be liquidated, rounded up."""
    return requirement(is_put, token_unit, strike, spot, amount, time_to_expiry, params, True)


def intrinsic_value(
    is_put: bool, token_unit: int, strike: int, spot: int, amount: int, round_up: bool
) -> int:
    """Payoff of `amount` contracts at `spot` in collateral units, rounded as asked."""
    check_domain(token_unit, strike, spot, amount)
    rate = intrinsic_rate(is_put, strike, spot, round_up)
    return scale(is_put, token_unit, amount, rate, round_up)


def position_requirement(token_unit: int, position: ShortPosition, maintenance: bool) -> int:
    """Initial or maintenance requirement of one short of an account."""
    return requirement(
        position.is_put,
        token_unit,
        position.strike,
        position.spot,
        position.amount,
        position.time_to_expiry,
        position.params,
        maintenance,
    )


def _check_length(positions: Sequence[ShortPosition]) -> None:
    """An account holds at most `MAX_SERIES_PER_ACCOUNT` series per collateral."""
    _require(len(positions) <= MAX_SERIES_PER_ACCOUNT, "margin: too many series")


def account_requirement(
    token_unit: int, positions: Sequence[ShortPosition], maintenance: bool
) -> int:
    """Sum of the requirements of an account's shorts in one collateral token."""
    _check_length(positions)
    return sum(position_requirement(token_unit, p, maintenance) for p in positions)


def account_intrinsic(token_unit: int, positions: Sequence[ShortPosition]) -> int:
    """What an account's shorts are worth at spot, each rounded up."""
    _check_length(positions)
    return sum(
        intrinsic_value(p.is_put, token_unit, p.strike, p.spot, p.amount, True) for p in positions
    )


def auction_discount(elapsed: int, auction: AuctionParams) -> int:
    """Dutch auction discount `elapsed` seconds in: linear from start to max, rounded down."""
    if elapsed >= auction.duration:
        return auction.max_bps
    return auction.start_bps + (auction.max_bps - auction.start_bps) * elapsed // auction.duration


def liquidation_rates(position: ShortPosition, discount_bps: int) -> tuple[int, int, int, int]:
    """(maintenance rate, intrinsic rate rounded down, reward rate, relief rate) per contract.

    Helper of `liquidate`: reward = floor(d * (m - i) / BPS), relief = m - i - reward.
    """
    maintenance_rate = requirement_rate(
        position.is_put,
        position.strike,
        position.spot,
        position.time_to_expiry,
        position.params,
        True,
    )
    i_rate = intrinsic_rate(position.is_put, position.strike, position.spot, False)
    reward_rate = discount_bps * (maintenance_rate - i_rate) // BPS
    return maintenance_rate, i_rate, reward_rate, maintenance_rate - i_rate - reward_rate


def liquidate(
    token_unit: int,
    position: ShortPosition,
    collateral: int,
    maintenance_total: int,
    intrinsic_total: int,
    discount_bps: int,
    max_amount: int,
    insurance_balance: int,
) -> Liquidation:
    """Liquidation of one short of an account under maintenance (see the module)."""
    _require(collateral < maintenance_total, "margin: account not liquidatable")
    _require(position.time_to_expiry != 0, "margin: series expired")
    _require(position.amount != 0 and max_amount != 0, "margin: nothing to liquidate")
    _require(discount_bps < BPS, "margin: discount out of range")
    check_domain(token_unit, position.strike, position.spot, position.amount)

    is_put = position.is_put
    maintenance_rate, i_rate, reward_rate, relief_rate = liquidation_rates(position, discount_bps)
    den = rate_den(is_put)
    held = position.amount
    amount = held
    deficit = maintenance_total - collateral
    if relief_rate != 0 and deficit <= held * relief_rate * token_unit // den:
        amount = _div_up(deficit * den, relief_rate * token_unit)
    amount = min(amount, max_amount)
    if held - amount < DUST_AMOUNT:
        _require(max_amount >= held, "margin: leaves dust")
        amount = held

    base = scale(is_put, token_unit, amount, i_rate, False)
    reward = scale(is_put, token_unit, amount, reward_rate, False)
    paid_base = min(base, collateral)
    equity = collateral - intrinsic_total if collateral > intrinsic_total else 0
    reward = min(reward, equity, collateral - paid_base)
    from_account = paid_base + reward
    from_insurance = min(base - paid_base, insurance_balance)
    released = scale(is_put, token_unit, held, maintenance_rate, True) - scale(
        is_put, token_unit, held - amount, maintenance_rate, True
    )
    return Liquidation(
        amount=amount,
        base=base,
        reward=reward,
        from_account=from_account,
        from_insurance=from_insurance,
        bad_debt=base - paid_base - from_insurance,
        restored=collateral - from_account + released >= maintenance_total,
    )


def haircut_payout(payout: int, available: int, owed: int) -> int:
    """A holder's payout from a series pool holding `available` against `owed`: pro rata."""
    _require(payout <= owed, "margin: payout above owed")
    if available >= owed:
        return payout
    return payout * available // owed
