"""strikeline.orders: hashing equal to eth-account's generic EIP-712 encoder, signing with
keys, eth-account and ape accounts, coincurve recovery equal to eth-account's, low s, the
order model's validation and the fee maths."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st
from utils.profiles import scaled  # a share of the active profile's count

from strikeline import orders
from strikeline.orders import (
    LOW_S_MAX,
    SECP256K1_N,
    Domain,
    Order,
    OrderError,
    SignatureError,
    SignedOrder,
)

KEYS = st.integers(min_value=1, max_value=SECP256K1_N - 1).map(lambda k: k.to_bytes(32, "big"))
UINT = st.integers(min_value=0, max_value=2**256 - 1)
DOMAINS = st.builds(
    Domain,
    chain_id=st.integers(min_value=1, max_value=2**64),
    ledger=st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()),
)
ADDRESSES = st.binary(min_size=20, max_size=20).map(lambda b: to_checksum_address(b))


def _order(maker: str, **fields) -> Order:
    values = {
        "maker": maker,
        "series_id": 7,
        "is_buy": True,
        "amount": 10**8,
        "limit_price": 150 * 10**6,
        "max_fee": 10**6,
        "nonce": 1,
        "deadline": 2**40,
    }
    values.update(fields)
    return Order(**values)


@st.composite
def signed_cases(draw):
    key = draw(KEYS)
    maker = Account.from_key(key).address
    order = Order(
        maker=maker,
        sender=draw(ADDRESSES),
        series_id=draw(UINT),
        is_buy=draw(st.booleans()),
        amount=draw(UINT.filter(bool)),
        limit_price=draw(UINT),
        max_fee=draw(UINT),
        nonce=draw(UINT),
        deadline=draw(UINT),
    )
    return key, order, draw(DOMAINS)


@settings(max_examples=scaled(1 / 4))
@given(case=signed_cases())
def test_hash_and_signature_match_eth_account(case):
    """Our direct encoding equals eth-account's encoder on the typed-data dict; our signature
    equals eth-account's; coincurve recovers the same signer eth-account recovers."""
    key, order, domain = case
    signable = encode_typed_data(full_message=order.typed_data(domain))
    assert order.hash(domain) == _hash_eip191_message(signable)
    signed = order.sign(key, domain)
    reference = Account.sign_message(signable, key)
    assert signed.signature == reference.signature
    assert signed.signer() == Account.recover_message(signable, signature=reference.signature)
    assert signed.signer() == order.maker and signed.is_valid()
    assert orders.recover_address(signed.hash, signed.signature) == bytes.fromhex(maker_hex(order))


def test_signing_with_key_local_account_and_ape_account_agree():
    from ape_test.accounts import TestAccount

    local = Account.from_key(b"\x07" * 32)
    ape_account = TestAccount(index=0, address_str=local.address, private_key=local.key.hex())
    domain = Domain(31_337, "0x" + "22" * 20)
    order = _order(local.address)
    by_key = order.sign(local.key, domain).signature
    assert order.sign(local, domain).signature == by_key
    assert order.sign(ape_account, domain).signature == by_key
    assert order.sign(local.key.hex(), domain).signature == by_key


def test_signing_for_another_account_fails():
    """An account whose key does not match the signer it claims is caught at signing."""

    class Liar:
        address = Account.from_key(b"\x01" * 32).address

        @staticmethod
        def sign_message(signable):
            return Account.sign_message(signable, b"\x02" * 32)

    with pytest.raises(SignatureError, match="does not recover"):
        _order(Liar.address).sign(Liar(), Domain(1, "0x" + "22" * 20))


def test_declined_signature():
    class Declines:
        address = Account.from_key(b"\x01" * 32).address

        @staticmethod
        def sign_message(signable):
            return None

    with pytest.raises(SignatureError, match="declined"):
        _order(Declines.address).sign(Declines(), Domain(1, "0x" + "22" * 20))


def test_high_s_is_normalised_and_refused():
    key = b"\x05" * 32
    domain = Domain(1, "0x" + "22" * 20)
    signed = _order(Account.from_key(key).address).sign(key, domain)
    r, s, v = (
        int.from_bytes(signed.signature[:32], "big"),
        int.from_bytes(signed.signature[32:64], "big"),
        signed.signature[64],
    )
    assert s <= LOW_S_MAX
    twin = r.to_bytes(32, "big") + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])
    with pytest.raises(SignatureError, match="high s"):
        orders.recover(signed.hash, twin)
    with pytest.raises(SignatureError, match="high s"):
        SignedOrder(signed.order, twin, domain)
    assert orders.normalize_signature(r, SECP256K1_N - s, 55 - v) == signed.signature
    assert orders.normalize_signature(r, s, v - 27) == signed.signature


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        (b"\x01" * 64, "65 bytes"),
        (b"\x01" * 66, "65 bytes"),
        (b"\x01" * 64 + b"\x1d", "v must be 27 or 28"),
        ("0xzz", "not hex"),
    ],
)
def test_malformed_signatures(signature, message):
    with pytest.raises(SignatureError, match=message):
        orders.check_signature_format(signature)


def maker_hex(order: Order) -> str:
    return order.maker[2:]


def test_unrecoverable_signature():
    with pytest.raises(SignatureError, match="does not recover"):
        orders.recover(b"\x11" * 32, b"\x00" * 64 + b"\x1b")
    with pytest.raises(SignatureError, match="does not recover"):
        orders.recover_address(b"\x11" * 32, b"\x00" * 64 + b"\x1b")


def test_wrong_signer_is_not_valid():
    domain = Domain(1, "0x" + "22" * 20)
    order = _order(Account.from_key(b"\x01" * 32).address)
    forged = order.sign(b"\x02" * 32, domain)
    assert not forged.is_valid()


def test_hex_signature_accepted():
    key = b"\x05" * 32
    domain = Domain(1, "0x" + "22" * 20)
    signed = _order(Account.from_key(key).address).sign(key, domain)
    again = SignedOrder(signed.order, "0x" + signed.signature.hex(), domain)
    assert again.signature == signed.signature and again.is_valid()


def test_message_round_trip_with_decimal_strings():
    maker = Account.from_key(b"\x01" * 32).address
    order = _order(maker, taker="0x" + "ab" * 20)
    message = {
        k: str(v) if isinstance(v, int) and not isinstance(v, bool) else v
        for k, v in order.to_message().items()
    }
    assert Order.from_message(message) == order
    assert order.to_message()["seriesId"] == 7


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"maker": "0x1234"}, "maker: not an address"),
        ({"maker": "0x" + "00" * 20}, "zero address cannot sign"),
        ({"taker": None}, "taker: not an address"),
        ({"amount": 0}, "amount: must be positive"),
        ({"amount": -1}, "outside uint256"),
        ({"limit_price": 2**256}, "outside uint256"),
        ({"nonce": 1.5}, "expected an integer"),
        ({"deadline": True}, "got a bool"),
        ({"max_fee": "1e6"}, "decimal integer string"),
        ({"is_buy": 1}, "is_buy: expected a bool"),
    ],
)
def test_order_validation(change, message):
    fields = {"maker": Account.from_key(b"\x01" * 32).address, **change}
    with pytest.raises(OrderError, match=message):
        _order(**fields)


def test_taker_equal_to_maker_refused():
    maker = Account.from_key(b"\x01" * 32).address
    with pytest.raises(OrderError, match="trade with itself"):
        _order(maker, taker=maker.lower())


def test_from_message_needs_exactly_the_ten_fields():
    message = _order(Account.from_key(b"\x01" * 32).address).to_message()
    with pytest.raises(OrderError, match="missing"):
        Order.from_message({k: v for k, v in message.items() if k != "nonce"})
    with pytest.raises(OrderError, match="missing"):
        Order.from_message({k: v for k, v in message.items() if k != "sender"})
    with pytest.raises(OrderError, match="unknown"):
        Order.from_message({**message, "salt": 1})


def test_domain_validation():
    with pytest.raises(OrderError, match="ledger"):
        Domain(1, "nope")
    domain = Domain(1, "0x" + "ab" * 20)
    assert domain.ledger == domain.exchange == to_checksum_address("0x" + "ab" * 20)
    assert domain.as_dict()["verifyingContract"] == domain.ledger


def test_cancel_signature():
    key = b"\x09" * 32
    domain = Domain(5, "0x" + "33" * 20)
    order_hash = b"\x44" * 32
    signature = orders.sign_cancel(key, order_hash, domain)
    digest = orders.cancel_hash(order_hash, domain)
    reference = encode_typed_data(full_message=orders.cancel_typed_data(order_hash, domain))
    assert digest == _hash_eip191_message(reference)
    assert orders.recover(digest, signature) == Account.from_key(key).address
    with pytest.raises(OrderError, match="32 bytes"):
        orders.cancel_hash(b"\x44" * 31, domain)


@given(
    amount=st.integers(1, 10**24),
    price=st.integers(0, 10**18),
    buyer_bps=st.integers(0, 1_250),
    seller_bps=st.integers(0, 1_250),
)
def test_settlement_never_favours_a_user(amount, price, buyer_bps, seller_bps):
    exact = amount * price  # premium x 10**8
    try:
        s = orders.settlement(amount, price, buyer_bps, seller_bps)
    except OrderError:
        assert orders.fee(amount, price, seller_bps) > exact // 10**8
        return
    assert s.buyer_debit * 10**8 >= exact + s.buyer_fee * 10**8
    assert s.seller_credit * 10**8 <= exact - s.seller_fee * 10**8
    assert s.buyer_fee * 10**12 >= exact * buyer_bps
    assert s.seller_fee * 10**12 >= exact * seller_bps
    assert s.to_fee_recipient == s.buyer_debit - s.seller_credit >= 0


def test_max_fee_allows_pro_rata_and_unbounded_caps():
    maker = Account.from_key(b"\x01" * 32).address
    order = _order(maker, amount=4, max_fee=10)
    assert orders.max_fee_allows(order, 2, 5)
    assert not orders.max_fee_allows(order, 2, 6)
    huge = dataclasses.replace(order, max_fee=2**256 - 1)
    assert orders.max_fee_allows(huge, 2, 10**70)


def test_order_type_is_the_ledgers():
    """The type string (hence ORDER_TYPEHASH) is the one contracts/Ledger.vy hashes, and the
    EIP-712 field list is that type's fields in order: a wallet and the Ledger agree."""
    source = (Path(__file__).resolve().parents[2] / "contracts" / "Ledger.vy").read_text()
    match = re.search(
        r'ORDER_TYPEHASH: public\(constant\(bytes32\)\) = keccak256\(\s*"([^"]+)"', source
    )
    assert match is not None
    assert match.group(1) == orders.ORDER_TYPE
    fields = ",".join(f"{f['type']} {f['name']}" for f in orders.EIP712_TYPES["Order"])
    assert orders.ORDER_TYPE == f"Order({fields})"
    assert list(Order.__dataclass_fields__)[:3] == ["maker", "taker", "sender"]


def test_sender_is_signed():
    """Changing only `sender` changes the hash, so a relayer cannot retarget an order; the
    default sender is the zero address (anyone may submit)."""
    key = b"\x05" * 32
    domain = Domain(1, "0x" + "22" * 20)
    order = _order(Account.from_key(key).address)
    assert order.sender == orders.ZERO_ADDRESS and order.as_tuple()[2] == orders.ZERO_ADDRESS
    restricted = order.replace(sender="0x" + "77" * 20)
    assert restricted.as_tuple()[2] == to_checksum_address("0x" + "77" * 20)
    assert restricted.hash(domain) != order.hash(domain)
    signed = order.sign(key, domain)
    assert not SignedOrder(restricted, signed.signature, domain).is_valid()
    with pytest.raises(OrderError, match="sender: not an address"):
        order.replace(sender="0x12")
