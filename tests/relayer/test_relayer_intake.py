"""Intake pieces that need no chain: the fast `Order` builder against the SDK's `Order`, the
journaled payload round trip, token buckets, and settings parsing (one line per bad setting,
never the value)."""

from __future__ import annotations

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st
from utils.profiles import scaled  # a share of the active profile's count

from relayer.gateway import OrderFields, TokenBuckets, decode_payload, encode_payload, fast_order
from relayer.settings import SettingError, load_settings
from strikeline.orders import ZERO_ADDRESS, Domain, Order, OrderError

ADDRESSES = [ZERO_ADDRESS, "0x" + "ab" * 20, "0x" + "AB" * 20, Account.create().address]
UINTS = st.one_of(
    st.integers(0, 5), st.integers(0, 2**256 + 5), st.just(2**256 - 1), st.just(2**256)
)


@settings(max_examples=scaled(1), deadline=None)
@given(
    maker=st.sampled_from(ADDRESSES),
    taker=st.sampled_from(ADDRESSES),
    sender=st.sampled_from(ADDRESSES),
    values=st.lists(UINTS, min_size=6, max_size=6),
    is_buy=st.booleans(),
)
def test_fast_order_equals_the_sdk_order(maker, taker, sender, values, is_buy) -> None:
    fields = OrderFields(
        maker, taker, sender, str(values[0]), is_buy, *(str(v) for v in values[1:])
    )
    kwargs = dict(
        maker=maker,
        taker=taker,
        sender=sender,
        series_id=values[0],
        is_buy=is_buy,
        amount=values[1],
        limit_price=values[2],
        max_fee=values[3],
        nonce=values[4],
        deadline=values[5],
    )
    try:
        expected = Order(**kwargs)
    except OrderError:
        with pytest.raises(OrderError):
            fast_order(fields)
        return
    got = fast_order(fields)
    assert got == expected and got.struct_hash() == expected.struct_hash()


def test_payload_round_trip_keeps_wide_integers() -> None:
    maker = Account.create()
    domain = Domain(31337, "0x" + "11" * 20)
    order = Order(
        maker=maker.address,
        series_id=2**255 + 3,
        is_buy=True,
        amount=5,
        limit_price=7,
        max_fee=2**200,
        nonce=2**100,
        deadline=2**40,
    )
    signed = order.sign(maker, domain)
    assert decode_payload(encode_payload(signed), domain) == signed


def test_token_bucket_refills_at_its_rate() -> None:
    b = TokenBuckets(rate=2.0, burst=3)
    assert [b.take("ip", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.take("ip", now=0.0) == pytest.approx(0.5)
    assert b.take("ip", now=0.5) == 0.0  # one token came back
    assert b.take("other", now=0.5) == 0.0  # buckets are per key


BASE = {
    "STRIKELINE_RELAYER_RPC_URLS": "http://127.0.0.1:1, http://127.0.0.1:2",
    "STRIKELINE_RELAYER_CHAIN_ID": "31337",
    "STRIKELINE_RELAYER_DEPLOYMENT": "deployment.json",
    "STRIKELINE_RELAYER_KEYSTORE": "key.json",
    "STRIKELINE_RELAYER_KEYSTORE_PASSPHRASE": "correct horse",
}


def test_settings_from_env_and_flags() -> None:
    s = load_settings(["--batch-size", "4"], env=BASE)
    assert s.rpc_urls == ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    assert s.batch_size == 4 and s.host == "127.0.0.1"
    assert s.database_url.startswith("sqlite:///")
    assert "correct horse" not in repr(s)
    assert s.keystore_passphrase is not None
    assert s.keystore_passphrase.get_secret_value() == "correct horse"


def test_settings_from_the_secrets_dir(tmp_path) -> None:
    (tmp_path / "strikeline_relayer_keystore_passphrase").write_text("from a file")
    env = {k: v for k, v in BASE.items() if not k.endswith("PASSPHRASE")}
    s = load_settings([], env={**env, "STRIKELINE_RELAYER_SECRETS_DIR": str(tmp_path)})
    assert s.keystore_passphrase is not None
    assert s.keystore_passphrase.get_secret_value() == "from a file"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"STRIKELINE_RELAYER_CHAIN_ID": "0"}, "STRIKELINE_RELAYER_CHAIN_ID"),
        ({"STRIKELINE_RELAYER_RPC_URLS": "ws://x"}, "STRIKELINE_RELAYER_RPC_URLS"),
        ({"STRIKELINE_RELAYER_BATCH_SIZE": "0"}, "STRIKELINE_RELAYER_BATCH_SIZE"),
        (
            {"STRIKELINE_RELAYER_DATABASE_URL": "mysql://u:pw@h/db"},
            "STRIKELINE_RELAYER_DATABASE_URL",
        ),
        ({"STRIKELINE_RELAYER_KEYSTORE_PASSPHRASE": ""}, "keystore_passphrase"),
        ({"STRIKELINE_RELAYER_ANVIL_ACCOUNT": "2"}, "not both"),
        ({"STRIKELINE_RELAYER_SECRETS_DIR": "/nonexistent"}, "STRIKELINE_RELAYER_SECRETS_DIR"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(change, named) -> None:
    env = {**BASE, **change}
    if change.get("STRIKELINE_RELAYER_KEYSTORE_PASSPHRASE") == "":
        del env["STRIKELINE_RELAYER_KEYSTORE_PASSPHRASE"]
    with pytest.raises(SettingError) as caught:
        load_settings([], env=env)
    message = str(caught.value)
    assert named in message and "\n" not in message
    assert "pw@" not in message and "correct horse" not in message


def test_ticker_vols_invert_the_pricing_model() -> None:
    from relayer_helpers import CALL

    from relayer.gateway import ticker_vols
    from strikeline.pricing import bs_price

    now = CALL.expiry - 30 * 86_400
    years = 30 / 365
    spot = 3_100 * 10**8
    price = int(float(bs_price(3_100.0, 3_000.0, years, 0.6, is_call=True)) * 10**6)
    got = ticker_vols(CALL, spot, price - 10**6, price + 10**6, price, now, 10**6)
    assert got["markIv"] == pytest.approx(0.6, abs=1e-4)
    assert got["bidIv"] < got["markIv"] < got["askIv"]
    assert 0.5 < got["greeks"]["delta"] < 1
    assert ticker_vols(CALL, None, price, price, price, now, 10**6)["markIv"] is None
    assert ticker_vols(CALL, spot, 1, 1, 1, now, 10**6)["bidIv"] is None  # below intrinsic
