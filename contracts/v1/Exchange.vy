# pragma version ~=0.4.3
"""
@title Strikeline Exchange
@custom:contract-name Exchange
@license GNU Affero General Public License v3.0 only
@notice Verifies EIP-712 signed option orders and settles them against the
        Clearinghouse, which holds every balance and position.

        - `match_orders`: registered relayers (RELAYER_ROLE) settle one match
          or a batch. Each match pairs a buy and a sell order of the same
          series; the relayer says which order rested on the book and the
          price must be that order's limit, inside both limits.
        - `fill`: anyone takes the other side of one signed order at its limit
          price, so no relayer is needed to trade.
        - Orders fill partially, never past their amount. A maker voids
          orders by hash (`cancel_by_hash`), by contents (`cancel`, which also
          uses up the nonce) or, in bulk, by raising its minimum valid nonce.
        - Replay protection lives in a per-maker nonce bitmap: the first fill
          of an order flips its nonce's bit, so a fresh order that fills at
          once writes into a word the maker already uses instead of a fresh
          slot. Only a partly filled order keeps its filled amount in
          `partial_fills` until it completes. One nonce is one order: once an
          order with a given nonce fills (in part) or is cancelled, every
          other order of that maker with the same nonce is void.
        - Fees: governance sets a maker and a taker fee in basis points of
          the premium (at most MAX_FEE_BPS). Each fill's fee is rounded up
          and capped pro rata by the order's signed `max_fee`:
          fee * order.amount <= max_fee * fill amount, so the fees of all fills
          of an order never exceed `max_fee`. The buyer pays the premium
          rounded up plus its fee, the seller receives the premium rounded
          down less its fee, the Clearinghouse's fee recipient the rest.
        - Signatures: 65-byte r || s || v with a low s, over the EIP-712
          digest of the order (domain "Strikeline", version "1", chain id,
          this contract). A contract maker is asked through EIP-1271.

        EIP-712 type:
          Order(address maker,address taker,uint256 seriesId,bool isBuy,uint256 amount,
                uint256 limitPrice,uint256 maxFee,uint256 nonce,uint256 deadline)
@custom:kill The GUARDIAN pauses matching and fills (`pause`); cancels and nonce
        raises are never paused, so makers can always void their orders. To
        retire the contract: pause it, then revoke its EXCHANGE_ROLE on the
        Clearinghouse. The Exchange holds no funds: every balance stays in the
        Clearinghouse, where users withdraw it at any time.
"""

from snekmate.auth import access_control
from snekmate.utils import ecdsa
from snekmate.utils import eip712_domain_separator as eip712
from snekmate.utils import signature_checker

from .interfaces import IClearinghouse

# @dev Roles: the admin (a timelock in production) sets fees and registers
# relayers; the guardian pauses; relayers submit matches.
initializes: access_control

# @dev We own the EIP-712 domain (name "Strikeline", version "1", chain id,
# this address); the separator is rebuilt if the chain id changes.
initializes: eip712

# @dev `ecdsa` (the malleability bound) and `signature_checker` (EIP-1271)
# are stateless and only imported.

exports: (
    access_control.DEFAULT_ADMIN_ROLE,
    access_control.hasRole,
    access_control.getRoleAdmin,
    access_control.grantRole,
    access_control.revokeRole,
    access_control.renounceRole,
    access_control.supportsInterface,
    eip712.eip712Domain,
)


# ---------------------------------------------------------------------------
#                                   Events
# ---------------------------------------------------------------------------

event Fill:
    maker_order: indexed(bytes32)
    taker_order: indexed(bytes32)
    series_id: indexed(uint256)
    maker: address
    taker: address
    maker_is_buy: bool
    amount: uint256
    price: uint256
    maker_fee: uint256
    taker_fee: uint256
    maker_remaining: uint256
    taker_remaining: uint256
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


event FeesSet:
    maker_fee_bps: uint256
    taker_fee_bps: uint256


event Paused:
    account: address


event Unpaused:
    account: address


# ---------------------------------------------------------------------------
#                                  Constants
# ---------------------------------------------------------------------------

GUARDIAN_ROLE: public(constant(bytes32)) = keccak256("GUARDIAN_ROLE")
RELAYER_ROLE: public(constant(bytes32)) = keccak256("RELAYER_ROLE")

ORDER_TYPEHASH: public(constant(bytes32)) = keccak256(
    "Order(address maker,address taker,uint256 seriesId,bool isBuy,uint256 amount,uint256 limitPrice,uint256 maxFee,uint256 nonce,uint256 deadline)"
)

# @dev Option amounts carry 8 decimals: premium = amount * price // UNIT.
UNIT: constant(uint256) = 10**8
BPS: constant(uint256) = 10_000
# @dev Fees are at most 12.5% of the premium (the cap Deribit applies to options).
MAX_FEE_BPS: public(constant(uint256)) = 1_250
# @dev The fee notional is divided by UNIT * BPS, rounding up.
FEE_DENOMINATOR: constant(uint256) = UNIT * BPS
MAX_MATCHES: public(constant(uint256)) = 16
MAX_CANCELS: public(constant(uint256)) = 64
# @dev `partial_fills` value of a cancelled order.
CANCELLED: constant(uint256) = max_value(uint256)
# @dev `_config`: maker fee bps in bits 0-15, taker fee bps in bits 16-31, the
# pause flag in bit 32, so one slot read gives a match everything global.
FEE_MASK: constant(uint256) = 2**16 - 1
PAUSED_BIT: constant(uint256) = 1 << 32
# @dev `_makers`: the minimum valid nonce below bit 255; bit 255 is set once the
# maker cancelled an order by hash, and only then is `cancelled` read on a fill.
HASH_CANCELS: constant(uint256) = 1 << 255
MIN_NONCE_MASK: constant(uint256) = HASH_CANCELS - 1


# ---------------------------------------------------------------------------
#                            Immutables and storage
# ---------------------------------------------------------------------------

struct Order:
    maker: address
    taker: address
    series_id: uint256
    is_buy: bool
    amount: uint256
    limit_price: uint256
    max_fee: uint256
    nonce: uint256
    deadline: uint256


# @dev A 65-byte r || s || v signature split into words, so that a `Match` is a
# static struct the relayer's calldata decodes without offsets.
struct Signature:
    r: bytes32
    s: bytes32
    v: uint8


struct Match:
    buy: Order
    sell: Order
    buy_signature: Signature
    sell_signature: Signature
    # option units traded
    amount: uint256
    # quote units per contract: the resting order's limit price
    price: uint256
    # True when the buy order rested on the book (it pays the maker fee)
    buy_is_maker: bool


clearinghouse: public(immutable(IClearinghouse))

# @dev Per maker: the minimum valid nonce (orders below it are void) and the
# HASH_CANCELS flag.
_makers: HashMap[address, uint256]
# @dev Orders their maker cancelled by hash.
cancelled: public(HashMap[address, HashMap[bytes32, bool]])
# @dev Bit `nonce % 256` of word `nonce // 256` is set once an order with that
# nonce filled (in part) or was cancelled.
nonce_bitmap: public(HashMap[address, HashMap[uint256, uint256]])
# @dev Filled amount of a partly filled order, CANCELLED once cancelled, zero
# otherwise (fresh, or fully filled).
partial_fills: public(HashMap[bytes32, uint256])
# @dev Fees and the pause flag in one slot (see FEE_MASK, PAUSED_BIT).
_config: uint256


# ---------------------------------------------------------------------------
#                                 Constructor
# ---------------------------------------------------------------------------

@deploy
def __init__(
    clearinghouse_: IClearinghouse, admin_: address, guardian_: address, maker_fee_bps_: uint256, taker_fee_bps_: uint256
):
    """
    @dev Deploys the Exchange. `admin_` (a timelock in production) gets the
         admin role, `guardian_` the guardian role; the deployer keeps no role
         unless it is one of them. The Clearinghouse must grant this contract
         its EXCHANGE_ROLE before anything settles.
    @param clearinghouse_ The Clearinghouse that settles trades.
    @param admin_ The admin: sets fees, registers relayers.
    @param guardian_ The guardian: pauses; may be empty.
    @param maker_fee_bps_ The resting order's fee, basis points of premium.
    @param taker_fee_bps_ The taking side's fee, basis points of premium.
    """
    assert clearinghouse_.address != empty(address), "exchange: zero clearinghouse"
    assert admin_ != empty(address), "exchange: zero admin"
    access_control.__init__()
    eip712.__init__("Strikeline", "1")
    clearinghouse = clearinghouse_
    access_control._grant_role(access_control.DEFAULT_ADMIN_ROLE, admin_)
    if guardian_ != empty(address):
        access_control._grant_role(GUARDIAN_ROLE, guardian_)
    if admin_ != msg.sender:
        access_control._revoke_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    self._set_fees(maker_fee_bps_, taker_fee_bps_)


# ---------------------------------------------------------------------------
#                                 Governance
# ---------------------------------------------------------------------------

@external
def set_fees(maker_fee_bps_: uint256, taker_fee_bps_: uint256):
    """
    @dev Admin: sets the maker and taker fees, each at most MAX_FEE_BPS.
         Orders stay protected by their signed `max_fee`.
    @param maker_fee_bps_ The resting order's fee, basis points of premium.
    @param taker_fee_bps_ The taking side's fee, basis points of premium.
    """
    self._check_role(access_control.DEFAULT_ADMIN_ROLE)
    self._set_fees(maker_fee_bps_, taker_fee_bps_)


@external
def pause():
    """
    @dev Guardian: stops matching and direct fills. Cancels stay open.
    """
    self._check_role(GUARDIAN_ROLE)
    config: uint256 = self._config
    assert config & PAUSED_BIT == 0, "exchange: already paused"
    self._config = config | PAUSED_BIT
    log Paused(account=msg.sender)


@external
def unpause():
    """
    @dev Guardian: resumes matching and direct fills.
    """
    self._check_role(GUARDIAN_ROLE)
    config: uint256 = self._config
    assert config & PAUSED_BIT != 0, "exchange: not paused"
    self._config = config & ~PAUSED_BIT
    log Unpaused(account=msg.sender)


# ---------------------------------------------------------------------------
#                                   Trading
# ---------------------------------------------------------------------------

@external
@nonreentrant
def match_orders(matches: DynArray[Match, MAX_MATCHES]):
    """
    @dev Relayers only. Settles each match in order: checks both orders
         (sides, series, counterparties, limits, deadlines, nonces,
         signatures, amounts left, fee caps), records the fills and trades
         through the Clearinghouse. Any failing match reverts the batch.
    @param matches The matches, at most MAX_MATCHES.
    """
    self._check_role(RELAYER_ROLE)
    config: uint256 = self._config
    assert config & PAUSED_BIT == 0, "exchange: paused"
    assert len(matches) != 0, "exchange: no matches"
    # an order that fills in consecutive matches (a maker's quote taken by several
    # takers, or one taker sweeping several makers) has its signature checked once
    buy_verified: bytes32 = empty(bytes32)
    sell_verified: bytes32 = empty(bytes32)
    for i: uint256 in range(len(matches), bound=MAX_MATCHES):
        buy_verified, sell_verified = self._match(
            matches[i], config & FEE_MASK, (config >> 16) & FEE_MASK, buy_verified, sell_verified
        )


@external
@nonreentrant
def fill(order: Order, signature: Bytes[65], amount: uint256, max_fee: uint256) -> uint256:
    """
    @dev Takes the other side of a signed order at its limit price: the
         caller sells to a buy order or buys from a sell order. The order's
         maker pays the maker fee, the caller the taker fee.
    @param order The resting order.
    @param signature The maker's 65-byte signature of the order.
    @param amount Option units to trade.
    @param max_fee The most the caller accepts to pay in fees, quote units.
    @return uint256 What is left of the order after this fill.
    """
    config: uint256 = self._config
    assert config & PAUSED_BIT == 0, "exchange: paused"
    assert amount != 0, "exchange: zero amount"
    assert order.maker != msg.sender, "exchange: self trade"
    assert order.taker == empty(address) or order.taker == msg.sender, "exchange: taker not allowed"
    notional: uint256 = amount * order.limit_price
    maker_fee: uint256 = self._fee(notional, config & FEE_MASK)
    taker_fee: uint256 = self._fee(notional, (config >> 16) & FEE_MASK)
    assert taker_fee <= max_fee, "exchange: taker fee over max"
    order_hash: bytes32 = empty(bytes32)
    remaining: uint256 = 0
    cached: bytes32 = empty(bytes32)
    order_hash, remaining, cached = self._take(
        order, self._split(signature), amount, maker_fee, empty(bytes32)
    )
    if order.is_buy:
        self._settle(order.series_id, order.maker, msg.sender, amount, notional, maker_fee, taker_fee)
    else:
        self._settle(order.series_id, msg.sender, order.maker, amount, notional, taker_fee, maker_fee)
    log Fill(
        maker_order=order_hash,
        taker_order=empty(bytes32),
        series_id=order.series_id,
        maker=order.maker,
        taker=msg.sender,
        maker_is_buy=order.is_buy,
        amount=amount,
        price=order.limit_price,
        maker_fee=maker_fee,
        taker_fee=taker_fee,
        maker_remaining=remaining,
        taker_remaining=0,
        maker_nonce=order.nonce,
        taker_nonce=0,
    )
    return remaining


# ---------------------------------------------------------------------------
#                                Cancellation
# ---------------------------------------------------------------------------

@external
def cancel(orders: DynArray[Order, MAX_CANCELS]):
    """
    @dev Cancels the caller's orders, each identified by its contents (the
         contract derives the hash it logs). A cancelled order's nonce is
         used up, so other orders of the caller with the same nonce are void
         too. Never paused; cancelling twice is harmless.
    @param orders The orders to cancel, at most MAX_CANCELS, all made by the caller.
    """
    for order: Order in orders:
        assert order.maker == msg.sender, "exchange: not the maker"
        order_hash: bytes32 = self._hash_order(order)
        self.nonce_bitmap[msg.sender][order.nonce >> 8] |= 1 << (order.nonce & 255)
        self.partial_fills[order_hash] = CANCELLED
        log Cancel(maker=msg.sender, order_hash=order_hash, nonce=order.nonce)


@external
def cancel_by_hash(order_hashes: DynArray[bytes32, MAX_CANCELS]):
    """
    @dev Cancels the caller's orders by hash (the digest `hash_order` returns
         and `Fill` logs). A hash is only ever cancelled for its caller, so
         nobody can cancel another maker's order. Unlike `cancel`, the nonce
         stays unused: another order with the same nonce remains valid. From
         the first hash cancel on, every fill of the caller's orders reads its
         cancel flag (one more storage read); `cancel` with the order's
         contents avoids that. Never paused; cancelling twice is harmless.
    @param order_hashes The hashes of the caller's orders, at most MAX_CANCELS.
    """
    assert len(order_hashes) != 0, "exchange: nothing to cancel"
    self._makers[msg.sender] |= HASH_CANCELS
    for order_hash: bytes32 in order_hashes:
        self.cancelled[msg.sender][order_hash] = True
        log CancelByHash(maker=msg.sender, order_hash=order_hash)


@external
def raise_min_nonce(min_nonce_: uint256):
    """
    @dev Voids every order of the caller with a nonce below `min_nonce_`.
         The minimum only goes up, and stays below 2**255. Never paused.
    @param min_nonce_ The new minimum valid nonce.
    """
    state: uint256 = self._makers[msg.sender]
    assert min_nonce_ > state & MIN_NONCE_MASK, "exchange: nonce not raised"
    assert min_nonce_ <= MIN_NONCE_MASK, "exchange: nonce too large"
    self._makers[msg.sender] = (state & HASH_CANCELS) | min_nonce_
    log MinNonceRaised(maker=msg.sender, min_nonce=min_nonce_)


# ---------------------------------------------------------------------------
#                                    Views
# ---------------------------------------------------------------------------

@external
@view
def maker_fee_bps() -> uint256:
    """
    @dev The resting order's fee.
    @return uint256 Basis points of premium.
    """
    return self._config & FEE_MASK


@external
@view
def taker_fee_bps() -> uint256:
    """
    @dev The taking side's fee.
    @return uint256 Basis points of premium.
    """
    return (self._config >> 16) & FEE_MASK


@external
@view
def paused() -> bool:
    """
    @dev Whether matching and direct fills are paused.
    @return bool True while paused.
    """
    return self._config & PAUSED_BIT != 0


@external
@view
def min_nonce(maker: address) -> uint256:
    """
    @dev The maker's minimum valid nonce: its orders below it are void.
    @param maker The maker.
    @return uint256 The minimum nonce.
    """
    return self._makers[maker] & MIN_NONCE_MASK


@external
@view
def domain_separator() -> bytes32:
    """
    @dev The EIP-712 domain separator for the current chain.
    @return bytes32 The domain separator.
    """
    return eip712._domain_separator_v4()


@external
@view
def hash_order(order: Order) -> bytes32:
    """
    @dev The order hash: the EIP-712 digest the maker signs.
    @param order The order.
    @return bytes32 Its hash, as logged in `Fill` and `Cancel`.
    """
    return self._hash_order(order)


@external
@view
def nonce_used(maker: address, nonce: uint256) -> bool:
    """
    @dev Whether an order of `maker` with `nonce` filled (in part) or was cancelled.
    @param maker The maker.
    @param nonce The nonce.
    @return bool True once the nonce is used.
    """
    return self.nonce_bitmap[maker][nonce >> 8] & (1 << (nonce & 255)) != 0


@external
@view
def remaining(order: Order) -> uint256:
    """
    @dev What can still be filled of `order`: zero once it is expired, below
         its maker's minimum nonce, cancelled, fully filled, or its nonce was
         used by another order. The signature is not checked.
    @param order The order.
    @return uint256 Option units left to fill.
    """
    state: uint256 = self._makers[order.maker]
    if block.timestamp > order.deadline or order.nonce < state & MIN_NONCE_MASK:
        return 0
    order_hash: bytes32 = self._hash_order(order)
    if state & HASH_CANCELS != 0 and self.cancelled[order.maker][order_hash]:
        return 0
    if self.nonce_bitmap[order.maker][order.nonce >> 8] & (1 << (order.nonce & 255)) == 0:
        return order.amount
    filled: uint256 = self.partial_fills[order_hash]
    if filled == 0 or filled == CANCELLED:
        return 0
    return order.amount - filled


# ---------------------------------------------------------------------------
#                                  Internals
# ---------------------------------------------------------------------------

@internal
def _match(
    m: Match, maker_bps: uint256, taker_bps: uint256, buy_verified: bytes32, sell_verified: bytes32
) -> (bytes32, bytes32):
    """
    @dev Checks and settles one match. The resting order sets the price and
         pays the maker fee; the other side pays the taker fee.
    @param m The match.
    @param maker_bps The maker fee, basis points.
    @param taker_bps The taker fee, basis points.
    @param buy_verified The previous match's buy order hash if its key signature was checked.
    @param sell_verified The previous match's sell order hash if its key signature was checked.
    @return bytes32 This match's buy order hash if checked by key, else zero.
    @return bytes32 This match's sell order hash if checked by key, else zero.
    """
    assert m.amount != 0, "exchange: zero amount"
    assert m.buy.is_buy != m.sell.is_buy, "exchange: same side"
    assert m.buy.is_buy, "exchange: sides swapped"
    assert m.buy.series_id == m.sell.series_id, "exchange: series mismatch"
    buyer: address = m.buy.maker
    seller: address = m.sell.maker
    assert buyer != seller, "exchange: self trade"
    assert m.buy.taker == empty(address) or m.buy.taker == seller, "exchange: taker not allowed"
    assert m.sell.taker == empty(address) or m.sell.taker == buyer, "exchange: taker not allowed"
    resting_limit: uint256 = m.sell.limit_price
    buy_bps: uint256 = taker_bps
    sell_bps: uint256 = maker_bps
    if m.buy_is_maker:
        resting_limit = m.buy.limit_price
        buy_bps = maker_bps
        sell_bps = taker_bps
    assert m.price == resting_limit, "exchange: price not resting limit"
    assert m.price <= m.buy.limit_price, "exchange: price above buy limit"
    assert m.price >= m.sell.limit_price, "exchange: price below sell limit"

    notional: uint256 = m.amount * m.price
    buyer_fee: uint256 = self._fee(notional, buy_bps)
    seller_fee: uint256 = self._fee(notional, sell_bps)
    buy_hash: bytes32 = empty(bytes32)
    buy_left: uint256 = 0
    sell_hash: bytes32 = empty(bytes32)
    sell_left: uint256 = 0
    buy_cache: bytes32 = empty(bytes32)
    sell_cache: bytes32 = empty(bytes32)
    buy_hash, buy_left, buy_cache = self._take(m.buy, m.buy_signature, m.amount, buyer_fee, buy_verified)
    sell_hash, sell_left, sell_cache = self._take(
        m.sell, m.sell_signature, m.amount, seller_fee, sell_verified
    )
    self._settle(m.buy.series_id, buyer, seller, m.amount, notional, buyer_fee, seller_fee)

    if m.buy_is_maker:
        log Fill(
            maker_order=buy_hash,
            taker_order=sell_hash,
            series_id=m.buy.series_id,
            maker=buyer,
            taker=seller,
            maker_is_buy=True,
            amount=m.amount,
            price=m.price,
            maker_fee=buyer_fee,
            taker_fee=seller_fee,
            maker_remaining=buy_left,
            taker_remaining=sell_left,
            maker_nonce=m.buy.nonce,
            taker_nonce=m.sell.nonce,
        )
    else:
        log Fill(
            maker_order=sell_hash,
            taker_order=buy_hash,
            series_id=m.buy.series_id,
            maker=seller,
            taker=buyer,
            maker_is_buy=False,
            amount=m.amount,
            price=m.price,
            maker_fee=seller_fee,
            taker_fee=buyer_fee,
            maker_remaining=sell_left,
            taker_remaining=buy_left,
            maker_nonce=m.sell.nonce,
            taker_nonce=m.buy.nonce,
        )
    return buy_cache, sell_cache


@internal
def _take(
    order: Order, signature: Signature, amount: uint256, fee: uint256, verified: bytes32
) -> (bytes32, uint256, bytes32):
    """
    @dev Checks one order for a fill of `amount` paying `fee` and records the
         fill: deadline, minimum nonce, pro rata fee cap, signature, cancel by
         hash, amount left.
    @param order The order.
    @param signature Its maker's signature.
    @param amount Option units filled now.
    @param fee The fee its maker pays for this fill.
    @param verified An order hash whose key signature this call already
           checked; an order with that hash skips the signature check (the
           hash commits to every field, so it is the same signed order, and a
           key signature that verified once always does).
    @return bytes32 The order hash.
    @return uint256 What is left of the order after this fill.
    @return bytes32 The order hash if its signature is a key's, else zero: a
            contract wallet's EIP-1271 answer can change within a transaction
            (a receiver hook may revoke it), so it is asked every time.
    """
    assert block.timestamp <= order.deadline, "exchange: order expired"
    state: uint256 = self._makers[order.maker]
    assert order.nonce >= state & MIN_NONCE_MASK, "exchange: nonce below minimum"
    # a cap so large that max_fee * amount overflows limits nothing
    if order.max_fee <= max_value(uint256) // amount:
        assert fee * order.amount <= order.max_fee * amount, "exchange: fee over max"
    order_hash: bytes32 = self._hash_order(order)
    by_key: bool = True
    if order_hash != verified:
        by_key = self._check_signature(order.maker, order_hash, signature)
    if state & HASH_CANCELS != 0:
        assert not self.cancelled[order.maker][order_hash], "exchange: order cancelled"
    cached: bytes32 = empty(bytes32)
    if by_key:
        cached = order_hash
    return order_hash, self._consume(order.maker, order.nonce, order_hash, order.amount, amount), cached


@internal
def _consume(maker: address, nonce: uint256, order_hash: bytes32, order_amount: uint256, amount: uint256) -> uint256:
    """
    @dev Records a fill of `amount` against an order. A fresh order only sets
         its nonce's bit; a partly filled one keeps its filled amount in
         `partial_fills` until it completes.
    @param maker The order's maker.
    @param nonce The order's nonce.
    @param order_hash The order's hash.
    @param order_amount The order's full amount.
    @param amount Option units filled now.
    @return uint256 What is left of the order after this fill.
    """
    word_index: uint256 = nonce >> 8
    bit: uint256 = 1 << (nonce & 255)
    word: uint256 = self.nonce_bitmap[maker][word_index]
    filled: uint256 = 0
    if word & bit == 0:
        self.nonce_bitmap[maker][word_index] = word | bit
    else:
        filled = self.partial_fills[order_hash]
        assert filled != CANCELLED, "exchange: order cancelled"
        assert filled != 0, "exchange: nonce used"
    # a live partial fill is always below the order's amount
    left: uint256 = unsafe_sub(order_amount, filled)
    assert amount <= left, "exchange: overfill"
    left = unsafe_sub(left, amount)
    if left == 0:
        if filled != 0:
            self.partial_fills[order_hash] = 0
    else:
        self.partial_fills[order_hash] = unsafe_sub(order_amount, left)
    return left


@internal
def _settle(
    series_id: uint256,
    buyer: address,
    seller: address,
    amount: uint256,
    notional: uint256,
    buyer_fee: uint256,
    seller_fee: uint256,
):
    """
    @dev Trades through the Clearinghouse: the buyer pays the premium rounded
         up plus its fee, the seller receives the premium rounded down less
         its fee; the fee recipient gets the difference.
    @param series_id The series.
    @param buyer The buyer.
    @param seller The seller.
    @param amount Option units.
    @param notional amount * price, the premium times UNIT.
    @param buyer_fee The buyer's fee.
    @param seller_fee The seller's fee.
    """
    premium: uint256 = notional // UNIT
    assert seller_fee <= premium, "exchange: fee exceeds premium"
    # the buyer pays the premium rounded up
    debit: uint256 = premium + buyer_fee
    if notional % UNIT != 0:
        debit += 1
    extcall clearinghouse.trade(series_id, buyer, seller, amount, debit, unsafe_sub(premium, seller_fee))


@internal
@view
def _check_signature(signer: address, digest: bytes32, signature: Signature) -> bool:
    """
    @dev Accepts a 65-byte low-s ECDSA signature by `signer`, or, for a
         contract `signer`, one its EIP-1271 `isValidSignature` accepts. The
         ECDSA path is tried first: it needs no call, and no key is known
         for a contract's address.
    @param signer The order's maker.
    @param digest The order hash.
    @param signature The signature, r || s || v split into words.
    @return bool True if a key signed (ECDSA), False if a contract accepted it.
    """
    assert convert(signature.s, uint256) <= ecdsa._MALLEABILITY_THRESHOLD, "exchange: high s"
    recovered: address = ecrecover(digest, signature.v, signature.r, signature.s)
    if recovered == signer and recovered != empty(address):
        return True
    if signer.is_contract:
        assert signature_checker._is_valid_ERC1271_signature_now(
            signer, digest, concat(signature.r, signature.s, convert(signature.v, bytes1))
        ), "exchange: contract signature rejected"
        return False
    assert recovered != empty(address), "exchange: invalid signature"
    raise "exchange: wrong signer"


@internal
@pure
def _split(signature: Bytes[65]) -> Signature:
    """
    @dev Splits a 65-byte r || s || v signature into its words.
    @param signature The signature.
    @return Signature Its r, s and v.
    """
    assert len(signature) == 65, "exchange: signature length"
    return Signature(
        r=extract32(signature, 0),
        s=extract32(signature, 32),
        v=convert(slice(signature, 64, 1), uint8),
    )


@internal
@view
def _hash_order(order: Order) -> bytes32:
    """
    @dev The EIP-712 digest of `order` under this contract's domain.
    @param order The order.
    @return bytes32 The digest.
    """
    return eip712._hash_typed_data_v4(
        keccak256(
            abi_encode(
                ORDER_TYPEHASH,
                order.maker,
                order.taker,
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
    @param notional amount * price.
    @param bps Basis points.
    @return uint256 The fee, quote units.
    """
    scaled: uint256 = notional * bps
    return scaled // FEE_DENOMINATOR + convert(scaled % FEE_DENOMINATOR != 0, uint256)


@internal
def _set_fees(maker_fee_bps_: uint256, taker_fee_bps_: uint256):
    """
    @dev Stores both fees in one slot after bounding them.
    @param maker_fee_bps_ The maker fee, basis points.
    @param taker_fee_bps_ The taker fee, basis points.
    """
    assert maker_fee_bps_ <= MAX_FEE_BPS and taker_fee_bps_ <= MAX_FEE_BPS, "exchange: fee too high"
    self._config = (self._config & PAUSED_BIT) | maker_fee_bps_ | (taker_fee_bps_ << 16)
    log FeesSet(maker_fee_bps=maker_fee_bps_, taker_fee_bps=taker_fee_bps_)


@internal
@view
def _check_role(role: bytes32):
    """
    @dev Reverts unless the caller holds `role`, naming the missing role.
    @param role The role required.
    """
    if access_control.hasRole[role][msg.sender]:
        return
    if role == RELAYER_ROLE:
        raise "exchange: not a relayer"
    if role == GUARDIAN_ROLE:
        raise "exchange: not the guardian"
    raise "exchange: not the admin"
