"""No private key or keystore passphrase in any repr, log line, error or traceback."""

from __future__ import annotations

import json
import logging
import pickle
import traceback
from pathlib import Path

import pytest
from eth_account import Account
from pydantic import SecretStr

from strikeline.chain import Anvil
from strikeline.txmanager import KeystoreError, SimulationFailed, Status, load_keystore

from .conftest import drain
from .evm import deploy, reverter

PASSPHRASE = "correct horse battery staple 7f3a"
# anvil's account 1: funded on the devnet, so the keystore's signer can send
KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"


@pytest.fixture
def keystore(tmp_path: Path) -> Path:
    path = tmp_path / "keeper.json"
    # pbkdf2 with few rounds keeps the test fast; real keystores use scrypt (~0.6 s to open)
    path.write_text(json.dumps(Account.encrypt(KEY, PASSPHRASE, kdf="pbkdf2", iterations=16)))
    return path


def leaks(text: str) -> list[str]:
    found = [s for s in (PASSPHRASE, KEY, KEY[2:], KEY[2:].upper()) if s in text]
    return found


def test_wrong_passphrase_is_one_line_without_secrets(keystore: Path) -> None:
    with pytest.raises(KeystoreError) as info:
        load_keystore(keystore, SecretStr(PASSPHRASE + "x"))
    text = "".join(traceback.format_exception(info.value))
    assert str(info.value) == "keystore keeper.json: wrong passphrase or corrupt file"
    assert leaks(text) == [] and "correct horse" not in text
    with pytest.raises(KeystoreError, match="cannot read"):
        load_keystore(keystore.with_name("missing.json"), SecretStr(PASSPHRASE))
    keystore.write_text('{"crypto": {}}')
    with pytest.raises(KeystoreError) as broken:
        load_keystore(keystore, SecretStr(PASSPHRASE))
    assert leaks(str(broken.value)) == []


def test_a_whole_lifecycle_logs_no_secret(
    keystore: Path, anvil: Anvil, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from strikeline import db
    from strikeline.rpc import RpcPool
    from strikeline.txmanager import TxConfig, TxManager

    passphrase = SecretStr(PASSPHRASE)
    with caplog.at_level(logging.DEBUG):
        signer = load_keystore(keystore, passphrase)
        assert signer.address == Account.from_key(KEY).address
        with db.connect(db_url) as database, RpcPool([anvil.url]) as pool:
            manager = TxManager(pool, database, [signer], TxConfig(confirmations=1))
            target = deploy(anvil, reverter("oracle: stale"))
            with pytest.raises(SimulationFailed) as failed:
                manager.submit("push", signer.address, target, b"")
            manager.submit("ok", signer.address, signer.address, b"")
            drain(anvil)
            manager.tick()
            assert manager.intent("ok").status == Status.CONFIRMED  # type: ignore[union-attr]
            logging.getLogger("test").info("state %r %r %s %r", manager, signer, signer, passphrase)
            texts = [
                caplog.text,
                repr(signer),
                str(signer),
                repr(manager),
                repr(passphrase),
                str(passphrase),
                "".join(traceback.format_exception(failed.value)),
                repr(manager.intents()),
            ]
    assert "push" in caplog.text or "journaled ok" in caplog.text  # the logs were captured
    for text in texts:
        assert leaks(text) == []
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(signer)
