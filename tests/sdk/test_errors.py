"""strikeline.errors: one exception root for the SDK, argument checks that name the argument,
and no error path that shows a private key (message, repr or traceback)."""

from __future__ import annotations

import importlib
import inspect
import traceback

import pytest
from eth_account import Account

from strikeline import errors, ids, orders, units
from strikeline.errors import InvalidArgument, StrikelineError, check_address, check_bytes
from strikeline.indexer import LedgerIndex
from strikeline.oracle_reports import sign_expiry, sign_spot
from strikeline.orders import Domain, Order, OrderError, SignatureError

#: A real key (anvil's account 0): its hex must never show up in any error text.
KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ADDRESS = Account.from_key(KEY).address
DOMAIN = Domain(1, "0x" + "22" * 20)
SDK_MODULES = [
    "errors",
    "chain",
    "ids",
    "units",
    "orders",
    "oracle_reports",
    "indexer",
    "bindings",
    "risk",
    "pricing.svi",
    "pricing.heston",
    "pricing.implied_vol",
    "pricing.black_scholes",
]


def _all_text(exc: BaseException) -> str:
    """Everything a user or a log could see of `exc`: message, repr and full traceback."""
    shown = "".join(traceback.format_exception(exc))
    return "\n".join([str(exc), repr(exc), shown])


def assert_no_key(exc: BaseException) -> None:
    text = _all_text(exc).lower()
    for form in (KEY[2:], KEY, KEY[2:].upper().lower(), KEY[2:34], KEY[34:]):
        assert form.lower() not in text, f"key material in: {text[-400:]}"


def _order(**fields) -> Order:
    values = {
        "maker": ADDRESS,
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


def test_every_sdk_exception_derives_from_the_root():
    found = []
    for name in SDK_MODULES:
        module = importlib.import_module(f"strikeline.{name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == module.__name__:
                found.append(cls)
                assert issubclass(cls, StrikelineError), cls
    names = {cls.__name__ for cls in found}
    assert {
        "ChainError",
        "AnvilStartError",
        "BindingError",
        "TransactionFailed",
        "InvalidCallArgument",
        "CompileError",
        "OrderError",
        "SignatureError",
        "MarginError",
        "InvalidArgument",
    } <= names
    # and the old bases still hold, so existing `except ValueError` keeps working
    assert issubclass(OrderError, ValueError) and issubclass(InvalidArgument, ValueError)


def test_shown_hides_long_strings_and_bytes():
    assert errors.shown("0x123") == "'0x123'"
    assert errors.shown(-5) == "-5" and errors.shown(1.5) == "1.5"
    assert KEY not in errors.shown(KEY) and "66-character" in errors.shown(KEY)
    assert "32 bytes" in errors.shown(bytes.fromhex(KEY[2:]))
    assert errors.shown(object()) == "a object"


@pytest.mark.parametrize("value", [KEY, KEY[2:], bytes.fromhex(KEY[2:]), KEY.upper()[2:]])
def test_a_key_where_an_address_belongs_is_named_and_not_shown(value):
    assert errors.looks_like_private_key(value)
    with pytest.raises(InvalidArgument, match="^maker: .*looks like a private key") as info:
        check_address("maker", value)
    assert_no_key(info.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0x123", "not an address: '0x123'"),
        (None, "not an address: None"),
        (5, "not an address: 5"),
        ("0x" + "Ab" * 20, "bad EIP-55 checksum"),
    ],
)
def test_bad_addresses(value, message):
    with pytest.raises(InvalidArgument, match=f"^token: {message}"):
        check_address("token", value)


def test_good_addresses_are_checksummed():
    assert check_address("a", ADDRESS.lower()) == ADDRESS
    assert check_address("a", Account.from_key(KEY)) == ADDRESS  # anything with .address
    assert not errors.looks_like_private_key(ADDRESS)


def test_check_bytes():
    assert check_bytes("h", "0x" + "11" * 32, 32) == b"\x11" * 32
    with pytest.raises(InvalidArgument, match="^h: expected 32 bytes, got 31$"):
        check_bytes("h", b"\x11" * 31, 32)
    with pytest.raises(InvalidArgument, match="^h: not a hex string$"):
        check_bytes("h", "0xzz", 1)
    with pytest.raises(InvalidArgument, match="^h: expected 32 bytes, got 7$"):
        check_bytes("h", 7, 32)


# --------------------------------------------------------------------------- orders


@pytest.mark.parametrize("signer", [42, None, 1.5, object()])
def test_sign_with_something_that_cannot_sign(signer):
    with pytest.raises(SignatureError, match="^signer: expected a private key") as info:
        _order().sign(signer, DOMAIN)
    assert "\n" not in str(info.value) and not isinstance(info.value, AttributeError)


@pytest.mark.parametrize("bad_key", [KEY[:-2], KEY + "ff", KEY[:-1] + "z", KEY[2:-2]])
def test_sign_with_a_malformed_key_never_shows_it(bad_key):
    with pytest.raises(SignatureError, match="^signer: not a valid private key") as info:
        _order().sign(bad_key, DOMAIN)
    assert_no_key(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_a_key_as_the_maker_is_not_echoed():
    for value in (KEY, KEY[2:]):
        with pytest.raises(OrderError, match="^maker: .*private key") as info:
            _order(maker=value)
        assert_no_key(info.value)
    with pytest.raises(OrderError, match="^max_fee: expected a decimal integer string") as info:
        _order(max_fee=KEY)
    assert_no_key(info.value)


def test_a_key_as_the_ledger_or_an_indexed_maker_is_not_echoed():
    with pytest.raises(OrderError, match="^ledger: .*private key") as info:
        Domain(1, KEY)
    assert_no_key(info.value)
    index = LedgerIndex()
    with pytest.raises(InvalidArgument, match="^maker: .*private key") as info:
        index.apply("MinNonceRaised", {"maker": KEY, "min_nonce": 1})
    assert_no_key(info.value)
    with pytest.raises(InvalidArgument, match="^order_hash: expected 32 bytes, got 31$"):
        index.apply("CancelByHash", {"maker": ADDRESS, "order_hash": b"\x01" * 31})
    assert index.apply("MinNonceRaised", {"maker": ADDRESS.lower(), "min_nonce": 3})
    assert index.min_nonce == {ADDRESS: 3}


def test_settlement_blames_the_negative_amount():
    with pytest.raises(OrderError, match="^amount: must not be negative, got -100000000$"):
        orders.settlement(-(10**8), 150 * 10**6, 10, 30)
    with pytest.raises(OrderError, match="^price: must not be negative"):
        orders.settlement(10**8, -1, 10, 30)
    with pytest.raises(OrderError, match="^seller_bps: must not be negative"):
        orders.settlement(10**8, 1, 10, -30)
    with pytest.raises(OrderError, match="^bps: expected an integer, got 1.5"):
        orders.fee(10**8, 1, 1.5)
    with pytest.raises(OrderError, match="seller fee exceeds the premium"):
        orders.settlement(1, 1, 0, 1_250)
    assert orders.settlement(10**8, 150 * 10**6, 10, 30).buyer_debit == 150 * 10**6 + 150_000


def test_split_signature_and_cancel_hash_name_the_problem():
    with pytest.raises(SignatureError, match="^signature: expected 65 bytes"):
        orders.split_signature(b"\x01" * 64)
    with pytest.raises(OrderError, match="orderHash: expected 32 bytes"):
        orders.cancel_hash("0x" + "11" * 32, DOMAIN)  # a str is not the 32 bytes it looks like


def test_oracle_reports_refuse_bad_keys_and_addresses_without_showing_keys():
    oracle = "0x" + "33" * 20
    with pytest.raises(SignatureError, match="^signer: not a valid private key") as info:
        sign_spot(KEY[:-2], 1, oracle, "0x" + "44" * 20, 10**8, 1)
    assert_no_key(info.value)
    with pytest.raises(InvalidArgument, match="^asset: .*private key") as info:
        sign_expiry(KEY, 1, oracle, KEY, 1, 10**8)
    assert_no_key(info.value)
    with pytest.raises(InvalidArgument, match="^price: must not be negative"):
        sign_spot(KEY, 1, oracle, "0x" + "44" * 20, -1, 1)
    report = sign_spot(KEY, 1, oracle, "0x" + "44" * 20, 10**8, 5)
    assert report.signer == ADDRESS and report.timestamp == 5 and len(report.signature) == 65


# --------------------------------------------------------------------------- units and ids


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: units.full_collateral(False, 10**18, 3_000 * 10**8, -1), "^amount: must not be"),
        (lambda: units.full_collateral(True, 10**6, -1, 10**8), "^strike: must not be"),
        (lambda: units.full_collateral(True, -(10**6), 1, 10**8), "^token_unit: must not be"),
        (lambda: units.full_collateral(True, 0, 1, 10**8), "^token_unit: must be positive"),
        (lambda: units.full_collateral(True, 10**6, 1, 1.5), "^amount: expected an integer"),
        (lambda: units.payoff(False, 10**18, 1, -5, 10**8, False), "^price: must not be"),
        (lambda: units.payoff(False, 10**18, 1, 5, -(10**8), True), "^amount: must not be"),
        (lambda: units.release_on_close(10, 5, -1), "^amount: must not be"),
        (lambda: units.release_on_close(10, -5, 1), "^collateral: must not be"),
        (lambda: units.release_on_close(10, 5, 11), "^amount: closes 11, more than the short"),
        (lambda: units.mul_div_up(1, 1, 0), "^d: must be positive"),
        (lambda: ids.series_id(b"\x01" * 31, 1, 1), "^product: expected 32 bytes, got 31"),
        (lambda: ids.series_id(b"\x01" * 32, -1, 1), "^strike: must not be"),
        (lambda: ids.product_id("0x123", ADDRESS, ADDRESS, True), "^underlying: not an addr"),
        (lambda: ids.product_id(ADDRESS, ADDRESS, ADDRESS, 1), "^is_put: expected a bool"),
        (lambda: ids.create_address(ADDRESS, -1), "^nonce: must not be negative"),
        (lambda: ids.instrument_name("ETH", -1, 0, False), "^strike: must not be"),
    ],
)
def test_units_and_ids_refuse_bad_arguments(call, message):
    with pytest.raises(InvalidArgument, match=message) as info:
        call()
    assert "\n" not in str(info.value)


def test_units_still_compute_the_contract_values():
    assert units.full_collateral(False, 10**18, 3_000 * 10**8, 10**8) == 10**18
    assert units.full_collateral(True, 10**6, 3_000 * 10**8, 10**8) == 3_000 * 10**6
    assert units.full_collateral(True, 10**6, 3_000 * 10**8, 0) == 0
    assert units.release_on_close(3, 10, 1) == 3  # keeps ceil(10 * 2 / 3) = 7
    assert units.release_on_close(3, 10, 3) == 10
    assert units.payoff(True, 10**6, 3_000 * 10**8, 0, 10**8, False) == 3_000 * 10**6
