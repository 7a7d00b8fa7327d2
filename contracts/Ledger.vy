# pragma version ~=0.4.3
"""
@title Strikeline Ledger
@custom:contract-name Ledger
@license GNU Affero General Public License v3.0 only
@notice The trading hot path in one contract, so that a match touches one
        contract's storage:

        - free collateral per account and token (deposit, withdraw);
        - positions: a series' long and fully collateralised short of an
          account in one word; a short locks exactly `full_collateral(short)`;
        - the ERC-1155 token of the longs (one id per series): wallets see,
          move and approve their longs here;
        - EIP-712 signed orders: `match_orders` by registered relayers (one or
          a batch), a direct `fill` by the taker, partial fills, replay
          protection by a per-maker nonce bitmap, cancel by hash or by
          contents, bulk cancel by a minimum nonce, fees capped by the order's
          signed `maxFee`, an optional `sender` that alone may submit the order;
        - writing and burning fully collateralised shorts; a trade writes what
          the seller does not deliver (sell to open) and nets the buyer's
          incoming longs against its short (buy to close).

        The Clearinghouse beside it (fixed at deployment) keeps the cold paths:
        products and series, expiry settlement, margined shorts and the
        insurance fund. It registers products and series here and, after
        expiry, settles positions through the `clearing_*` hooks.

        Rounding never favours a user: collateral locked and premiums paid
        round up, collateral released and premiums received round down.
@custom:kill The Clearinghouse's guardian pauses writing, matching and fills
        (pushed here with `clearing_set_config`). A pause
        never blocks deposits, withdrawing free collateral, burning (closing),
        cancelling, ERC-1155 transfers, or settlement after expiry. To retire
        the ledger: pause it, revoke every relayer, and let every series expire
        and settle through the Clearinghouse; users withdraw free collateral at
        any time.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC165

from snekmate.auth import access_control
from snekmate.utils import ecdsa
from snekmate.utils import eip712_domain_separator as eip712
from snekmate.utils import signature_checker
from snekmate.tokens.interfaces import IERC1155
from snekmate.tokens.interfaces import IERC1155Receiver

# @dev Shared word layouts, units and money maths; stateless, so a plain import.
from .modules import layout

implements: IERC165

# @dev Roles: the admin (a timelock in production) sets fees and the fee
# recipient and registers relayers; the guardian pauses; relayers match.
initializes: access_control

# @dev We own the EIP-712 domain (name "Strikeline", version "1", chain id,
# this address); the separator is rebuilt if the chain id changes.
initializes: eip712

# @dev `ecdsa` (the malleability bound) and `signature_checker` (EIP-1271)
# are stateless and only imported.

exports: (
    access_control.DEFAULT_ADMIN_ROLE,
    access_control.hasRole,
    access_control.grantRole,
    access_control.revokeRole,
    access_control.renounceRole,
    eip712.eip712Domain,
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


# @dev One per match or direct fill. With the ERC-1155 `TransferSingle` logs of
# the same call it tells the whole trade: the longs delivered (seller to
# buyer), written (minted to the buyer) and closed (burned from the seller).
# Packed to save 1,024 gas a match: `amount_price` is amount << 128 | price;
# `fees` is maker_is_buy << 255 | maker fee << 128 | taker fee; `remainings`
# is maker_remaining << 128 | taker_remaining.
event Fill:
    maker_order: indexed(bytes32)
    taker_order: indexed(bytes32)
    series_id: indexed(uint256)
    maker: address
    taker: address
    amount_price: uint256
    fees: uint256
    remainings: uint256
    maker_nonce: uint256
    taker_nonce: uint256


event Cancel:
    maker: indexed(address)
    order_hash: indexed(bytes32)
    nonce: uint256


event CancelByHash:
    maker: indexed(address)
    order_hash: indexed(bytes32)


event MinNonceRaised:
    maker: indexed(address)
    min_nonce: uint256


# @dev Fees, fee recipient and pause, as the Clearinghouse's governance set them.
event ConfigSet:
    fee_recipient: indexed(address)
    maker_fee_bps: uint256
    taker_fee_bps: uint256
    paused: bool


# ---------------------------------------------------------------------------
#                                  Constants
# ---------------------------------------------------------------------------

RELAYER_ROLE: public(constant(bytes32)) = keccak256("RELAYER_ROLE")

ORDER_TYPEHASH: public(constant(bytes32)) = keccak256(
    "Order(address maker,address taker,address sender,uint256 seriesId,bool isBuy,uint256 amount,uint256 limitPrice,uint256 maxFee,uint256 nonce,uint256 deadline)"
)

BPS: constant(uint256) = 10_000
# @dev Fees are at most 12.5% of the premium (the cap Deribit applies to options).
MAX_FEE_BPS: public(constant(uint256)) = 1_250
# @dev The fee notional is divided by UNIT * BPS, rounding up.
FEE_DENOMINATOR: constant(uint256) = layout.UNIT * BPS
MAX_MATCHES: public(constant(uint256)) = 16
# @dev `Match.amount_side`: the amount below bit 255, the side that rested at it.
AMOUNT_MASK: constant(uint256) = 2**255 - 1
MAX_CANCELS: public(constant(uint256)) = 64
MAX_BATCH: constant(uint256) = 128
# @dev `partial_fills` value of a cancelled order.
CANCELLED: constant(uint256) = max_value(uint256)
# @dev `_config`: the fee recipient (bits 0-159), maker fee bps (160-175),
# taker fee bps (176-191) and the pause flag (192): a match reads everything
# global in one slot.
FEE_MASK: constant(uint256) = 2**16 - 1
MAKER_FEE_SHIFT: constant(uint256) = 160
TAKER_FEE_SHIFT: constant(uint256) = 176
# tested as `(config >> PAUSED_SHIFT) & 1`: shorter code than a 2**192 mask
PAUSED_SHIFT: constant(uint256) = 192
# @dev `_free[account][token]`: the free balance in bits 128-255, so that a
# checked add of `amount << 128` keeps it in its half. For the replay token
# (the first quote token the Clearinghouse registered) the low half is also
# the account's replay state as a maker, so that a fill of an order quoted in
# it checks and marks the order in the balance word it updates anyway: bit 127
# is set once the maker cancelled an order by hash (only then is `cancelled`
# read on a fill); bits 64-126 hold the minimum valid nonce; bits 0-63 are the
# used bits of the nonces [minimum, minimum + 64) (the window). Other nonces
# use `_nonce_bitmap`. A nonce's bit lives in exactly one of the two places.
BALANCE_SHIFT: constant(uint256) = 128
HASH_CANCELS: constant(uint256) = 2**127
MIN_NONCE_SHIFT: constant(uint256) = 64
MIN_NONCE_MASK: constant(uint256) = 2**63 - 1
WINDOW: constant(uint256) = 64
WINDOW_MASK: constant(uint256) = 2**64 - 1
# @dev Bit 255 of a stored terms word: its quote token is the replay token, so a
# fill reads no other word to know where the makers' replay state is. Strikes
# stay below 2**67 (`layout.MAX_STRIKE`), so the bit is free.
HOME_QUOTE: constant(uint256) = 2**255
STRIKE_MASK: constant(uint256) = 2**71 - 1

# @dev ERC-165 ids: ERC-165, ERC-1155, access control. The optional metadata
# URI extension is left out to keep 2 KB of EIP-170 headroom; series metadata
# (product, strike, expiry) is on chain in the Clearinghouse.
_SUPPORTED_INTERFACES: constant(bytes4[3]) = [0x01ffc9a7, 0xd9b67a26, 0x7965db0b]


# ---------------------------------------------------------------------------
#                            Immutables and storage
# ---------------------------------------------------------------------------

struct Order:
    maker: address
    taker: address
    sender: address
    series_id: uint256
    is_buy: bool
    amount: uint256
    limit_price: uint256
    max_fee: uint256
    nonce: uint256
    deadline: uint256


# @dev An `Order` as the ABI encodes it, one word per field (addresses and
# `is_buy` as uint256): the same bytes in calldata. `match_orders` takes its
# orders in this form so that Vyper copies the whole argument to memory in one
# CALLDATACOPY; with address and bool fields it copies and range-checks every
# field (about 900 gas a match). `match_orders` checks those ranges itself.
struct OrderWords:
    maker: uint256
    taker: uint256
    sender: uint256
    series_id: uint256
    is_buy: uint256
    amount: uint256
    limit_price: uint256
    max_fee: uint256
    nonce: uint256
    deadline: uint256


# @dev A 65-byte r || s || v signature split into words, so that a `Match` is a
# static struct the relayer's calldata decodes without offsets (`v` a word, for
# the same reason as `OrderWords`).
struct Signature:
    r: bytes32
    s: bytes32
    v: uint256


struct Match:
    buy: OrderWords
    sell: OrderWords
    buy_signature: Signature
    sell_signature: Signature
    # option units traded in bits 0-254; bit 255 is set when the buy order
    # rested on the book (it pays the maker fee): one calldata word fewer
    amount_side: uint256
    # quote units per contract: the resting order's limit price
    price: uint256


struct Position:
    long: uint256
    short: uint256


# @dev The cold-path contract: registers products and series, settles after
# expiry. An immutable, so its hooks check the caller without a storage read.
clearinghouse: public(immutable(address))

_config: uint256

# @dev 10**decimals of each accepted token; zero means not accepted.
token_unit: public(HashMap[address, uint256])
# @dev account -> token -> free balance (bits 128-255) | the account's replay
# state as a maker (bits 0-127, in the replay token's word only).
_free: HashMap[address, HashMap[address, uint256]]
# @dev The token whose free-balance words hold the makers' replay state: the
# first quote token registered, fixed from then on.
_replay_token: address
# @dev account -> series -> position word (`layout`).
_positions: HashMap[address, HashMap[uint256, uint256]]
# @dev series -> book word: fully collateralised open interest | collateral.
_book: HashMap[uint256, uint256]
# @dev series -> terms word, and its product; product -> product word.
_terms: HashMap[uint256, uint256]
_series_product: HashMap[uint256, bytes32]
_product: HashMap[bytes32, uint256]

isApprovedForAll: public(HashMap[address, HashMap[address, bool]])

# @dev Orders their maker cancelled by hash.
cancelled: public(HashMap[address, HashMap[bytes32, bool]])
# @dev Bit `nonce % 256` of word `nonce // 256` is set once an order with that
# nonce filled (in part) or was cancelled, for nonces outside the maker's window.
_nonce_bitmap: HashMap[address, HashMap[uint256, uint256]]
# @dev Filled amount of a partly filled order, CANCELLED once cancelled, zero
# otherwise (fresh, or fully filled).
partial_fills: public(HashMap[bytes32, uint256])


# ---------------------------------------------------------------------------
#                                 Constructor
# ---------------------------------------------------------------------------

@deploy
def __init__(
    clearinghouse_: address,
    admin_: address,
    fee_recipient_: address,
    maker_fee_bps_: uint256,
    taker_fee_bps_: uint256,
):
    """
    @dev Deploys the ledger bound for good to the Clearinghouse at
         `clearinghouse_` (the deployer's next CREATE address: the
         Clearinghouse's constructor refuses a ledger bound elsewhere).
         `admin_` (a timelock in production) gets the admin role, which
         registers relayers; the deployer keeps no role unless it is the admin.
         Fees, the fee recipient and the pause change later only through the
         Clearinghouse's governance (`clearing_set_config`).
    @param clearinghouse_ The Clearinghouse (deployed next).
    @param admin_ The admin.
    @param fee_recipient_ Receives fees and rounding dust.
    @param maker_fee_bps_ The resting order's fee, basis points of premium.
    @param taker_fee_bps_ The taking side's fee, basis points of premium.
    """
    if not (clearinghouse_ != empty(address)):
        self._fail("ledger: zero clearinghouse")
    if not (admin_ != empty(address)):
        self._fail("ledger: zero admin")
    if not (fee_recipient_ != empty(address)):
        self._fail("ledger: zero fee recipient")
    access_control.__init__()
    eip712.__init__("Strikeline", "1")
    clearinghouse = clearinghouse_
    if not (maker_fee_bps_ <= MAX_FEE_BPS and taker_fee_bps_ <= MAX_FEE_BPS):
        self._fail("ledger: fee too high")
    self._config = convert(fee_recipient_, uint256) | (maker_fee_bps_ << MAKER_FEE_SHIFT) | (taker_fee_bps_ << TAKER_FEE_SHIFT)
    access_control._grant_role(access_control.DEFAULT_ADMIN_ROLE, admin_)
    if admin_ != msg.sender:
        access_control._revoke_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)


# ---------------------------------------------------------------------------
#                                  Accounts
# ---------------------------------------------------------------------------

@external
@nonreentrant
def deposit(token: address, amount: uint256, account: address) -> uint256:
    """
    @dev Pulls `amount` of `token` from the caller and credits `account` with
         what actually arrived (a fee-on-transfer token credits less). Never paused.
    @return uint256 The amount credited.
    """
    if not (self.token_unit[token] != 0):
        self._fail("ledger: token not accepted")
    if not (amount != 0):
        self._fail_zero_amount()
    if not (account != empty(address)):
        self._fail("ledger: zero account")
    before: uint256 = staticcall IERC20(token).balanceOf(self)
    # transferFrom that accepts tokens returning nothing or true
    response: Bytes[32] = raw_call(
        token,
        abi_encode(msg.sender, self, amount, method_id=method_id("transferFrom(address,address,uint256)")),
        max_outsize=32,
    )
    if len(response) != 0:
        if not (abi_decode(response, bool)):
            self._fail("ledger: transferFrom failed")
    # a balance that fell wraps to 2**128 or more and is refused below
    received: uint256 = unsafe_sub(staticcall IERC20(token).balanceOf(self), before)
    if not (received != 0):
        self._fail("ledger: nothing received")
    # `_credit`, inline
    if not (received >> 128 == 0):
        self._fail_amount_too_large()
    self._free[account][token] += received << BALANCE_SHIFT
    log Deposit(account=account, token=token, amount=received, sender=msg.sender)
    return received


@external
@nonreentrant
def withdraw(token: address, amount: uint256, recipient: address):
    """
    @dev Sends `amount` of the caller's free `token` to `recipient`. Never paused.
    """
    if not (amount != 0):
        self._fail_zero_amount()
    if not (recipient != empty(address)):
        self._fail("ledger: zero recipient")
    # `_debit_free`, inline
    free: uint256 = self._free[msg.sender][token]
    if not (free >> BALANCE_SHIFT >= amount):
        self._fail_insufficient_free_collateral()
    self._free[msg.sender][token] = unsafe_sub(free, amount << BALANCE_SHIFT)
    log Withdraw(account=msg.sender, token=token, amount=amount, recipient=recipient)
    # transfer that accepts tokens returning nothing or true
    response: Bytes[32] = raw_call(
        token, abi_encode(recipient, amount, method_id=method_id("transfer(address,uint256)")), max_outsize=32
    )
    if len(response) != 0:
        if not (abi_decode(response, bool)):
            self._fail("ledger: transfer failed")


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
    if (self._config >> PAUSED_SHIFT) & 1 != 0:
        self._fail_paused()
    terms: uint256 = self._open_terms(series_id)
    product: uint256 = self._product[self._series_product[series_id]]
    pos: uint256 = self._positions[msg.sender][series_id]
    locked: uint256 = 0
    pos, locked = self._open_short(msg.sender, series_id, product, terms, pos, amount)
    self._positions[msg.sender][series_id] = pos
    log Written(writer=msg.sender, series_id=series_id, amount=amount, collateral=locked, recipient=recipient)
    self._mint(recipient, series_id, amount)
    return locked


@external
@nonreentrant
def burn(series_id: uint256, amount: uint256) -> uint256:
    """
    @dev Before expiry, burns `amount` of the caller's longs against its own
         short and releases the collateral no longer needed. Never paused.
    @return uint256 The collateral released.
    """
    terms: uint256 = self._open_terms(series_id)
    product: uint256 = self._product[self._series_product[series_id]]
    pos: uint256 = self._positions[msg.sender][series_id]
    if not ((pos << 128) >> 128 >= amount):
        self._fail_burn_amount_exceeds_balance()
    released: uint256 = 0
    pos, released = self._close_short(msg.sender, series_id, product, terms, pos, amount)
    self._positions[msg.sender][series_id] = pos - amount
    log Burned(writer=msg.sender, series_id=series_id, amount=amount, released=released)
    self._log_transfer(msg.sender, empty(address), series_id, amount)
    return released


# ---------------------------------------------------------------------------
#                                   Trading
# ---------------------------------------------------------------------------

@external
@nonreentrant
def match_orders(matches: DynArray[Match, MAX_MATCHES]):
    """
    @dev Relayers only. Settles each match in order: checks both orders
         (sides, series, counterparties, submitter, limits, deadlines, nonces,
         signatures, amounts left, fee caps), records the fills and settles
         the trade in place. Any failing match reverts the batch.
    @param matches The matches, at most MAX_MATCHES.
    """
    self._check_caller()
    config: uint256 = self._config
    if (config >> PAUSED_SHIFT) & 1 != 0:
        self._fail_paused()
    if not (len(matches) != 0):
        self._fail("ledger: no matches")
    # an order that fills in consecutive matches (a maker's quote taken by several
    # takers, or one taker sweeping several makers) has its signature checked once
    buy_verified: bytes32 = empty(bytes32)
    sell_verified: bytes32 = empty(bytes32)
    # read once for the batch
    domain: bytes32 = eip712._domain_separator_v4()
    # each match checked and settled (`_match`, inline: no copy of it into a
    # frame, no call): the resting order sets the price and pays the maker
    # fee, the other side pays the taker fee
    for m: Match in matches:
        # the ranges the ABI decoder checks for `Order`'s types (a bare revert, as
        # its own): addresses below 2**160, booleans 0 or 1, v one byte
        assert (
            ((m.buy.maker | m.buy.taker | m.buy.sender | m.sell.maker | m.sell.taker | m.sell.sender) >> 160)
            | ((m.buy.is_buy | m.sell.is_buy) >> 1)
            | ((m.buy_signature.v | m.sell_signature.v) >> 8)
        ) == 0
        amount: uint256 = m.amount_side & AMOUNT_MASK
        buy_is_maker: bool = m.amount_side >> 255 != 0
        if amount == 0:
            self._fail_zero_amount()
        if not (m.buy.is_buy == 1 and m.sell.is_buy == 0):
            self._fail("ledger: sides")
        if not (m.buy.series_id == m.sell.series_id):
            self._fail("ledger: series mismatch")
        if not (m.buy.maker != m.sell.maker):
            self._fail_self_trade()
        if not (m.buy.taker == 0 or m.buy.taker == m.sell.maker):
            self._fail_taker_not_allowed()
        if not (m.sell.taker == 0 or m.sell.taker == m.buy.maker):
            self._fail_taker_not_allowed()
        relayer: uint256 = convert(msg.sender, uint256)
        if not (m.buy.sender == 0 or m.buy.sender == relayer):
            self._fail_sender_not_allowed()
        if not (m.sell.sender == 0 or m.sell.sender == relayer):
            self._fail_sender_not_allowed()
        buyer: address = convert(m.buy.maker, address)
        seller: address = convert(m.sell.maker, address)
        maker_bps: uint256 = (config >> MAKER_FEE_SHIFT) & FEE_MASK
        taker_bps: uint256 = (config >> TAKER_FEE_SHIFT) & FEE_MASK
        resting_limit: uint256 = m.sell.limit_price
        buy_bps: uint256 = taker_bps
        sell_bps: uint256 = maker_bps
        if buy_is_maker:
            resting_limit = m.buy.limit_price
            buy_bps = maker_bps
            sell_bps = taker_bps
        if not (m.price == resting_limit):
            self._fail("ledger: price not resting limit")
        # the price is the resting limit: within the other limit when they cross
        if not (m.buy.limit_price >= m.sell.limit_price):
            if buy_is_maker:
                self._fail("ledger: price below sell limit")
            self._fail("ledger: price above buy limit")

        notional: uint256 = amount * m.price
        # fees rounded up, as `_fee` (inline: this runs twice per match); the
        # checked additions refuse a product within FEE_DENOMINATOR of 2**256
        buyer_fee: uint256 = unsafe_div(notional * buy_bps + (FEE_DENOMINATOR - 1), FEE_DENOMINATOR)
        seller_fee: uint256 = unsafe_div(notional * sell_bps + (FEE_DENOMINATOR - 1), FEE_DENOMINATOR)
        # the series, and both makers' free quote words: balances and (in the replay
        # token) replay state, read once and written once by `_settle`
        # (`_load`, inline)
        terms: uint256 = self._terms[m.buy.series_id]
        quote: address = convert(convert(terms & layout.MASK160, uint160), address)
        buyer_word: uint256 = self._free[buyer][quote]
        seller_word: uint256 = self._free[seller][quote]
        home: bool = terms & HOME_QUOTE != 0
        buy_hash: bytes32 = empty(bytes32)
        buy_left: uint256 = 0
        sell_hash: bytes32 = empty(bytes32)
        sell_left: uint256 = 0
        buy_cache: bytes32 = empty(bytes32)
        sell_cache: bytes32 = empty(bytes32)
        buy_hash, buy_left, buy_cache, buyer_word = self._take(
            m.buy, m.buy_signature, amount, buyer_fee, domain, buy_verified, buyer_word, home
        )
        sell_hash, sell_left, sell_cache, seller_word = self._take(
            m.sell, m.sell_signature, amount, seller_fee, domain, sell_verified, seller_word, home
        )
        self._settle(m.buy.series_id, buyer, seller, amount, notional, buyer_fee, seller_fee, config, terms, buyer_word, seller_word)

        if buy_is_maker:
            self._log_fill(m.buy, buy_hash, buy_left, seller, m.sell.nonce, sell_hash, sell_left, amount, m.price, buyer_fee, seller_fee)
        else:
            self._log_fill(m.sell, sell_hash, sell_left, buyer, m.buy.nonce, buy_hash, buy_left, amount, m.price, seller_fee, buyer_fee)
        buy_verified = buy_cache
        sell_verified = sell_cache


@external
@nonreentrant
def fill(order: Order, signature: Bytes[65], amount: uint256, max_fee: uint256) -> uint256:
    """
    @dev Takes the other side of a signed order at its limit price: the
         caller sells to a buy order or buys from a sell order. The order's
         maker pays the maker fee, the caller the taker fee. An order naming a
         `sender` fills only when that address calls.
    @param order The resting order.
    @param signature The maker's 65-byte signature of the order.
    @param amount Option units to trade.
    @param max_fee The most the caller accepts to pay in fees, quote units.
    @return uint256 What is left of the order after this fill.
    """
    config: uint256 = self._config
    if (config >> PAUSED_SHIFT) & 1 != 0:
        self._fail_paused()
    if amount == 0:
        self._fail_zero_amount()
    if not (order.maker != msg.sender):
        self._fail_self_trade()
    if not (order.taker == empty(address) or order.taker == msg.sender):
        self._fail_taker_not_allowed()
    if not (order.sender == empty(address) or order.sender == msg.sender):
        self._fail_sender_not_allowed()
    notional: uint256 = amount * order.limit_price
    maker_fee: uint256 = self._fee(notional, (config >> MAKER_FEE_SHIFT) & FEE_MASK)
    taker_fee: uint256 = self._fee(notional, (config >> TAKER_FEE_SHIFT) & FEE_MASK)
    if not (taker_fee <= max_fee):
        self._fail("ledger: taker fee over max")
    terms: uint256 = 0
    maker_word: uint256 = 0
    taker_word: uint256 = 0
    terms, maker_word, taker_word = self._load(order.series_id, order.maker, msg.sender)
    order_hash: bytes32 = empty(bytes32)
    remaining: uint256 = 0
    cached: bytes32 = empty(bytes32)
    # the order's words, as `match_orders` takes them (decoded: in range)
    words: OrderWords = OrderWords(
        maker=convert(order.maker, uint256),
        taker=convert(order.taker, uint256),
        sender=convert(order.sender, uint256),
        series_id=order.series_id,
        is_buy=convert(order.is_buy, uint256),
        amount=order.amount,
        limit_price=order.limit_price,
        max_fee=order.max_fee,
        nonce=order.nonce,
        deadline=order.deadline,
    )
    order_hash, remaining, cached, maker_word = self._take(
        words,
        self._split(signature),
        amount,
        maker_fee,
        eip712._domain_separator_v4(),
        empty(bytes32),
        maker_word,
        terms & HOME_QUOTE != 0,
    )
    b: bool = order.is_buy
    self._settle(
        order.series_id,
        order.maker if b else msg.sender,
        msg.sender if b else order.maker,
        amount,
        notional,
        maker_fee if b else taker_fee,
        taker_fee if b else maker_fee,
        config,
        terms,
        maker_word if b else taker_word,
        taker_word if b else maker_word,
    )
    self._log_fill(words, order_hash, remaining, msg.sender, 0, empty(bytes32), 0, amount, order.limit_price, maker_fee, taker_fee)
    return remaining


# ---------------------------------------------------------------------------
#                                Cancellation
# ---------------------------------------------------------------------------

@external
def cancel(orders: DynArray[Order, MAX_CANCELS]):
    """
    @dev Cancels the caller's orders, each identified by its contents. A
         cancelled order's nonce is used up, so other orders of the caller
         with the same nonce are void too. Never paused; twice is harmless.
    @param orders The orders, at most MAX_CANCELS, all made by the caller.
    """
    token: address = self._home()
    for order: Order in orders:
        if not (order.maker == msg.sender):
            self._fail("ledger: not the maker")
        order_hash: bytes32 = self._hash_order(order)
        # the nonce's used bit, in the window or the bitmap
        nonce: uint256 = order.nonce
        state: uint256 = self._free[msg.sender][token]
        offset: uint256 = unsafe_sub(nonce, (state >> MIN_NONCE_SHIFT) & MIN_NONCE_MASK)
        if offset < WINDOW:
            self._free[msg.sender][token] = state | (1 << offset)
        else:
            self._nonce_bitmap[msg.sender][nonce >> 8] |= 1 << (nonce & 255)
        self.partial_fills[order_hash] = CANCELLED
        log Cancel(maker=msg.sender, order_hash=order_hash, nonce=order.nonce)


@external
def cancel_by_hash(order_hashes: DynArray[bytes32, MAX_CANCELS]):
    """
    @dev Cancels the caller's orders by hash (the digest `hash_order` returns
         and `Fill` logs), only ever for the caller. The nonce stays unused.
         From the first hash cancel on, fills of the caller's orders read the
         cancel flag. Never paused; cancelling twice is harmless.
    @param order_hashes The hashes, at most MAX_CANCELS.
    """
    if not (len(order_hashes) != 0):
        self._fail("ledger: nothing to cancel")
    token: address = self._home()
    self._free[msg.sender][token] |= HASH_CANCELS
    for order_hash: bytes32 in order_hashes:
        self.cancelled[msg.sender][order_hash] = True
        log CancelByHash(maker=msg.sender, order_hash=order_hash)


@external
def raise_min_nonce(min_nonce_: uint256):
    """
    @dev Voids every order of the caller with a nonce below `min_nonce_`.
         The minimum only goes up, and stays below 2**63 (it shares the
         maker's word in the replay token with its free balance and the used
         bits of the 64 nonces from it). Never paused; reverts before the
         first product is registered.
    @param min_nonce_ The new minimum valid nonce.
    """
    token: address = self._home()
    state: uint256 = self._free[msg.sender][token]
    old: uint256 = (state >> MIN_NONCE_SHIFT) & MIN_NONCE_MASK
    if not (min_nonce_ > old):
        self._fail("ledger: nonce not raised")
    if not (min_nonce_ <= MIN_NONCE_MASK):
        self._fail("ledger: nonce too large")
    # the window moves up: bits of nonces still in it shift down, and nonces
    # that enter it bring their bit from the bitmap (at most two words); both
    # minimums are below 2**127, so nothing here can overflow
    gap: uint256 = unsafe_sub(min_nonce_, old)
    window: uint256 = 0
    if gap < WINDOW:
        window = (state & WINDOW_MASK) >> gap
    # the nonces [lo, min_nonce_ + 128) enter; lo < min_nonce_ + 128 as old < min_nonce_
    lo: uint256 = max(min_nonce_, unsafe_add(old, WINDOW))
    word: uint256 = lo >> 8
    offset: uint256 = lo & 255
    # the two words from `lo`, shifted so that bit 0 is nonce `lo` (a shift by 256
    # gives zero)
    bits: uint256 = (self._nonce_bitmap[msg.sender][word] >> offset) | (
        self._nonce_bitmap[msg.sender][unsafe_add(word, 1)] << unsafe_sub(256, offset)
    )
    mask: uint256 = unsafe_sub(convert(1, uint256) << unsafe_sub(unsafe_add(min_nonce_, WINDOW), lo), 1)
    window |= (bits & mask) << unsafe_sub(lo, min_nonce_)
    # the balance and the cancel flag (bits 127-255) stay
    self._free[msg.sender][token] = ((state >> 127) << 127) | (min_nonce_ << MIN_NONCE_SHIFT) | window
    log MinNonceRaised(maker=msg.sender, min_nonce=min_nonce_)


# ---------------------------------------------------------------------------
#                                  ERC-1155
# ---------------------------------------------------------------------------

@external
@nonreentrant
def safeTransferFrom(owner: address, to: address, id: uint256, amount: uint256, data: Bytes[1_024]):
    """
    @dev Moves `amount` longs of series `id` from `owner` to `to` (the owner or
         an approved operator calls). Never paused: a long moves freely.
    """
    if not (owner == msg.sender or self.isApprovedForAll[owner][msg.sender]):
        self._fail_caller_is_not_owner_nor_approved()
    self._move(owner, to, id, amount)
    self._log_transfer(owner, to, id, amount)
    if to.is_contract:
        if (
            extcall IERC1155Receiver(to).onERC1155Received(msg.sender, owner, id, amount, data)
            != method_id("onERC1155Received(address,address,uint256,uint256,bytes)", output_type=bytes4)
        ):
            self._fail_receiver_rejected_the_transfer()


@external
@nonreentrant
def safeBatchTransferFrom(
    owner: address,
    to: address,
    ids: DynArray[uint256, MAX_BATCH],
    amounts: DynArray[uint256, MAX_BATCH],
    data: Bytes[1_024],
):
    """
    @dev Batched `safeTransferFrom`.
    """
    if not (owner == msg.sender or self.isApprovedForAll[owner][msg.sender]):
        self._fail_caller_is_not_owner_nor_approved()
    if not (len(ids) == len(amounts)):
        self._fail("ledger: ids and amounts length mismatch")
    for i: uint256 in range(len(ids), bound=MAX_BATCH):
        self._move(owner, to, ids[i], amounts[i])
    log IERC1155.TransferBatch(_operator=msg.sender, _from=owner, _to=to, _ids=ids, _values=amounts)
    if to.is_contract:
        if (
            extcall IERC1155Receiver(to).onERC1155BatchReceived(msg.sender, owner, ids, amounts, data)
            != method_id("onERC1155BatchReceived(address,address,uint256[],uint256[],bytes)", output_type=bytes4)
        ):
            self._fail_receiver_rejected_the_transfer()


@external
def setApprovalForAll(operator: address, approved: bool):
    """
    @dev Lets `operator` move all of the caller's longs (or stops it).
    """
    if not (operator != msg.sender):
        self._fail("ledger: setting approval status for self")
    self.isApprovedForAll[msg.sender][operator] = approved
    log IERC1155.ApprovalForAll(_owner=msg.sender, _operator=operator, _approved=approved)


@external
@view
def balanceOf(owner: address, id: uint256) -> uint256:
    """
    @dev The longs of series `id` held by `owner`.
    """
    return (self._positions[owner][id] << 128) >> 128


@external
@view
def balanceOfBatch(owners: DynArray[address, MAX_BATCH], ids: DynArray[uint256, MAX_BATCH]) -> DynArray[uint256, MAX_BATCH]:
    """
    @dev `balanceOf` for each (owner, id) pair.
    """
    if not (len(owners) == len(ids)):
        self._fail("ledger: owners and ids length mismatch")
    balances: DynArray[uint256, MAX_BATCH] = []
    for i: uint256 in range(len(owners), bound=MAX_BATCH):
        balances.append(self._positions[owners[i]][ids[i]] & layout.LONG_MASK)
    return balances


@external
@view
def supportsInterface(interfaceId: bytes4) -> bool:
    """
    @dev ERC-165: ERC-165, ERC-1155 and the access-control interface of the
         admin roles (not the optional metadata URI extension).
    """
    return interfaceId in _SUPPORTED_INTERFACES


# ---------------------------------------------------------------------------
#                        Clearinghouse hooks (cold paths)
# ---------------------------------------------------------------------------

@external
def clearing_set_product(product_id: bytes32, word: uint256, underlying: address, underlying_unit: uint256, quote: address, quote_unit: uint256):
    """
    @dev Clearinghouse only: records a whitelisted (or disabled) product's
         word and accepts its tokens for deposit.
    """
    self._check_clearinghouse()
    if self._replay_token == empty(address):
        self._replay_token = quote
    self._product[product_id] = word
    self.token_unit[underlying] = underlying_unit
    self.token_unit[quote] = quote_unit


@external
def clearing_set_config(config: uint256):
    """
    @dev Clearinghouse only: fees, fee recipient and pause in one word
         (recipient bits 0-159, maker bps 160-175, taker bps 176-191, paused
         bit 192), checked and set by the Clearinghouse's governance.
    """
    self._check_clearinghouse()
    if not (
        (config >> MAKER_FEE_SHIFT) & FEE_MASK <= MAX_FEE_BPS
        and (config >> TAKER_FEE_SHIFT) & FEE_MASK <= MAX_FEE_BPS
        and config & layout.MASK160 != 0
    ):
        self._fail("ledger: bad config")
    self._config = config
    log ConfigSet(
        fee_recipient=layout._low_address(config),
        maker_fee_bps=(config >> MAKER_FEE_SHIFT) & FEE_MASK,
        taker_fee_bps=(config >> TAKER_FEE_SHIFT) & FEE_MASK,
        paused=(config >> PAUSED_SHIFT) & 1 != 0,
    )


@external
def clearing_set_series(series_id: uint256, product_id: bytes32, terms: uint256):
    """
    @dev Clearinghouse only: records a new series' product and terms word.
    """
    self._check_clearinghouse()
    self._series_product[series_id] = product_id
    # products come first, so the replay token is known
    self._terms[series_id] = terms | (convert(layout._quote(terms) == self._home(), uint256) << 255)


@external
@nonreentrant
def clearing_move_free(account: address, token: address, amount: uint256, credit: bool):
    """
    @dev Clearinghouse only: credits or debits `account`'s free `token`, the
         other side being collateral the Clearinghouse accounts for (margin,
         insurance, settlement pools). A debit reverts if the balance is short.
    """
    self._check_clearinghouse()
    if credit:
        self._credit(account, token, amount)
    else:
        self._debit_free(account, token, amount)


@external
@nonreentrant
def clearing_mint(to: address, series_id: uint256, amount: uint256):
    """
    @dev Clearinghouse only: mints longs backed by a margined short it keeps.
    """
    self._check_clearinghouse()
    if (self._config >> PAUSED_SHIFT) & 1 != 0:
        self._fail_paused()
    self._open_terms(series_id)
    self._mint(to, series_id, amount)


@external
@nonreentrant
def clearing_burn(owner: address, series_id: uint256, amount: uint256, token: address, credit: uint256):
    """
    @dev Clearinghouse only: burns `amount` of `owner`'s longs (closing a
         margined short, or redeeming after expiry) and credits `credit` of
         `token` to its free balance.
    """
    self._check_clearinghouse()
    pos: uint256 = self._positions[owner][series_id]
    if not ((pos << 128) >> 128 >= amount):
        self._fail_burn_amount_exceeds_balance()
    self._positions[owner][series_id] = pos - amount
    if credit != 0:
        self._credit(owner, token, credit)
    self._log_transfer(owner, empty(address), series_id, amount)


@external
@nonreentrant
def clearing_open_short(writer: address, series_id: uint256, amount: uint256) -> uint256:
    """
    @dev Clearinghouse only: `writer` takes over `amount` of short with full
         collateral from its free balance, no longs minted (a liquidator
         taking a margined short over). Paused with trading.
    @return uint256 The collateral locked.
    """
    self._check_clearinghouse()
    if (self._config >> PAUSED_SHIFT) & 1 != 0:
        self._fail_paused()
    terms: uint256 = self._open_terms(series_id)
    locked: uint256 = 0
    pos: uint256 = 0
    pos, locked = self._open_short(
        writer, series_id, self._product[self._series_product[series_id]], terms, self._positions[writer][series_id], amount
    )
    self._positions[writer][series_id] = pos
    return locked


@external
@nonreentrant
def clearing_settle_short(writer: address, series_id: uint256, collateral: uint256, token: address, returned: uint256) -> uint256:
    """
    @dev Clearinghouse only, after expiry: closes `writer`'s full short,
         takes it and `collateral` off the series book and credits `returned`
         to `writer`'s free `token`. The Clearinghouse passes what it returns
         as `collateral`, so the obligation stays in the book for the holders
         until `sweep_dust` takes it off (then `writer` is the fee recipient,
         who holds no short by then, and `returned` is the dust).
    @return uint256 The short closed.
    """
    self._check_clearinghouse()
    pos: uint256 = self._positions[writer][series_id]
    short: uint256 = pos >> layout.SHORT_SHIFT
    self._positions[writer][series_id] = (pos << 128) >> 128
    self._book[series_id] -= short + (collateral << 128)
    if returned != 0:
        self._credit(writer, token, returned)
    return short


# ---------------------------------------------------------------------------
#                                    Views
# ---------------------------------------------------------------------------

@external
@view
def paused() -> bool:
    """
    @dev Whether writing, matching and fills are paused.
    """
    return (self._config >> PAUSED_SHIFT) & 1 != 0


@external
@view
def fee_recipient() -> address:
    """
    @dev Who receives trading fees and rounding dust.
    """
    return layout._low_address(self._config)


@external
@view
def maker_fee_bps() -> uint256:
    """
    @dev The resting order's fee, basis points of premium.
    """
    return (self._config >> MAKER_FEE_SHIFT) & FEE_MASK


@external
@view
def taker_fee_bps() -> uint256:
    """
    @dev The taking side's fee, basis points of premium.
    """
    return (self._config >> TAKER_FEE_SHIFT) & FEE_MASK


@external
@view
def free_collateral(account: address, token: address) -> uint256:
    """
    @dev `account`'s free `token`: deposited or credited, not locked by a short.
    """
    return self._free[account][token] >> BALANCE_SHIFT


@external
@view
def positions(account: address, series_id: uint256) -> Position:
    """
    @dev An account's position in a series: longs held and fully
         collateralised short (which locks `full_collateral(short)`, the
         Clearinghouse's `collateral_required`).
    """
    word: uint256 = self._positions[account][series_id]
    return Position(long=(word << 128) >> 128, short=word >> layout.SHORT_SHIFT)


@external
@view
def book(series_id: uint256) -> (uint256, uint256):
    """
    @dev (fully collateralised open interest, collateral locked for it) of a series.
         After expiry the collateral half also holds the settled writers'
         obligations to holders until the Clearinghouse sweeps the dust.
    """
    word: uint256 = self._book[series_id]
    return (word << 128) >> 128, word >> 128


@external
@view
def series_words(series_id: uint256) -> (uint256, uint256):
    """
    @dev (terms word, product word) of a series; (0, 0) if unknown.
    """
    # the terms word without the HOME_QUOTE bit (shifts: shorter code than its mask)
    return (self._terms[series_id] << 1) >> 1, self._product[self._series_product[series_id]]


@external
@view
def min_nonce(maker: address) -> uint256:
    """
    @dev The maker's minimum valid nonce: its orders below it are void.
    """
    return (self._free[maker][self._replay_token] >> MIN_NONCE_SHIFT) & MIN_NONCE_MASK


@external
@view
def domain_separator() -> bytes32:
    """
    @dev The EIP-712 domain separator for the current chain.
    """
    return eip712._domain_separator_v4()


@external
@view
def nonce_used(maker: address, nonce: uint256) -> bool:
    """
    @dev Whether an order of `maker` with `nonce` filled (in part) or was cancelled.
    """
    return self._nonce_bitmap_word(maker, nonce >> 8) & (1 << (nonce & 255)) != 0


@external
@view
def nonce_bitmap(maker: address, word: uint256) -> uint256:
    """
    @dev The used bits of `maker`'s nonces [256 * word, 256 * word + 256): bit
         `nonce % 256` is set once an order with that nonce filled (in part) or
         was cancelled.
    """
    return self._nonce_bitmap_word(maker, word)


# ---------------------------------------------------------------------------
#                               Internals: orders
# ---------------------------------------------------------------------------

@internal
def _take(
    order: OrderWords,
    signature: Signature,
    amount: uint256,
    fee: uint256,
    domain: bytes32,
    verified: bytes32,
    word: uint256,
    home: bool,
) -> (bytes32, uint256, bytes32, uint256):
    """
    @dev Checks one order for a fill of `amount` paying `fee` and records the
         fill: deadline, minimum nonce, pro rata fee cap, signature, cancel by
         hash, amount left. An order whose hash equals `verified` skips the
         signature check (the hash commits to every field, and a key
         signature that verified once always does). `word` is the maker's free
         word in the series' quote token; when `home` (the quote is the replay
         token) it holds the maker's replay state, which is updated in the
         returned word for `_settle` to store, else that state is read and
         written here.
    @return bytes32 The order hash.
    @return uint256 What is left of the order after this fill.
    @return bytes32 The order hash if a key signed it, else zero: a contract
            wallet's EIP-1271 answer can change within a transaction, so it
            is asked every time.
    @return uint256 `word`, with the order's nonce bit when `home`.
    """
    if not (block.timestamp <= order.deadline):
        self._fail("ledger: order expired")
    maker: address = convert(order.maker, address)
    state: uint256 = word
    token: address = empty(address)
    if not home:
        token = self._replay_token
        state = self._free[maker][token]
    # the window's first nonce
    low: uint256 = (state >> MIN_NONCE_SHIFT) & MIN_NONCE_MASK
    if not (order.nonce >= low):
        self._fail("ledger: nonce below minimum")
    # a cap so large that max_fee * amount overflows limits nothing (so the
    # product below cannot overflow)
    if order.max_fee <= max_value(uint256) // amount:
        if not (fee * order.amount <= unsafe_mul(order.max_fee, amount)):
            self._fail("ledger: fee over max")
    # `_hash_order`, inline: the words are the order's ABI encoding
    order_hash: bytes32 = keccak256(
        slice(abi_encode(convert(0x1901, uint256), domain, keccak256(abi_encode(ORDER_TYPEHASH, order))), 30, 66)
    )
    by_key: bool = True
    if order_hash != verified:
        # a 65-byte low-s ECDSA signature by the maker or, for a contract maker,
        # one its EIP-1271 `isValidSignature` accepts (inline: one copy fewer)
        if not (convert(signature.s, uint256) <= ecdsa._MALLEABILITY_THRESHOLD):
            self._fail("ledger: high s")
        recovered: address = ecrecover(order_hash, signature.v, signature.r, signature.s)
        if recovered != maker or recovered == empty(address):
            if maker.is_contract:
                if not signature_checker._is_valid_ERC1271_signature_now(
                    maker, order_hash, concat(signature.r, signature.s, convert(convert(signature.v, uint8), bytes1))
                ):
                    self._fail("ledger: contract signature rejected")
                by_key = False
            elif recovered == empty(address):
                self._fail("ledger: invalid signature")
            else:
                self._fail("ledger: wrong signer")
    if state & HASH_CANCELS != 0:
        if not (not self.cancelled[maker][order_hash]):
            self._fail_order_cancelled()
    cached: bytes32 = empty(bytes32)
    if by_key:
        cached = order_hash

    # replay: a fresh order only sets its nonce's bit, in the maker's word when
    # the nonce is in its window, else in the bitmap; a partly filled one keeps
    # its filled amount in `partial_fills` until it completes
    filled: uint256 = 0
    offset: uint256 = unsafe_sub(order.nonce, low)
    used: bool = False
    if offset < WINDOW:
        bit: uint256 = 1 << offset
        used = state & bit != 0
        if not used:
            state |= bit
            if not home:
                self._free[maker][token] = state
    else:
        word_index: uint256 = order.nonce >> 8
        bit: uint256 = 1 << (order.nonce & 255)
        bits: uint256 = self._nonce_bitmap[maker][word_index]
        used = bits & bit != 0
        if not used:
            self._nonce_bitmap[maker][word_index] = bits | bit
    if used:
        filled = self.partial_fills[order_hash]
        if not (filled != CANCELLED):
            self._fail_order_cancelled()
        if not (filled != 0):
            self._fail("ledger: nonce used")
    # a live partial fill is always below the order's amount
    left: uint256 = unsafe_sub(order.amount, filled)
    if not (amount <= left):
        self._fail("ledger: overfill")
    left = unsafe_sub(left, amount)
    if left == 0:
        if filled != 0:
            self.partial_fills[order_hash] = 0
    else:
        self.partial_fills[order_hash] = unsafe_sub(order.amount, left)
    if home:
        word = state
    return order_hash, left, cached, word


@internal
@view
def _load(series_id: uint256, a: address, b: address) -> (uint256, uint256, uint256):
    """
    @dev The terms word of a series and the free quote words of two accounts.
         `_settle` checks the terms (after the orders' and the fee's checks,
         the order the Ledger's reasons have always come in); an unknown series
         reads zero words and reverts there.
    """
    terms: uint256 = self._terms[series_id]
    quote: address = layout._quote(terms)
    return terms, self._free[a][quote], self._free[b][quote]


@internal
@view
def _nonce_bitmap_word(maker: address, word: uint256) -> uint256:
    """
    @dev The used bits of `maker`'s nonces in bitmap word `word`, the window's
         bits merged in (the window spans at most two words).
    """
    state: uint256 = self._free[maker][self._replay_token]
    low: uint256 = (state >> MIN_NONCE_SHIFT) & MIN_NONCE_MASK
    bits: uint256 = self._nonce_bitmap[maker][word]
    window: uint256 = state & WINDOW_MASK
    if word == low >> 8:
        # nonces in the window below the word's end: the window's low bits
        bits |= window << (low & 255)
    elif word == (low >> 8) + 1 and low & 255 != 0:
        bits |= window >> (256 - (low & 255))
    return bits


@internal
def _log_fill(
    maker: OrderWords,
    maker_hash: bytes32,
    maker_left: uint256,
    taker: address,
    taker_nonce: uint256,
    taker_hash: bytes32,
    taker_left: uint256,
    amount: uint256,
    price: uint256,
    maker_fee: uint256,
    taker_fee: uint256,
):
    """
    @dev The `Fill` log of one match or direct fill (a direct fill's taker
         has no order: zero hash and nonce).
    """
    # the packed halves are lossless: real amounts, prices, fees and what is left
    # of orders are far below 2**127, and a trade that is not reverts rather than
    # log a wrong figure
    if (amount | price | taker_fee | maker_left | taker_left) >> 128 != 0 or maker_fee >> 127 != 0:
        self._fail_amount_too_large()
    log Fill(
        maker_order=maker_hash,
        taker_order=taker_hash,
        series_id=maker.series_id,
        maker=convert(convert(maker.maker, uint160), address),
        taker=taker,
        amount_price=(amount << 128) | price,
        fees=(maker.is_buy << 255) | (maker_fee << 128) | taker_fee,
        remainings=(maker_left << 128) | taker_left,
        maker_nonce=maker.nonce,
        taker_nonce=taker_nonce,
    )


@internal
@pure
def _split(signature: Bytes[65]) -> Signature:
    """
    @dev Splits a 65-byte r || s || v signature into its words.
    """
    if not (len(signature) == 65):
        self._fail("ledger: signature length")
    return Signature(r=extract32(signature, 0), s=extract32(signature, 32), v=convert(convert(slice(signature, 64, 1), uint8), uint256))


@internal
@view
def _hash_order(order: Order) -> bytes32:
    """
    @dev The EIP-712 digest of `order` under this contract's domain.
    """
    return eip712._hash_typed_data_v4(
        keccak256(
            abi_encode(
                ORDER_TYPEHASH,
                order.maker,
                order.taker,
                order.sender,
                order.series_id,
                order.is_buy,
                order.amount,
                order.limit_price,
                order.max_fee,
                order.nonce,
                order.deadline,
            )
        )
    )


@internal
@pure
def _fee(notional: uint256, bps: uint256) -> uint256:
    """
    @dev A fee of `bps` on the premium `notional / UNIT`, rounded up.
    """
    scaled: uint256 = notional * bps
    return scaled // FEE_DENOMINATOR + convert(scaled % FEE_DENOMINATOR != 0, uint256)


@internal
@view
def _check_caller():
    """
    @dev Reverts unless the caller is a registered relayer (the only role
         checked here: the admin's are checked by `access_control`).
    """
    if not access_control.hasRole[RELAYER_ROLE][msg.sender]:
        self._fail("ledger: not a relayer")


@internal
@view
def _check_clearinghouse():
    """
    @dev Reverts unless the caller is the bound Clearinghouse.
    """
    if not (msg.sender == clearinghouse):
        self._fail("ledger: only clearinghouse")


# ---------------------------------------------------------------------------
#                          Internals: money and positions
# ---------------------------------------------------------------------------

@internal
def _settle(
    series_id: uint256,
    buyer: address,
    seller: address,
    amount: uint256,
    notional: uint256,
    buyer_fee: uint256,
    seller_fee: uint256,
    config: uint256,
    terms: uint256,
    buyer_word: uint256,
    seller_word: uint256,
):
    """
    @dev Settles one trade in place, `terms` being the series' terms word and
         `buyer_word` and `seller_word` the parties' free quote words (with
         the replay bits `_take` set), which it stores. The buyer pays the premium rounded up
         plus its fee, the seller receives the premium rounded down less its
         fee, the fee recipient the difference. The seller delivers longs it
         holds and writes the rest from free collateral (sell to open); the
         buyer's incoming longs first close its own short (buy to close).
    """
    premium: uint256 = notional // layout.UNIT
    if not (seller_fee <= premium):
        self._fail("ledger: fee exceeds premium")
    debit: uint256 = premium + buyer_fee + convert(notional % layout.UNIT != 0, uint256)
    credit: uint256 = unsafe_sub(premium, seller_fee)
    # `_open_terms`, inline on the hot path
    if terms == 0:
        self._fail_unknown_series()
    if not (block.timestamp < layout._expiry(terms)):
        self._fail_series_expired()

    # premium: buyer -> seller, the rest (fees and rounding) to the fee recipient;
    # each word is stored before the next is read (the fee recipient may be a party)
    quote: address = convert(convert(terms & layout.MASK160, uint160), address)
    if not (buyer_word >> BALANCE_SHIFT >= debit):
        self._fail("ledger: buyer insufficient collateral")
    self._free[buyer][quote] = unsafe_sub(buyer_word, debit << BALANCE_SHIFT)
    # credit <= debit <= the buyer's balance < 2**128: the shift loses nothing,
    # and the checked add keeps the seller's balance in its half
    self._free[seller][quote] = seller_word + (credit << BALANCE_SHIFT)
    fee: uint256 = unsafe_sub(debit, credit)
    if fee != 0:
        # `_credit`, inline; fee <= debit < 2**128, so it stays in the high half
        self._free[convert(convert(config & layout.MASK160, uint160), address)][quote] += fee << BALANCE_SHIFT

    # positions: the product word is read only when a short opens or closes
    seller_pos: uint256 = self._positions[seller][series_id]
    buyer_pos: uint256 = self._positions[buyer][series_id]
    delivered: uint256 = min(seller_pos & layout.LONG_MASK, amount)
    written: uint256 = unsafe_sub(amount, delivered)
    closed: uint256 = min(buyer_pos >> layout.SHORT_SHIFT, amount)
    product: uint256 = 0
    if written != 0 or closed != 0:
        product = self._product[self._series_product[series_id]]
    collateral: uint256 = 0
    if written != 0:
        seller_pos, collateral = self._open_short(seller, series_id, product, terms, seller_pos, written)
    if closed != 0:
        buyer_pos, collateral = self._close_short(buyer, series_id, product, terms, buyer_pos, closed)
    received: uint256 = unsafe_sub(amount, closed)
    # delivered <= the seller's longs, and the buyer's longs are checked to
    # stay in their 128 bits
    if not ((buyer_pos & layout.LONG_MASK) + received <= layout.LONG_MASK):
        self._fail_amount_too_large()
    self._positions[seller][series_id] = unsafe_sub(seller_pos, delivered)
    self._positions[buyer][series_id] = unsafe_add(buyer_pos, received)

    # ERC-1155 logs: delivered longs move, written ones are minted to the buyer,
    # and the part that closes the buyer's short is burned from the seller
    moved: uint256 = min(delivered, received)
    if moved != 0:
        log IERC1155.TransferSingle(_operator=msg.sender, _from=seller, _to=buyer, _id=series_id, _value=moved)
    if delivered > moved:
        self._log_transfer(seller, empty(address), series_id, delivered - moved)
    if received > moved:
        self._log_transfer(empty(address), buyer, series_id, received - moved)
    if received != 0:
        self._check_received(seller, buyer, series_id, received)


@internal
def _open_short(writer: address, series_id: uint256, product: uint256, terms: uint256, pos: uint256, amount: uint256) -> (uint256, uint256):
    """
    @dev Adds `amount` to `writer`'s short in the position word `pos`, locking
         the full collateral it adds from free. The short stays below
         MAX_AMOUNT, the margin maths' domain.
    @return uint256 The new position word.
    @return uint256 The collateral locked.
    """
    if amount == 0:
        self._fail_zero_amount()
    if not (product & layout.ENABLED_BIT != 0):
        self._fail("ledger: product disabled")
    short: uint256 = pos >> layout.SHORT_SHIFT
    new_short: uint256 = short + amount
    if not (new_short <= layout.MAX_AMOUNT):
        self._fail_amount_too_large()
    is_put: bool = product & layout.PUT_BIT != 0
    unit: uint256 = layout._unit(product)
    strike: uint256 = (terms >> layout.STRIKE_SHIFT) & STRIKE_MASK
    required: uint256 = layout._full_collateral(is_put, unit, strike, new_short) - layout._full_collateral(
        is_put, unit, strike, short
    )
    token: address = layout._low_address(product)
    free: uint256 = self._free[writer][token]
    if not (free >> BALANCE_SHIFT >= required):
        self._fail("ledger: insufficient collateral")
    self._free[writer][token] = unsafe_sub(free, required << BALANCE_SHIFT)
    book: uint256 = self._book[series_id]
    # both halves stay in their 128 bits: a series holds at most 2**128 - 1
    # units of open interest and of collateral (`units.MAX_SERIES_COLLATERAL`)
    if not ((book & layout.MASK128) + amount <= layout.MASK128 and (book >> 128) + required <= layout.MASK128):
        self._fail_amount_too_large()
    self._book[series_id] = book + amount + (required << 128)
    return pos + (amount << layout.SHORT_SHIFT), required


@internal
def _close_short(writer: address, series_id: uint256, product: uint256, terms: uint256, pos: uint256, amount: uint256) -> (uint256, uint256):
    """
    @dev Takes `amount` off `writer`'s short in `pos` and releases the full
         collateral it no longer needs to its free balance.
    @return uint256 The new position word.
    @return uint256 The collateral released.
    """
    if amount == 0:
        self._fail_zero_amount()
    short: uint256 = pos >> layout.SHORT_SHIFT
    if not (short >= amount):
        self._fail("ledger: insufficient short")
    is_put: bool = product & layout.PUT_BIT != 0
    unit: uint256 = layout._unit(product)
    strike: uint256 = (terms >> layout.STRIKE_SHIFT) & STRIKE_MASK
    released: uint256 = layout._full_collateral(is_put, unit, strike, short) - layout._full_collateral(
        is_put, unit, strike, unsafe_sub(short, amount)
    )
    token: address = layout._low_address(product)
    self._credit(writer, token, released)
    book: uint256 = self._book[series_id]
    self._book[series_id] = book - amount - (released << 128)
    return pos - (amount << layout.SHORT_SHIFT), released


@internal
def _mint(to: address, series_id: uint256, amount: uint256):
    """
    @dev Mints `amount` longs to `to`, with the ERC-1155 log and receiver check.
    """
    if not (to != empty(address)):
        self._fail("ledger: mint to the zero address")
    if amount == 0:
        self._fail_zero_amount()
    pos: uint256 = self._positions[to][series_id]
    if not ((pos & layout.LONG_MASK) + amount <= layout.MASK128):
        self._fail_amount_too_large()
    self._positions[to][series_id] = pos + amount
    self._log_transfer(empty(address), to, series_id, amount)
    self._check_received(empty(address), to, series_id, amount)


@internal
def _move(owner: address, to: address, id: uint256, amount: uint256):
    """
    @dev Moves `amount` longs between two position words.
    """
    if not (to != empty(address)):
        self._fail("ledger: transfer to the zero address")
    pos: uint256 = self._positions[owner][id]
    if not ((pos << 128) >> 128 >= amount):
        self._fail("ledger: insufficient balance for transfer")
    self._positions[owner][id] = unsafe_sub(pos, amount)
    to_pos: uint256 = self._positions[to][id]
    # the receiver's longs are bounded by the series' open interest < 2**128
    self._positions[to][id] = unsafe_add(to_pos, amount)


@internal
@pure
def _fail_amount_too_large():
    """
    @dev Reverts with "ledger: amount too large" (4 sites share this one).
    """
    self._fail("ledger: amount too large")


@internal
@pure
def _fail_burn_amount_exceeds_balance():
    """
    @dev Reverts with "ledger: burn amount exceeds balance" (2 sites share this one).
    """
    self._fail("ledger: burn amount exceeds balance")


@internal
@pure
def _fail_caller_is_not_owner_nor_approved():
    """
    @dev Reverts with "ledger: caller is not owner nor approved" (2 sites share this one).
    """
    self._fail("ledger: caller is not owner nor approved")


@internal
@pure
def _fail_order_cancelled():
    """
    @dev Reverts with "ledger: order cancelled" (2 sites share this one).
    """
    self._fail("ledger: order cancelled")


@internal
@pure
def _fail_insufficient_free_collateral():
    """
    @dev Reverts with "ledger: insufficient free collateral" (2 sites share this one).
    """
    self._fail("ledger: insufficient free collateral")


@internal
@pure
def _fail_paused():
    """
    @dev Reverts with "ledger: paused" (5 sites share this one).
    """
    self._fail("ledger: paused")


@internal
@pure
def _fail_receiver_rejected_the_transfer():
    """
    @dev Reverts with "ledger: receiver rejected the transfer" (3 sites share this one).
    """
    self._fail("ledger: receiver rejected the transfer")


@internal
@pure
def _fail_self_trade():
    """
    @dev Reverts with "ledger: self trade" (2 sites share this one).
    """
    self._fail("ledger: self trade")


@internal
@pure
def _fail_sender_not_allowed():
    """
    @dev Reverts with "ledger: sender not allowed" (3 sites share this one).
    """
    self._fail("ledger: sender not allowed")


@internal
@pure
def _fail_taker_not_allowed():
    """
    @dev Reverts with "ledger: taker not allowed" (3 sites share this one).
    """
    self._fail("ledger: taker not allowed")


@internal
@pure
def _fail_zero_amount():
    """
    @dev Reverts with "ledger: zero amount" (7 sites share this one).
    """
    self._fail("ledger: zero amount")


@internal
@pure
def _fail_unknown_series():
    """
    @dev Reverts with "ledger: unknown series" (2 sites share this one).
    """
    self._fail("ledger: unknown series")


@internal
@pure
def _fail_series_expired():
    """
    @dev Reverts with "ledger: series expired" (2 sites share this one).
    """
    self._fail("ledger: series expired")


@internal
@pure
def _fail(reason: String[48]):
    """
    @dev Reverts with `reason`: one revert site for the whole contract keeps
         the bytecode under EIP-170 (each inline revert string costs ~100 bytes).
    """
    raise reason


@internal
def _log_transfer(owner: address, to: address, id: uint256, amount: uint256):
    """
    @dev The ERC-1155 `TransferSingle` log (one site keeps the code small).
    """
    log IERC1155.TransferSingle(_operator=msg.sender, _from=owner, _to=to, _id=id, _value=amount)


@internal
def _check_received(owner: address, to: address, id: uint256, amount: uint256):
    """
    @dev ERC-1155's receiver check for a contract recipient of a mint or a
         trade (empty data; `safeTransferFrom` passes its caller's own). No
         `Bytes[1024]` argument: the hot path's memory frame stays small.
    """
    if to.is_contract:
        if (
            extcall IERC1155Receiver(to).onERC1155Received(msg.sender, owner, id, amount, b"")
            != method_id("onERC1155Received(address,address,uint256,uint256,bytes)", output_type=bytes4)
        ):
            self._fail_receiver_rejected_the_transfer()


@internal
@view
def _open_terms(series_id: uint256) -> uint256:
    """
    @dev The terms word of a series that exists and has not expired.
    """
    terms: uint256 = self._terms[series_id]
    if terms == 0:
        self._fail_unknown_series()
    if not (block.timestamp < layout._expiry(terms)):
        self._fail_series_expired()
    return terms


@internal
def _debit_free(account: address, token: address, amount: uint256):
    """
    @dev Takes `amount` from `account`'s free `token`; reverts if it has less.
    """
    free: uint256 = self._free[account][token]
    if not (free >> BALANCE_SHIFT >= amount):
        self._fail_insufficient_free_collateral()
    self._free[account][token] = unsafe_sub(free, amount << BALANCE_SHIFT)


@internal
def _credit(account: address, token: address, amount: uint256):
    """
    @dev Adds `amount` to `account`'s free `token`, which stays in the word's
         high half (a checked add: the low half may hold replay state).
    """
    if not (amount >> 128 == 0):
        self._fail_amount_too_large()
    self._free[account][token] += amount << BALANCE_SHIFT


@internal
@view
def _home() -> address:
    """
    @dev The replay token, once the first product is registered.
    """
    token: address = self._replay_token
    if not (token != empty(address)):
        self._fail_unknown_series()
    return token
