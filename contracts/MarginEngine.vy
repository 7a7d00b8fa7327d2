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
        collateralised ones. From a margined short's expiry until it settles
        at its final price, the account's margin in that token stays locked:
        no removal, release or new margined write (`_require_initial`), and
        the expired series stays listed (`_prune`) so the lock cannot be
        dropped by pruning.
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
MASK64: constant(uint256) = 2**64 - 1
MASK128: constant(uint256) = 2**128 - 1
PUT_BIT: constant(uint256) = 2**160


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


clearinghouse: public(immutable(IClearinghouse))

# @dev Per product, packed: spot shock (bits 0-63) | time shock (64-127) |
# floor (128-191) | maintenance (192-255); zero = margin off.
_params: HashMap[bytes32, uint256]
auction_params: public(margin.AuctionParams)
# @dev Margined series of an account per collateral token. Entries closed,
# settled or expired are pruned by the account's next write.
_margined: HashMap[address, HashMap[address, DynArray[uint256, MAX_SERIES]]]
# @dev When the account was first seen under maintenance; 0 = no auction.
auction_start: public(HashMap[address, HashMap[address, uint256]])
# @dev Series terms cached at the first margined write: strike (0-127) |
# expiry (128-255); product; underlying (0-159) | is_put (160); collateral.
_terms: HashMap[uint256, uint256]
_product_of: HashMap[uint256, bytes32]
_underlying: HashMap[uint256, uint256]
_token_of: HashMap[uint256, address]


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
    word: uint256 = 0
    if params.spot_shock_bps | params.time_shock_bps | params.min_bps | params.maintenance_bps != 0:
        margin._check_margin_params(params)
        word = (
            params.spot_shock_bps
            | (params.time_shock_bps << 64)
            | (params.min_bps << 128)
            | (params.maintenance_bps << 192)
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
    self.auction_params = auction
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
    assert self._params[self._product_of[series_id]] != 0, "engine: margin disabled"
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
    token: address = self._token_of[series_id]
    assert token != empty(address), "engine: not margined"
    extcall clearinghouse.margin_update(msg.sender, token, series_id, 0, msg.sender, amount, True)
    if self.auction_start[msg.sender][token] != 0:
        state: AccountMargin = self._account(msg.sender, token, False, True, False)
        if state.collateral >= state.maintenance:
            self._clear_auction(msg.sender, token)


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
    token: address = self._token_of[series_id]
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
    @dev Starts the liquidation auction clock of `account` in `token` if the
         account is below maintenance (a running clock is kept). On a healthy
         account a running clock is cleared; with no clock it reverts.
    @param account The margined account.
    @param token The collateral token.
    @return uint256 The auction's start, 0 if it was cleared.
    """
    state: AccountMargin = self._account(account, token, False, True, False)
    started: uint256 = self.auction_start[account][token]
    if state.collateral >= state.maintenance:
        assert started != 0, "engine: account healthy"
        self._clear_auction(account, token)
        return 0
    if started == 0:
        started = block.timestamp
        self.auction_start[account][token] = started
        log LiquidationStarted(account=account, token=token, started=started)
    return started


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
    assert self._token_of[series_id] == token, "engine: wrong token"
    state: AccountMargin = self._account(account, token, False, True, True)
    assert series_id in state.series_ids, "engine: not margined"
    assert state.collateral < state.maintenance, "engine: account healthy"

    started: uint256 = self.auction_start[account][token]
    if started == 0:
        started = block.timestamp
        self.auction_start[account][token] = started
        log LiquidationStarted(account=account, token=token, started=started)
    discount: uint256 = margin._auction_discount(block.timestamp - started, self.auction_params)
    short: uint256 = 0
    for i: uint256 in range(len(state.series_ids), bound=MAX_SERIES):
        if state.series_ids[i] == series_id:
            short = state.shorts[i]
    liq: margin.Liquidation = margin._liquidate(
        staticcall clearinghouse.token_unit(token),
        self._position(series_id, short, IOracle(staticcall clearinghouse.oracle())),
        state.collateral,
        state.maintenance,
        state.intrinsic,
        discount,
        max_amount,
        staticcall clearinghouse.insurance(token),
    )

    # move what the account pays out of its margin: this series first
    need: uint256 = liq.from_account
    for i: uint256 in range(len(state.series_ids) + 1, bound=MAX_SERIES + 1):
        if need == 0:
            break
        source: uint256 = series_id
        held: uint256 = 0
        if i == 0:
            for j: uint256 in range(len(state.series_ids), bound=MAX_SERIES):
                if state.series_ids[j] == series_id:
                    held = state.held[j]
        else:
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
    if liq.restored:
        self._clear_auction(account, token)
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
         (reverts if the price is stale).
    """
    state: AccountMargin = self._account(account, token, True, True, False)
    return state.collateral, state.initial, state.maintenance


@external
@view
def free_margin(account: address, token: address) -> uint256:
    """
    @dev Margined collateral above the initial requirement (0 if below, or
         while a margined short of the account expired unsettled).
    """
    state: AccountMargin = self._account(account, token, True, False, False)
    if state.collateral > state.initial and not state.pending:
        return state.collateral - state.initial
    return 0


@external
@view
def is_liquidatable(account: address, token: address) -> bool:
    """
    @dev Whether the account's margin in `token` is below maintenance.
    """
    state: AccountMargin = self._account(account, token, False, True, False)
    return state.collateral < state.maintenance


# ---------------------------------------------------------------------------
#                                  Internals
# ---------------------------------------------------------------------------

@internal
def _cache(series_id: uint256) -> address:
    """
    @dev Caches a series' terms from the Clearinghouse on first use.
    @return address The series' collateral token.
    """
    token: address = self._token_of[series_id]
    if token != empty(address):
        return token
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
    self._token_of[series_id] = collateral
    return collateral


@internal
@pure
def _unpack_params(word: uint256) -> margin.MarginParams:
    """
    @dev Unpacks a product's margin parameters.
    """
    return margin.MarginParams(
        spot_shock_bps=word & MASK64,
        time_shock_bps=(word >> 64) & MASK64,
        min_bps=(word >> 128) & MASK64,
        maintenance_bps=word >> 192,
    )


@internal
@view
def _position(series_id: uint256, short: uint256, oracle: IOracle) -> margin.ShortPosition:
    """
    @dev A live margined short of `short` units of `series_id` for the margin
         maths, at the Oracle's spot (which reverts if stale). A product with
         margin turned off is margined at full collateral.
    """
    word: uint256 = self._params[self._product_of[series_id]]
    params: margin.MarginParams = margin.MarginParams(
        spot_shock_bps=BPS, time_shock_bps=0, min_bps=BPS, maintenance_bps=BPS - 1
    )
    if word != 0:
        params = self._unpack_params(word)
    terms: uint256 = self._terms[series_id]
    underlying: uint256 = self._underlying[series_id]
    return margin.ShortPosition(
        is_put=underlying & PUT_BIT != 0,
        strike=terms & MASK128,
        spot=staticcall oracle.spot_price(convert(convert(underlying & (PUT_BIT - 1), uint160), address)),
        amount=short,
        time_to_expiry=(terms >> 128) - block.timestamp,
        params=params,
    )


@internal
@view
def _account(
    account: address, token: address, initial: bool, maintenance: bool, intrinsic: bool
) -> AccountMargin:
    """
    @dev The account's margin in `token`: its reserve plus the collateral of
         its live margined shorts (listed, still margined, not expired) and,
         as asked, their initial and maintenance requirements and intrinsic
         value at the Oracle's spot.
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
        out.collateral += word >> 128
        out.series_ids.append(series_id)
        out.shorts.append(word & SHORT_MASK)
        out.held.append(word >> 128)
        positions.append(self._position(series_id, word & SHORT_MASK, oracle))
    if len(positions) == 0:
        return out
    unit: uint256 = staticcall clearinghouse.token_unit(token)
    if initial:
        out.initial = margin._account_requirement(unit, positions, False)
    if maintenance:
        out.maintenance = margin._account_requirement(unit, positions, True)
    if intrinsic:
        out.intrinsic = margin._account_intrinsic(unit, positions)
    return out


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
         and nothing new is written on it; anyone may `settle`). A running
         auction clock is then cleared.
    """
    state: AccountMargin = self._account(account, token, True, False, False)
    assert not state.pending, "engine: settlement pending"
    assert state.collateral >= state.initial, "engine: below initial margin"
    if self.auction_start[account][token] != 0:
        self._clear_auction(account, token)


@internal
def _clear_auction(account: address, token: address):
    """
    @dev Stops the account's liquidation auction clock.
    """
    self.auction_start[account][token] = 0
    log LiquidationCleared(account=account, token=token)
