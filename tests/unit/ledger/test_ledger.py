"""The contracts-v2 Ledger on its own (contracts/v2/Ledger.vy): custody, positions, the
ERC-1155, signed orders with the `sender` field, and the Clearinghouse-only hooks.

The Ledger is not wired into the deployment yet (the cold-path Clearinghouse v2 is still to
be written), so an account stands in for the Clearinghouse: it registers the product and the
series through the hooks, as the Clearinghouse will. Orders are signed the way a wallet signs
them (eth-account's `sign_typed_data` with the full v2 message).
"""

from __future__ import annotations

import boa
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from utils.chain import signer
from utils.contracts import DEPLOYERS, EIP170_HEADROOM, deployed_size
from utils.orders import DOMAIN_FIELDS, FAR, ORDER_FIELDS, ZERO

from strikeline import ids

UNIT = 10**8
STRIKE = 3_000 * UNIT
PRICE = 150 * 10**6
MAKER_BPS, TAKER_BPS = 10, 30


class Market:
    """One put series on a Ledger whose Clearinghouse is the `clearing` account."""

    def __init__(self) -> None:
        self.admin = boa.env.generate_address("admin")
        self.fees = boa.env.generate_address("fee_recipient")
        self.clearing = boa.env.generate_address("clearinghouse")
        self.relayer = boa.env.generate_address("relayer")
        self.maker = signer(0xA1)
        self.taker = signer(0xB0)
        token = DEPLOYERS["MockERC20"]
        self.usdc = token.deploy("USD Coin", "USDC", 6)
        self.weth = token.deploy("Wrapped Ether", "WETH", 18)
        self.ledger = DEPLOYERS["Ledger"].deploy(
            self.clearing,
            self.admin,
            self.fees,
            MAKER_BPS,
            TAKER_BPS,
        )
        with boa.env.prank(self.admin):
            self.ledger.grantRole(self.ledger.RELAYER_ROLE(), self.relayer)
        self.product = ids.product_id(self.weth.address, self.usdc.address, self.usdc.address, True)
        word = int(self.usdc.address, 16) | (1 << 160) | (1 << 161) | (6 << 168)
        self.expiry = ids.next_expiry(boa.env.evm.patch.timestamp, 7)
        self.series = ids.series_id(self.product, STRIKE, self.expiry)
        terms = int(self.usdc.address, 16) | ((self.expiry // 86_400) << 160) | (STRIKE << 184)
        with boa.env.prank(self.clearing):
            self.ledger.clearing_set_product(
                self.product, word, self.weth.address, 10**18, self.usdc.address, 10**6
            )
            self.ledger.clearing_set_series(self.series, self.product, terms)
        for account in (self.maker.address, self.taker.address):
            self.fund(account, 10**12)
        self.nonce = 0

    def fund(self, account: str, amount: int) -> None:
        self.usdc.mint(account, amount)
        with boa.env.prank(account):
            self.usdc.approve(self.ledger.address, amount)
            self.ledger.deposit(self.usdc.address, amount, account)

    def order(self, maker: LocalAccount, is_buy: bool, **fields) -> dict:
        self.nonce += 1
        order = {
            "maker": maker.address,
            "taker": ZERO,
            "sender": self.relayer,
            "seriesId": self.series,
            "isBuy": is_buy,
            "amount": UNIT,
            "limitPrice": PRICE,
            "maxFee": 10**9,
            "nonce": self.nonce,
            "deadline": FAR,
        }
        order.update(fields)
        return order

    def typed(self, order: dict):
        domain = self.ledger.eip712Domain()
        return encode_typed_data(
            full_message={
                "types": {
                    "EIP712Domain": DOMAIN_FIELDS,
                    "Order": ORDER_FIELDS,
                },
                "primaryType": "Order",
                "domain": {
                    "name": domain[1],
                    "version": domain[2],
                    "chainId": domain[3],
                    "verifyingContract": self.ledger.address,
                },
                "message": order,
            }
        )

    def digest(self, order: dict) -> bytes:
        """The order hash the ledger logs: the EIP-712 digest of the typed message."""
        typed = self.typed(order)
        return keccak(b"\x19" + typed.version + typed.header + typed.body)

    def sign(self, key: LocalAccount, order: dict) -> bytes:
        return bytes(Account.sign_message(self.typed(order), key.key).signature)

    def config(self, paused: bool) -> int:
        word = int(self.fees, 16) | (MAKER_BPS << 160) | (TAKER_BPS << 176)
        return word | (1 << 192) if paused else word

    @staticmethod
    def as_tuple(order: dict) -> tuple:
        return tuple(order[f["name"]] for f in ORDER_FIELDS)

    @classmethod
    def as_words(cls, order: dict) -> tuple:
        """`match_orders` takes an order as `OrderWords`: each field its uint256 word."""
        return tuple(int(v, 16) if isinstance(v, str) else int(v) for v in cls.as_tuple(order))

    def match(self, buy: dict, sell: dict, buyer: LocalAccount, seller: LocalAccount) -> tuple:
        def split(sig: bytes) -> tuple:
            return (sig[:32], sig[32:64], sig[64])

        return (
            self.as_words(buy),
            self.as_words(sell),
            split(self.sign(buyer, buy)),
            split(self.sign(seller, sell)),
            buy["amount"],  # `amount_side`: the sell rests (bit 255 clear)
            sell["limitPrice"],
        )


@pytest.fixture
def market() -> Market:
    return Market()


def free(market: Market, account: str) -> int:
    return market.ledger.free_collateral(account, market.usdc.address)


def test_deployed_code_keeps_2kb_of_eip170_headroom():
    deployed = deployed_size(DEPLOYERS["Ledger"])
    assert deployed <= EIP170_HEADROOM, (
        f"Ledger: {deployed} bytes, {deployed - EIP170_HEADROOM} over"
    )


def test_deposit_and_withdraw(market):
    account = market.maker.address
    before = free(market, account)
    with boa.env.prank(account):
        market.ledger.withdraw(market.usdc.address, 10**6, account)
    assert free(market, account) == before - 10**6
    with boa.env.prank(account), boa.reverts("ledger: insufficient free collateral"):
        market.ledger.withdraw(market.usdc.address, before, account)
    with boa.env.prank(account), boa.reverts("ledger: token not accepted"):
        market.ledger.deposit(market.ledger.address, 1, account)


def test_write_locks_full_collateral_and_mints_longs(market):
    writer = market.maker.address
    before = free(market, writer)
    with boa.env.prank(writer):
        locked = market.ledger.write(market.series, 3 * UNIT, writer)
    assert locked == 3 * 3_000 * 10**6
    assert free(market, writer) == before - locked
    assert market.ledger.balanceOf(writer, market.series) == 3 * UNIT
    assert market.ledger.positions(writer, market.series) == (3 * UNIT, 3 * UNIT)
    assert market.ledger.book(market.series) == (3 * UNIT, locked)


def test_collateral_follows_the_short_exactly_when_opened_and_closed_in_pieces(market):
    writer = market.maker.address
    before = free(market, writer)
    with boa.env.prank(writer):
        for _ in range(3):
            market.ledger.write(market.series, 1, writer)  # 1e-8 contract each: rounds up
        locked_total = before - free(market, writer)
        market.ledger.burn(market.series, 2)
    assert locked_total == -(-3 * STRIKE * 10**6 // 10**16)  # full(3), not 3 x full(1)
    assert before - free(market, writer) == -(-STRIKE * 10**6 // 10**16)  # full(1) left
    assert market.ledger.book(market.series) == (1, before - free(market, writer))


def test_burn_needs_longs_and_a_short(market):
    writer = market.maker.address
    with boa.env.prank(writer):
        market.ledger.write(market.series, UNIT, market.taker.address)
        with boa.reverts("ledger: burn amount exceeds balance"):
            market.ledger.burn(market.series, UNIT)


def test_short_is_bounded_by_the_margin_domain(market):
    writer = market.maker.address
    market.fund(writer, 10**38)  # plenty, and below the 2**128 bound on a free balance
    with boa.env.prank(writer), boa.reverts("ledger: amount too large"):
        market.ledger.write(market.series, 10**20 + 1, writer)


def test_relayer_match_delivers_longs_and_moves_premium_and_fees(market):
    seller, buyer = market.maker, market.taker
    with boa.env.prank(seller.address):
        market.ledger.write(market.series, UNIT, seller.address)
    buy = market.order(buyer, True)
    sell = market.order(seller, False)
    before = {a: free(market, a) for a in (buyer.address, seller.address, market.fees)}
    with boa.env.prank(market.relayer):
        market.ledger.match_orders([market.match(buy, sell, buyer, seller)])
    taker_fee = -(-PRICE * TAKER_BPS // 10_000)
    maker_fee = -(-PRICE * MAKER_BPS // 10_000)
    assert free(market, buyer.address) == before[buyer.address] - PRICE - taker_fee
    assert free(market, seller.address) == before[seller.address] + PRICE - maker_fee
    assert free(market, market.fees) == before[market.fees] + taker_fee + maker_fee
    assert market.ledger.balanceOf(buyer.address, market.series) == UNIT
    assert market.ledger.balanceOf(seller.address, market.series) == 0


def test_sell_to_open_then_buy_to_close(market):
    seller, buyer = market.maker, market.taker
    before = free(market, seller.address)
    with boa.env.prank(market.relayer):
        market.ledger.match_orders(
            [market.match(market.order(buyer, True), market.order(seller, False), buyer, seller)]
        )
    assert market.ledger.positions(seller.address, market.series) == (0, UNIT)
    # the writer buys its option back from the holder: the short nets, collateral returns
    with boa.env.prank(market.relayer):
        market.ledger.match_orders(
            [market.match(market.order(seller, True), market.order(buyer, False), seller, buyer)]
        )
    assert market.ledger.positions(seller.address, market.series) == (0, 0)
    assert market.ledger.book(market.series) == (0, 0)
    assert free(market, seller.address) < before  # only fees and premium rounding lost


def test_an_order_naming_the_relayer_cannot_be_picked_off_by_a_direct_fill(market):
    seller, buyer = market.maker, market.taker
    buy = market.order(buyer, True, limitPrice=200 * 10**6)
    with boa.env.prank(seller.address):
        market.ledger.write(market.series, UNIT, seller.address)
        with boa.reverts("ledger: sender not allowed"):
            market.ledger.fill(market.as_tuple(buy), market.sign(buyer, buy), UNIT, 10**9)


def test_an_order_for_one_relayer_cannot_be_matched_by_another(market):
    other = boa.env.generate_address("other_relayer")
    with boa.env.prank(market.admin):
        market.ledger.grantRole(market.ledger.RELAYER_ROLE(), other)
    seller, buyer = market.maker, market.taker
    with boa.env.prank(other), boa.reverts("ledger: sender not allowed"):
        market.ledger.match_orders(
            [market.match(market.order(buyer, True), market.order(seller, False), buyer, seller)]
        )


def test_an_order_with_no_sender_fills_directly(market):
    seller, buyer = market.maker, market.taker
    sell = market.order(seller, False, sender=ZERO)
    with boa.env.prank(seller.address):
        market.ledger.write(market.series, UNIT, seller.address)
    with boa.env.prank(buyer.address):
        left = market.ledger.fill(
            market.as_tuple(sell), market.sign(seller, sell), UNIT // 2, 10**9
        )
    assert left == UNIT // 2
    assert market.ledger.balanceOf(buyer.address, market.series) == UNIT // 2


def test_only_relayers_match_and_pause_stops_trading_but_not_exits(market):
    seller, buyer = market.maker, market.taker
    m = market.match(market.order(buyer, True), market.order(seller, False), buyer, seller)
    with boa.env.prank(buyer.address), boa.reverts("ledger: not a relayer"):
        market.ledger.match_orders([m])
    with boa.env.prank(market.clearing):
        market.ledger.clearing_set_config(market.config(paused=True))
    assert market.ledger.paused()
    with boa.env.prank(market.relayer), boa.reverts("ledger: paused"):
        market.ledger.match_orders([m])
    with boa.env.prank(seller.address):
        with boa.reverts("ledger: paused"):
            market.ledger.write(market.series, UNIT, seller.address)
        market.ledger.withdraw(market.usdc.address, 1, seller.address)
    with boa.env.prank(market.clearing):
        with boa.reverts("ledger: bad config"):
            market.ledger.clearing_set_config(market.config(paused=False) | (1_251 << 160))
        market.ledger.clearing_set_config(market.config(paused=False))
    with boa.env.prank(market.relayer):
        market.ledger.match_orders([m])


def test_replay_and_cancel(market):
    seller, buyer = market.maker, market.taker
    with boa.env.prank(seller.address):
        market.ledger.write(market.series, 2 * UNIT, seller.address)
    buy, sell = market.order(buyer, True), market.order(seller, False)
    m = market.match(buy, sell, buyer, seller)
    with boa.env.prank(market.relayer):
        market.ledger.match_orders([m])
        with boa.reverts("ledger: nonce used"):
            market.ledger.match_orders([m])
    fresh = market.order(seller, False)
    with boa.env.prank(seller.address):
        market.ledger.cancel_by_hash([market.digest(fresh)])
    with boa.env.prank(market.relayer), boa.reverts("ledger: order cancelled"):
        market.ledger.match_orders([market.match(market.order(buyer, True), fresh, buyer, seller)])
    with boa.env.prank(seller.address):
        market.ledger.raise_min_nonce(market.nonce + 1)
    late = market.order(seller, False, nonce=market.nonce)
    with boa.env.prank(market.relayer), boa.reverts("ledger: nonce below minimum"):
        market.ledger.match_orders([market.match(market.order(buyer, True), late, buyer, seller)])


def test_wrong_signer_and_high_s_are_refused(market):
    seller, buyer = market.maker, market.taker
    buy, sell = market.order(buyer, True), market.order(seller, False)
    m = list(market.match(buy, sell, buyer, seller))
    m[3] = m[2]  # the buyer's signature on the sell order
    with boa.env.prank(market.relayer), boa.reverts("ledger: wrong signer"):
        market.ledger.match_orders([tuple(m)])
    r, s, v = market.match(buy, sell, buyer, seller)[2]
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    m = list(market.match(buy, sell, buyer, seller))
    m[2] = (r, (n - int.from_bytes(s, "big")).to_bytes(32, "big"), 55 - v)
    with boa.env.prank(market.relayer), boa.reverts("ledger: high s"):
        market.ledger.match_orders([tuple(m)])


def test_match_words_out_of_their_abi_range_are_refused(market):
    """`match_orders` takes orders as uint256 words (`OrderWords`) and checks the ranges the
    ABI decoder checked for `Order`: an address word of 2**160 or more, a bool word above 1
    or a v above 255 reverts like a malformed call (no reason); the same match in range
    settles."""
    seller, buyer = market.maker, market.taker
    with boa.env.prank(seller.address):
        market.ledger.write(market.series, 2 * UNIT, seller.address)
    buy, sell = market.order(buyer, True), market.order(seller, False)
    good = market.match(buy, sell, buyer, seller)
    dirty_maker = list(good[0])
    dirty_maker[0] |= 1 << 160  # the same low 160 bits: the address alone would pass
    dirty_taker = list(good[1])
    dirty_taker[1] = 1 << 200
    dirty_side = list(good[1])
    dirty_side[4] = 2  # is_buy neither 0 nor 1
    r, s_, v = good[3]
    for row in (
        (tuple(dirty_maker), *good[1:]),
        (good[0], tuple(dirty_taker), *good[2:]),
        (good[0], tuple(dirty_side), *good[2:]),
        (*good[:3], (r, s_, v + 256), *good[4:]),
    ):
        # without the range check these would fail later, with a reason ("ledger: wrong
        # signer", "ledger: sides", "ledger: invalid signature")
        with boa.env.prank(market.relayer), pytest.raises(boa.BoaError) as caught:
            market.ledger.match_orders([row])
        assert "ledger:" not in str(caught.value.stack_trace.last_frame.pretty_vm_reason)
    with boa.env.prank(market.relayer):
        market.ledger.match_orders([good])
    assert market.ledger.balanceOf(buyer.address, market.series) == buy["amount"]


def test_match_amount_side_bit_sets_the_resting_order(market):
    """`Match.amount_side` carries the amount below bit 255; the bit says the buy rests:
    it sets the price (its limit) and pays the maker fee."""
    seller, buyer = market.maker, market.taker
    with boa.env.prank(seller.address):
        market.ledger.write(market.series, 2 * UNIT, seller.address)
    buy = market.order(buyer, True, limitPrice=PRICE + 7)
    sell = market.order(seller, False)
    m = list(market.match(buy, sell, buyer, seller))
    m[5] = PRICE + 7
    with boa.env.prank(market.relayer), boa.reverts("ledger: price not resting limit"):
        market.ledger.match_orders([tuple(m)])  # bit clear: the sell rests at PRICE
    m[4] |= 1 << 255
    with boa.env.prank(market.relayer):
        market.ledger.match_orders([tuple(m)])
    (fill,) = [e for e in market.ledger.get_logs() if type(e).__name__ == "Fill"]
    assert fill.maker == buyer.address and fill.amount_price == (UNIT << 128) | (PRICE + 7)
    assert fill.fees >> 255 == 1  # the maker (the buy) is the buy side


def test_erc1155_transfer_and_approval(market):
    holder, other = market.maker.address, market.taker.address
    operator = boa.env.generate_address("operator")
    with boa.env.prank(holder):
        market.ledger.write(market.series, UNIT, holder)
        market.ledger.safeTransferFrom(holder, other, market.series, UNIT // 4, b"")
    assert market.ledger.balanceOfBatch([holder, other], [market.series] * 2) == [
        3 * UNIT // 4,
        UNIT // 4,
    ]
    with boa.env.prank(operator), boa.reverts("ledger: caller is not owner nor approved"):
        market.ledger.safeTransferFrom(holder, other, market.series, 1, b"")
    with boa.env.prank(holder):
        market.ledger.setApprovalForAll(operator, True)
    with boa.env.prank(operator):
        market.ledger.safeBatchTransferFrom(holder, other, [market.series], [1], b"")
    assert market.ledger.balanceOf(other, market.series) == UNIT // 4 + 1
    # moving longs never touches the writer's short
    assert market.ledger.positions(holder, market.series)[1] == UNIT
    with boa.env.prank(holder), boa.reverts("ledger: insufficient balance for transfer"):
        market.ledger.safeTransferFrom(holder, other, market.series, UNIT, b"")
    assert market.ledger.supportsInterface(bytes.fromhex("d9b67a26"))


def test_hooks_are_clearinghouse_only(market):
    stranger = boa.env.generate_address("stranger")
    with boa.env.prank(stranger):
        with boa.reverts("ledger: only clearinghouse"):
            market.ledger.clearing_move_free(stranger, market.usdc.address, 1, True)
        with boa.reverts("ledger: only clearinghouse"):
            market.ledger.clearing_mint(stranger, market.series, 1)
        with boa.reverts("ledger: only clearinghouse"):
            market.ledger.clearing_set_series(1, market.product, 1)


def test_settle_short_hook_after_expiry(market):
    writer = market.maker.address
    with boa.env.prank(writer):
        locked = market.ledger.write(market.series, UNIT, market.taker.address)
    before = free(market, writer)
    boa.env.time_travel(seconds=market.expiry - boa.env.evm.patch.timestamp + 1)
    with boa.env.prank(market.clearing):
        closed = market.ledger.clearing_settle_short(
            writer, market.series, locked, market.usdc.address, locked - 10**6
        )
        market.ledger.clearing_burn(
            market.taker.address, market.series, UNIT, market.usdc.address, 10**6
        )
    assert closed == UNIT
    assert free(market, writer) == before + locked - 10**6
    assert market.ledger.book(market.series) == (0, 0)
    assert market.ledger.balanceOf(market.taker.address, market.series) == 0
