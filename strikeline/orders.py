"""Signed option orders: the `Order` model, its EIP-712 hash, signing and fast recovery.

The wallet-facing format is fixed by `contracts/Ledger.vy` (docs/exchange.md):

- domain: name "Strikeline", version "1", chainId, verifyingContract = the Ledger;
- ``Order(address maker,address taker,address sender,uint256 seriesId,bool isBuy,
  uint256 amount,uint256 limitPrice,uint256 maxFee,uint256 nonce,uint256 deadline)``;
  `taker` is the only allowed counterparty and `sender` the only address allowed to submit
  the order (a relayer for `match_orders`, the taker for `fill`); zero means anyone;
- ``Cancel(bytes32 orderHash)`` (an off-chain cancel at the relayer);
- signatures are 65 bytes ``r || s || v`` with ``v`` in {27, 28} and a low ``s``.

The order hash is the EIP-712 digest a wallet signs (`eth_signTypedData_v4`), the same
value the Ledger computes and logs. Hashing here is a direct encoding (no JSON walk), so
the relayer can hash and recover tens of thousands of orders per second with coincurve; the
tests check it against eth-account's generic encoder byte for byte.

Money maths mirror the Ledger exactly (`fee`, `settlement`): integers only, rounding never
in a user's favour.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import coincurve
from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils import keccak, to_checksum_address

from strikeline.errors import InvalidArgument, check_address, check_uint, shown
from strikeline.units import UNIT

try:  # safe-pysha3's C keccak: ~1 us per digest against ~7 us through eth_utils
    from sha3 import keccak_256 as _keccak_256

    def _keccak(data: bytes) -> bytes:
        return _keccak_256(data).digest()
except ImportError:  # pragma: no cover - the pinned environment has it

    def _keccak(data: bytes) -> bytes:
        return keccak(data)


#: The EIP-712 domain name and version of the Ledger.
DOMAIN_NAME = "Strikeline"
DOMAIN_VERSION = "1"

ORDER_TYPE = (
    "Order(address maker,address taker,address sender,uint256 seriesId,bool isBuy,"
    "uint256 amount,uint256 limitPrice,uint256 maxFee,uint256 nonce,uint256 deadline)"
)
CANCEL_TYPE = "Cancel(bytes32 orderHash)"
DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
ORDER_TYPEHASH = keccak(text=ORDER_TYPE)
CANCEL_TYPEHASH = keccak(text=CANCEL_TYPE)
DOMAIN_TYPEHASH = keccak(text=DOMAIN_TYPE)

#: The typed-data field lists, as `eth_signTypedData_v4` takes them.
EIP712_TYPES: dict[str, list[dict[str, str]]] = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "Order": [
        {"name": "maker", "type": "address"},
        {"name": "taker", "type": "address"},
        {"name": "sender", "type": "address"},
        {"name": "seriesId", "type": "uint256"},
        {"name": "isBuy", "type": "bool"},
        {"name": "amount", "type": "uint256"},
        {"name": "limitPrice", "type": "uint256"},
        {"name": "maxFee", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
    "Cancel": [{"name": "orderHash", "type": "bytes32"}],
}

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
_PAD12 = bytes(12)  # an address is left-padded to 32 bytes
_FALSE32 = bytes(32)
_TRUE32 = bytes(31) + b"\x01"
UINT256_MAX = 2**256 - 1
#: secp256k1 group order and the largest `s` the Ledger accepts (EIP-2).
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
LOW_S_MAX = SECP256K1_N // 2
#: Fee bounds of the Ledger.
BPS = 10_000
MAX_FEE_BPS = 1_250

# camelCase EIP-712 name -> snake_case field name
_MESSAGE_FIELDS = {
    "maker": "maker",
    "taker": "taker",
    "sender": "sender",
    "seriesId": "series_id",
    "isBuy": "is_buy",
    "amount": "amount",
    "limitPrice": "limit_price",
    "maxFee": "max_fee",
    "nonce": "nonce",
    "deadline": "deadline",
}
_UINT_FIELDS = ("series_id", "amount", "limit_price", "max_fee", "nonce", "deadline")


class OrderError(InvalidArgument):
    """An order, signature or domain is malformed; the message says which field and why."""


class SignatureError(OrderError):
    """A signature is not 65 bytes r || s || v, has a high s, or does not recover."""


def _uint(name: str, value: Any) -> int:
    """A uint256 from an int or a decimal string (the relayer API sends strings)."""
    if isinstance(value, bool):
        raise OrderError(f"{name}: expected an integer, got a bool")
    if isinstance(value, str):
        if not value.isascii() or not value.isdecimal():
            raise OrderError(f"{name}: expected a decimal integer string, got {shown(value)}")
        value = int(value)
    if not isinstance(value, int):
        raise OrderError(f"{name}: expected an integer, got {type(value).__name__}")
    if not 0 <= value <= UINT256_MAX:
        raise OrderError(f"{name}: {value} is outside uint256")
    return value


def _address(name: str, value: Any) -> str:
    """A checksummed address from a hex string (never echoing what may be a key)."""
    if not isinstance(value, str):
        raise OrderError(f"{name}: not an address: {shown(value)}")
    try:
        return check_address(name, value)
    except InvalidArgument as exc:
        raise OrderError(str(exc)) from None


@dataclass(frozen=True)
class Domain:
    """The Ledger's EIP-712 domain on one chain: `Domain(chain_id, ledger_address)`."""

    chain_id: int
    ledger: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "chain_id", _uint("chain_id", self.chain_id))
        object.__setattr__(self, "ledger", _address("ledger", self.ledger))
        # kept on the instance: every order hash needs it (not a field: eq and repr ignore it)
        object.__setattr__(self, "_separator", _domain_separator(self.chain_id, self.ledger))

    @property
    def exchange(self) -> str:
        """The verifying contract under its v1 name (the Exchange then, the Ledger now)."""
        return self.ledger

    @property
    def separator(self) -> bytes:
        """The 32-byte domain separator."""
        separator: bytes = self.__dict__["_separator"]
        return separator

    def as_dict(self) -> dict[str, Any]:
        """The domain as `eth_signTypedData_v4` takes it."""
        return {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": self.chain_id,
            "verifyingContract": self.ledger,
        }


@functools.lru_cache(maxsize=64)
def _domain_separator(chain_id: int, ledger: str) -> bytes:
    """hashStruct(EIP712Domain) for the Ledger at `ledger` on `chain_id` (cached)."""
    return keccak(
        DOMAIN_TYPEHASH
        + keccak(text=DOMAIN_NAME)
        + keccak(text=DOMAIN_VERSION)
        + chain_id.to_bytes(32, "big")
        + bytes.fromhex(ledger[2:]).rjust(32, b"\0")
    )


@dataclass(frozen=True, kw_only=True)
class Order:
    """One signed order's fields, snake_case, integers in on-chain units.

    `amount` is in option units (8 decimals), `limit_price` and `max_fee` in quote-token
    base units (price per whole contract; the most the maker pays in fees over the whole
    amount), `deadline` in unix seconds (the order is void after it), `taker` the only
    allowed counterparty or the zero address for anyone, `sender` the only address allowed
    to submit the order on chain (`match_orders` caller or `fill` caller) or the zero address
    for anyone.
    """

    maker: str
    taker: str = ZERO_ADDRESS
    sender: str = ZERO_ADDRESS
    series_id: int
    is_buy: bool
    amount: int
    limit_price: int
    max_fee: int
    nonce: int
    deadline: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "maker", _address("maker", self.maker))
        object.__setattr__(self, "taker", _address("taker", self.taker))
        object.__setattr__(self, "sender", _address("sender", self.sender))
        if not isinstance(self.is_buy, bool):
            raise OrderError(f"is_buy: expected a bool, got {type(self.is_buy).__name__}")
        for name in _UINT_FIELDS:
            object.__setattr__(self, name, _uint(name, getattr(self, name)))
        if self.maker == ZERO_ADDRESS:
            raise OrderError("maker: the zero address cannot sign")
        if self.amount == 0:
            raise OrderError("amount: must be positive")
        if self.taker == self.maker:
            raise OrderError("taker: a maker cannot trade with itself")

    # ----------------------------------------------------------------- encodings

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Order:
        """Build from the EIP-712 message (camelCase keys; ints or decimal strings)."""
        missing = set(_MESSAGE_FIELDS) - set(message)
        extra = set(message) - set(_MESSAGE_FIELDS)
        if missing or extra:
            raise OrderError(f"order fields: missing {sorted(missing)}, unknown {sorted(extra)}")
        return cls(**{_MESSAGE_FIELDS[k]: v for k, v in message.items()})

    def to_message(self) -> dict[str, Any]:
        """The EIP-712 message (camelCase keys, int values)."""
        return {k: getattr(self, v) for k, v in _MESSAGE_FIELDS.items()}

    def replace(self, **fields: Any) -> Order:
        """A copy with `fields` changed (validated again; an old signature no longer fits)."""
        return dataclasses.replace(self, **fields)

    def as_tuple(self) -> tuple:
        """The Ledger's `Order` struct, in field order."""
        return (
            self.maker,
            self.taker,
            self.sender,
            self.series_id,
            self.is_buy,
            self.amount,
            self.limit_price,
            self.max_fee,
            self.nonce,
            self.deadline,
        )

    def typed_data(self, domain: Domain) -> dict[str, Any]:
        """The full `eth_signTypedData_v4` payload for this order."""
        return {
            "types": {"EIP712Domain": EIP712_TYPES["EIP712Domain"], "Order": EIP712_TYPES["Order"]},
            "primaryType": "Order",
            "domain": domain.as_dict(),
            "message": self.to_message(),
        }

    def struct_hash(self) -> bytes:
        """hashStruct(Order): keccak256 of the type hash and the ten encoded fields (one
        keccak over one packed buffer)."""
        return _keccak(
            b"".join(
                (
                    ORDER_TYPEHASH,
                    _PAD12,
                    bytes.fromhex(self.maker[2:]),
                    _PAD12,
                    bytes.fromhex(self.taker[2:]),
                    _PAD12,
                    bytes.fromhex(self.sender[2:]),
                    self.series_id.to_bytes(32, "big"),
                    _TRUE32 if self.is_buy else _FALSE32,
                    self.amount.to_bytes(32, "big"),
                    self.limit_price.to_bytes(32, "big"),
                    self.max_fee.to_bytes(32, "big"),
                    self.nonce.to_bytes(32, "big"),
                    self.deadline.to_bytes(32, "big"),
                )
            )
        )

    def hash(self, domain: Domain) -> bytes:
        """The order hash: the EIP-712 digest the maker signs, as the Ledger computes it."""
        return _keccak(b"\x19\x01" + domain.separator + self.struct_hash())

    def sign(self, signer: Any, domain: Domain) -> SignedOrder:
        """Sign with a private key, an eth-account `LocalAccount` or an ape account."""
        signature = sign_typed(signer, self.typed_data(domain), self.hash(domain))
        return SignedOrder(self, signature, domain)


@dataclass(frozen=True)
class SignedOrder:
    """An order with its maker's 65-byte signature under one domain."""

    order: Order
    signature: bytes
    domain: Domain
    hash: bytes = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "signature", check_signature_format(self.signature))
        object.__setattr__(self, "hash", self.order.hash(self.domain))

    def signer(self) -> str:
        """The address that signed (an EOA; contract makers are checked on chain)."""
        return recover(self.hash, self.signature)

    def is_valid(self) -> bool:
        """True when the maker itself signed this order (EOA makers). Compares raw address
        bytes: no checksum encoding on the relayer's hot path."""
        try:
            return recover_address(self.hash, self.signature) == bytes.fromhex(self.order.maker[2:])
        except SignatureError:
            return False


@dataclass(frozen=True)
class Match:
    """One match for `Ledger.match_orders`: the resting order sets the price."""

    buy: SignedOrder
    sell: SignedOrder
    amount: int
    buy_is_maker: bool

    @property
    def price(self) -> int:
        """The resting order's limit price."""
        return self.buy.order.limit_price if self.buy_is_maker else self.sell.order.limit_price

    def as_tuple(self) -> tuple:
        """The Ledger's `Match` struct: the orders as `OrderWords` (the calldata bytes of
        `Order`s), the signatures split, `amount_side` (the amount, bit 255 set when the buy
        order rests) and the price."""
        if not 0 <= self.amount < AMOUNT_SIDE_BIT:
            raise OrderError(f"match amount must be below 2**255, got {self.amount}")
        return (
            order_words(self.buy.order.as_tuple()),
            order_words(self.sell.order.as_tuple()),
            split_signature(self.buy.signature),
            split_signature(self.sell.signature),
            self.amount | (AMOUNT_SIDE_BIT if self.buy_is_maker else 0),
            self.price,
        )


#: `Match.amount_side`'s bit for "the buy order rests" (the amount is below it)
AMOUNT_SIDE_BIT = 1 << 255


def order_words(fields: Sequence[Any]) -> tuple[int, ...]:
    """An `Order` struct's fields (`Order.as_tuple`) as the Ledger's `OrderWords`, which
    `match_orders` takes: each field the uint256 word the ABI encodes (an address as its
    number, a bool as 0/1), so the calldata bytes are those of an `Order`."""
    return tuple(int(v, 16) if isinstance(v, str) else int(v) for v in fields)


def split_signature(signature: bytes) -> tuple[bytes, bytes, int]:
    """A 65-byte ``r || s || v`` signature as the Ledger's ``Signature(r, s, v)`` struct
    (`v` a uint256 word)."""
    signature = bytes(signature)
    if len(signature) != 65:
        raise SignatureError(f"signature: expected 65 bytes r || s || v, got {len(signature)}")
    return signature[:32], signature[32:64], signature[64]


# --------------------------------------------------------------------------- hashing


def typed_digest(domain: Domain, struct_hash: bytes) -> bytes:
    """keccak256("\\x19\\x01" || domainSeparator || structHash)."""
    return _keccak(b"\x19\x01" + domain.separator + struct_hash)


def cancel_typed_data(order_hash: bytes, domain: Domain) -> dict[str, Any]:
    """The `eth_signTypedData_v4` payload of an off-chain `Cancel(bytes32 orderHash)`."""
    return {
        "types": {"EIP712Domain": EIP712_TYPES["EIP712Domain"], "Cancel": EIP712_TYPES["Cancel"]},
        "primaryType": "Cancel",
        "domain": domain.as_dict(),
        "message": {"orderHash": bytes(order_hash)},
    }


def cancel_hash(order_hash: bytes, domain: Domain) -> bytes:
    """The digest a maker signs to cancel `order_hash` at the relayer."""
    if not isinstance(order_hash, bytes | bytearray) or len(order_hash) != 32:
        raise OrderError("orderHash: expected 32 bytes")
    return typed_digest(domain, keccak(CANCEL_TYPEHASH + bytes(order_hash)))


def sign_cancel(signer: Any, order_hash: bytes, domain: Domain) -> bytes:
    """Sign an off-chain cancel of `order_hash`; returns the 65-byte signature."""
    digest = cancel_hash(order_hash, domain)
    return sign_typed(signer, cancel_typed_data(order_hash, domain), digest)


# --------------------------------------------------------------------------- signing


def sign_typed(signer: Any, typed_data: dict[str, Any], digest: bytes) -> bytes:
    """Sign EIP-712 typed data; returns 65 bytes r || s || v (v in {27, 28}, low s).

    `signer` is a private key (bytes or hex), an eth-account `LocalAccount`, or an ape
    account (anything with `sign_message(SignableMessage)` returning v, r, s). The result
    is checked to recover to the signer over `digest`.
    """
    signable: SignableMessage = encode_typed_data(full_message=typed_data)
    if isinstance(signer, bytes | bytearray | str):
        account = account_from_key(signer)
        signed = account.sign_message(signable)
        address = account.address
    elif callable(getattr(signer, "sign_message", None)) and hasattr(signer, "address"):
        signed = signer.sign_message(signable)
        if signed is None:
            raise SignatureError("the account declined to sign")
        address = to_checksum_address(str(signer.address))
    else:
        raise SignatureError(
            "signer: expected a private key (32 bytes or hex), an eth-account LocalAccount "
            f"or an ape account, got {shown(signer)}"
        )
    signature = normalize_signature(_as_int(signed.r), _as_int(signed.s), _as_int(signed.v))
    if recover(digest, signature) != address:
        raise SignatureError("the signature does not recover to the signing account")
    return signature


def account_from_key(key: bytes | bytearray | str) -> Any:
    """An eth-account `LocalAccount` for `key`; a malformed key is refused without showing any
    of it (eth-account's own errors may quote it)."""
    try:
        return Account.from_key(bytes(key) if isinstance(key, bytearray) else key)
    except Exception:  # eth-account raises ValueError, binascii.Error, ... quoting the input
        raise SignatureError(
            "signer: not a valid private key (32 bytes or 64 hex digits; not shown)"
        ) from None


def _as_int(value: int | bytes) -> int:
    """v, r or s as an int, whether an account returned it as an int or as bytes."""
    return value if isinstance(value, int) else int.from_bytes(value, "big")


def normalize_signature(r: int, s: int, v: int) -> bytes:
    """65 bytes r || s || v with v in {27, 28} and s in the lower half of the curve order.

    A high-s signature is turned into its low-s twin (s' = n - s, v flipped), which signs
    the same digest; the Ledger only accepts the low-s form.
    """
    if v in (0, 1):
        v += 27
    if v not in (27, 28):
        raise SignatureError(f"v must be 27 or 28, got {v}")
    if not (0 < r < SECP256K1_N and 0 < s < SECP256K1_N):
        raise SignatureError("r or s out of range")
    if s > LOW_S_MAX:
        s, v = SECP256K1_N - s, 55 - v
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])


def check_signature_format(signature: bytes | str) -> bytes:
    """The signature as bytes, if it is 65 bytes r || s || v with v in {27, 28} and a low s."""
    if isinstance(signature, str):
        try:
            signature = bytes.fromhex(signature.removeprefix("0x"))
        except ValueError as exc:
            raise SignatureError("signature: not hex") from exc
    signature = bytes(signature)
    if len(signature) != 65:
        raise SignatureError(f"signature: expected 65 bytes, got {len(signature)}")
    if int.from_bytes(signature[32:64], "big") > LOW_S_MAX:
        raise SignatureError("signature: high s")
    if signature[64] not in (27, 28):
        raise SignatureError(f"signature: v must be 27 or 28, got {signature[64]}")
    return signature


def recover(digest: bytes, signature: bytes) -> str:
    """The checksummed address that signed `digest` (coincurve; low s enforced)."""
    return to_checksum_address(recover_address(digest, signature))


def recover_address(digest: bytes, signature: bytes) -> bytes:
    """The 20-byte address that signed `digest` (coincurve; low s enforced): `recover`
    without the checksum encoding, for comparing against many makers quickly."""
    signature = check_signature_format(signature)
    try:
        public = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([signature[64] - 27]), digest, hasher=None
        )
    except Exception as exc:  # coincurve raises plain Exceptions for invalid points
        raise SignatureError(f"signature does not recover: {exc}") from exc
    return _keccak(public.format(compressed=False)[1:])[-20:]


# --------------------------------------------------------------------------- money


def fee(amount: int, price: int, bps: int) -> int:
    """A fee of `bps` basis points on the premium of `amount` at `price`, rounded up."""
    _money_args(amount, price, bps)
    return _fee(amount, price, bps)


def _fee(amount: int, price: int, bps: int) -> int:
    return -((-amount * price * bps) // (UNIT * BPS))


def _money_args(amount: int, price: int, *bps: int) -> None:
    """Refuse a negative or non-integer amount, price or fee rate, naming it (as OrderError)."""
    try:
        check_uint("amount", amount)
        check_uint("price", price)
        for name, rate in zip(("buyer_bps", "seller_bps"), bps, strict=False):
            check_uint(name if len(bps) > 1 else "bps", rate)
    except InvalidArgument as exc:
        raise OrderError(str(exc)) from None


def max_fee_allows(order: Order, amount: int, fee_: int) -> bool:
    """The Ledger's pro rata cap: fee * order.amount <= max_fee * amount.

    As on chain, a `max_fee` so large that max_fee * amount overflows uint256 caps nothing.
    """
    if order.max_fee * amount > UINT256_MAX:
        return True
    return fee_ * order.amount <= order.max_fee * amount


@dataclass(frozen=True)
class Settlement:
    """What one fill moves between free balances, in quote units."""

    buyer_debit: int
    seller_credit: int
    buyer_fee: int
    seller_fee: int

    @property
    def to_fee_recipient(self) -> int:
        """Fees plus the premium's rounding dust."""
        return self.buyer_debit - self.seller_credit


def settlement(amount: int, price: int, buyer_bps: int, seller_bps: int) -> Settlement:
    """The buyer pays the premium rounded up plus its fee; the seller receives the premium
    rounded down less its fee. Raises `OrderError` when the seller's fee exceeds the premium
    (the Ledger reverts with "ledger: fee exceeds premium"), and negative or non-integer
    arguments naming the argument."""
    _money_args(amount, price, buyer_bps, seller_bps)
    premium_down = amount * price // UNIT
    premium_up = -((-amount * price) // UNIT)
    buyer_fee = _fee(amount, price, buyer_bps)
    seller_fee = _fee(amount, price, seller_bps)
    if seller_fee > premium_down:
        raise OrderError("seller fee exceeds the premium")
    return Settlement(premium_up + buyer_fee, premium_down - seller_fee, buyer_fee, seller_fee)
