# pragma version ~=0.4.3
"""
@title Strikeline Clearinghouse (v2)
@custom:contract-name Clearinghouse
@license GNU Affero General Public License v3.0 only
@notice The cold paths beside the Ledger (contracts/v2/Ledger.vy), which
        holds every token, free balances, fully collateralised shorts and the
        ERC-1155 longs. This contract keeps no token; it keeps the accounting
        of what the Ledger holds for the cold paths and moves it through the
        Ledger's Clearinghouse-only `clearing_*` hooks:

        - Governance whitelists products (underlying, quote, collateral,
          is_put), sets the Oracle, the fees, the fee recipient, and pauses;
          each product and the fee/pause config word is pushed to the Ledger.
          Anyone creates series (product, strike, expiry at 08:00 UTC).
        - After the Oracle's expiry price is final, holders redeem the cash
          payoff and writers settle and take back the rest; anyone may do
          either on a user's behalf, one at a time or in batches. The payout
          pool (what all fully collateralised longs are owed, rounded up) is
          fixed at the first redeem or settle.
        - The MarginEngine (MARGIN_ROLE) writes margined shorts with partial
          collateral, kept HERE (the Ledger's position word holds only full
          shorts), moves margin and liquidations. A margined short pays its
          own obligation at settlement, then from its writer's margin reserve
          and free balance; only what the writer cannot pay comes from the
          insurance fund (`fund_insurance`), the rest is the series' bad debt
          and its holders, who redeem once every margined short has settled,
          are paid pro rata (`margin._haircut_payout`, docs/margin.md).
        - A margined writer closes before expiry with `burn_margined` (its own
          longs against its margined short). Trades on the Ledger net only
          fully collateralised shorts (buy to close): a deliberate change from
          v1, where a trade also closed margined shorts.

        Rounding never favours a user: collateral locked and writer
        obligations round up, holder payouts and collateral released round
        down. The rounding dust of a fully settled series is swept to the fee
        recipient.
@custom:kill The GUARDIAN pauses (`pause`): writing, trading, margined writing
        and liquidation stop, in the Ledger and here; revoking MARGIN_ROLE
        cuts the MarginEngine off. A pause never blocks deposits, withdrawals,
        burning, transfers, redeeming or settling after a final expiry price.
        To retire the system: pause, disable every product and let every
        series expire and settle; users withdraw free collateral from the
        Ledger at any time.
"""

from ethereum.ercs import IERC20Detailed

from snekmate.auth import access_control

from .interfaces import ILedger
from .interfaces import IOracle

# @dev Shared word layouts, units and money maths; stateless, so a plain import.
from .modules import layout

# @dev Bad-debt haircut maths, the tested module function; stateless.
from .modules import margin

# @dev Roles: the admin (a timelock in production) changes parameters; the
# guardian pauses; the MarginEngine (MARGIN_ROLE) moves margin.
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

event ProductSet:
    product_id: indexed(bytes32)
    underlying: address
    quote: address
    collateral: address
    is_put: bool
    enabled: bool


event SeriesCreated:
    series_id: indexed(uint256)
    product_id: indexed(bytes32)
    strike: uint256
    expiry: uint256


event SeriesSettlementPrice:
    series_id: indexed(uint256)
    price: uint256
    payout_pool: uint256


event Redeemed:
    holder: indexed(address)
    series_id: indexed(uint256)
    amount: uint256
    payout: uint256
    caller: address


event Settled:
    writer: indexed(address)
    series_id: indexed(uint256)
    amount: uint256
    obligation: uint256
    returned: uint256
    caller: address


event DustSwept:
    series_id: indexed(uint256)
    token: indexed(address)
    amount: uint256
    recipient: address


event OracleSet:
    oracle: indexed(address)


event FeesSet:
    maker_fee_bps: uint256
    taker_fee_bps: uint256


event FeeRecipientSet:
    fee_recipient: indexed(address)


event Paused:
    account: address


event Unpaused:
    account: address


event MarginUpdated:
    account: indexed(address)
    token: indexed(address)
    # 0 = the account's margin reserve
    series_id: indexed(uint256)
    # option units written (longs minted)
    amount: uint256
    collateral: uint256
    # True: free -> margin; False: margin -> free
    added: bool


event MarginBurned:
    writer: indexed(address)
    series_id: indexed(uint256)
    amount: uint256


event MarginRetired:
    account: indexed(address)
    series_id: indexed(uint256)
    # collateral moved to the account's margin reserve
    amount: uint256


event MarginLiquidated:
    account: indexed(address)
    liquidator: indexed(address)
    series_id: indexed(uint256)
    amount: uint256
    from_account: uint256
    from_insurance: uint256


event InsuranceFunded:
    token: indexed(address)
    funder: indexed(address)
    amount: uint256


event ShortfallSettled:
    writer: indexed(address)
    series_id: indexed(uint256)
    # obligation above the short's own collateral
    shortfall: uint256
    # paid from the writer's margin reserve and free balance
    from_writer: uint256
    from_insurance: uint256
    bad_debt: uint256


# ---------------------------------------------------------------------------
#                                  Constants
# ---------------------------------------------------------------------------

GUARDIAN_ROLE: public(constant(bytes32)) = keccak256("GUARDIAN_ROLE")
MARGIN_ROLE: public(constant(bytes32)) = keccak256("MARGIN_ROLE")

MAX_STRIKE: public(constant(uint256)) = layout.MAX_STRIKE
MAX_DECIMALS: public(constant(uint256)) = layout.MAX_DECIMALS
MAX_AMOUNT: public(constant(uint256)) = layout.MAX_AMOUNT
# @dev The Ledger's fee cap (12.5% of premium).
MAX_FEE_BPS: public(constant(uint256)) = 1_250
# @dev fields of the Ledger's config word (see `_push_config`)
FEES_BITS: constant(uint256) = (2**32 - 1) << 160
PAUSED_BIT: constant(uint256) = 2**192
BATCH: constant(uint256) = 64
# @dev The margin module's MAX_SERIES_PER_ACCOUNT: the MarginEngine's list bound.
MAX_SERIES: constant(uint256) = margin.MAX_SERIES_PER_ACCOUNT
# @dev A margined position word (v1's layout, which the engine reads):
# short (bits 0-126) | margined flag (127) | collateral (128-255).
MARGINED: constant(uint256) = 2**127
# @dev A settlement word: price (0-95; zero until fixed) | the product's
# is_put (96) and collateral decimals (104-111) | SERIES_BIT (112) | BAD_DEBT
# (113) | MARGIN_SETTLING (127) | payout pool still owed (128-255). Written when the series is
# created, so fixing the price updates a slot instead of creating one; with
# the series' terms word (which holds the collateral token) it is all a
# settle or redeem reads of the series.
PRICE_MASK: constant(uint256) = 2**96 - 1
# @dev the product word's bits, 64 lower (see `create_series`)
SETTLING_PUT: constant(uint256) = layout.PUT_BIT >> 64
SETTLING_DECIMALS_SHIFT: constant(uint256) = layout.DECIMALS_SHIFT - 64
SERIES_BIT: constant(uint256) = 2**112
# @dev in a redemption word: set from the series' creation (see `_redemption`)
REDEMPTION_BIT: constant(uint256) = 2**127
LONGS_MASK: constant(uint256) = 2**127 - 1
# @dev margined shorts were open when the price was fixed. None can be
# written after expiry, so without it no writer holds one.
MARGIN_SETTLING: constant(uint256) = 2**127
# @dev a margined writer's settlement left bad debt: holders are paid pro
# rata (`_redeem`); the amount is in `_bad_debt`
BAD_DEBT: constant(uint256) = 2**113


# ---------------------------------------------------------------------------
#                            Immutables and storage
# ---------------------------------------------------------------------------

struct Product:
    underlying: address
    quote: address
    collateral: address
    is_put: bool
    enabled: bool


struct Series:
    product_id: bytes32
    strike: uint256
    expiry: uint256


struct SeriesState:
    # shorts outstanding (full and margined); the long supply until settlement
    open_interest: uint256
    # collateral held for the series (full and margined writers' collateral,
    # then what settled writers and the fund paid in) net of the payout pool:
    # v1's meaning; zero once settled and swept
    collateral: uint256
    # final expiry price, cached at the first redeem or settle; 0 before
    settlement_price: uint256
    # what unredeemed holders are still owed from the settlement pool
    payout_pool: uint256


struct MarginPosition:
    short: uint256
    collateral: uint256


# @dev Unpacked product and series terms, for settlement.
struct Terms:
    token: address
    is_put: bool
    unit: uint256
    strike: uint256
    expiry: uint256


# @dev The Ledger: bound to this contract at its deployment.
ledger: public(immutable(ILedger))
oracle: public(IOracle)

# @dev product word (`layout`) and its tokens; the Ledger holds a copy.
_product: HashMap[bytes32, uint256]
_product_underlying: HashMap[bytes32, address]
_product_quote: HashMap[bytes32, address]
# @dev series product, and terms word: `layout`'s, but with the collateral
# token where the Ledger's copy has the quote token.
_series_product: HashMap[uint256, bytes32]
_series_terms: HashMap[uint256, uint256]
# @dev settlement word (see PRICE_MASK); zero until the price is fixed
_settlement: HashMap[uint256, uint256]
# @dev from the first redeem or settle on: longs still to redeem (0-126) |
# REDEMPTION_BIT, set when the series is created so that fixing the price
# updates this slot | the payout pool fixed then (128-255). A settled full writer's obligation
# stays in the Ledger's book (settlement takes only what it returns off it),
# so a settle writes nothing here; what margined writers and the fund pay in
# raises the pool still owed in `_settlement`. The series' tokens are then
# the book's collateral + its margined collateral + the pool still owed -
# the pool fixed (`series_state`), its dust that once every long and short
# is closed.
_redemption: HashMap[uint256, uint256]

# @dev 10**decimals of each accepted token; zero means not accepted.
token_unit: public(HashMap[address, uint256])
# @dev Insurance fund per collateral token.
insurance: public(HashMap[address, uint256])
# @dev Margined collateral of an account not attached to a series (what was
# left on a margined short closed to zero); counted in the account's margin.
margin_reserve: public(HashMap[address, HashMap[address, uint256]])
# @dev margined position words (v1's layout, see MARGINED)
_margin_positions: HashMap[address, HashMap[uint256, uint256]]
# @dev margin book of a series, v1's book layout: margined short (0-127) |
# collateral held on the margined shorts (128-255). One word, so that a
# margined write creates one slot for the series, not two; the shorts' sum
# stays far below 2**128 (each position is at most MAX_AMOUNT).
_margin_book: HashMap[uint256, uint256]
# @dev bad debt recorded at the settlement of a series' margined shorts
_bad_debt: HashMap[uint256, uint256]


# ---------------------------------------------------------------------------
#                                 Constructor
# ---------------------------------------------------------------------------

@deploy
def __init__(ledger_: ILedger, oracle_: IOracle, admin_: address, guardian_: address):
    """
    @dev Deploys the Clearinghouse for `ledger_`, which must have been deployed
         bound to this address (the deployer's CREATE address for this
         contract). Fees and the fee recipient start as the Ledger's
         constructor set them; from now on this contract's governance changes
         them. `admin_` (a timelock in production) gets the admin role,
         `guardian_` the guardian role; the deployer keeps no role unless it
         is one of them.
    @param ledger_ The Ledger, bound to this contract.
    @param oracle_ The Oracle of spot and expiry prices.
    @param admin_ The admin.
    @param guardian_ The guardian (zero: none yet).
    """
    assert admin_ != empty(address), "clearinghouse: zero admin"
    assert oracle_.address != empty(address), "clearinghouse: zero oracle"
    assert staticcall ledger_.clearinghouse() == self, "clearinghouse: ledger bound elsewhere"
    access_control.__init__()
    ledger = ledger_
    self.oracle = oracle_
    access_control._grant_role(access_control.DEFAULT_ADMIN_ROLE, admin_)
    if guardian_ != empty(address):
        access_control._grant_role(GUARDIAN_ROLE, guardian_)
    if admin_ != msg.sender:
        access_control._revoke_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    log OracleSet(oracle=oracle_.address)


# ---------------------------------------------------------------------------
#                                 Governance
# ---------------------------------------------------------------------------

@external
def set_product(underlying: address, quote: address, collateral: address, is_put: bool, enabled: bool) -> bytes32:
    """
    @dev Admin: whitelists (or disables) a product and pushes it to the
         Ledger, which then accepts its tokens. Calls are collateralised in
         the underlying, puts in the quote token. Disabling stops new series
         and new writing; existing positions still trade out, settle and redeem.
    @param underlying The underlying token.
    @param quote The quote (premium) token.
    @param collateral The collateral token: quote for puts, underlying for calls.
    @param is_put Whether the product's options are puts.
    @param enabled Whether new series and writes are allowed.
    @return bytes32 The product id, keccak256(abi_encode(underlying, quote, collateral, is_put)).
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert underlying != quote, "clearinghouse: underlying is quote"
    if is_put:
        assert collateral == quote, "clearinghouse: put collateral must be quote"
    else:
        assert collateral == underlying, "clearinghouse: call collateral must be underlying"
    underlying_decimals: uint256 = self._accept_token(underlying)
    quote_decimals: uint256 = self._accept_token(quote)
    decimals: uint256 = underlying_decimals
    if is_put:
        decimals = quote_decimals
    product_id: bytes32 = layout._product_id(underlying, quote, collateral, is_put)
    word: uint256 = convert(collateral, uint256) | (decimals << layout.DECIMALS_SHIFT)
    if is_put:
        word |= layout.PUT_BIT
    if enabled:
        word |= layout.ENABLED_BIT
    self._product[product_id] = word
    self._product_underlying[product_id] = underlying
    self._product_quote[product_id] = quote
    log ProductSet(
        product_id=product_id, underlying=underlying, quote=quote, collateral=collateral, is_put=is_put, enabled=enabled
    )
    extcall ledger.clearing_set_product(
        product_id, word, underlying, 10**underlying_decimals, quote, 10**quote_decimals
    )
    return product_id


@external
def set_oracle(oracle_: IOracle):
    """
    @dev Admin: replaces the Oracle. Series already settling keep their price.
    @param oracle_ The new Oracle.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert oracle_.address != empty(address), "clearinghouse: zero oracle"
    self.oracle = oracle_
    log OracleSet(oracle=oracle_.address)


@external
def set_fees(maker_fee_bps: uint256, taker_fee_bps: uint256):
    """
    @dev Admin: sets the Ledger's trading fees (basis points of premium, at
         most MAX_FEE_BPS each). Orders cap what they pay with `maxFee`.
    @param maker_fee_bps The resting order's fee.
    @param taker_fee_bps The taking side's fee.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert maker_fee_bps <= MAX_FEE_BPS and taker_fee_bps <= MAX_FEE_BPS, "clearinghouse: fee too high"
    self._push_config(FEES_BITS, (maker_fee_bps << 160) | (taker_fee_bps << 176))
    log FeesSet(maker_fee_bps=maker_fee_bps, taker_fee_bps=taker_fee_bps)


@external
def set_fee_recipient(fee_recipient_: address):
    """
    @dev Admin: sets who receives trading fees and rounding dust.
    @param fee_recipient_ The new fee recipient.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert fee_recipient_ != empty(address), "clearinghouse: zero fee recipient"
    self._push_config(layout.MASK160, convert(fee_recipient_, uint256))
    log FeeRecipientSet(fee_recipient=fee_recipient_)


@external
def pause():
    """
    @dev Guardian: stops writing, trading, margined writing and liquidation.
         Exits (withdraw, burn, transfers, redeem, settle) stay open.
    """
    access_control._check_role(GUARDIAN_ROLE, msg.sender)
    assert not staticcall ledger.paused(), "clearinghouse: paused"
    self._push_config(PAUSED_BIT, PAUSED_BIT)
    log Paused(account=msg.sender)


@external
def unpause():
    """
    @dev Guardian: resumes writing, trading, margined writing and liquidation.
    """
    access_control._check_role(GUARDIAN_ROLE, msg.sender)
    assert staticcall ledger.paused(), "clearinghouse: not paused"
    self._push_config(PAUSED_BIT, 0)
    log Unpaused(account=msg.sender)


# ---------------------------------------------------------------------------
#                                   Series
# ---------------------------------------------------------------------------

@external
def create_series(product_id: bytes32, strike: uint256, expiry: uint256) -> uint256:
    """
    @dev Creates a series of a whitelisted product and registers it in the
         Ledger; anyone may call. Creating an existing series returns its id.
    @param product_id An enabled product.
    @param strike Strike price, 8 decimals, in (0, MAX_STRIKE].
    @param expiry Unix seconds, 08:00 UTC, in the future.
    @return uint256 The series id, uint256(keccak256(abi_encode(product_id, strike, expiry))).
    """
    assert self._product[product_id] & layout.ENABLED_BIT != 0, "clearinghouse: unknown product"
    assert strike != 0 and strike <= layout.MAX_STRIKE, "clearinghouse: strike out of range"
    # the terms word keeps the expiry day in 24 bits (until the year 47,900)
    assert expiry > block.timestamp and expiry < layout.MAX_EXPIRY, "clearinghouse: expiry out of range"
    assert expiry % layout.DAY == layout.EXPIRY_HOUR, "clearinghouse: expiry not 08:00 UTC"
    series_id: uint256 = layout._series_id(product_id, strike, expiry)
    if self._series_terms[series_id] == 0:
        terms: uint256 = ((expiry // layout.DAY) << 160) | (strike << layout.STRIKE_SHIFT)
        product: uint256 = self._product[product_id]
        self._series_product[series_id] = product_id
        self._series_terms[series_id] = terms | (product & layout.MASK160)
        # the product word's is_put (bit 160) and decimals (168-175), 64 lower
        self._settlement[series_id] = SERIES_BIT | ((product >> 64) & (SETTLING_PUT | (255 << SETTLING_DECIMALS_SHIFT)))
        self._redemption[series_id] = REDEMPTION_BIT
        log SeriesCreated(series_id=series_id, product_id=product_id, strike=strike, expiry=expiry)
        extcall ledger.clearing_set_series(
            series_id, product_id, terms | convert(self._product_quote[product_id], uint256)
        )
    return series_id


@external
@pure
def product_id(underlying: address, quote: address, collateral: address, is_put: bool) -> bytes32:
    """
    @dev The deterministic id of a product.
    @return bytes32 keccak256(abi_encode(underlying, quote, collateral, is_put)).
    """
    return layout._product_id(underlying, quote, collateral, is_put)


@external
@pure
def series_id(product_id: bytes32, strike: uint256, expiry: uint256) -> uint256:
    """
    @dev The deterministic id of a series (also its ERC-1155 id in the Ledger).
    @return uint256 uint256(keccak256(abi_encode(product_id, strike, expiry))).
    """
    return layout._series_id(product_id, strike, expiry)


# ---------------------------------------------------------------------------
#                                   Margin
# ---------------------------------------------------------------------------

@external
@nonreentrant
def fund_insurance(token: address, amount: uint256):
    """
    @dev Moves `amount` of the caller's free `token` in the Ledger into the
         insurance fund, which covers what margined writers cannot pay (a
         liquidation base, a settlement shortfall). Anyone may fund it;
         nobody withdraws it.
    @param token A collateral token.
    @param amount The amount.
    """
    assert amount != 0, "clearinghouse: zero amount"
    extcall ledger.clearing_move_free(msg.sender, token, amount, False)
    self.insurance[token] += amount
    log InsuranceFunded(token=token, funder=msg.sender, amount=amount)


@external
@nonreentrant
def margin_update(
    account: address,
    token: address,
    series_id: uint256,
    amount: uint256,
    recipient: address,
    collateral: uint256,
    added: bool,
):
    """
    @dev MarginEngine only (MARGIN_ROLE), which checks the account's margin
         afterwards. Writes `amount` (0 for none) into `account`'s margined
         short of `series_id`, minting the longs to `recipient` in the Ledger,
         and moves `collateral` of `token` between the account's free balance
         in the Ledger and that short, or its margin reserve if `series_id`
         is 0: into the margin if `added`, out of it otherwise. Writing is
         paused with trading, needs `added` collateral of at most full
         collateral for `amount`, and keeps the margined short at most
         MAX_AMOUNT (the margin maths' domain); moving collateral alone is
         never paused.
    @param account The margined account.
    @param token The collateral token.
    @param series_id An open series, or 0 for the margin reserve.
    @param amount Option units to write.
    @param recipient Who receives the longs.
    @param collateral Collateral to move.
    @param added The direction: free -> margin if True.
    """
    access_control._check_role(MARGIN_ROLE, msg.sender)
    assert amount | collateral != 0, "clearinghouse: zero amount"
    pos: uint256 = 0
    held: uint256 = 0
    if series_id == 0:
        assert amount == 0, "clearinghouse: unknown series"
        held = self.margin_reserve[account][token]
    else:
        # a write checks its product's enabled flag, and that word has is_put
        # and the decimals too, at the settlement word's bits shifted by 64;
        # moving collateral alone needs only the token and expiry of `_terms`
        flags: uint256 = 0
        if amount != 0:
            flags = self._product[self._series_product[series_id]] >> 64
        t: Terms = self._terms(series_id, flags)
        assert block.timestamp < t.expiry, "clearinghouse: series expired"
        assert t.token == token, "clearinghouse: wrong token"
        pos = self._margin_positions[account][series_id]
        held = pos >> 128
        if amount != 0:
            assert not staticcall ledger.paused(), "clearinghouse: paused"
            assert flags & (layout.ENABLED_BIT >> 64) != 0, "clearinghouse: product disabled"
            assert recipient != empty(address), "clearinghouse: zero recipient"
            assert (pos & layout.SHORT_MASK) + amount <= layout.MAX_AMOUNT, "clearinghouse: amount too large"
            assert added and collateral <= layout._full_collateral(t.is_put, t.unit, t.strike, amount), (
                "clearinghouse: collateral above full"
            )
        else:
            assert pos & MARGINED != 0, "clearinghouse: not margined"
    if added:
        held += collateral
    else:
        assert held >= collateral, "clearinghouse: insufficient margin collateral"
        held = unsafe_sub(held, collateral)
    if series_id == 0:
        self.margin_reserve[account][token] = held
    else:
        assert held <= layout.MASK128, "clearinghouse: amount too large"
        # short and collateral in one update (the collateral half checked)
        self._margin_book[series_id] = self._margin_book[series_id] + amount + (held << 128) - ((pos >> 128) << 128)
        self._margin_positions[account][series_id] = ((pos & layout.SHORT_MASK) + amount) | MARGINED | (held << 128)
    log MarginUpdated(
        account=account, token=token, series_id=series_id, amount=amount, collateral=collateral, added=added
    )
    if collateral != 0:
        extcall ledger.clearing_move_free(account, token, collateral, not added)
    if amount != 0:
        extcall ledger.clearing_mint(recipient, series_id, amount)


@external
@nonreentrant
def margin_liquidate(
    account: address,
    liquidator: address,
    series_id: uint256,
    amount: uint256,
    from_account: uint256,
    from_insurance: uint256,
):
    """
    @dev MarginEngine only (MARGIN_ROLE), which has priced the liquidation.
         `liquidator` takes over `amount` of `account`'s margined short of
         `series_id` as a fully collateralised short in the Ledger (full
         collateral from its free balance there) and is paid `from_account`
         from the account's free balance (the engine has just moved it there
         out of the account's margin with `margin_update`) plus
         `from_insurance` from the insurance fund. Paused with trading.
    @param account The liquidated account.
    @param liquidator Who takes the short over.
    @param series_id An open series the account is margined short in.
    @param amount Option units taken over.
    @param from_account Paid by the account.
    @param from_insurance Paid by the insurance fund.
    """
    access_control._check_role(MARGIN_ROLE, msg.sender)
    assert not staticcall ledger.paused(), "clearinghouse: paused"
    # only the token and expiry of `_terms` are used: no settlement word read
    t: Terms = self._terms(series_id, 0)
    assert block.timestamp < t.expiry, "clearinghouse: series expired"
    pos: uint256 = self._margin_positions[account][series_id]
    assert pos & MARGINED != 0, "clearinghouse: not margined"
    assert amount != 0, "clearinghouse: zero amount"
    assert pos & layout.SHORT_MASK >= amount, "clearinghouse: insufficient short"
    self._reduce_margined(account, series_id, t.token, pos, amount)
    if from_insurance != 0:
        self.insurance[t.token] -= from_insurance
    log MarginLiquidated(
        account=account,
        liquidator=liquidator,
        series_id=series_id,
        amount=amount,
        from_account=from_account,
        from_insurance=from_insurance,
    )
    extcall ledger.clearing_open_short(liquidator, series_id, amount)
    if from_account != 0:
        extcall ledger.clearing_move_free(account, t.token, from_account, False)
    if from_account + from_insurance != 0:
        extcall ledger.clearing_move_free(liquidator, t.token, from_account + from_insurance, True)


@external
@nonreentrant
def burn_margined(series_id: uint256, amount: uint256):
    """
    @dev Before expiry, burns `amount` of the caller's longs in the Ledger
         against its margined short. Releases nothing: closing risk never
         frees margin that the account's other shorts may rely on; a short
         closed to zero leaves its collateral in the margin reserve, which the
         MarginEngine releases (`release_reserve`). Never paused. (In v1 a
         trade's buy to close also netted margined shorts; in v2 trades net
         only fully collateralised shorts, and this is the margined way out.)
    @param series_id An open series the caller is margined short in.
    @param amount Option units to close.
    """
    # only the token and expiry of `_terms` are used: no settlement word read
    t: Terms = self._terms(series_id, 0)
    assert block.timestamp < t.expiry, "clearinghouse: series expired"
    pos: uint256 = self._margin_positions[msg.sender][series_id]
    assert pos & MARGINED != 0, "clearinghouse: not margined"
    assert amount != 0, "clearinghouse: zero amount"
    assert pos & layout.SHORT_MASK >= amount, "clearinghouse: insufficient short"
    self._reduce_margined(msg.sender, series_id, t.token, pos, amount)
    log MarginBurned(writer=msg.sender, series_id=series_id, amount=amount)
    extcall ledger.clearing_burn(msg.sender, series_id, amount, t.token, 0)


# ---------------------------------------------------------------------------
#                                 Settlement
# ---------------------------------------------------------------------------

@external
@nonreentrant
def redeem(series_id: uint256, holder: address) -> uint256:
    """
    @dev After a final expiry price, burns all of `holder`'s longs in the
         Ledger and credits the cash payoff (rounded down, pro rata if the
         series has bad debt) to its free collateral there. Anyone may call
         (auto-exercise). A second call pays nothing.
    @param series_id The series.
    @param holder The holder.
    @return uint256 The payout.
    """
    return self._redeem(series_id, holder)


@external
@nonreentrant
def settle(series_id: uint256, writer: address) -> uint256:
    """
    @dev After a final expiry price, closes `writer`'s shorts of the series
         (its fully collateralised short in the Ledger and its margined short
         here): the obligation (rounded up) stays for the holders, the rest of
         the collateral returns to its free balance. Anyone may call, except
         that a margined short whose shortfall the writer's reserve and free
         balance cannot pay settles only through `MarginEngine.settle`
         (issue 10). A second call pays nothing.
    @param series_id The series.
    @param writer The writer.
    @return uint256 The collateral returned to the writer.
    """
    return self._settle(series_id, writer)


@external
@nonreentrant
def redeem_many(series_ids: DynArray[uint256, BATCH], holders: DynArray[address, BATCH]) -> uint256:
    """
    @dev Batch `redeem`, pairing `series_ids[i]` with `holders[i]`.
    @return uint256 The sum of payouts.
    """
    assert len(series_ids) == len(holders), "clearinghouse: length mismatch"
    total: uint256 = 0
    for i: uint256 in range(len(series_ids), bound=BATCH):
        total += self._redeem(series_ids[i], holders[i])
    return total


@external
@nonreentrant
def settle_many(series_ids: DynArray[uint256, BATCH], writers: DynArray[address, BATCH]) -> uint256:
    """
    @dev Batch `settle`, pairing `series_ids[i]` with `writers[i]`.
    @return uint256 The sum of collateral returned.
    """
    assert len(series_ids) == len(writers), "clearinghouse: length mismatch"
    total: uint256 = 0
    for i: uint256 in range(len(series_ids), bound=BATCH):
        total += self._settle(series_ids[i], writers[i])
    return total


@external
@nonreentrant
def sweep_dust(series_id: uint256) -> uint256:
    """
    @dev Once every long is redeemed and every short settled, credits the
         series' rounding dust to the fee recipient. Anyone may call.
    @param series_id A settling series.
    @return uint256 The dust swept.
    """
    settlement: uint256 = self._settlement[series_id]
    assert settlement & PRICE_MASK != 0, "clearinghouse: not settled"
    open_interest: uint256 = 0
    obligations: uint256 = 0
    open_interest, obligations = staticcall ledger.book(series_id)
    assert open_interest | (self._margin_book[series_id] & layout.MASK128) == 0, "clearinghouse: shorts outstanding"
    redemption: uint256 = self._redemption[series_id]
    assert redemption & LONGS_MASK == 0, "clearinghouse: longs outstanding"
    # with every short settled the book holds the full writers' obligations,
    # which cover the pool fixed at expiry; holders were paid the pool fixed
    # and what margined writers and the fund paid in, less the pool still owed
    dust: uint256 = obligations + (settlement >> 128) - (redemption >> 128)
    if obligations | dust == 0:
        return 0
    self._redemption[series_id] = 0
    self._settlement[series_id] = settlement & layout.MASK128
    token: address = layout._low_address(self._series_terms[series_id])
    recipient: address = staticcall ledger.fee_recipient()
    log DustSwept(series_id=series_id, token=token, amount=dust, recipient=recipient)
    # takes the obligations off the book and credits the dust: the recipient
    # holds no short of the series, as nobody does any more
    extcall ledger.clearing_settle_short(recipient, series_id, obligations, token, dust)
    return dust


# ---------------------------------------------------------------------------
#                                    Views
# ---------------------------------------------------------------------------

@external
@view
def collateral_required(series_id: uint256, amount: uint256) -> uint256:
    """
    @dev Full collateral for writing `amount` of `series_id`, rounded up.
    @return uint256 Collateral units.
    """
    t: Terms = self._terms(series_id, self._settlement[series_id])
    return layout._full_collateral(t.is_put, t.unit, t.strike, amount)


@external
@view
def payoff(series_id: uint256, price: uint256, amount: uint256) -> uint256:
    """
    @dev Cash payoff of `amount` longs at expiry price `price`, rounded down
         (what a holder receives before any haircut), in the collateral token.
    @return uint256 Collateral units.
    """
    t: Terms = self._terms(series_id, self._settlement[series_id])
    return layout._payoff(t.is_put, t.unit, t.strike, price, amount, False)


@external
@view
def products(product_id: bytes32) -> Product:
    """
    @dev A product: (underlying, quote, collateral, is_put, enabled).
    """
    word: uint256 = self._product[product_id]
    return Product(
        underlying=self._product_underlying[product_id],
        quote=self._product_quote[product_id],
        collateral=layout._low_address(word),
        is_put=word & layout.PUT_BIT != 0,
        enabled=word & layout.ENABLED_BIT != 0,
    )


@external
@view
def series(series_id: uint256) -> Series:
    """
    @dev A series: (product_id, strike, expiry); all zero if unknown.
    """
    terms: uint256 = self._series_terms[series_id]
    if terms == 0:
        return empty(Series)
    return Series(
        product_id=self._series_product[series_id], strike=terms >> layout.STRIKE_SHIFT, expiry=layout._expiry(terms)
    )


@external
@view
def series_state(series_id: uint256) -> SeriesState:
    """
    @dev A series' book: (open_interest, collateral, settlement_price,
         payout_pool); open interest and collateral add the Ledger's full
         shorts and the margined shorts kept here. collateral + payout_pool
         is the part of the Ledger's tokens held for the series.
    """
    open_interest: uint256 = 0
    locked: uint256 = 0
    open_interest, locked = staticcall ledger.book(series_id)
    settlement: uint256 = self._settlement[series_id]
    margined: uint256 = self._margin_book[series_id]
    return SeriesState(
        open_interest=open_interest + (margined & layout.MASK128),
        # the book holds the unsettled full writers' collateral and the settled
        # ones' obligations, which together cover the pool fixed at expiry
        collateral=locked + (margined >> 128) - (self._redemption[series_id] >> 128),
        settlement_price=settlement & PRICE_MASK,
        payout_pool=settlement >> 128,
    )


@external
@view
def settlement_cash(series_id: uint256) -> (uint256, uint256, uint256):
    """
    @dev A settling series' redemption: (payout pool fixed at the first redeem
         or settle, payout pool still owed, longs still to redeem); (0, 0, 0)
         before and once the dust is swept. What margined writers and the
         fund pay in raises the pool owed, what holders are paid lowers it.
    """
    redemption: uint256 = self._redemption[series_id]
    return redemption >> 128, self._settlement[series_id] >> 128, redemption & LONGS_MASK


@external
@view
def margin_positions(account: address, series_id: uint256) -> MarginPosition:
    """
    @dev An account's margined short in a series: (short, collateral held on it).
    """
    word: uint256 = self._margin_positions[account][series_id]
    return MarginPosition(short=word & layout.SHORT_MASK, collateral=word >> 128)


@external
@view
def margin_words(
    account: address, token: address, series_ids: DynArray[uint256, MAX_SERIES]
) -> (uint256, DynArray[uint256, MAX_SERIES]):
    """
    @dev For the MarginEngine: the account's margin reserve in `token` and its
         raw margined position words for `series_ids` (short in bits 0-126,
         the margined flag in bit 127, collateral in bits 128-255; zero once
         closed or settled).
    """
    words: DynArray[uint256, MAX_SERIES] = []
    for series_id: uint256 in series_ids:
        words.append(self._margin_positions[account][series_id])
    return self.margin_reserve[account][token], words


@external
@view
def margin_book(series_id: uint256) -> (uint256, uint256):
    """
    @dev (margined short still to settle, bad debt recorded at settlement) of a series.
    """
    return self._margin_book[series_id] & layout.MASK128, self._bad_debt[series_id]


@external
@view
def margin_collateral(series_id: uint256) -> uint256:
    """
    @dev Collateral held on a series' margined shorts.
    """
    return self._margin_book[series_id] >> 128


# ---------------------------------------------------------------------------
#                                  Internals
# ---------------------------------------------------------------------------

@internal
@view
def _terms(series_id: uint256, settlement: uint256) -> Terms:
    """
    @dev Unpacks an existing series from its terms word (collateral token,
         strike, expiry) and its settlement word as read (is_put, decimals).
    """
    terms: uint256 = self._series_terms[series_id]
    assert terms != 0, "clearinghouse: unknown series"
    return Terms(
        token=layout._low_address(terms),
        is_put=settlement & SETTLING_PUT != 0,
        unit=10 ** ((settlement >> SETTLING_DECIMALS_SHIFT) & 255),
        strike=terms >> layout.STRIKE_SHIFT,
        expiry=layout._expiry(terms),
    )


@internal
def _push_config(bits: uint256, word: uint256):
    """
    @dev Pushes the Ledger's config word, recipient (bits 0-159) | maker bps
         (160-175) | taker bps (176-191) | paused (192), with `bits` as in
         `word` and the rest as the Ledger has them.
    """
    config: uint256 = (
        convert(staticcall ledger.fee_recipient(), uint256)
        | (staticcall ledger.maker_fee_bps() << 160)
        | (staticcall ledger.taker_fee_bps() << 176)
        | (convert(staticcall ledger.paused(), uint256) << 192)
    )
    extcall ledger.clearing_set_config((config & ~bits) | word)


@internal
def _accept_token(token: address) -> uint256:
    """
    @dev Records a token's unit the first time a product uses it.
    @return uint256 The token's decimals.
    """
    assert token.is_contract, "clearinghouse: token not a contract"
    decimals: uint256 = convert(staticcall IERC20Detailed(token).decimals(), uint256)
    assert decimals <= layout.MAX_DECIMALS, "clearinghouse: too many decimals"
    unit: uint256 = 10**decimals
    known: uint256 = self.token_unit[token]
    if known == 0:
        self.token_unit[token] = unit
    else:
        assert known == unit, "clearinghouse: decimals changed"
    return decimals


@internal
def _reduce_margined(account: address, series_id: uint256, token: address, pos: uint256, amount: uint256):
    """
    @dev Reduces a margined short by `amount` (at most the short) without
         releasing collateral to the free balance. When the short reaches
         zero its collateral moves to the account's margin reserve, which
         still counts as its margin (the MarginEngine releases it).
    """
    remaining: uint256 = (pos & layout.SHORT_MASK) - amount
    held: uint256 = pos >> 128
    if remaining != 0:
        self._margin_book[series_id] -= amount
        self._margin_positions[account][series_id] = remaining | MARGINED | (held << 128)
        return
    self._margin_positions[account][series_id] = 0
    self._margin_book[series_id] -= amount + (held << 128)
    if held != 0:
        self.margin_reserve[account][token] += held
        log MarginRetired(account=account, series_id=series_id, amount=held)


@internal
def _settlement_price(series_id: uint256, t: Terms, settlement: uint256) -> uint256:
    """
    @dev The series' final expiry price, read from the Oracle and cached on
         first use, when the payout pool of the fully collateralised longs
         (their payoff, rounded up) is fixed and the longs outstanding are
         counted. Margined writers pay into the pool when they settle.
         Callers call it only while the price in the settlement word (given
         as read) is zero; calling it again would reset the pool and the
         longs count.
    @return uint256 The settlement word.
    """
    assert block.timestamp >= t.expiry, "clearinghouse: not expired"
    product_id: bytes32 = self._series_product[series_id]
    price: uint256 = 0
    final: bool = False
    price, final = staticcall self.oracle.expiry_price(self._product_underlying[product_id], t.expiry)
    assert final, "clearinghouse: expiry price not final"
    assert price != 0, "clearinghouse: zero expiry price"
    assert price <= layout.MAX_STRIKE, "clearinghouse: expiry price out of range"
    full_short: uint256 = 0
    locked: uint256 = 0
    full_short, locked = staticcall ledger.book(series_id)
    # full shorts < 2**128 and strike, price < 10**20: the pool fits 128 bits
    pool: uint256 = layout._payoff(t.is_put, t.unit, t.strike, price, full_short, True)
    margined: uint256 = self._margin_book[series_id] & layout.MASK128
    fixed: uint256 = settlement | price | (convert(margined != 0, uint256) << 127) | (pool << 128)
    self._settlement[series_id] = fixed
    # longs = shorts until settlement starts; only redeem burns after expiry.
    # Each position's short is at most MAX_AMOUNT, so their sum stays far
    # below 2**127 and does not reach REDEMPTION_BIT.
    self._redemption[series_id] = REDEMPTION_BIT | (full_short + margined) | (pool << 128)
    log SeriesSettlementPrice(series_id=series_id, price=price, payout_pool=pool)
    return fixed


@internal
def _redeem(series_id: uint256, holder: address) -> uint256:
    """
    @dev See `redeem`.
    """
    amount: uint256 = staticcall ledger.balanceOf(holder, series_id)
    if amount == 0:
        return 0
    margin_book: uint256 = 0
    settlement: uint256 = self._settlement[series_id]
    # a fixed price without MARGIN_SETTLING: no margined short, no bad debt
    if settlement & PRICE_MASK == 0 or settlement & MARGIN_SETTLING != 0:
        margin_book = self._margin_book[series_id]
    assert margin_book & layout.MASK128 == 0, "clearinghouse: margined writers unsettled"
    t: Terms = self._terms(series_id, settlement)
    if settlement & PRICE_MASK == 0:
        settlement = self._settlement_price(series_id, t, settlement)
    price: uint256 = settlement & PRICE_MASK
    payout: uint256 = layout._payoff(t.is_put, t.unit, t.strike, price, amount, False)
    redemption: uint256 = self._redemption[series_id]
    longs: uint256 = redemption & LONGS_MASK
    if settlement & BAD_DEBT != 0 and payout != 0:
        # bad debt: every remaining holder is paid pro rata from the pool
        owed: uint256 = layout._payoff(t.is_put, t.unit, t.strike, price, longs, True)
        payout = margin._haircut_payout(payout, settlement >> 128, owed)
    # the holder's longs are part of those outstanding: checked, not borrowed
    self._redemption[series_id] = (redemption ^ longs) | (longs - amount)
    if payout != 0:
        self._settlement[series_id] = settlement - (payout << 128)
    log Redeemed(holder=holder, series_id=series_id, amount=amount, payout=payout, caller=msg.sender)
    extcall ledger.clearing_burn(holder, series_id, amount, t.token, payout)
    return payout


@internal
def _settle(series_id: uint256, writer: address) -> uint256:
    """
    @dev See `settle`.
    """
    full_short: uint256 = 0
    longs: uint256 = 0
    longs, full_short = staticcall ledger.positions(writer, series_id)
    pos: uint256 = 0
    # skip the cold read of the writer's margined word when no writer can
    # hold a margined short: before the price is fixed the series' margin
    # book counts them, after it the settlement word records whether any was open
    settlement: uint256 = self._settlement[series_id]
    margined: bool = settlement & MARGIN_SETTLING != 0
    if settlement & PRICE_MASK == 0:
        margined = self._margin_book[series_id] & layout.MASK128 != 0
    if margined:
        pos = self._margin_positions[writer][series_id]
    if full_short == 0 and pos == 0:
        return 0
    # `_terms` inline: a settle is the hot path of settlement
    terms: uint256 = self._series_terms[series_id]
    t: Terms = Terms(
        token=layout._low_address(terms),
        is_put=settlement & SETTLING_PUT != 0,
        unit=10 ** ((settlement >> SETTLING_DECIMALS_SHIFT) & 255),
        strike=terms >> layout.STRIKE_SHIFT,
        expiry=0,
    )
    if settlement & PRICE_MASK == 0:
        # only fixing the price needs the expiry
        t.expiry = layout._expiry(terms)
        settlement = self._settlement_price(series_id, t, settlement)
    price: uint256 = settlement & PRICE_MASK
    returned: uint256 = 0
    if full_short != 0:
        collateral: uint256 = layout._full_collateral(t.is_put, t.unit, t.strike, full_short)
        obligation: uint256 = layout._payoff(t.is_put, t.unit, t.strike, price, full_short, True)
        # full collateral always covers the rounded-up obligation
        returned = collateral - obligation
        log Settled(
            writer=writer,
            series_id=series_id,
            amount=full_short,
            obligation=obligation,
            returned=returned,
            caller=msg.sender,
        )
        # only what returns leaves the series' book: the obligation stays
        # there for the holders (see `_redemption`)
        extcall ledger.clearing_settle_short(writer, series_id, returned, t.token, returned)
    if pos & layout.SHORT_MASK != 0:
        returned += self._settle_margined(series_id, writer, t, price, pos)
    return returned


@internal
def _settle_margined(series_id: uint256, writer: address, t: Terms, price: uint256, pos: uint256) -> uint256:
    """
    @dev Settles a margined short. Its obligation goes into the payout pool
         from its own collateral, then from its writer's margin reserve in
         the token, then from its writer's free balance in the Ledger; a
         shortfall beyond these settles only through the MarginEngine's
         `settle` (which first moves the writer's other margined collateral
         to its free balance); only what the writer cannot pay is taken
         from the insurance fund, and
         what the fund cannot cover is recorded as the series' bad debt,
         after which holders are paid pro rata (`margin._haircut_payout`).
    @return uint256 The collateral returned to the writer.
    """
    short: uint256 = pos & layout.SHORT_MASK
    held: uint256 = pos >> 128
    obligation: uint256 = layout._payoff(t.is_put, t.unit, t.strike, price, short, True)
    paid: uint256 = min(obligation, held)
    returned: uint256 = held - paid
    shortfall: uint256 = obligation - paid
    from_writer: uint256 = 0
    from_free: uint256 = 0
    from_insurance: uint256 = 0
    bad_debt: uint256 = 0
    if shortfall != 0:
        reserve: uint256 = self.margin_reserve[writer][t.token]
        from_writer = min(shortfall, reserve)
        if from_writer != 0:
            self.margin_reserve[writer][t.token] = reserve - from_writer
        from_free = min(shortfall - from_writer, staticcall ledger.free_collateral(writer, t.token))
        from_writer += from_free
        # the rest of the writer's margin sits in its other margined series,
        # which only the MarginEngine lists: it draws on them first (issue 10)
        assert shortfall == from_writer or access_control.hasRole[MARGIN_ROLE][msg.sender], (
            "clearinghouse: shortfall settles via engine"
        )
        from_insurance = min(shortfall - from_writer, self.insurance[t.token])
        if from_insurance != 0:
            self.insurance[t.token] -= from_insurance
        bad_debt = shortfall - from_writer - from_insurance
        log ShortfallSettled(
            writer=writer,
            series_id=series_id,
            shortfall=shortfall,
            from_writer=from_writer,
            from_insurance=from_insurance,
            bad_debt=bad_debt,
        )
    self._margin_positions[writer][series_id] = 0
    self._margin_book[series_id] -= short + (held << 128)
    settlement: uint256 = self._settlement[series_id] + ((paid + from_writer + from_insurance) << 128)
    if bad_debt != 0:
        self._bad_debt[series_id] += bad_debt
        settlement |= BAD_DEBT
    self._settlement[series_id] = settlement
    log Settled(
        writer=writer, series_id=series_id, amount=short, obligation=obligation, returned=returned, caller=msg.sender
    )
    if from_free != 0:
        extcall ledger.clearing_move_free(writer, t.token, from_free, False)
    if returned != 0:
        extcall ledger.clearing_move_free(writer, t.token, returned, True)
    return returned
