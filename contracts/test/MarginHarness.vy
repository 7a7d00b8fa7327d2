# pragma version ~=0.4.3
"""
@title Margin module test harness
@custom:contract-name MarginHarness
@license GNU Affero General Public License v3.0 only
@notice Test only: exposes every function of the stateless `margin` module
        as an external pure function, so tests can compare it with
        `strikeline.risk`.
@custom:kill Test contract with no state and no funds; nothing to shut down.
"""

# @dev The margin maths under test; stateless, so a plain `import`.
from ..modules import margin


@external
@pure
def max_series_per_account() -> uint256:
    """
    @notice The bound on an account's series in one collateral.
    """
    return margin.MAX_SERIES_PER_ACCOUNT


@external
@pure
def domain() -> (uint256, uint256, uint256, uint256, uint256):
    """
    @notice The domain bounds: (MAX_PRICE, MAX_AMOUNT, MAX_TOKEN_UNIT, MAX_TIME_TO_EXPIRY,
            MAX_AUCTION_DURATION).
    """
    return (
        margin.MAX_PRICE,
        margin.MAX_AMOUNT,
        margin.MAX_TOKEN_UNIT,
        margin.MAX_TIME_TO_EXPIRY,
        margin.MAX_AUCTION_DURATION,
    )


@external
@pure
def check_margin_params(params: margin.MarginParams) -> bool:
    """
    @notice Reverts unless `params` are valid; True otherwise.
    """
    margin._check_margin_params(params)
    return True


@external
@pure
def check_auction_params(auction: margin.AuctionParams) -> bool:
    """
    @notice Reverts unless `auction` is valid; True otherwise.
    """
    margin._check_auction_params(auction)
    return True


@external
@pure
def sqrt_time_bps(time_to_expiry: uint256) -> uint256:
    """
    @notice `margin._sqrt_time_bps`.
    """
    return margin._sqrt_time_bps(time_to_expiry)


@external
@pure
def shock_bps(time_to_expiry: uint256, params: margin.MarginParams, maintenance: bool) -> uint256:
    """
    @notice `margin._shock_bps`.
    """
    return margin._shock_bps(time_to_expiry, params, maintenance)


@external
@pure
def requirement_rate(
    is_put: bool, strike: uint256, spot: uint256, time_to_expiry: uint256, params: margin.MarginParams, maintenance: bool
) -> uint256:
    """
    @notice `margin._requirement_rate`.
    """
    return margin._requirement_rate(is_put, strike, spot, time_to_expiry, params, maintenance)


@external
@pure
def intrinsic_rate(is_put: bool, strike: uint256, spot: uint256, round_up: bool) -> uint256:
    """
    @notice `margin._intrinsic_rate`.
    """
    return margin._intrinsic_rate(is_put, strike, spot, round_up)


@external
@pure
def initial_requirement(
    is_put: bool,
    token_unit: uint256,
    strike: uint256,
    spot: uint256,
    amount: uint256,
    time_to_expiry: uint256,
    params: margin.MarginParams,
) -> uint256:
    """
    @notice `margin._initial_requirement`.
    """
    return margin._initial_requirement(is_put, token_unit, strike, spot, amount, time_to_expiry, params)


@external
@pure
def maintenance_requirement(
    is_put: bool,
    token_unit: uint256,
    strike: uint256,
    spot: uint256,
    amount: uint256,
    time_to_expiry: uint256,
    params: margin.MarginParams,
) -> uint256:
    """
    @notice `margin._maintenance_requirement`.
    """
    return margin._maintenance_requirement(is_put, token_unit, strike, spot, amount, time_to_expiry, params)


@external
@pure
def intrinsic_value(
    is_put: bool, token_unit: uint256, strike: uint256, spot: uint256, amount: uint256, round_up: bool
) -> uint256:
    """
    @notice `margin._intrinsic_value`.
    """
    return margin._intrinsic_value(is_put, token_unit, strike, spot, amount, round_up)


@external
@pure
def position_requirement(token_unit: uint256, position: margin.ShortPosition, maintenance: bool) -> uint256:
    """
    @notice `margin._position_requirement`.
    """
    return margin._position_requirement(token_unit, position, maintenance)


@external
@pure
def account_requirement(
    token_unit: uint256,
    positions: DynArray[margin.ShortPosition, margin.MAX_SERIES_PER_ACCOUNT],
    maintenance: bool,
) -> uint256:
    """
    @notice `margin._account_requirement`.
    """
    return margin._account_requirement(token_unit, positions, maintenance)


@external
@pure
def account_intrinsic(
    token_unit: uint256, positions: DynArray[margin.ShortPosition, margin.MAX_SERIES_PER_ACCOUNT]
) -> uint256:
    """
    @notice `margin._account_intrinsic`.
    """
    return margin._account_intrinsic(token_unit, positions)


@external
@pure
def auction_discount(elapsed: uint256, auction: margin.AuctionParams) -> uint256:
    """
    @notice `margin._auction_discount`.
    """
    return margin._auction_discount(elapsed, auction)


@external
@pure
def liquidate(
    token_unit: uint256,
    position: margin.ShortPosition,
    collateral: uint256,
    maintenance_total: uint256,
    intrinsic_total: uint256,
    discount_bps: uint256,
    max_amount: uint256,
    insurance_balance: uint256,
) -> margin.Liquidation:
    """
    @notice `margin._liquidate`.
    """
    return margin._liquidate(
        token_unit,
        position,
        collateral,
        maintenance_total,
        intrinsic_total,
        discount_bps,
        max_amount,
        insurance_balance,
    )


@external
@pure
def haircut_payout(payout: uint256, available: uint256, owed: uint256) -> uint256:
    """
    @notice `margin._haircut_payout`.
    """
    return margin._haircut_payout(payout, available, owed)
