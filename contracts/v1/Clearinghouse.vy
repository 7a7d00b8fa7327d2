# pragma version ~=0.4.3
"""
@title Strikeline Clearinghouse
@custom:contract-name Clearinghouse
@license GNU Affero General Public License v3.0 only
@notice Holds collateral, short option positions and settlement.

        - Accounts hold free collateral per token (deposit, withdraw).
        - Governance whitelists products (underlying, quote, collateral, is_put);
          anyone creates series (product, strike, expiry at 08:00 UTC) for them.
        - Writers lock full collateral (calls: one unit of the underlying per
          contract; puts: strike x amount of the quote token, rounded up) and mint
          longs (ERC-1155 on the OptionToken) to themselves or another address.
        - After the Oracle's expiry price is final, holders redeem the cash payoff
          and writers settle and take back the rest; anyone may do either on a
          user's behalf (auto-exercise), one at a time or in batches.
        - The Exchange (EXCHANGE_ROLE) settles trades: premium between free
          balances, longs delivered or written, shorts netted (buy to close).
        - The MarginEngine (MARGIN_ROLE) writes margined shorts with partial
          collateral (flag bit 127 of the position word) and moves margin and
          liquidations; closing a margined short releases nothing (a short
          closed to zero leaves its collateral in the account's margin
          reserve). A margined short pays its own obligation at settlement;
          a shortfall comes from the insurance fund (`fund_insurance`), the
          rest is the series' bad debt and its holders, who redeem once every
          margined short has settled, are paid pro rata (docs/margin.md).

        Rounding never favours a user: collateral locked and writer obligations
        round up, holder payouts and collateral released round down. The rounding
        dust of a fully settled series is swept to the fee recipient.
@custom:kill The GUARDIAN pauses writing and trading (`pause`), margined writing and
        liquidation included; revoking MARGIN_ROLE cuts the MarginEngine off. A pause never blocks
        deposits, withdrawing free collateral, closing (burn), redeeming or
        settling after a final expiry price. To retire the contract: pause, stop
        whitelisting (disable products) and let every series expire and settle;
        users withdraw their free collateral at any time.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed

from snekmate.auth import access_control

from .interfaces import IOptionToken
from ..interfaces import IOracle

# @dev Roles: the admin (a timelock in production) changes parameters; the
# guardian pauses; the Exchange settles trades.
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

event Deposit:
    account: indexed(address)
    token: indexed(address)
    amount: uint256
    sender: address


event Withdraw:
    account: indexed(address)
    token: indexed(address)
    amount: uint256
    recipient: address


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


event Written:
    writer: indexed(address)
    series_id: indexed(uint256)
    amount: uint256
    collateral: uint256
    recipient: address


event Burned:
    writer: indexed(address)
    series_id: indexed(uint256)
    amount: uint256
    released: uint256


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


event Trade:
    series_id: indexed(uint256)
    buyer: indexed(address)
    seller: indexed(address)
    amount: uint256
    buyer_debit: uint256
    seller_credit: uint256
    fee: uint256
    written: uint256
    closed: uint256


event DustSwept:
    series_id: indexed(uint256)
    token: indexed(address)
    amount: uint256
    recipient: address


event OracleSet:
    oracle: indexed(address)


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
    shortfall: uint256
    from_insurance: uint256
    bad_debt: uint256


event Paused:
    account: address


event Unpaused:
    account: address


event FeeRecipientSet:
    fee_recipient: indexed(address)


# ---------------------------------------------------------------------------
#                                  Constants
# ---------------------------------------------------------------------------

GUARDIAN_ROLE: public(constant(bytes32)) = keccak256("GUARDIAN_ROLE")
EXCHANGE_ROLE: public(constant(bytes32)) = keccak256("EXCHANGE_ROLE")
MARGIN_ROLE: public(constant(bytes32)) = keccak256("MARGIN_ROLE")

# @dev Option amounts, strikes and prices all carry 8 decimals.
UNIT: constant(uint256) = 10**8
UNIT_SQ: constant(uint256) = 10**16
DAY: constant(uint256) = 86_400
EXPIRY_HOUR: constant(uint256) = 28_800
# @dev Bounds that keep every product in the payoff maths far from overflow.
MAX_STRIKE: public(constant(uint256)) = 10**20
MAX_DECIMALS: public(constant(uint256)) = 36
# @dev One write or trade may open at most this many option units (10**12 contracts).
MAX_AMOUNT: public(constant(uint256)) = 10**20
BATCH: constant(uint256) = 64
# @dev Packed words: two 128-bit halves; an address in the low 160 bits.
MASK128: constant(uint256) = 2**128 - 1
MASK160: constant(uint256) = 2**160 - 1
PUT_BIT: constant(uint256) = 2**160
ENABLED_BIT: constant(uint256) = 2**161
DECIMALS_SHIFT: constant(uint256) = 168
# @dev `_control`: the pause flag above the fee recipient.
PAUSED_BIT: constant(uint256) = 2**160
# @dev Series terms keep the expiry as a day number in 24 bits.
DAY_MASK: constant(uint256) = 2**24 - 1
MAX_EXPIRY: constant(uint256) = 2**24 * DAY
# @dev A position word's bit 127 marks a margined (listed) short; the short is
# the 127 bits below it (2**127 option units is ~1.7e18 maximal writes away).
MARGIN_BIT: constant(uint256) = 2**127
SHORT_MASK: constant(uint256) = 2**127 - 1
# @dev The margin module's MAX_SERIES_PER_ACCOUNT: the MarginEngine's list bound.
MAX_SERIES: constant(uint256) = 16


# ---------------------------------------------------------------------------
#                                   Storage
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
    # shorts outstanding; equals the long supply until settlement starts
    open_interest: uint256
    # collateral of unsettled writers (net of the payout pool once crystallised)
    collateral: uint256
    # final expiry price, cached at the first redeem or settle; 0 before
    settlement_price: uint256
    # collateral still owed to unredeemed holders
    payout_pool: uint256


struct Position:
    short: uint256
    collateral: uint256


# @dev What a hot path needs of a product, unpacked from one storage word.
struct ProductCore:
    collateral: address
    is_put: bool
    enabled: bool
    unit: uint256


option_token: public(immutable(IOptionToken))
oracle: public(IOracle)
# @dev The fee recipient (bits 0-159) and the pause flag for writing and
# trading (bit 160) share a slot: a trade reads both at once.
_control: uint256

# @dev Storage is packed so each hot path touches as few slots as possible; the
# public views `products`, `series`, `series_state` and `positions` unpack it.
# product: collateral (bits 0-159) | is_put (160) | enabled (161) | decimals (168-175)
_product: HashMap[bytes32, uint256]
_product_underlying: HashMap[bytes32, address]
_product_quote: HashMap[bytes32, address]
# series: product id, and quote (bits 0-159) | expiry day (160-183) | strike
# (184-255): a trade learns the premium token and checks expiry from one slot
_series_product: HashMap[uint256, bytes32]
_series_terms: HashMap[uint256, uint256]
# series book: open interest (0-127) | collateral (128-255)
_book: HashMap[uint256, uint256]
# settlement: price (0-127) | payout pool (128-255)
_settlement: HashMap[uint256, uint256]
# position: short (0-127) | collateral (128-255)
_positions: HashMap[address, HashMap[uint256, uint256]]

# @dev 10**decimals of each accepted token; zero means the token is not accepted.
token_unit: public(HashMap[address, uint256])
free_collateral: public(HashMap[address, HashMap[address, uint256]])

# @dev Insurance fund per collateral token.
insurance: public(HashMap[address, uint256])
# @dev Margined collateral of an account not attached to a series (what was
# left on a margined short closed to zero); counted in the account's margin.
margin_reserve: public(HashMap[address, HashMap[address, uint256]])
# @dev margin book: margined short (0-127) | bad debt (128-255) of a series
_margin_book: HashMap[uint256, uint256]


# ---------------------------------------------------------------------------
#                                 Constructor
# ---------------------------------------------------------------------------

@deploy
def __init__(option_token_: IOptionToken, oracle_: IOracle, admin_: address, guardian_: address, fee_recipient_: address):
    """
    @dev Deploys the Clearinghouse. `admin_` (a timelock in production) gets the
         admin role, `guardian_` the guardian role; the deployer keeps no role
         unless it is one of them.
    """
    assert admin_ != empty(address), "clearinghouse: zero admin"
    assert fee_recipient_ != empty(address), "clearinghouse: zero fee recipient"
    assert staticcall option_token_.clearinghouse() == self, "clearinghouse: token bound elsewhere"
    access_control.__init__()
    option_token = option_token_
    self.oracle = oracle_
    self._control = convert(fee_recipient_, uint256)
    access_control._grant_role(access_control.DEFAULT_ADMIN_ROLE, admin_)
    if guardian_ != empty(address):
        access_control._grant_role(GUARDIAN_ROLE, guardian_)
    if admin_ != msg.sender:
        access_control._revoke_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    log OracleSet(oracle=oracle_.address)
    log FeeRecipientSet(fee_recipient=fee_recipient_)


# ---------------------------------------------------------------------------
#                                 Governance
# ---------------------------------------------------------------------------

@external
def set_product(underlying: address, quote: address, collateral: address, is_put: bool, enabled: bool) -> bytes32:
    """
    @dev Whitelists (or disables) a product. Calls are collateralised in the
         underlying, puts in the quote token. Disabling stops new series and new
         writing; existing positions still trade out, settle and redeem.
    @return bytes32 The product id, keccak256(abi_encode(underlying, quote, collateral, is_put)).
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert underlying != quote, "clearinghouse: underlying is quote"
    if is_put:
        assert collateral == quote, "clearinghouse: put collateral must be quote"
    else:
        assert collateral == underlying, "clearinghouse: call collateral must be underlying"
    decimals: uint256 = self._accept_token(underlying)
    quote_decimals: uint256 = self._accept_token(quote)
    if is_put:
        decimals = quote_decimals
    product_id: bytes32 = self._product_id(underlying, quote, collateral, is_put)
    word: uint256 = convert(collateral, uint256) | (decimals << DECIMALS_SHIFT)
    if is_put:
        word |= PUT_BIT
    if enabled:
        word |= ENABLED_BIT
    self._product[product_id] = word
    self._product_underlying[product_id] = underlying
    self._product_quote[product_id] = quote
    log ProductSet(
        product_id=product_id, underlying=underlying, quote=quote, collateral=collateral, is_put=is_put, enabled=enabled
    )
    return product_id


@external
def set_oracle(oracle_: IOracle):
    """
    @dev Replaces the Oracle. Series already crystallised keep their price.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert oracle_.address != empty(address), "clearinghouse: zero oracle"
    self.oracle = oracle_
    log OracleSet(oracle=oracle_.address)


@external
def set_fee_recipient(fee_recipient_: address):
    """
    @dev Sets who receives trading fees and rounding dust.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    assert fee_recipient_ != empty(address), "clearinghouse: zero fee recipient"
    self._control = (self._control & PAUSED_BIT) | convert(fee_recipient_, uint256)
    log FeeRecipientSet(fee_recipient=fee_recipient_)


@external
def pause():
    """
    @dev Guardian: stop writing and trading. Exits stay open.
    """
    access_control._check_role(GUARDIAN_ROLE, msg.sender)
    self._require_not_paused()
    self._control |= PAUSED_BIT
    log Paused(account=msg.sender)


@external
def unpause():
    """
    @dev Guardian: resume writing and trading.
    """
    access_control._check_role(GUARDIAN_ROLE, msg.sender)
    control: uint256 = self._control
    assert control & PAUSED_BIT != 0, "pausable: contract is not paused"
    self._control = control & MASK160
    log Unpaused(account=msg.sender)


# ---------------------------------------------------------------------------
#                                  Accounts
# ---------------------------------------------------------------------------

@external
@nonreentrant
def deposit(token: address, amount: uint256, account: address) -> uint256:
    """
    @dev Pulls `amount` of `token` from the caller and credits `account` with
         what actually arrived (a fee-on-transfer token credits less).
    @return uint256 The amount credited.
    """
    assert self.token_unit[token] != 0, "clearinghouse: token not accepted"
    assert amount != 0, "clearinghouse: zero amount"
    assert account != empty(address), "clearinghouse: zero account"
    before: uint256 = staticcall IERC20(token).balanceOf(self)
    self._transfer_in(token, msg.sender, amount)
    received: uint256 = staticcall IERC20(token).balanceOf(self) - before
    assert received != 0, "clearinghouse: nothing received"
    self.free_collateral[account][token] += received
    log Deposit(account=account, token=token, amount=received, sender=msg.sender)
    return received


@external
@nonreentrant
def withdraw(token: address, amount: uint256, recipient: address):
    """
    @dev Sends `amount` of the caller's free `token` to `recipient`. Never paused.
    """
    assert amount != 0, "clearinghouse: zero amount"
    assert recipient != empty(address), "clearinghouse: zero recipient"
    self._debit_free(msg.sender, token, amount)
    log Withdraw(account=msg.sender, token=token, amount=amount, recipient=recipient)
    self._transfer_out(token, recipient, amount)


# ---------------------------------------------------------------------------
#                                   Series
# ---------------------------------------------------------------------------

@external
def create_series(product_id: bytes32, strike: uint256, expiry: uint256) -> uint256:
    """
    @dev Creates a series of a whitelisted product; anyone may call. Creating
         an existing series returns its id.
    @param strike Strike price, 8 decimals.
    @param expiry Unix seconds, 08:00 UTC, in the future.
    @return uint256 The series id, uint256(keccak256(abi_encode(product_id, strike, expiry))).
    """
    assert self._product[product_id] & ENABLED_BIT != 0, "clearinghouse: unknown product"
    assert strike != 0 and strike <= MAX_STRIKE, "clearinghouse: strike out of range"
    # the terms word keeps the expiry day in 24 bits (until the year 47,900)
    assert expiry > block.timestamp and expiry < MAX_EXPIRY, "clearinghouse: expiry out of range"
    assert expiry % DAY == EXPIRY_HOUR, "clearinghouse: expiry not 08:00 UTC"
    series_id: uint256 = self._series_id(product_id, strike, expiry)
    if self._series_terms[series_id] == 0:
        self._series_product[series_id] = product_id
        self._series_terms[series_id] = convert(self._product_quote[product_id], uint256) | ((expiry // DAY) << 160) | (strike << 184)
        log SeriesCreated(series_id=series_id, product_id=product_id, strike=strike, expiry=expiry)
    return series_id


@external
@pure
def product_id(underlying: address, quote: address, collateral: address, is_put: bool) -> bytes32:
    """
    @dev The deterministic id of a product.
    """
    return self._product_id(underlying, quote, collateral, is_put)


@external
@pure
def series_id(product_id: bytes32, strike: uint256, expiry: uint256) -> uint256:
    """
    @dev The deterministic id of a series (also its OptionToken id).
    """
    return self._series_id(product_id, strike, expiry)


# ---------------------------------------------------------------------------
#                              Writing and closing
# ---------------------------------------------------------------------------

@external
@nonreentrant
def write(series_id: uint256, amount: uint256, recipient: address) -> uint256:
    """
    @dev Locks full collateral from the caller's free balance, opens (or adds
         to) the caller's short and mints `amount` longs to `recipient`.
    @return uint256 The collateral locked.
    """
    self._require_not_paused()
    assert recipient != empty(address), "clearinghouse: zero recipient"
    s: Series = self._open_series(series_id)
    core: ProductCore = self._core(s.product_id)
    assert core.enabled, "clearinghouse: product disabled"
    locked: uint256 = self._open_short(msg.sender, series_id, core, s.strike, amount)
    log Written(writer=msg.sender, series_id=series_id, amount=amount, collateral=locked, recipient=recipient)
    extcall option_token.mint(recipient, series_id, amount)
    return locked


@external
@nonreentrant
def burn(series_id: uint256, amount: uint256) -> uint256:
    """
    @dev Before expiry, burns `amount` of the caller's longs against its own
         short and releases the collateral pro rata (rounded down). Not paused.
    @return uint256 The collateral released.
    """
    s: Series = self._open_series(series_id)
    released: uint256 = self._close_short(msg.sender, series_id, self._core(s.product_id).collateral, amount)
    log Burned(writer=msg.sender, series_id=series_id, amount=amount, released=released)
    extcall option_token.burn_from(msg.sender, series_id, amount)
    return released


# ---------------------------------------------------------------------------
#                                   Trading
# ---------------------------------------------------------------------------

@external
@nonreentrant
def trade(
    series_id: uint256, buyer: address, seller: address, amount: uint256, buyer_debit: uint256, seller_credit: uint256
):
    """
    @dev Exchange only. Settles one trade of `amount` options of `series_id`:
         the buyer pays `buyer_debit` of the quote token from free collateral,
         the seller receives `seller_credit`, the fee recipient the difference
         (fees plus rounding dust). The seller delivers longs it holds and
         writes the rest from free collateral (sell to open); the buyer's
         incoming longs first close its own short (buy to close).
    """
    control: uint256 = self._control
    assert control & PAUSED_BIT == 0, "pausable: contract is paused"
    access_control._check_role(EXCHANGE_ROLE, msg.sender)
    assert amount != 0, "clearinghouse: zero amount"
    assert buyer != seller, "clearinghouse: self trade"
    assert buyer_debit >= seller_credit, "clearinghouse: credit exceeds debit"
    terms: uint256 = self._open_terms(series_id)

    # premium
    quote: address = convert(convert(terms & MASK160, uint160), address)
    free: uint256 = self.free_collateral[buyer][quote]
    assert free >= buyer_debit, "clearinghouse: buyer insufficient collateral"
    self.free_collateral[buyer][quote] = unsafe_sub(free, buyer_debit)
    if seller_credit != 0:
        self.free_collateral[seller][quote] += seller_credit
    fee: uint256 = unsafe_sub(buyer_debit, seller_credit)
    if fee != 0:
        self.free_collateral[convert(convert(control & MASK160, uint160), address)][quote] += fee

    # positions: the product is read only when a short opens or closes
    core: ProductCore = empty(ProductCore)
    delivered: uint256 = min(staticcall option_token.balanceOf(seller, series_id), amount)
    written: uint256 = unsafe_sub(amount, delivered)
    closed: uint256 = min(self._positions[buyer][series_id] & SHORT_MASK, amount)
    if written != 0 or closed != 0:
        core = self._core(self._series_product[series_id])
    if written != 0:
        assert core.enabled, "clearinghouse: product disabled"
        self._open_short(seller, series_id, core, terms >> 184, written)
    if closed != 0:
        self._close_short(buyer, series_id, core.collateral, closed)

    log Trade(
        series_id=series_id,
        buyer=buyer,
        seller=seller,
        amount=amount,
        buyer_debit=buyer_debit,
        seller_credit=seller_credit,
        fee=fee,
        written=written,
        closed=closed,
    )
    extcall option_token.clearing_move(seller, buyer, series_id, delivered, unsafe_sub(amount, closed))


# ---------------------------------------------------------------------------
#                                   Margin
# ---------------------------------------------------------------------------

@external
@nonreentrant
def fund_insurance(token: address, amount: uint256):
    """
    @dev Moves `amount` of the caller's free `token` into the insurance fund,
         which covers what margined writers cannot pay (a liquidation base,
         a settlement shortfall). Anyone may fund it; nobody withdraws it.
    @param token A collateral token.
    @param amount The amount.
    """
    assert amount != 0, "clearinghouse: zero amount"
    self._debit_free(msg.sender, token, amount)
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
         short of `series_id`, minting the longs to `recipient` (a fully
         collateralised short of the series becomes margined with it), and
         moves `collateral` of `token` between the account's free balance and
         that short, or its margin reserve if `series_id` is 0: into the
         margin if `added`, out of it otherwise. Writing is paused with
         trading and needs `added` collateral of at most full collateral for
         `amount`; moving collateral alone is never paused.
    """
    access_control._check_role(MARGIN_ROLE, msg.sender)
    assert amount | collateral != 0, "clearinghouse: zero amount"
    pos: uint256 = 0
    margin: uint256 = 0
    if series_id == 0:
        assert amount == 0, "clearinghouse: unknown series"
        margin = self.margin_reserve[account][token]
    else:
        s: Series = self._open_series(series_id)
        core: ProductCore = self._core(s.product_id)
        assert core.collateral == token, "clearinghouse: wrong token"
        pos = self._positions[account][series_id]
        margin = pos >> 128
        if amount != 0:
            self._require_not_paused()
            assert core.enabled, "clearinghouse: product disabled"
            assert recipient != empty(address), "clearinghouse: zero recipient"
            assert amount <= MAX_AMOUNT, "clearinghouse: amount too large"
            assert added and collateral <= self._full_collateral(core.is_put, core.unit, s.strike, amount), (
                "clearinghouse: collateral above full"
            )
            margined: uint256 = amount
            if pos & MARGIN_BIT == 0:
                margined += pos & SHORT_MASK
            self._margin_book[series_id] += margined
        else:
            assert pos & MARGIN_BIT != 0, "clearinghouse: not margined"
    free: uint256 = self.free_collateral[account][token]
    if added:
        assert free >= collateral, "clearinghouse: insufficient free collateral"
        free = unsafe_sub(free, collateral)
        margin += collateral
    else:
        assert margin >= collateral, "clearinghouse: insufficient margin collateral"
        free += collateral
        margin = unsafe_sub(margin, collateral)
    self.free_collateral[account][token] = free
    if series_id == 0:
        self.margin_reserve[account][token] = margin
    else:
        book: uint256 = self._book[series_id]
        self._book[series_id] = self._pack((book & MASK128) + amount, (book >> 128) + margin - (pos >> 128))
        self._positions[account][series_id] = self._pack_position((pos & SHORT_MASK) + amount, margin) | MARGIN_BIT
    log MarginUpdated(
        account=account, token=token, series_id=series_id, amount=amount, collateral=collateral, added=added
    )
    if amount != 0:
        extcall option_token.mint(recipient, series_id, amount)


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
         `series_id` with full collateral from its free balance and is paid
         `from_account` from the account's free balance (the engine has just
         moved it there out of the account's margin with `margin_transfer`)
         plus `from_insurance` from the insurance fund. Paused with trading.
    """
    self._require_not_paused()
    access_control._check_role(MARGIN_ROLE, msg.sender)
    s: Series = self._open_series(series_id)
    core: ProductCore = self._core(s.product_id)
    token: address = core.collateral
    assert self._positions[account][series_id] & MARGIN_BIT != 0, "clearinghouse: not margined"
    self._open_short(liquidator, series_id, core, s.strike, amount)
    if from_account != 0:
        self._debit_free(account, token, from_account)
    self._reduce_margined(account, series_id, token, self._positions[account][series_id], amount)
    if from_insurance != 0:
        self.insurance[token] -= from_insurance
    self.free_collateral[liquidator][token] += from_account + from_insurance
    log MarginLiquidated(
        account=account,
        liquidator=liquidator,
        series_id=series_id,
        amount=amount,
        from_account=from_account,
        from_insurance=from_insurance,
    )


# ---------------------------------------------------------------------------
#                                 Settlement
# ---------------------------------------------------------------------------

@external
@nonreentrant
def redeem(series_id: uint256, holder: address) -> uint256:
    """
    @dev After a final expiry price, burns all of `holder`'s longs and credits
         the cash payoff (rounded down) to its free collateral. Anyone may call
         (auto-exercise). A second call pays nothing.
    @return uint256 The payout.
    """
    return self._redeem(series_id, holder)


@external
@nonreentrant
def settle(series_id: uint256, writer: address) -> uint256:
    """
    @dev After a final expiry price, closes `writer`'s short: its obligation
         (rounded up) stays for the holders, the rest of its collateral returns
         to its free balance. Anyone may call. A second call pays nothing.
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
    @return uint256 The dust swept.
    """
    settlement: uint256 = self._settlement[series_id]
    assert settlement != 0, "clearinghouse: not settled"
    book: uint256 = self._book[series_id]
    assert book & MASK128 == 0, "clearinghouse: shorts outstanding"
    assert staticcall option_token.total_supply(series_id) == 0, "clearinghouse: longs outstanding"
    dust: uint256 = (book >> 128) + (settlement >> 128)
    if dust == 0:
        return 0
    token: address = self._core(self._series_product[series_id]).collateral
    self._book[series_id] = 0
    self._settlement[series_id] = settlement & MASK128
    recipient: address = convert(convert(self._control & MASK160, uint160), address)
    self.free_collateral[recipient][token] += dust
    log DustSwept(series_id=series_id, token=token, amount=dust, recipient=recipient)
    return dust


# ---------------------------------------------------------------------------
#                                    Views
# ---------------------------------------------------------------------------

@external
@view
def paused() -> bool:
    """
    @dev Whether writing and trading are paused.
    """
    return self._control & PAUSED_BIT != 0


@external
@view
def fee_recipient() -> address:
    """
    @dev Who receives trading fees and rounding dust.
    """
    return convert(convert(self._control & MASK160, uint160), address)


@external
@view
def collateral_required(series_id: uint256, amount: uint256) -> uint256:
    """
    @dev Full collateral for writing `amount` of `series_id`, rounded up.
    """
    s: Series = self._load_series(series_id)
    core: ProductCore = self._core(s.product_id)
    return self._full_collateral(core.is_put, core.unit, s.strike, amount)


@external
@view
def payoff(series_id: uint256, price: uint256, amount: uint256) -> uint256:
    """
    @dev Cash payoff of `amount` longs at expiry price `price`, rounded down
         (what a holder receives), in the collateral token.
    """
    s: Series = self._load_series(series_id)
    core: ProductCore = self._core(s.product_id)
    return self._payoff(core.is_put, core.unit, s.strike, price, amount, False)


@external
@view
def products(product_id: bytes32) -> Product:
    """
    @dev A product: (underlying, quote, collateral, is_put, enabled).
    """
    core: ProductCore = self._core(product_id)
    return Product(
        underlying=self._product_underlying[product_id],
        quote=self._product_quote[product_id],
        collateral=core.collateral,
        is_put=core.is_put,
        enabled=core.enabled,
    )


@external
@view
def series(series_id: uint256) -> Series:
    """
    @dev A series: (product_id, strike, expiry); all zero if unknown.
    """
    if self._series_terms[series_id] == 0:
        return empty(Series)
    return self._load_series(series_id)


@external
@view
def series_state(series_id: uint256) -> SeriesState:
    """
    @dev A series' book: (open_interest, collateral, settlement_price, payout_pool).
    """
    book: uint256 = self._book[series_id]
    settlement: uint256 = self._settlement[series_id]
    return SeriesState(
        open_interest=book & MASK128,
        collateral=book >> 128,
        settlement_price=settlement & MASK128,
        payout_pool=settlement >> 128,
    )


@external
@view
def positions(account: address, series_id: uint256) -> Position:
    """
    @dev An account's short in a series: (short, collateral locked for it).
    """
    word: uint256 = self._positions[account][series_id]
    return Position(short=word & SHORT_MASK, collateral=word >> 128)


@external
@view
def margin_words(
    account: address, token: address, series_ids: DynArray[uint256, MAX_SERIES]
) -> (uint256, DynArray[uint256, MAX_SERIES]):
    """
    @dev For the MarginEngine: the account's margin reserve in `token` and its
         raw position words for `series_ids` (short in bits 0-126, the margin
         flag in bit 127, collateral in bits 128-255).
    """
    words: DynArray[uint256, MAX_SERIES] = []
    for series_id: uint256 in series_ids:
        words.append(self._positions[account][series_id])
    return self.margin_reserve[account][token], words


@external
@view
def margin_book(series_id: uint256) -> (uint256, uint256):
    """
    @dev (margined short still to settle, bad debt recorded at settlement) of a series.
    """
    word: uint256 = self._margin_book[series_id]
    return word & MASK128, word >> 128


# ---------------------------------------------------------------------------
#                                  Internals
# ---------------------------------------------------------------------------

@internal
@view
def _load_series(series_id: uint256) -> Series:
    """
    @dev Unpacks a series that exists.
    """
    terms: uint256 = self._series_terms[series_id]
    assert terms != 0, "clearinghouse: unknown series"
    return Series(product_id=self._series_product[series_id], strike=terms >> 184, expiry=self._expiry(terms))


@internal
@view
def _open_series(series_id: uint256) -> Series:
    """
    @dev Loads a series that exists and has not expired.
    """
    terms: uint256 = self._open_terms(series_id)
    return Series(product_id=self._series_product[series_id], strike=terms >> 184, expiry=self._expiry(terms))


@internal
@view
def _open_terms(series_id: uint256) -> uint256:
    """
    @dev The terms word of a series that exists and has not expired.
    """
    terms: uint256 = self._series_terms[series_id]
    assert terms != 0, "clearinghouse: unknown series"
    assert block.timestamp < self._expiry(terms), "clearinghouse: series expired"
    return terms


@internal
@pure
def _expiry(terms: uint256) -> uint256:
    """
    @dev The expiry (08:00 UTC of the stored day) of a terms word.
    """
    return ((terms >> 160) & DAY_MASK) * DAY + EXPIRY_HOUR


@internal
@view
def _require_not_paused():
    """
    @dev Reverts while writing and trading are paused.
    """
    assert self._control & PAUSED_BIT == 0, "pausable: contract is paused"


@internal
@view
def _core(product_id: bytes32) -> ProductCore:
    """
    @dev Unpacks what hot paths need of a product from its one storage word.
    """
    word: uint256 = self._product[product_id]
    return ProductCore(
        collateral=convert(convert(word & MASK160, uint160), address),
        is_put=word & PUT_BIT != 0,
        enabled=word & ENABLED_BIT != 0,
        unit=10 ** ((word >> DECIMALS_SHIFT) & 255),
    )


@internal
def _debit_free(account: address, token: address, amount: uint256):
    """
    @dev Takes `amount` from `account`'s free `token`; reverts if it has less.
    """
    free: uint256 = self.free_collateral[account][token]
    assert free >= amount, "clearinghouse: insufficient free collateral"
    self.free_collateral[account][token] = unsafe_sub(free, amount)


@internal
@pure
def _pack(low: uint256, high: uint256) -> uint256:
    """
    @dev Packs two 128-bit values into one word; reverts if either is too large.
    """
    assert low <= MASK128 and high <= MASK128, "clearinghouse: amount too large"
    return low | (high << 128)


@internal
def _open_short(writer: address, series_id: uint256, core: ProductCore, strike: uint256, amount: uint256) -> uint256:
    """
    @dev Moves full collateral for `amount` from free to locked and records the
         short. Reverts if the writer's free collateral does not cover it.
    @return uint256 The collateral locked.
    """
    assert amount != 0, "clearinghouse: zero amount"
    assert amount <= MAX_AMOUNT, "clearinghouse: amount too large"
    token: address = core.collateral
    required: uint256 = self._full_collateral(core.is_put, core.unit, strike, amount)
    free: uint256 = self.free_collateral[writer][token]
    assert free >= required, "clearinghouse: insufficient collateral"
    self.free_collateral[writer][token] = unsafe_sub(free, required)
    pos: uint256 = self._positions[writer][series_id]
    self._positions[writer][series_id] = self._pack_position((pos & SHORT_MASK) + amount, (pos >> 128) + required) | (
        pos & MARGIN_BIT
    )
    if pos & MARGIN_BIT != 0:
        self._margin_book[series_id] += amount
    book: uint256 = self._book[series_id]
    self._book[series_id] = self._pack((book & MASK128) + amount, (book >> 128) + required)
    return required


@internal
def _close_short(writer: address, series_id: uint256, token: address, amount: uint256) -> uint256:
    """
    @dev Reduces `writer`'s short by `amount` and releases its collateral pro
         rata; the collateral left on the position is rounded up.
    @return uint256 The collateral released.
    """
    assert amount != 0, "clearinghouse: zero amount"
    pos: uint256 = self._positions[writer][series_id]
    short: uint256 = pos & SHORT_MASK
    collateral: uint256 = pos >> 128
    assert short >= amount, "clearinghouse: insufficient short"
    remaining: uint256 = unsafe_sub(short, amount)
    if pos & MARGIN_BIT != 0:
        self._reduce_margined(writer, series_id, token, pos, amount)
        return 0
    kept: uint256 = 0
    if remaining != 0:
        kept = self._mul_div_up(collateral, remaining, short)
    released: uint256 = collateral - kept
    # both halves only shrink, so they still fit
    self._positions[writer][series_id] = remaining | (kept << 128)
    self.free_collateral[writer][token] += released
    book: uint256 = self._book[series_id]
    self._book[series_id] = self._pack((book & MASK128) - amount, (book >> 128) - released)
    return released


@internal
@pure
def _pack_position(short: uint256, collateral: uint256) -> uint256:
    """
    @dev Packs a position word (without the margin bit); reverts if the short
         would reach the margin bit or the collateral 128 bits.
    """
    assert short <= SHORT_MASK and collateral <= MASK128, "clearinghouse: amount too large"
    return short | (collateral << 128)


@internal
def _reduce_margined(account: address, series_id: uint256, token: address, pos: uint256, amount: uint256):
    """
    @dev Reduces a margined short by `amount` (at most the short) without
         releasing collateral to the free balance: closing risk never frees
         margin that the account's other shorts may rely on. When the short
         reaches zero its collateral moves to the account's margin reserve,
         which still counts as its margin (the MarginEngine releases it).
    """
    remaining: uint256 = (pos & SHORT_MASK) - amount
    collateral: uint256 = pos >> 128
    self._margin_book[series_id] -= amount
    book: uint256 = self._book[series_id]
    if remaining != 0:
        self._positions[account][series_id] = remaining | (collateral << 128) | MARGIN_BIT
        self._book[series_id] = book - amount
        return
    self._positions[account][series_id] = 0
    self._book[series_id] = book - amount - (collateral << 128)
    if collateral != 0:
        self.margin_reserve[account][token] += collateral
        log MarginRetired(account=account, series_id=series_id, amount=collateral)


@internal
def _settle_margined(
    series_id: uint256,
    writer: address,
    token: address,
    price: uint256,
    short: uint256,
    collateral: uint256,
    obligation: uint256,
) -> uint256:
    """
    @dev Settles a margined short: its obligation goes into the payout pool
         from its own collateral; a shortfall is taken from the insurance fund
         and what the fund cannot cover is recorded as the series' bad debt,
         after which holders are paid pro rata (`margin._haircut_payout`).
    @return uint256 The collateral returned to the writer.
    """
    paid: uint256 = min(obligation, collateral)
    returned: uint256 = collateral - paid
    shortfall: uint256 = obligation - paid
    from_insurance: uint256 = 0
    bad_debt: uint256 = 0
    if shortfall != 0:
        from_insurance = min(shortfall, self.insurance[token])
        if from_insurance != 0:
            self.insurance[token] -= from_insurance
        bad_debt = shortfall - from_insurance
        log ShortfallSettled(
            writer=writer, series_id=series_id, shortfall=shortfall, from_insurance=from_insurance, bad_debt=bad_debt
        )
    self._positions[writer][series_id] = 0
    if returned != 0:
        self.free_collateral[writer][token] += returned
    book: uint256 = self._book[series_id]
    self._book[series_id] = self._pack((book & MASK128) - short, (book >> 128) - collateral)
    margin_book: uint256 = self._margin_book[series_id]
    self._margin_book[series_id] = self._pack((margin_book & MASK128) - short, (margin_book >> 128) + bad_debt)
    settlement: uint256 = self._settlement[series_id]
    self._settlement[series_id] = self._pack(price, (settlement >> 128) + paid + from_insurance)
    log Settled(
        writer=writer, series_id=series_id, amount=short, obligation=obligation, returned=returned, caller=msg.sender
    )
    return returned


@internal
def _settlement_price(series_id: uint256, s: Series, core: ProductCore) -> uint256:
    """
    @dev The series' final expiry price, read from the Oracle and cached on
         first use, when the payout pool (what all longs are owed, rounded up)
         is set aside from the writers' collateral.
    """
    settlement: uint256 = self._settlement[series_id]
    if settlement != 0:
        return settlement & MASK128
    assert block.timestamp >= s.expiry, "clearinghouse: not expired"
    price: uint256 = 0
    final: bool = False
    price, final = staticcall self.oracle.expiry_price(self._product_underlying[s.product_id], s.expiry)
    assert final, "clearinghouse: expiry price not final"
    assert price != 0, "clearinghouse: zero expiry price"
    book: uint256 = self._book[series_id]
    open_interest: uint256 = book & MASK128
    # margined writers pay their own obligations into the pool when they settle
    pool: uint256 = self._payoff(
        core.is_put, core.unit, s.strike, price, open_interest - (self._margin_book[series_id] & MASK128), True
    )
    self._book[series_id] = self._pack(open_interest, (book >> 128) - pool)
    self._settlement[series_id] = self._pack(price, pool)
    log SeriesSettlementPrice(series_id=series_id, price=price, payout_pool=pool)
    return price


@internal
def _redeem(series_id: uint256, holder: address) -> uint256:
    """
    @dev See `redeem`.
    """
    amount: uint256 = staticcall option_token.balanceOf(holder, series_id)
    if amount == 0:
        return 0
    margin_book: uint256 = self._margin_book[series_id]
    assert margin_book & MASK128 == 0, "clearinghouse: margined writers unsettled"
    s: Series = self._load_series(series_id)
    core: ProductCore = self._core(s.product_id)
    price: uint256 = self._settlement_price(series_id, s, core)
    payout: uint256 = self._payoff(core.is_put, core.unit, s.strike, price, amount, False)
    if margin_book != 0 and payout != 0:
        # bad debt: every remaining holder is paid pro rata from the pool
        owed: uint256 = self._payoff(
            core.is_put, core.unit, s.strike, price, staticcall option_token.total_supply(series_id), True
        )
        # margin._haircut_payout(payout, pool, owed) with a plain mul-div: the pool
        # and the payout (at most the pool's 128-bit owed) are 128-bit, so the
        # product cannot overflow; owed covers every remaining payout, so the pool
        # is never overdrawn and the remaining holders' share never shrinks
        payout = min(payout, payout * (self._settlement[series_id] >> 128) // owed)
    if payout != 0:
        settlement: uint256 = self._settlement[series_id]
        self._settlement[series_id] = self._pack(price, (settlement >> 128) - payout)
        self.free_collateral[holder][core.collateral] += payout
    log Redeemed(holder=holder, series_id=series_id, amount=amount, payout=payout, caller=msg.sender)
    extcall option_token.burn_from(holder, series_id, amount)
    return payout


@internal
def _settle(series_id: uint256, writer: address) -> uint256:
    """
    @dev See `settle`.
    """
    pos: uint256 = self._positions[writer][series_id]
    short: uint256 = pos & SHORT_MASK
    if short == 0:
        return 0
    collateral: uint256 = pos >> 128
    s: Series = self._load_series(series_id)
    core: ProductCore = self._core(s.product_id)
    price: uint256 = self._settlement_price(series_id, s, core)
    token: address = core.collateral
    obligation: uint256 = self._payoff(core.is_put, core.unit, s.strike, price, short, True)
    if pos & MARGIN_BIT != 0:
        return self._settle_margined(series_id, writer, token, price, short, collateral, obligation)
    # full collateral always covers the rounded-up obligation
    returned: uint256 = collateral - obligation
    self._positions[writer][series_id] = 0
    if returned != 0:
        self.free_collateral[writer][token] += returned
    book: uint256 = self._book[series_id]
    self._book[series_id] = self._pack((book & MASK128) - short, (book >> 128) - returned)
    log Settled(
        writer=writer, series_id=series_id, amount=short, obligation=obligation, returned=returned, caller=msg.sender
    )
    return returned


@internal
@pure
def _full_collateral(is_put: bool, unit: uint256, strike: uint256, amount: uint256) -> uint256:
    """
    @dev Full collateral for `amount` options, rounded up: a call locks one
         unit of the underlying per contract, a put strike x amount of quote.
    """
    if is_put:
        return self._mul_div_up(amount * strike, unit, UNIT_SQ)
    return self._mul_div_up(amount, unit, UNIT)


@internal
@pure
def _payoff(is_put: bool, unit: uint256, strike: uint256, price: uint256, amount: uint256, round_up: bool) -> uint256:
    """
    @dev Cash payoff of `amount` options at expiry price `price`, in collateral
         units: a call pays (S - K) / S of the underlying per contract, a put
         K - S of the quote token. Rounded up for writers, down for holders.
    """
    if is_put:
        if price >= strike:
            return 0
        if round_up:
            return self._mul_div_up(amount * (strike - price), unit, UNIT_SQ)
        return amount * (strike - price) * unit // UNIT_SQ
    if price <= strike:
        return 0
    if round_up:
        return self._mul_div_up(amount * unit, price - strike, price * UNIT)
    return amount * unit * (price - strike) // (price * UNIT)


@internal
@pure
def _mul_div_up(a: uint256, b: uint256, d: uint256) -> uint256:
    """
    @dev ceil(a * b / d), checked arithmetic.
    """
    product: uint256 = a * b
    return product // d + convert(product % d != 0, uint256)


@internal
@pure
def _product_id(underlying: address, quote: address, collateral: address, is_put: bool) -> bytes32:
    return keccak256(abi_encode(underlying, quote, collateral, is_put))


@internal
@pure
def _series_id(product_id: bytes32, strike: uint256, expiry: uint256) -> uint256:
    return convert(keccak256(abi_encode(product_id, strike, expiry)), uint256)


@internal
def _accept_token(token: address) -> uint256:
    """
    @dev Records a token's unit the first time a product uses it.
    @return uint256 The token's decimals.
    """
    assert token.is_contract, "clearinghouse: token not a contract"
    decimals: uint256 = convert(staticcall IERC20Detailed(token).decimals(), uint256)
    assert decimals <= MAX_DECIMALS, "clearinghouse: too many decimals"
    unit: uint256 = 10**decimals
    known: uint256 = self.token_unit[token]
    if known == 0:
        self.token_unit[token] = unit
    else:
        assert known == unit, "clearinghouse: decimals changed"
    return decimals


@internal
def _transfer_in(token: address, sender: address, amount: uint256):
    """
    @dev transferFrom that accepts tokens returning nothing or true.
    """
    response: Bytes[32] = raw_call(
        token,
        abi_encode(sender, self, amount, method_id=method_id("transferFrom(address,address,uint256)")),
        max_outsize=32,
    )
    if len(response) != 0:
        assert abi_decode(response, bool), "clearinghouse: transferFrom failed"


@internal
def _transfer_out(token: address, recipient: address, amount: uint256):
    """
    @dev transfer that accepts tokens returning nothing or true.
    """
    response: Bytes[32] = raw_call(
        token, abi_encode(recipient, amount, method_id=method_id("transfer(address,uint256)")), max_outsize=32
    )
    if len(response) != 0:
        assert abi_decode(response, bool), "clearinghouse: transfer failed"
