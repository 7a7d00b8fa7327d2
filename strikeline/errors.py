"""The root of every error the Strikeline SDK raises, and the argument checks that raise it.

Catch `StrikelineError` to catch anything the SDK raises on purpose. Each module keeps its own
subclasses, which say what went wrong (`orders.OrderError`, `bindings.TransactionFailed`,
`chain.AnvilStartError`, ...); arguments the SDK refuses before doing anything raise
`InvalidArgument` (or a module's subclass of it), whose one-line message starts with the
argument's name.

Messages never carry key material: a value is shown only when it cannot be a secret (see
`shown`), so a private key passed where an address or an amount belongs is never echoed into
an error, a log line or a traceback.
"""

from __future__ import annotations

from typing import Any

from eth_utils import is_checksum_address, is_hex_address, to_checksum_address

#: Longest string shown verbatim in a message; anything longer (a private key is 64 or 66
#: characters) is described by its type and length only.
MAX_SHOWN_CHARS = 12


class StrikelineError(Exception):
    """Base class of every error the SDK raises."""


class InvalidArgument(StrikelineError, ValueError):
    """An argument of the wrong type or out of range; the message names the argument."""


def shown(value: Any) -> str:
    """How a refused `value` appears in an error message without leaking a secret.

    Integers, bools and None are shown (an amount, a flag); short strings are shown quoted
    ("0x123"); longer strings and any bytes are described only ("a 66-character string"),
    since they may be a private key or a keystore passphrase; other objects by type name.
    """
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    if isinstance(value, str):
        if len(value) <= MAX_SHOWN_CHARS:
            return repr(value)
        return f"a {len(value)}-character string (not shown)"
    if isinstance(value, bytes | bytearray | memoryview):
        return f"{len(bytes(value))} bytes (not shown)"
    return f"a {type(value).__name__}"


def looks_like_private_key(value: Any) -> bool:
    """True for 32 raw bytes or 64 hex digits (with or without 0x): a secp256k1 private key."""
    if isinstance(value, bytes | bytearray | memoryview):
        return len(bytes(value)) == 32
    if isinstance(value, str):
        digits = value.removeprefix("0x").removeprefix("0X")
        return len(digits) == 64 and all(c in "0123456789abcdefABCDEF" for c in digits)
    return False


def check_uint(name: str, value: Any, bits: int | None = None) -> int:
    """`value` if it is a non-negative int (not a bool) below 2**bits (any size if None).

    Raises:
        InvalidArgument: naming `name`, for a float, bool, str, negative or too large value.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{name}: expected an integer, got {shown(value)}")
    if value < 0:
        raise InvalidArgument(f"{name}: must not be negative, got {value}")
    if bits is not None and value >> bits:
        raise InvalidArgument(f"{name}: does not fit in uint{bits}")
    return value


def check_address(name: str, value: Any) -> str:
    """`value` as a checksummed address: a 0x-prefixed 40-hex-digit string (all lower or upper
    case, or a valid EIP-55 checksum), or anything with such an `address` attribute (an
    eth-account or ape account, a contract binding).

    Raises:
        InvalidArgument: naming `name`; a private key is called one and never shown.
    """
    address = getattr(value, "address", value)
    if isinstance(address, str) and is_hex_address(address):
        digits = address[2:]
        if digits not in (digits.lower(), digits.upper()) and not is_checksum_address(address):
            raise InvalidArgument(f"{name}: bad EIP-55 checksum (mixed case, not the checksum)")
        return to_checksum_address(address)
    if looks_like_private_key(value):
        raise InvalidArgument(
            f"{name}: expected an address, got what looks like a private key (not shown)"
        )
    raise InvalidArgument(f"{name}: not an address: {shown(value)}")


def check_bytes(name: str, value: Any, size: int) -> bytes:
    """`value` as exactly `size` bytes, from bytes or a 0x-prefixed hex string.

    Raises:
        InvalidArgument: naming `name`, for another type, bad hex or another length.
    """
    if isinstance(value, str):
        try:
            value = bytes.fromhex(value.removeprefix("0x"))
        except ValueError:
            raise InvalidArgument(f"{name}: not a hex string") from None
    if not isinstance(value, bytes | bytearray | memoryview):
        raise InvalidArgument(f"{name}: expected {size} bytes, got {shown(value)}")
    raw = bytes(value)
    if len(raw) != size:
        raise InvalidArgument(f"{name}: expected {size} bytes, got {len(raw)}")
    return raw
