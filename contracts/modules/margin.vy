# pragma version ~=0.4.3
"""
@title Strikeline margin and liquidation maths
@custom:contract-name margin
@license GNU Affero General Public License v3.0 only
@notice Stateless, integer-only maths for partially collateralised short
        options and their liquidation. Import it with a plain `import`; it
        has no storage. `strikeline/risk.py` mirrors every function exactly
        and `docs/margin.md` writes the rules down.

        - Requirements (initial, maintenance) of a naked short: the payoff
          under a spot shock that widens with sqrt(time to expiry), never
          below a floor of `min_bps` of full collateral and never above full
          collateral (calls: one unit of the underlying per contract, puts:
          strike x amount of the quote token).
        - Maintenance uses the initial shock and floor scaled by
          `maintenance_bps` (< 100%), so it is never above the initial
          requirement and never below the payoff at spot.
        - Accounts: the sum over at most `MAX_SERIES_PER_ACCOUNT` shorts
          margined in one collateral token.
        - Liquidation: a Dutch auction whose discount grows linearly from
          `start_bps` to `max_bps`; the liquidator takes over `x` contracts
          and receives their intrinsic value at spot (the base) plus a
          reward of `discount` x (maintenance rate - intrinsic rate) per
          contract, the reward paid only out of the account's equity. `x` is
          the least amount whose linear relief covers the deficit, or all.
        - Bad debt: the insurance fund tops the base up when the account
          cannot pay it, never the reward; what is left is bad debt.

        Every requirement rounds up, every payment to a liquidator or holder
        rounds down. Per-contract rates are integers: for puts in quote
        price units (8 decimals) over `PUT_DEN`, for calls in 18-decimal
        fractions of one unit of the underlying over `CALL_DEN`; an amount
        in collateral units is `amount * rate * token_unit / DEN`.
"""

# @dev Stateless 512-bit mul-div for the settlement haircut; `math` has no
# storage, so a plain `import` (no `uses:`/`initializes:`) is enough.
from snekmate.utils import math


# ---------------------------------------------------------------------------
#                                  Constants
# ---------------------------------------------------------------------------

BPS: constant(uint256) = 10_000
# @dev Option amounts, strikes and prices carry 8 decimals.
UNIT: constant(uint256) = 10**8
WAD: constant(uint256) = 10**18
# @dev Denominators of `amount * rate * token_unit`: UNIT * UNIT for puts (rate
# in price units per contract), UNIT * WAD for calls (rate in WAD fractions of
# one underlying per contract).
PUT_DEN: constant(uint256) = 10**16
CALL_DEN: constant(uint256) = 10**26
YEAR: constant(uint256) = 31_536_000
# @dev The time component stops growing after four years (sqrt factor 2).
MAX_TIME_TO_EXPIRY: constant(uint256) = 126_144_000
# @dev The domain on which no intermediate can overflow: amount * rate *
# token_unit <= 1e20 * 1e20 * 1e36 for puts and 1e20 * 1e18 * 1e36 for calls;
# shocked spot <= 4 * 1e20 because a valid shock is at most 300%.
MAX_PRICE: constant(uint256) = 10**20
MAX_AMOUNT: constant(uint256) = 10**20
MAX_TOKEN_UNIT: constant(uint256) = 10**36
# @dev Bounds every account-level loop, hence every margin check's gas.
MAX_SERIES_PER_ACCOUNT: constant(uint256) = 16
# @dev A liquidation auction reaches its maximum discount within a week.
MAX_AUCTION_DURATION: constant(uint256) = 604_800
# @dev A liquidation leaves no margined short below this (0.01 contract):
# it takes the whole short instead, so that no short too small to be worth
# liquidating is left on an account that stays under maintenance (issue 10).
DUST_AMOUNT: constant(uint256) = 10**6


# ---------------------------------------------------------------------------
#                                   Structs
# ---------------------------------------------------------------------------

struct MarginParams:
    # instantaneous spot move, 0 < x <= BPS
    spot_shock_bps: uint256
    # extra move per sqrt(year) to expiry, x <= BPS
    time_shock_bps: uint256
    # floor of the initial requirement, in bps of full collateral, 0 < x <= BPS
    min_bps: uint256
    # maintenance shock and floor as bps of the initial ones, 0 < x < BPS
    maintenance_bps: uint256


struct ShortPosition:
    is_put: bool
    strike: uint256
    # spot of the series' underlying in its quote, 8 decimals
    spot: uint256
    # option units short, 8 decimals
    amount: uint256
    # seconds until expiry, 0 at or after expiry
    time_to_expiry: uint256
    params: MarginParams


struct AuctionParams:
    # discount when the account is first seen under maintenance
    start_bps: uint256
    # discount after `duration` seconds, start_bps <= x < BPS
    max_bps: uint256
    # seconds from start to max, at most MAX_AUCTION_DURATION
    duration: uint256


struct Liquidation:
    # option units the liquidator takes over (or closes)
    amount: uint256
    # intrinsic value of `amount` at spot, rounded down: the collateral share
    base: uint256
    # paid on top of `base`, out of the account's equity only
    reward: uint256
    # collateral leaving the account: the base it can pay plus the reward
    from_account: uint256
    # collateral the insurance fund adds to cover the base
    from_insurance: uint256
    # base neither the account nor the insurance fund could pay
    bad_debt: uint256
    # the account is at or above maintenance afterwards
    restored: bool


# ---------------------------------------------------------------------------
#                              Parameter checks
# ---------------------------------------------------------------------------

@internal
@pure
def _check_margin_params(params: MarginParams):
    """
    @dev Reverts unless `params` are in range. Every requirement function
         assumes params that pass this check (set-time validation).
    @param params The margin parameters of a product.
    """
    assert params.spot_shock_bps != 0 and params.spot_shock_bps <= BPS, "margin: spot shock out of range"
    assert params.time_shock_bps <= BPS, "margin: time shock out of range"
    assert params.min_bps != 0 and params.min_bps <= BPS, "margin: floor out of range"
    assert params.maintenance_bps != 0 and params.maintenance_bps < BPS, "margin: maintenance out of range"


@internal
@pure
def _check_auction_params(auction: AuctionParams):
    """
    @dev Reverts unless `auction` is in range: the maximum discount stays
         below 100% so closing a short always relieves the account, and the
         duration is at most `MAX_AUCTION_DURATION`.
    @param auction The liquidation auction parameters.
    """
    assert auction.max_bps < BPS, "margin: auction max out of range"
    assert auction.start_bps <= auction.max_bps, "margin: auction start above max"
    assert auction.duration <= MAX_AUCTION_DURATION, "margin: auction duration out of range"


@internal
@pure
def _check_domain(token_unit: uint256, strike: uint256, spot: uint256, amount: uint256):
    """
    @dev Reverts unless the inputs lie in the domain where no intermediate
         can overflow, so that the Python mirror agrees everywhere.
    @param token_unit 10**decimals of the collateral token.
    @param strike The strike, 8 decimals.
    @param spot The spot price, 8 decimals.
    @param amount Option units, 8 decimals.
    """
    assert token_unit != 0 and token_unit <= MAX_TOKEN_UNIT, "margin: token unit out of range"
    assert strike <= MAX_PRICE, "margin: strike out of range"
    assert spot <= MAX_PRICE, "margin: spot out of range"
    assert amount <= MAX_AMOUNT, "margin: amount out of range"


# ---------------------------------------------------------------------------
#                                Requirements
# ---------------------------------------------------------------------------

@internal
@pure
def _sqrt_time_bps(time_to_expiry: uint256) -> uint256:
    """
    @dev sqrt(time to expiry in years) in basis points, rounded up, with the
         time capped at `MAX_TIME_TO_EXPIRY`: ceil(sqrt(ceil(t * BPS**2 / YEAR))).
         Non-decreasing in `time_to_expiry`, at most 20_000.
    @param time_to_expiry Seconds until expiry.
    @return uint256 The factor, in basis points.
    """
    n: uint256 = self._div_up(min(time_to_expiry, MAX_TIME_TO_EXPIRY) * BPS * BPS, YEAR)
    root: uint256 = isqrt(n)
    if root * root < n:
        root += 1
    return root


@internal
@pure
def _shock_bps(time_to_expiry: uint256, params: MarginParams, maintenance: bool) -> uint256:
    """
    @dev The spot shock: spot_shock + ceil(time_shock * sqrt_time / BPS); for
         maintenance, ceil(that * maintenance_bps / BPS). At most 300%.
    @param time_to_expiry Seconds until expiry.
    @param params Valid margin parameters.
    @param maintenance True for the maintenance shock, False for initial.
    @return uint256 The shock, in basis points.
    """
    shock: uint256 = params.spot_shock_bps + self._div_up(
        params.time_shock_bps * self._sqrt_time_bps(time_to_expiry), BPS
    )
    if maintenance:
        return self._div_up(shock * params.maintenance_bps, BPS)
    return shock


@internal
@pure
def _requirement_rate(
    is_put: bool, strike: uint256, spot: uint256, time_to_expiry: uint256, params: MarginParams, maintenance: bool
) -> uint256:
    """
    @dev Requirement per contract as a rate (see the module notice).
         put:  min(K, max(K - floor(S * (1 - shock)), ceil(K * floor_bps)))
         call: min(WAD, max(ceil(WAD * (S' - K) / S'), WAD * floor_bps)),
               S' = ceil(S * (1 + shock))
         where floor_bps is `min_bps`, for maintenance ceil(min_bps *
         maintenance_bps / BPS). Puts fall and calls rise with spot; both
         rise with time. Needs strike and spot within `MAX_PRICE`.
    @param is_put True for a put (quote collateral), False for a call.
    @param strike The strike, 8 decimals.
    @param spot The spot price, 8 decimals.
    @param time_to_expiry Seconds until expiry.
    @param params Valid margin parameters.
    @param maintenance True for maintenance, False for initial.
    @return uint256 The rate, over `PUT_DEN` or `CALL_DEN`.
    """
    shock: uint256 = self._shock_bps(time_to_expiry, params, maintenance)
    floor_bps: uint256 = params.min_bps
    if maintenance:
        floor_bps = self._div_up(params.min_bps * params.maintenance_bps, BPS)
    loss: uint256 = 0
    if is_put:
        shocked_spot: uint256 = 0
        if shock < BPS:
            shocked_spot = spot * (BPS - shock) // BPS
        if strike > shocked_spot:
            loss = strike - shocked_spot
        return min(strike, max(loss, self._div_up(strike * floor_bps, BPS)))
    shocked_spot: uint256 = self._div_up(spot * (BPS + shock), BPS)
    if shocked_spot > strike:
        loss = self._div_up((shocked_spot - strike) * WAD, shocked_spot)
    # @dev WAD // BPS is exact, so the floor rate carries no rounding.
    return min(WAD, max(loss, floor_bps * (WAD // BPS)))


@internal
@pure
def _intrinsic_rate(is_put: bool, strike: uint256, spot: uint256, round_up: bool) -> uint256:
    """
    @dev Payoff per contract at `spot` as a rate: put K - S (exact), call
         (S - K) / S of the underlying in WAD, rounded as asked. Needs strike
         and spot within `MAX_PRICE`.
    @param is_put True for a put, False for a call.
    @param strike The strike, 8 decimals.
    @param spot The spot price, 8 decimals.
    @param round_up True to round up, False to round down.
    @return uint256 The rate, over `PUT_DEN` or `CALL_DEN`.
    """
    if is_put:
        if strike > spot:
            return strike - spot
        return 0
    if spot <= strike:
        return 0
    if round_up:
        return self._div_up((spot - strike) * WAD, spot)
    return (spot - strike) * WAD // spot


@internal
@pure
def _scale(is_put: bool, token_unit: uint256, amount: uint256, rate: uint256, round_up: bool) -> uint256:
    """
    @dev Collateral units of `amount` contracts at `rate`:
         amount * rate * token_unit / DEN, rounded as asked. Inside the domain
         of `_check_domain` the product stays below 2**256.
    @param is_put True for a put (PUT_DEN), False for a call (CALL_DEN).
    @param token_unit 10**decimals of the collateral token.
    @param amount Option units, 8 decimals.
    @param rate A per-contract rate.
    @param round_up True to round up, False to round down.
    @return uint256 Collateral units.
    """
    if round_up:
        return self._div_up(amount * rate * token_unit, self._rate_den(is_put))
    return amount * rate * token_unit // self._rate_den(is_put)


@internal
@pure
def _rate_den(is_put: bool) -> uint256:
    """
    @dev The denominator of a rate: `PUT_DEN` for puts, `CALL_DEN` for calls.
    @param is_put True for a put, False for a call.
    @return uint256 The denominator.
    """
    if is_put:
        return PUT_DEN
    return CALL_DEN


@internal
@pure
def _requirement(
    is_put: bool,
    token_unit: uint256,
    strike: uint256,
    spot: uint256,
    amount: uint256,
    time_to_expiry: uint256,
    params: MarginParams,
    maintenance: bool,
) -> uint256:
    """
    @dev Initial or maintenance requirement of a short, in collateral units,
         rounded up: ceil(amount * rate * token_unit / DEN).
    @param is_put True for a put (quote collateral), False for a call.
    @param token_unit 10**decimals of the collateral token.
    @param strike The strike, 8 decimals.
    @param spot The spot price, 8 decimals.
    @param amount Option units short, 8 decimals.
    @param time_to_expiry Seconds until expiry.
    @param params Valid margin parameters.
    @param maintenance True for maintenance, False for initial.
    @return uint256 The requirement.
    """
    self._check_domain(token_unit, strike, spot, amount)
    rate: uint256 = self._requirement_rate(is_put, strike, spot, time_to_expiry, params, maintenance)
    return self._scale(is_put, token_unit, amount, rate, True)


@internal
@pure
def _initial_requirement(
    is_put: bool,
    token_unit: uint256,
    strike: uint256,
    spot: uint256,
    amount: uint256,
    time_to_expiry: uint256,
    params: MarginParams,
) -> uint256:
    """
    @dev Collateral a short needs to be opened (or to withdraw), rounded up.
    @param is_put True for a put (quote collateral), False for a call.
    @param token_unit 10**decimals of the collateral token.
    @param strike The strike, 8 decimals.
    @param spot The spot price, 8 decimals.
    @param amount Option units short, 8 decimals.
    @param time_to_expiry Seconds until expiry.
    @param params Valid margin parameters.
    @return uint256 The initial requirement.
    """
    return self._requirement(is_put, token_unit, strike, spot, amount, time_to_expiry, params, False)


@internal
@pure
def _maintenance_requirement(
    is_put: bool,
    token_unit: uint256,
    strike: uint256,
    spot: uint256,
    amount: uint256,
    time_to_expiry: uint256,
    params: MarginParams,
) -> uint256:
    """
    @dev Collateral below which a short can be liquidated, rounded up.
    @param is_put True for a put (quote collateral), False for a call.
    @param token_unit 10**decimals of the collateral token.
    @param strike The strike, 8 decimals.
    @param spot The spot price, 8 decimals.
    @param amount Option units short, 8 decimals.
    @param time_to_expiry Seconds until expiry.
    @param params Valid margin parameters.
    @return uint256 The maintenance requirement.
    """
    return self._requirement(is_put, token_unit, strike, spot, amount, time_to_expiry, params, True)


@internal
@pure
def _intrinsic_value(
    is_put: bool, token_unit: uint256, strike: uint256, spot: uint256, amount: uint256, round_up: bool
) -> uint256:
    """
    @dev Payoff of `amount` contracts at `spot`, in collateral units, from the
         intrinsic rate, rounded as asked (up for what an account owes, down
         for what a liquidator is paid).
    @param is_put True for a put (quote collateral), False for a call.
    @param token_unit 10**decimals of the collateral token.
    @param strike The strike, 8 decimals.
    @param spot The spot price, 8 decimals.
    @param amount Option units, 8 decimals.
    @param round_up True to round up, False to round down.
    @return uint256 The intrinsic value.
    """
    self._check_domain(token_unit, strike, spot, amount)
    rate: uint256 = self._intrinsic_rate(is_put, strike, spot, round_up)
    return self._scale(is_put, token_unit, amount, rate, round_up)


# ---------------------------------------------------------------------------
#                                  Accounts
# ---------------------------------------------------------------------------

@internal
@pure
def _position_requirement(token_unit: uint256, position: ShortPosition, maintenance: bool) -> uint256:
    """
    @dev Initial or maintenance requirement of one short of an account.
    @param token_unit 10**decimals of the account's collateral token.
    @param position The short.
    @param maintenance True for maintenance, False for initial.
    @return uint256 The requirement, rounded up.
    """
    return self._requirement(
        position.is_put,
        token_unit,
        position.strike,
        position.spot,
        position.amount,
        position.time_to_expiry,
        position.params,
        maintenance,
    )


@internal
@pure
def _account_requirement(
    token_unit: uint256, positions: DynArray[ShortPosition, MAX_SERIES_PER_ACCOUNT], maintenance: bool
) -> uint256:
    """
    @dev Sum of the requirements of an account's shorts margined in one
         collateral token; at most `MAX_SERIES_PER_ACCOUNT` of them.
    @param token_unit 10**decimals of the collateral token.
    @param positions The account's shorts in that collateral.
    @param maintenance True for maintenance, False for initial.
    @return uint256 The account's requirement.
    """
    total: uint256 = 0
    for position: ShortPosition in positions:
        total += self._position_requirement(token_unit, position, maintenance)
    return total


@internal
@pure
def _account_intrinsic(token_unit: uint256, positions: DynArray[ShortPosition, MAX_SERIES_PER_ACCOUNT]) -> uint256:
    """
    @dev What an account's shorts are worth at spot, each rounded up: the
         liability side of its equity, which caps liquidation rewards.
    @param token_unit 10**decimals of the collateral token.
    @param positions The account's shorts in that collateral.
    @return uint256 The account's intrinsic liability.
    """
    total: uint256 = 0
    for position: ShortPosition in positions:
        total += self._intrinsic_value(
            position.is_put, token_unit, position.strike, position.spot, position.amount, True
        )
    return total


# ---------------------------------------------------------------------------
#                                 Liquidation
# ---------------------------------------------------------------------------

@internal
@pure
def _auction_discount(elapsed: uint256, auction: AuctionParams) -> uint256:
    """
    @dev Discount of the Dutch auction `elapsed` seconds after the account
         was first seen under maintenance: start + (max - start) * elapsed /
         duration, rounded down, reaching `max_bps` at `duration` (at once if
         `duration` is zero).
    @param elapsed Seconds since the auction started.
    @param auction Valid auction parameters.
    @return uint256 The discount, in basis points.
    """
    if elapsed >= auction.duration:
        return auction.max_bps
    return auction.start_bps + (auction.max_bps - auction.start_bps) * elapsed // auction.duration


@internal
@pure
def _liquidate(
    token_unit: uint256,
    position: ShortPosition,
    collateral: uint256,
    maintenance_total: uint256,
    intrinsic_total: uint256,
    discount_bps: uint256,
    max_amount: uint256,
    insurance_balance: uint256,
) -> Liquidation:
    """
    @dev Liquidation of one short of an account under maintenance.
         Per contract, with m the maintenance rate, i the intrinsic rate
         (rounded down) and d the discount:
           reward rate r = floor(d * (m - i) / BPS), relief rate = m - i - r.
         Taking over x contracts releases ceil(a*m*u/D) - ceil((a-x)*m*u/D)
         of requirement and pays base floor(x*i*u/D) plus reward
         floor(x*r*u/D); the released requirement minus the payment is at
         least floor(x*relief*u/D), so x = ceil(deficit * D / (relief * u))
         restores the account. If even the whole short cannot (relief too
         small), x is the whole short. x is then capped at `max_amount`;
         a remainder below `DUST_AMOUNT` is taken too (reverts if
         `max_amount` would leave one).
         The reward is capped by the account's equity at spot
         (collateral - intrinsic_total) and by what the account still holds
         after the base; the insurance fund covers only a base the account
         cannot pay. The caller moves `from_account` out of the account,
         `from_insurance` out of the fund, the sum to the liquidator.
    @param token_unit 10**decimals of the collateral token.
    @param position The short being liquidated (time_to_expiry > 0).
    @param collateral The account's collateral in this token.
    @param maintenance_total The account's maintenance requirement in this
           token, including `position`.
    @param intrinsic_total `_account_intrinsic` of the account in this token.
    @param discount_bps The auction's current discount, below BPS.
    @param max_amount The most the liquidator takes over, non-zero.
    @param insurance_balance The insurance fund's balance in this token.
    @return Liquidation The amounts (see the struct).
    """
    assert collateral < maintenance_total, "margin: account not liquidatable"
    assert position.time_to_expiry != 0, "margin: series expired"
    assert position.amount != 0 and max_amount != 0, "margin: nothing to liquidate"
    assert discount_bps < BPS, "margin: discount out of range"
    self._check_domain(token_unit, position.strike, position.spot, position.amount)

    is_put: bool = position.is_put
    maintenance_rate: uint256 = self._requirement_rate(
        is_put, position.strike, position.spot, position.time_to_expiry, position.params, True
    )
    # @dev the maintenance rate is at least the intrinsic rate rounded down
    # (see docs/margin.md), so these subtractions cannot underflow.
    intrinsic_rate: uint256 = self._intrinsic_rate(is_put, position.strike, position.spot, False)
    reward_rate: uint256 = discount_bps * (maintenance_rate - intrinsic_rate) // BPS
    relief_rate: uint256 = maintenance_rate - intrinsic_rate - reward_rate

    held: uint256 = position.amount
    amount: uint256 = held
    deficit: uint256 = maintenance_total - collateral
    if relief_rate != 0 and deficit <= held * relief_rate * token_unit // self._rate_den(is_put):
        # @dev deficit * DEN <= held * relief_rate * token_unit here, which the
        # domain keeps below 2**256.
        amount = self._div_up(deficit * self._rate_den(is_put), relief_rate * token_unit)
    amount = min(amount, max_amount)
    if held - amount < DUST_AMOUNT:
        assert max_amount >= held, "margin: leaves dust"
        amount = held

    base: uint256 = self._scale(is_put, token_unit, amount, intrinsic_rate, False)
    reward: uint256 = self._scale(is_put, token_unit, amount, reward_rate, False)
    paid_base: uint256 = min(base, collateral)
    equity: uint256 = 0
    if collateral > intrinsic_total:
        equity = collateral - intrinsic_total
    reward = min(reward, min(equity, collateral - paid_base))
    from_account: uint256 = paid_base + reward
    from_insurance: uint256 = min(base - paid_base, insurance_balance)

    released: uint256 = self._scale(is_put, token_unit, held, maintenance_rate, True) - self._scale(
        is_put, token_unit, held - amount, maintenance_rate, True
    )
    # @dev restored iff collateral - from_account + released >= maintenance_total,
    # compared without the addition so that no collateral figure can overflow.
    restored: bool = True
    if maintenance_total > released:
        restored = collateral - from_account >= maintenance_total - released
    return Liquidation(
        amount=amount,
        base=base,
        reward=reward,
        from_account=from_account,
        from_insurance=from_insurance,
        bad_debt=base - paid_base - from_insurance,
        restored=restored,
    )


# ---------------------------------------------------------------------------
#                                  Bad debt
# ---------------------------------------------------------------------------

@internal
@pure
def _haircut_payout(payout: uint256, available: uint256, owed: uint256) -> uint256:
    """
    @dev A holder's payout from a series whose settlement pool (collateral
         plus insurance) holds `available` against `owed` to all holders:
         in full if the pool covers it, else pro rata, rounded down, so the
         payouts never add up to more than the pool.
    @param payout The holder's full payout.
    @param available What the series' pool holds.
    @param owed What the series owes all its holders, at least `payout`.
    @return uint256 What the holder is paid.
    """
    assert payout <= owed, "margin: payout above owed"
    if available >= owed:
        return payout
    return math._mul_div(payout, available, owed, False)


@internal
@pure
def _div_up(a: uint256, b: uint256) -> uint256:
    """
    @dev ceil(a / b) for b > 0.
    @param a The dividend.
    @param b The divisor.
    @return uint256 The quotient, rounded up.
    """
    return a // b + convert(a % b != 0, uint256)
