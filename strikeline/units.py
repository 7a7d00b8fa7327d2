"""Units and the integer money maths of the contracts (`contracts/modules/layout.vy`, used by
the Ledger and the Clearinghouse), mirrored exactly.

Every function here is integer-only and rounds the way the contracts do: collateral
locked and writer obligations round up, holder payouts and releases round down. Negative
amounts, prices or units are refused with `InvalidArgument` naming the argument.
"""

from __future__ import annotations

from strikeline.errors import InvalidArgument, check_uint

UNIT = 10**8  # option amounts, strikes and prices carry 8 decimals
UNIT_SQ = UNIT * UNIT
DAY = 86_400
EXPIRY_HOUR = 8 * 3_600  # expiries fall at 08:00 UTC
MAX_STRIKE = 10**20
#: The Ledger packs a series' collateral (its book word) into 128 bits, so one
#: series holds at most this many base units of its collateral token: about 3.4e20 whole
#: tokens at 18 decimals, but only about 340 whole tokens at 36 decimals.
MAX_SERIES_COLLATERAL = 2**128 - 1


def mul_div_up(a: int, b: int, d: int) -> int:
    """ceil(a * b / d) for non-negative integers and a positive `d`."""
    check_uint("a", a)
    check_uint("b", b)
    if check_uint("d", d) == 0:
        raise InvalidArgument("d: must be positive")
    return -((-a * b) // d)


def _check_terms(token_unit: int, strike: int, amount: int) -> None:
    if check_uint("token_unit", token_unit) == 0:
        raise InvalidArgument("token_unit: must be positive (10**decimals)")
    check_uint("strike", strike)
    check_uint("amount", amount)


def full_collateral(is_put: bool, token_unit: int, strike: int, amount: int) -> int:
    """Collateral a writer locks for `amount` options, rounded up.

    A call locks one unit of the underlying per contract; a put strike x amount of quote.
    """
    _check_terms(token_unit, strike, amount)
    if is_put:
        return mul_div_up(amount * strike, token_unit, UNIT_SQ)
    return mul_div_up(amount, token_unit, UNIT)


def payoff(
    is_put: bool, token_unit: int, strike: int, price: int, amount: int, round_up: bool
) -> int:
    """Cash payoff of `amount` options at expiry price `price`, in collateral units.

    A call pays (S - K) / S of the underlying per contract, a put K - S of the quote.
    `round_up` is for writers' obligations, rounding down for holders' payouts.
    """
    _check_terms(token_unit, strike, amount)
    check_uint("price", price)
    if is_put:
        if price >= strike:
            return 0
        num, den = amount * (strike - price) * token_unit, UNIT_SQ
    else:
        if price <= strike:
            return 0
        num, den = amount * token_unit * (price - strike), price * UNIT
    return -(-num // den) if round_up else num // den


def full_release_on_close(
    is_put: bool, token_unit: int, strike: int, short: int, amount: int
) -> int:
    """Collateral the Ledger releases when `amount` of a fully collateralised `short` closes
    (`burn`, or buy to close in a trade): the short locks exactly its full collateral, so the
    release is `full_collateral(short) - full_collateral(short - amount)`."""
    if check_uint("amount", amount) > check_uint("short", short):
        raise InvalidArgument(f"amount: closes {amount}, more than the short of {short}")
    return full_collateral(is_put, token_unit, strike, short) - full_collateral(
        is_put, token_unit, strike, short - amount
    )


def release_on_close(short: int, collateral: int, amount: int) -> int:
    """Collateral released when `amount` of a `short` backed by `collateral` is closed, pro
    rata (version 1's Clearinghouse; the Ledger uses `full_release_on_close`).

    What stays on the position is rounded up, so the release rounds down.
    """
    check_uint("collateral", collateral)
    if check_uint("amount", amount) > check_uint("short", short):
        raise InvalidArgument(f"amount: closes {amount}, more than the short of {short}")
    remaining = short - amount
    kept = mul_div_up(collateral, remaining, short) if remaining else 0
    return collateral - kept


def is_valid_expiry(expiry: int) -> bool:
    """True if `expiry` falls at 08:00 UTC."""
    return expiry % DAY == EXPIRY_HOUR
