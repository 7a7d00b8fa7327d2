# pragma version ~=0.4.3
"""
@title Strikeline MarginEngine (v2)
@custom:contract-name MarginEngine
@license GNU Affero General Public License v3.0 only
@notice Partially collateralised (margined) shorts and their liquidation,
        on top of the Clearinghouse, which keeps custody of every token and
        calls back nothing. The rules are docs/margin.md; the maths is the
        stateless `margin` module.

        - Governance sets margin parameters per product (all zero: margin off)
          and the liquidation auction.
        - A writer locks any collateral up to full collateral
          (`write_margined`); its margined series in one collateral token are
          listed here, at most `MAX_SERIES_PER_ACCOUNT` open at a time, and
          margined together: after every write or collateral removal the
          account's margined collateral must cover the sum of the initial
          requirements at the Oracle's spot.
        - Below maintenance anyone may liquidate: the liquidator takes the
          short over with full collateral and is paid its intrinsic value
          plus a Dutch-auction reward out of the account's margined
          collateral, only as much as restores maintenance.
        - The Clearinghouse's insurance fund tops up a base the account
          cannot pay; settlement handles expired margined shorts (shortfall
          from the fund, then a pro-rata haircut of that series' holders).

        The Clearinghouse grants this contract MARGIN_ROLE.

        v2 (beside the Ledger): v1's engine pointed at the v2 Clearinghouse,
        which keeps margined shorts apart from the Ledger's fully
        collateralised ones. Issue 10 (docs/security.md):
        - From a margined short's expiry until it settles at its final
          price, the account's margin in that token stays locked (no
          removal, release or new margined write) and the expired series
          stays listed. `settle` draws a shortfall from the whole account
          (other expired series with a surplus, then live series'
          collateral) before the Clearinghouse may touch the insurance fund,
          which it lets only this contract do.
        - A stale price never makes a check revert: a short whose
          underlying's spot is stale is valued at full collateral; only the
          short being liquidated needs a fresh price.
        - A liquidation needs a spot newer than the account's last change
          (`last_change`, as Gamma's vaultLatestUpdate); the auction clock
          restarts unless the engine saw every price since its last look
          (`_updates`); a liquidation leaves no short below
          `margin.DUST_AMOUNT`.
@custom:kill Revoke MARGIN_ROLE on the Clearinghouse, or set every product's
        margin parameters to zero (existing margined shorts are then margined
        at full collateral). The Clearinghouse's pause stops margined writing
        and liquidation; top-ups and removals stay open.
"""

from snekmate.auth import access_control

from .interfaces import IClearinghouse
from .interfaces import IOracle

# @dev Stateless margin and liquidation maths; no storage, so a plain import.
from .modules import margin


# @dev The one Ledger view the engine needs (settlement's shortfall).
interface LedgerFree:
    def free_collateral(account: address, token: address) -> uint256: view

# @dev The admin (a timelock in production) sets margin and auction parameters.
initializes: access_control

exports: (
    access_control.DEFAULT_ADMIN_ROLE,
    access_control.hasRole,
    access_control.getRoleAdmin,
    access_control.grantRole,
    access_control.revokeRole,
    access_control.renounceRole,
    access_control.supportsInterface,
)


# ---------------------------------------------------------------------------
#                                   Events
# ---------------------------------------------------------------------------

event MarginParamsSet:
    product_id: indexed(bytes32)
    spot_shock_bps: uint256
    time_shock_bps: uint256
    min_bps: uint256
    maintenance_bps: uint256


event AuctionParamsSet:
    start_bps: uint256
    max_bps: uint256
    duration: uint256


event SeriesListed:
    account: indexed(address)
    token: indexed(address)
    series_id: indexed(uint256)


event LiquidationStarted:
    account: indexed(address)
    token: indexed(address)
    started: uint256


event LiquidationCleared:
    account: indexed(address)
    token: indexed(address)


event Liquidated:
    account: indexed(address)
    liquidator: indexed(address)
    series_id: indexed(uint256)
    amount: uint256
    discount_bps: uint256
    base: uint256
    reward: uint256
    from_account: uint256
    from_insurance: uint256
    # base neither the account nor the fund paid: the liquidator's loss
    unpaid_base: uint256
    restored: bool


# ---------------------------------------------------------------------------
#                                  Constants
# ---------------------------------------------------------------------------

MAX_SERIES: constant(uint256) = margin.MAX_SERIES_PER_ACCOUNT
BPS: constant(uint256) = 10_000
# @dev The Clearinghouse's position word: short (bits 0-126) | margin flag
# (127) | collateral (128-255).
MARGIN_BIT: constant(uint256) = 2**127
SHORT_MASK: constant(uint256) = 2**127 - 1
MASK128: constant(uint256) = 2**128 - 1
MASK160: constant(uint256) = 2**160 - 1
PUT_BIT: constant(uint256) = 2**160
# @dev A product's word: its margin parameters (16 bits each, every one at
# most BPS; bits 0-63, zero = margin off) | collateral token (64-223) | the
# token's decimals (224-231). The token and its unit ride in the word every
# margin check reads anyway: no per-series token slot, no token_unit call.
PARAMS_MASK: constant(uint256) = 2**64 - 1
MASK16: constant(uint256) = 2**16 - 1
DECIMALS_SHIFT: constant(uint256) = 224
# @dev An account's clock word: auction start (bits 0-63, 0 = no auction) |
# last change (64-127) | auction seen (128-255). One word: a margin check
# reads the auction start anyway and records the change in the same store.
START_MASK: constant(uint256) = 2**64 - 1
CHANGE_MASK: constant(uint256) = (2**64 - 1) << 64
MAX_AGE: constant(uint256) = 2**96 - 1
# @dev How a short is valued when its underlying's spot is stale or missing:
# full collateral for initial and maintenance alike (the shock takes the put's
# spot to zero; the floor is 100%), at spot 0 (puts) or MAX_PRICE (calls).
FULL: constant(margin.MarginParams) = margin.MarginParams(
    spot_shock_bps=BPS, time_shock_bps=0, min_bps=BPS, maintenance_bps=BPS
)


# ---------------------------------------------------------------------------
#                                   Storage
# ---------------------------------------------------------------------------

# @dev What the account's margin is made of, with what its live shorts need.
struct AccountMargin:
    collateral: uint256
    initial: uint256
    maintenance: uint256
    # payoff at spot of the shorts, each rounded up
    intrinsic: uint256
    # live margined series, their short and collateral
    series_ids: DynArray[uint256, MAX_SERIES]
    shorts: DynArray[uint256, MAX_SERIES]
    held: DynArray[uint256, MAX_SERIES]
    # collateral in the account's margin reserve
    reserve: uint256
    # a listed margined short has expired and is not settled yet: its backing
    # (the account's whole margin) stays locked until it settles
    pending: bool
    # underlyings of the live shorts, each once (for the auction clock)
    assets: DynArray[address, MAX_SERIES]
    # with a live short: the Oracle (bits 0-159) and its max age (160-255),
    # read once per check (`liquidate` reads its short's spot with them); one
    # field, as each field of this struct costs code at every `_account` call
    feed: uint256


clearinghouse: public(immutable(IClearinghouse))

# @dev Per product: PARAMS_MASK's word (parameters | token | decimals).
_params: HashMap[bytes32, uint256]
# @dev The liquidation auction, packed: start (bits 0-63) | max (64-127) |
# duration (128-255); one word for a liquidation to read, not three.
_auction: uint256
# @dev Margined series of an account per collateral token. Entries closed,
# settled or expired are pruned by the account's next write.
_margined: HashMap[address, HashMap[address, DynArray[uint256, MAX_SERIES]]]
# @dev Per account and token (START_MASK's layout): when the account was
# first seen under maintenance (`auction_start`), the block time of its last
# change through the engine (`last_change`: write, top-up, removal, release;
# a liquidation needs a spot newer than it) and the sum of the Oracle's
# update counts of its underlyings when the engine last saw it under
# maintenance (`auction_seen`, `_updates`).
_clock: HashMap[address, HashMap[address, uint256]]
# @dev Series terms cached at the first margined write: strike (0-127) |
# expiry (128-255); product (whose word holds the collateral token);
# underlying (0-159) | is_put (160).
_terms: HashMap[uint256, uint256]
_product_of: HashMap[uint256, bytes32]
_underlying: HashMap[uint256, uint256]


# ---------------------------------------------------------------------------
#                                 Constructor
# ---------------------------------------------------------------------------

@deploy
def __init__(clearinghouse_: IClearinghouse, admin_: address):
    """
    @dev Deploys the engine for `clearinghouse_`; `admin_` gets the admin role.
         The Clearinghouse must then grant this contract MARGIN_ROLE.
    """
    assert admin_ != empty(address), "engine: zero admin"
    access_control.__init__()
    clearinghouse = clearinghouse_
    access_control._grant_role(access_control.DEFAULT_ADMIN_ROLE, admin_)
    if admin_ != msg.sender:
        access_control._revoke_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)


# ---------------------------------------------------------------------------
#                                 Governance
# ---------------------------------------------------------------------------

@external
def set_margin_params(product_id: bytes32, params: margin.MarginParams):
    """
    @dev Sets a product's margin parameters, validated by
         `margin._check_margin_params`; all zero turns margined writing off.
         Open margined shorts of a product turned off are margined at full
         collateral (floor 100%), never at zero.
    @param product_id A product of the Clearinghouse.
    @param params The parameters, or all zero.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    collateral: address = (staticcall clearinghouse.products(product_id))[2]
    assert collateral != empty(address), "engine: unknown product"
    # the token's unit as decimals (the Clearinghouse fixes it per token)
    unit: uint256 = staticcall clearinghouse.token_unit(collateral)
    decimals: uint256 = 0
    left: uint256 = unit
    for i: uint256 in range(77):
        if left < 10:
            break
        left //= 10
        decimals += 1
    # the token and decimals stay when margin is turned off
    word: uint256 = (convert(collateral, uint256) << 64) | (decimals << DECIMALS_SHIFT)
    if params.spot_shock_bps | params.time_shock_bps | params.min_bps | params.maintenance_bps != 0:
        # every checked parameter is at most BPS: 16 bits each
        margin._check_margin_params(params)
        word |= (
            params.spot_shock_bps
            | (params.time_shock_bps << 16)
            | (params.min_bps << 32)
            | (params.maintenance_bps << 48)
        )
    self._params[product_id] = word
    log MarginParamsSet(
        product_id=product_id,
        spot_shock_bps=params.spot_shock_bps,
        time_shock_bps=params.time_shock_bps,
        min_bps=params.min_bps,
        maintenance_bps=params.maintenance_bps,
    )


@external
def set_auction_params(auction: margin.AuctionParams):
    """
    @dev Sets the liquidation auction (discount from `start_bps` to `max_bps`
         over `duration` seconds), validated by `margin._check_auction_params`.
    @param auction The auction parameters.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    margin._check_auction_params(auction)
    # checked: both bps below BPS, the duration at most a week
    self._auction = auction.start_bps | (auction.max_bps << 64) | (auction.duration << 128)
    log AuctionParamsSet(start_bps=auction.start_bps, max_bps=auction.max_bps, duration=auction.duration)


# ---------------------------------------------------------------------------
#                               Margined shorts
# ---------------------------------------------------------------------------

@external
@nonreentrant
def write_margined(series_id: uint256, amount: uint256, recipient: address, collateral: uint256) -> uint256:
    """
    @dev Writes `amount` of `series_id`, locking `collateral` (at most full
         collateral) from the caller's free balance in the Clearinghouse, and
         mints the longs to `recipient`. The series joins the caller's
         margined series in its collateral token; afterwards the caller's
         margined collateral in that token must cover the sum of the initial
         requirements. Paused with the Clearinghouse's trading.
    @param series_id An open series of a product with margin parameters.
    @param amount Option units to write.
    @param recipient Who receives the longs.
    @param collateral Collateral to lock.
    @return uint256 The collateral locked.
    """
    token: address = self._cache(series_id)
    assert self._params[self._product_of[series_id]] & PARAMS_MASK != 0, "engine: margin disabled"
    listed: DynArray[uint256, MAX_SERIES] = self._prune(msg.sender, token)
    if series_id not in listed:
        assert len(listed) < MAX_SERIES, "engine: too many open series"
        listed.append(series_id)
        self._margined[msg.sender][token] = listed
        log SeriesListed(account=msg.sender, token=token, series_id=series_id)
    extcall clearinghouse.margin_update(msg.sender, token, series_id, amount, recipient, collateral, True)
    self._require_initial(msg.sender, token)
    return collateral


@external
@nonreentrant
def add_collateral(series_id: uint256, amount: uint256):
    """
    @dev Tops up the caller's margined short of `series_id` (before expiry)
         with `amount` of its free collateral. Never paused. If a liquidation
         auction runs and the account is healthy afterwards, its clock is
         cleared (that reads the Oracle; without an auction it does not).
    @param series_id A series the caller is margined short in.
    @param amount Collateral to add.
    """
    token: address = self._token(series_id)
    assert token != empty(address), "engine: not margined"
    extcall clearinghouse.margin_update(msg.sender, token, series_id, 0, msg.sender, amount, True)
    # a liquidation now needs a price newer than this top-up
    clock: uint256 = (self._clock[msg.sender][token] & ~CHANGE_MASK) | (block.timestamp << 64)
    if clock & START_MASK != 0:
        collateral: uint256 = 0
        initial: uint256 = 0
        maintenance: uint256 = 0
        pending: bool = False
        collateral, initial, maintenance, pending = self._levels(msg.sender, token, False, True)
        if collateral >= maintenance:
            clock = self._cleared(msg.sender, token, clock)
    self._clock[msg.sender][token] = clock


@external
@nonreentrant
def remove_collateral(series_id: uint256, amount: uint256):
    """
    @dev Moves `amount` of collateral from the caller's margined short of
         `series_id` (before expiry) back to its free balance; the account
         must stay at or above its initial requirement.
    @param series_id A series the caller is margined short in.
    @param amount Collateral to remove.
    """
    token: address = self._token(series_id)
    assert token != empty(address), "engine: not margined"
    extcall clearinghouse.margin_update(msg.sender, token, series_id, 0, msg.sender, amount, False)
    self._require_initial(msg.sender, token)


@external
@nonreentrant
def release_reserve(token: address, amount: uint256):
    """
    @dev Moves `amount` of the caller's margin reserve in `token` (collateral
         left by margined shorts closed to zero) to its free balance; the
         account must stay at or above its initial requirement.
    @param token The collateral token.
    @param amount Collateral to release.
    """
    extcall clearinghouse.margin_update(msg.sender, token, 0, 0, msg.sender, amount, False)
    self._require_initial(msg.sender, token)


# ---------------------------------------------------------------------------
#                                 Liquidation
# ---------------------------------------------------------------------------

@external
def start_liquidation(account: address, token: address) -> uint256:
    """
    @dev Looks at `account` in `token`. Below maintenance: starts the
         liquidation auction clock, or keeps a running one if the engine
         saw every price of the account's underlyings since it last looked
         (else the account may have been healthy in between and the clock
         restarts); liquidators call this after each price update to keep
         a clock running. Healthy: a running clock is cleared; with no clock
         it reverts. A stale price values its shorts at full collateral.
    @param account The margined account.
    @param token The collateral token.
    @return uint256 The auction's start, 0 if it was cleared.
    """
    state: AccountMargin = self._account(account, token, False, True, False)
    clock: uint256 = self._clock[account][token]
    if state.collateral >= state.maintenance:
        assert clock & START_MASK != 0, "engine: account healthy"
        self._clock[account][token] = self._cleared(account, token, clock)
        return 0
    clock = self._observe(account, token, state.assets, IOracle(convert(convert(state.feed & MASK160, uint160), address)), clock)
    self._clock[account][token] = clock
    return clock & START_MASK


@external
@nonreentrant
def liquidate(account: address, token: address, series_id: uint256, max_amount: uint256) -> margin.Liquidation:
    """
    @dev Liquidates up to `max_amount` of `account`'s margined short of
         `series_id` while the account is below maintenance. The caller takes
         the short over with full collateral from its free balance and is
         paid the intrinsic value at spot of what it took (the base) plus the
         auction's reward, out of the account's margined collateral (this
         series first, then its other series in list order, then its
         reserve); the insurance fund tops up a base the account cannot pay.
         Only as much is taken as restores maintenance (`margin._liquidate`).
         Starts the auction clock if none runs; clears it if the account is
         restored. Paused with the Clearinghouse's trading.
    @param account The account under maintenance.
    @param token The collateral token of its margined series.
    @param series_id One of its margined series, not expired.
    @param max_amount The most option units the caller takes over.
    @return margin.Liquidation What was taken over and paid.
    """
    assert msg.sender != account, "engine: self liquidation"
    expiry: uint256 = self._terms[series_id] >> 128
    assert expiry != 0, "engine: not margined"
    assert block.timestamp < expiry, "engine: series expired"
    assert self._token(series_id) == token, "engine: wrong token"
    state: AccountMargin = self._account(account, token, False, True, True)
    assert series_id in state.series_ids, "engine: not margined"
    assert state.collateral < state.maintenance, "engine: account healthy"

    short: uint256 = 0
    own: uint256 = 0
    for i: uint256 in range(len(state.series_ids), bound=MAX_SERIES):
        if state.series_ids[i] == series_id:
            short = state.shorts[i]
            own = state.held[i]
    # only this short's price is needed, fresh and newer than the account's
    # last change (a price signed before a top-up cannot liquidate it)
    # (the account has a live short, so `_account` read the Oracle's address)
    underlying: uint256 = self._underlying[series_id]
    price: uint256 = 0
    seen: uint256 = 0
    oracle: IOracle = IOracle(convert(convert(state.feed & MASK160, uint160), address))
    price, seen = self._spot(oracle, convert(convert(underlying & MASK160, uint160), address), state.feed >> 160)
    assert seen != 0, "engine: stale price"
    position: margin.ShortPosition = self._position(series_id, short, underlying, price, seen)
    clock: uint256 = self._clock[account][token]
    assert seen > (clock & CHANGE_MASK) >> 64, "engine: price older than last change"
    # a running clock continues only if the engine saw every price since its
    # last look (`_observe`); with none, a clock starts now and the update
    # counts matter only if it keeps running (read below)
    fresh: bool = clock & START_MASK == 0
    if fresh:
        clock = self._started(account, token, clock)
    else:
        clock = self._observe(account, token, state.assets, oracle, clock)
    discount: uint256 = margin._auction_discount(block.timestamp - (clock & START_MASK), self._auction_params())
    # priced as if the insurance fund were unlimited: only a base the account
    # cannot pay reads the fund, and caps what it pays at its balance
    liq: margin.Liquidation = margin._liquidate(
        self._unit(series_id),
        position,
        state.collateral,
        state.maintenance,
        state.intrinsic,
        discount,
        max_amount,
        max_value(uint256),
    )
    if liq.from_insurance != 0:
        fund: uint256 = staticcall clearinghouse.insurance(token)
        if fund < liq.from_insurance:
            liq.bad_debt = liq.from_insurance - fund
            liq.from_insurance = fund

    # the clock stored once: cleared if this restores the account, else
    # with the update counts seen now
    if liq.restored:
        clock = self._cleared(account, token, clock)
    elif fresh:
        clock = (clock & MASK128) | (self._updates(state.assets, oracle) << 128)
    self._clock[account][token] = clock

    # move what the account pays out of its margin: this series first
    need: uint256 = liq.from_account
    for i: uint256 in range(len(state.series_ids) + 1, bound=MAX_SERIES + 1):
        if need == 0:
            break
        source: uint256 = series_id
        held: uint256 = own
        if i != 0:
            source = state.series_ids[i - 1]
            if source == series_id:
                continue
            held = state.held[i - 1]
        taken: uint256 = min(need, held)
        if taken != 0:
            extcall clearinghouse.margin_update(account, token, source, 0, account, taken, False)
            need -= taken
    if need != 0:
        extcall clearinghouse.margin_update(account, token, 0, 0, account, need, False)
    extcall clearinghouse.margin_liquidate(account, msg.sender, series_id, liq.amount, liq.from_account, liq.from_insurance)
    log Liquidated(
        account=account,
        liquidator=msg.sender,
        series_id=series_id,
        amount=liq.amount,
        discount_bps=discount,
        base=liq.base,
        reward=liq.reward,
        from_account=liq.from_account,
        from_insurance=liq.from_insurance,
        unpaid_base=liq.bad_debt,
        restored=liq.restored,
    )
    return liq


# ---------------------------------------------------------------------------
#                                 Settlement
# ---------------------------------------------------------------------------

@external
@nonreentrant
def settle(account: address, series_id: uint256) -> uint256:
    """
    @dev Settles `account`'s expired margined short of `series_id` at its
         final price, drawing on the account's whole margin in the token
         before the insurance fund (issue 10): first its other expired
         margined series whose collateral covers their obligation are
         settled (their surplus returns to its free balance), then as much
         collateral of its live margined series as the shortfall beyond
         this short's collateral, the reserve and the free balance needs
         moves to its free balance, then the Clearinghouse settles (which
         lets only this contract reach the insurance fund). Anyone may
         call; the account may fall under maintenance afterwards.
    @param account The margined writer.
    @param series_id An expired series it is margined short in.
    @return uint256 The collateral returned to the account's free balance.
    """
    token: address = self._token(series_id)
    assert token != empty(address), "engine: not margined"
    listed: DynArray[uint256, MAX_SERIES] = self._margined[account][token]
    assert series_id in listed, "engine: not margined"
    assert block.timestamp >= self._terms[series_id] >> 128, "engine: not expired"
    reserve: uint256 = 0
    words: DynArray[uint256, MAX_SERIES] = []
    # other expired series that pay for themselves go first
    for i: uint256 in range(len(listed), bound=MAX_SERIES):
        other: uint256 = listed[i]
        if other != series_id:
            reserve, words = staticcall clearinghouse.margin_words(account, token, [other])
            if words[0] & MARGIN_BIT != 0 and self._obligation(other, words[0] & SHORT_MASK) <= words[0] >> 128:
                extcall clearinghouse.settle(other, account)
    reserve, words = staticcall clearinghouse.margin_words(account, token, listed)
    need: uint256 = 0
    for i: uint256 in range(len(listed), bound=MAX_SERIES):
        if listed[i] == series_id:
            assert words[i] & MARGIN_BIT != 0, "engine: not margined"
            need = self._obligation(series_id, words[i] & SHORT_MASK)
            assert need != max_value(uint256), "engine: price not final"
            cover: uint256 = (words[i] >> 128) + reserve + staticcall LedgerFree(
                staticcall clearinghouse.ledger()
            ).free_collateral(account, token)
            need = need - min(need, cover)
    for i: uint256 in range(len(listed), bound=MAX_SERIES):
        if need == 0:
            break
        word: uint256 = words[i]
        if word & MARGIN_BIT != 0 and block.timestamp < self._terms[listed[i]] >> 128:
            taken: uint256 = min(need, word >> 128)
            if taken != 0:
                extcall clearinghouse.margin_update(account, token, listed[i], 0, account, taken, False)
                need -= taken
    return extcall clearinghouse.settle(series_id, account)


# ---------------------------------------------------------------------------
#                                    Views
# ---------------------------------------------------------------------------

@external
@view
def margin_params(product_id: bytes32) -> margin.MarginParams:
    """
    @dev A product's margin parameters; all zero if margin is off.
    """
    return self._unpack_params(self._params[product_id])


@external
@view
def auction_params() -> margin.AuctionParams:
    """
    @dev The liquidation auction (`set_auction_params`).
    """
    return self._auction_params()


@external
@view
def auction_start(account: address, token: address) -> uint256:
    """
    @dev When the account was first seen under maintenance; 0 = no auction.
    """
    return self._clock[account][token] & START_MASK


@external
@view
def auction_seen(account: address, token: address) -> uint256:
    """
    @dev The sum of the Oracle's update counts of the account's underlyings
         when the engine last saw it under maintenance (`_updates`).
    """
    return self._clock[account][token] >> 128


@external
@view
def last_change(account: address, token: address) -> uint256:
    """
    @dev Block time of the account's last change through the engine (write,
         top-up, removal, release): a liquidation needs a spot newer than it.
    """
    return (self._clock[account][token] & CHANGE_MASK) >> 64


@external
@view
def margined_series(account: address, token: address) -> DynArray[uint256, MAX_SERIES]:
    """
    @dev The account's list of margined series in `token` as stored; it may
         still hold entries closed, settled or expired since its last write.
    """
    return self._margined[account][token]


@external
@view
def account_margin(account: address, token: address) -> (uint256, uint256, uint256):
    """
    @dev (collateral, initial, maintenance) of the account's margin in
         `token`: its live margined shorts and reserve, at the Oracle's spot
         (a short whose underlying's spot is stale at full collateral).
    """
    collateral: uint256 = 0
    initial: uint256 = 0
    maintenance: uint256 = 0
    pending: bool = False
    collateral, initial, maintenance, pending = self._levels(account, token, True, True)
    return collateral, initial, maintenance


@external
@view
def free_margin(account: address, token: address) -> uint256:
    """
    @dev Margined collateral above the initial requirement (0 if below, or
         while a margined short of the account expired unsettled).
    """
    collateral: uint256 = 0
    initial: uint256 = 0
    maintenance: uint256 = 0
    pending: bool = False
    collateral, initial, maintenance, pending = self._levels(account, token, True, False)
    if collateral > initial and not pending:
        return collateral - initial
    return 0


@external
@view
def is_liquidatable(account: address, token: address) -> bool:
    """
    @dev Whether the account's margin in `token` is below maintenance (a
         stale price values its shorts at full collateral; never reverts on
         the account's own doing).
    """
    collateral: uint256 = 0
    initial: uint256 = 0
    maintenance: uint256 = 0
    pending: bool = False
    collateral, initial, maintenance, pending = self._levels(account, token, False, True)
    return collateral < maintenance


# ---------------------------------------------------------------------------
#                                  Internals
# ---------------------------------------------------------------------------

@internal
def _cache(series_id: uint256) -> address:
    """
    @dev Caches a series' terms from the Clearinghouse on first use.
    @return address The series' collateral token.
    """
    if self._product_of[series_id] != empty(bytes32):
        return self._token(series_id)
    product_id: bytes32 = empty(bytes32)
    strike: uint256 = 0
    expiry: uint256 = 0
    product_id, strike, expiry = staticcall clearinghouse.series(series_id)
    assert expiry != 0, "engine: unknown series"
    underlying: address = empty(address)
    quote: address = empty(address)
    collateral: address = empty(address)
    is_put: bool = False
    enabled: bool = False
    underlying, quote, collateral, is_put, enabled = staticcall clearinghouse.products(product_id)
    self._terms[series_id] = strike | (expiry << 128)
    self._product_of[series_id] = product_id
    word: uint256 = convert(underlying, uint256)
    if is_put:
        word |= PUT_BIT
    self._underlying[series_id] = word
    return collateral


@internal
@view
def _token(series_id: uint256) -> address:
    """
    @dev A cached series' collateral token (from its product's word); empty
         if the series was never margined here.
    """
    return convert(convert((self._params[self._product_of[series_id]] >> 64) & MASK160, uint160), address)


@internal
@view
def _auction_params() -> margin.AuctionParams:
    """
    @dev The liquidation auction, unpacked.
    """
    word: uint256 = self._auction
    return margin.AuctionParams(start_bps=word & START_MASK, max_bps=(word >> 64) & START_MASK, duration=word >> 128)


@internal
@view
def _unit(series_id: uint256) -> uint256:
    """
    @dev 10**decimals of a cached series' collateral token.
    """
    return 10 ** ((self._params[self._product_of[series_id]] >> DECIMALS_SHIFT) & 255)


@internal
@pure
def _unpack_params(word: uint256) -> margin.MarginParams:
    """
    @dev Unpacks a product's margin parameters.
    """
    return margin.MarginParams(
        spot_shock_bps=word & MASK16,
        time_shock_bps=(word >> 16) & MASK16,
        min_bps=(word >> 32) & MASK16,
        maintenance_bps=(word >> 48) & MASK16,
    )


@internal
@view
def _spot(oracle: IOracle, asset: address, max_age: uint256) -> (uint256, uint256):
    """
    @dev The Oracle's spot of `asset` and its time; (0, 0) if it is missing
         or older than `max_age`.
    """
    price: uint256 = 0
    seen: uint256 = 0
    price, seen = staticcall oracle.spot(asset)
    if price == 0 or block.timestamp - seen > max_age:
        return 0, 0
    return price, seen


@internal
@view
def _position(series_id: uint256, short: uint256, underlying: uint256, price: uint256, seen: uint256) -> margin.ShortPosition:
    """
    @dev A live margined short of `short` units of `series_id` (whose cached
         underlying word is `underlying`) for the margin maths, at the spot
         `price` seen at `seen` (`_spot`). A product with margin turned off is
         margined at full collateral; so is any short whose underlying's spot
         is missing or stale (`FULL`; `seen` 0), so that a quiet feed never
         makes a check revert.
    """
    word: uint256 = self._params[self._product_of[series_id]]
    params: margin.MarginParams = margin.MarginParams(
        spot_shock_bps=BPS, time_shock_bps=0, min_bps=BPS, maintenance_bps=BPS - 1
    )
    if word & PARAMS_MASK != 0:
        params = self._unpack_params(word)
    terms: uint256 = self._terms[series_id]
    is_put: bool = underlying & PUT_BIT != 0
    spot: uint256 = price
    if seen == 0:
        params = FULL
        spot = 0
        if not is_put:
            spot = margin.MAX_PRICE
    return margin.ShortPosition(
        is_put=is_put,
        strike=terms & MASK128,
        spot=spot,
        amount=short,
        time_to_expiry=(terms >> 128) - block.timestamp,
        params=params,
    )


@internal
@view
def _obligation(series_id: uint256, short: uint256) -> uint256:
    """
    @dev What settling `short` of expired `series_id` takes into its payout
         pool at the final expiry price, rounded up by one unit (the
         Clearinghouse's payoff view rounds down); max_value(uint256) while
         the price is not final.
    """
    price: uint256 = 0
    final: bool = False
    underlying: address = convert(convert(self._underlying[series_id] & (PUT_BIT - 1), uint160), address)
    price, final = staticcall IOracle(staticcall clearinghouse.oracle()).expiry_price(
        underlying, self._terms[series_id] >> 128
    )
    if not final:
        return max_value(uint256)
    return staticcall clearinghouse.payoff(series_id, price, short) + 1


@internal
@view
def _account(
    account: address, token: address, initial: bool, maintenance: bool, intrinsic: bool
) -> AccountMargin:
    """
    @dev The account's margin in `token`: its reserve plus the collateral of
         its live margined shorts (listed, still margined, not expired) and,
         as asked, their initial and maintenance requirements and intrinsic
         value at the Oracle's spot (stale: full collateral, `_position`).
    """
    listed: DynArray[uint256, MAX_SERIES] = self._margined[account][token]
    reserve: uint256 = 0
    words: DynArray[uint256, MAX_SERIES] = []
    reserve, words = staticcall clearinghouse.margin_words(account, token, listed)
    out: AccountMargin = empty(AccountMargin)
    out.reserve = reserve
    out.collateral = reserve
    positions: DynArray[margin.ShortPosition, MAX_SERIES] = []
    oracle: IOracle = empty(IOracle)
    max_age: uint256 = 0
    unit: uint256 = 0
    # the spot of the last underlying looked up (a list is mostly one)
    last: address = empty(address)
    price: uint256 = 0
    seen: uint256 = 0
    for i: uint256 in range(len(listed), bound=MAX_SERIES):
        word: uint256 = words[i]
        series_id: uint256 = listed[i]
        if word & MARGIN_BIT == 0:
            continue
        if block.timestamp >= self._terms[series_id] >> 128:
            out.pending = True
            continue
        if oracle.address == empty(address):
            oracle = IOracle(staticcall clearinghouse.oracle())
            # an age beyond 2**96 seconds is no limit either
            max_age = min(staticcall oracle.max_age(), MAX_AGE)
            out.feed = convert(oracle.address, uint256) | (max_age << 160)
            # every listed series is in `token`: one unit
            unit = self._unit(series_id)
        out.collateral += word >> 128
        out.series_ids.append(series_id)
        out.shorts.append(word & SHORT_MASK)
        out.held.append(word >> 128)
        underlying: uint256 = self._underlying[series_id]
        asset: address = convert(convert(underlying & MASK160, uint160), address)
        if asset != last:
            last = asset
            price, seen = self._spot(oracle, asset, max_age)
            if asset not in out.assets:
                out.assets.append(asset)
        positions.append(self._position(series_id, word & SHORT_MASK, underlying, price, seen))
    if len(positions) == 0:
        return out
    if initial:
        out.initial = margin._account_requirement(unit, positions, False)
    if maintenance:
        out.maintenance = margin._account_requirement(unit, positions, True)
    if intrinsic:
        out.intrinsic = margin._account_intrinsic(unit, positions)
    return out


@internal
@view
def _levels(account: address, token: address, initial: bool, maintenance: bool) -> (uint256, uint256, uint256, bool):
    """
    @dev `_account`'s (collateral, initial, maintenance, pending), for the
         callers that need no more (one copy of its large result).
    """
    state: AccountMargin = self._account(account, token, initial, maintenance, False)
    return state.collateral, state.initial, state.maintenance, state.pending


@internal
def _prune(account: address, token: address) -> DynArray[uint256, MAX_SERIES]:
    """
    @dev Drops from the account's list the series no longer margined (closed
         or settled), and returns what is left. An expired series stays
         listed until it settles, so that its backing stays locked
         (`_require_initial`).
    """
    listed: DynArray[uint256, MAX_SERIES] = self._margined[account][token]
    if len(listed) == 0:
        return listed
    reserve: uint256 = 0
    words: DynArray[uint256, MAX_SERIES] = []
    reserve, words = staticcall clearinghouse.margin_words(account, token, listed)
    kept: DynArray[uint256, MAX_SERIES] = []
    for i: uint256 in range(len(listed), bound=MAX_SERIES):
        if words[i] & MARGIN_BIT != 0:
            kept.append(listed[i])
    if len(kept) != len(listed):
        self._margined[account][token] = kept
    return kept


@internal
def _require_initial(account: address, token: address):
    """
    @dev Reverts unless the account's margin in `token` covers its initial
         requirement and none of its margined shorts in `token` has expired
         unsettled (from expiry until the series settles at its final price
         the account's whole margin backs that short: no collateral leaves
         and nothing new is written on it; anyone may `settle`). Records the
         change (`last_change`) and clears a running auction clock, in one
         store of the clock word.
    """
    collateral: uint256 = 0
    initial: uint256 = 0
    maintenance: uint256 = 0
    pending: bool = False
    collateral, initial, maintenance, pending = self._levels(account, token, True, False)
    assert not pending, "engine: settlement pending"
    assert collateral >= initial, "engine: below initial margin"
    clock: uint256 = (self._clock[account][token] & ~CHANGE_MASK) | (block.timestamp << 64)
    if clock & START_MASK != 0:
        clock = self._cleared(account, token, clock)
    self._clock[account][token] = clock


@internal
def _cleared(account: address, token: address, clock: uint256) -> uint256:
    """
    @dev The clock word with the account's liquidation auction stopped.
    """
    log LiquidationCleared(account=account, token=token)
    return clock & ~START_MASK


@internal
def _observe(account: address, token: address, assets: DynArray[address, MAX_SERIES], oracle: IOracle, clock: uint256) -> uint256:
    """
    @dev The engine sees the account under maintenance now: returns its
         clock word (`clock` as stored) with the update counts seen now and
         the auction's start: the running clock if it continues (`_updates`),
         else a clock started now. The caller stores it.
    """
    started: uint256 = clock & START_MASK
    updates: uint256 = self._updates(assets, oracle)
    seen: uint256 = clock >> 128
    # @dev at most one price update since the last look, and that one is the
    # price seen now: no unseen price came in between
    if started == 0 or updates > seen + 1 or updates < seen:
        clock = self._started(account, token, clock)
    # a sum of at most 16 update counts stays far below 2**128
    return (clock & MASK128) | (updates << 128)


@internal
def _started(account: address, token: address, clock: uint256) -> uint256:
    """
    @dev The clock word with the account's liquidation auction started now.
    """
    log LiquidationStarted(account=account, token=token, started=block.timestamp)
    return (clock & ~START_MASK) | block.timestamp


@internal
@view
def _updates(assets: DynArray[address, MAX_SERIES], oracle: IOracle) -> uint256:
    """
    @dev The sum of the Oracle's aggregate update counts of `assets`. From
         one look at an account under maintenance to the next, it grows by
         the number of prices the account was valued at in between; more
         than one means one the engine did not see, which may have left it
         healthy, and the auction clock restarts (a smaller sum means its
         underlyings changed: restart too). The account's own changes go
         through this engine, which clears the clock when they leave it
         healthy (`burn_margined` only helps it, against itself).
    """
    total: uint256 = 0
    for asset: address in assets:
        updated: uint256 = 0
        count: uint256 = 0
        updated, count = staticcall oracle.spot_updates(asset)
        total += count
    return total
