"""relayer.gateway.decode_place (the order body decoded without msgspec's per-string regex calls)
against the schema's own decoder (`PlaceRequest`): on valid bodies and on bodies with one field
changed to something near the edge of its pattern, both accept with the same fields, or both
refuse with the same error."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st
from utils.profiles import scaled  # a share of the active profile's count

from relayer.gateway import _place_decoder, decode_place

GOOD: dict[str, Any] = {
    "order": {
        "maker": "0x" + "aB" * 20,
        "taker": "0x" + "00" * 20,
        "sender": "0x" + "00" * 20,
        "seriesId": "1" + "0" * 70,
        "isBuy": True,
        "amount": "100000000",
        "limitPrice": "0",
        "maxFee": "5",
        "nonce": "7",
        "deadline": "1900000000",
    },
    "signature": "0x" + "1f" * 65,
    "clientOrderId": "bot-1:a.b_c",
    "timeInForce": "IOC",
}
UINT_FIELDS = ["seriesId", "amount", "limitPrice", "maxFee", "nonce", "deadline"]
NEAR_UINTS = [
    "0",
    "00",
    "01",
    "9" * 78,
    "9" * 79,
    "",
    " 1",
    "1 ",
    "1\n",
    "\n1",
    "１",  # a full-width digit: a decimal to str.isdigit, not to the pattern
    "²",
    "-1",
    "+1",
    "1_000",
    "1e5",
]
NEAR_ADDRESSES = [
    "0x" + "a" * 40,
    "0X" + "a" * 40,
    "0x" + "a" * 39,
    "0x" + "a" * 41,
    "0x" + "g" * 40,
    "0x" + "a" * 40 + "\n",
    "0x" + "a" * 40 + " ",
    "x" + "a" * 40,
]
NEAR_SIGNATURES = ["0x" + "F" * 130, "0x" + "f" * 129, "0x" + "f" * 130 + "\n", "0x" + "z" * 130]
NEAR_TIFS = ["GTC", "FOK", "POST_ONLY", "gtc", "GTC\n", "", "IOC "]
NEAR_IDS = [None, "a", "a" * 64, "a" * 65, "", "a b", "a\n", "é", "x-y.z:_"]
ODD_VALUES = [1, 1.5, None, True, [], {}, "1", 2**70]


def both(body: bytes) -> tuple[Any, Any]:
    """Each decoder's outcome: the decoded fields, or the error's type and message."""

    def outcome(decode: Any) -> Any:
        try:
            req = decode(body)
        except msgspec.DecodeError as exc:
            return type(exc).__name__, str(exc)
        fields = {name: getattr(req.order, name) for name in req.order.__struct_fields__}
        return fields, req.signature, req.clientOrderId, req.timeInForce

    return outcome(_place_decoder.decode), outcome(decode_place)


def test_a_valid_body_decodes_the_same() -> None:
    strict, plain = both(json.dumps(GOOD).encode())
    assert strict == plain and isinstance(strict[0], dict)


@settings(max_examples=scaled(2), deadline=None)
@given(
    where=st.sampled_from(
        [("order", f) for f in UINT_FIELDS]
        + [("order", f) for f in ("maker", "taker", "sender", "isBuy")]
        + [(None, f) for f in ("signature", "clientOrderId", "timeInForce")]
    ),
    value=st.one_of(
        st.sampled_from(NEAR_UINTS + NEAR_ADDRESSES + NEAR_SIGNATURES + NEAR_TIFS + NEAR_IDS),
        st.sampled_from(ODD_VALUES),
        st.text(max_size=80),
    ),
    drop=st.booleans(),
    extra=st.booleans(),
)
def test_one_field_changed_decodes_the_same(where, value, drop, extra) -> None:
    body = json.loads(json.dumps(GOOD))
    parent, name = where
    target = body["order"] if parent else body
    if drop:
        del target[name]
    else:
        target[name] = value
    if extra:
        target["unexpected"] = 1
    strict, plain = both(json.dumps(body).encode())
    assert strict == plain


def test_bodies_that_are_not_json_fail_the_same() -> None:
    for raw in (
        b"",
        b"{",
        b"[]",
        b"null",
        b'{"order": 1}',
        b"\xff",
        json.dumps(GOOD)[:-1].encode(),
    ):
        strict, plain = both(raw)
        assert strict == plain and isinstance(strict[0], str)
