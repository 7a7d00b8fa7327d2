"""Keys from key specs: the gas key as a `strikeline.txmanager.Signer`, the report-signing
key as a `ReportingKey` that signs EIP-712 price reports and nothing else.

A key spec is a keystore path (decrypted with a `SecretStr` passphrase) or `anvil:N` (a
public test key, only on local devnets). Errors name the keystore's file name, never the
passphrase or the key, and are raised `from None` so no library traceback carries them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from pydantic import SecretStr

from keepers.errors import KeeperError
from strikeline import oracle_reports
from strikeline.chain import DEFAULT_MNEMONIC
from strikeline.oracle_reports import SignedReport
from strikeline.txmanager import LOCAL_CHAIN_IDS, Signer

_ANVIL_KEY = re.compile(r"^anvil:(\d{1,3})$")


class KeyLoadError(KeeperError):
    """A key could not be loaded (wrong passphrase, unreadable file, test key off a devnet)."""


def _account(spec: str, passphrase: SecretStr | None, chain_id: int, what: str) -> LocalAccount:
    match = _ANVIL_KEY.match(spec)
    if match:
        if chain_id not in LOCAL_CHAIN_IDS:
            raise KeyLoadError(f"{what}: anvil test keys are public, refused on chain {chain_id}")
        Account.enable_unaudited_hdwallet_features()
        index = int(match.group(1))
        return Account.from_mnemonic(DEFAULT_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    name = Path(spec).name
    if passphrase is None:
        raise KeyLoadError(f"{what}: keystore {name} needs a passphrase")
    try:
        keyfile = json.loads(Path(spec).read_text())
    except (OSError, ValueError):
        raise KeyLoadError(f"{what}: keystore {name}: cannot read it as JSON") from None
    try:
        key = Account.decrypt(keyfile, passphrase.get_secret_value())
    except ValueError:
        raise KeyLoadError(f"{what}: keystore {name}: wrong passphrase or corrupt file") from None
    except Exception as exc:  # noqa: BLE001 - eth-keyfile raises assorted types, some quoting input
        raise KeyLoadError(f"{what}: keystore {name}: unreadable ({type(exc).__name__})") from None
    account: LocalAccount = Account.from_key(key)
    return account


def gas_signer(spec: str, passphrase: SecretStr | None, chain_id: int) -> Signer:
    """The key that pays gas, for the transaction manager."""
    return Signer(
        _account(spec, passphrase, chain_id, "gas key"), devnet_only=spec.startswith("anvil:")
    )


class ReportingKey:
    """A reporter's signing key: signs spot and expiry reports; its repr shows the address
    only and it refuses to be pickled. It never signs a transaction."""

    __slots__ = ("_account", "address")

    def __init__(self, account: LocalAccount):
        self._account = account
        self.address: str = to_checksum_address(account.address)

    @classmethod
    def load(cls, spec: str, passphrase: SecretStr | None, chain_id: int) -> ReportingKey:
        return cls(_account(spec, passphrase, chain_id, "reporter key"))

    def sign_spot(
        self, chain_id: int, oracle: str, asset: str, price: int, timestamp: int
    ) -> SignedReport:
        return oracle_reports.sign_spot(
            self._account.key, chain_id, oracle, asset, price, timestamp
        )

    def sign_expiry(
        self, chain_id: int, oracle: str, asset: str, expiry: int, price: int
    ) -> SignedReport:
        return oracle_reports.sign_expiry(self._account.key, chain_id, oracle, asset, expiry, price)

    def __repr__(self) -> str:
        return f"ReportingKey({self.address})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a ReportingKey holds a private key and cannot be pickled")
