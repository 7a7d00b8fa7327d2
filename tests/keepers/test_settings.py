"""keepers.settings: environment, .env and secrets directory; one-line errors without values;
keys from keystores (wrong passphrase refused without showing it), test keys on devnets only."""

from __future__ import annotations

import json

import pytest
from eth_account import Account
from pydantic import SecretStr

from keepers.keys import KeyLoadError, ReportingKey, gas_signer
from keepers.settings import SettingsError, load_settings

PASSPHRASE = "correct horse battery staple 42"
KEY = bytes([0x5A]) * 32


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    import os

    for name in list(os.environ):
        if name.startswith("STRIKELINE_KEEPER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("STRIKELINE_KEEPER_SECRETS_DIR", str(tmp_path / "nosecrets"))
    (tmp_path / "nosecrets").mkdir()


def base_env(monkeypatch, **extra):
    env = {
        "RPC_URLS": "http://127.0.0.1:1,http://127.0.0.1:2",
        "CHAIN_ID": "31337",
        "DEPLOYMENT_FILE": "deployments/31337.json",
        **extra,
    }
    for name, value in env.items():
        monkeypatch.setenv(f"STRIKELINE_KEEPER_{name}", value)


def keystore(path, key=KEY, passphrase=PASSPHRASE):
    # pbkdf2 with few rounds: these tests check behaviour, not the KDF's cost
    path.write_text(json.dumps(Account.encrypt(key, passphrase, kdf="pbkdf2", iterations=1000)))
    return path


def test_environment_lists_and_defaults(monkeypatch):
    base_env(monkeypatch, SOURCES="coinbase:ETH/USD, simulated:1:300000000000")
    settings = load_settings()
    assert settings.rpc_urls == ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    assert settings.sources == ["coinbase:ETH/USD", "simulated:1:300000000000"]
    assert settings.chain_id == 31337 and settings.deviation_bps == 50
    assert settings.database_url.get_secret_value() == "sqlite:///keepers.db"


def test_dotenv_file_is_read(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text(
        "STRIKELINE_KEEPER_RPC_URLS=http://127.0.0.1:9\nSTRIKELINE_KEEPER_CHAIN_ID=1\n"
        "STRIKELINE_KEEPER_DEPLOYMENT_FILE=x.json\nSTRIKELINE_KEEPER_HEARTBEAT=77\n"
    )
    settings = load_settings()
    assert settings.chain_id == 1 and settings.heartbeat == 77


def test_passphrase_from_the_secrets_directory(monkeypatch, tmp_path):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "STRIKELINE_KEEPER_REPORTER_PASSPHRASE").write_text(PASSPHRASE)
    monkeypatch.setenv("STRIKELINE_KEEPER_SECRETS_DIR", str(secrets))
    base_env(monkeypatch, REPORTER_KEY=str(tmp_path / "r.json"))
    settings = load_settings()
    assert isinstance(settings.reporter_passphrase, SecretStr)
    assert settings.reporter_passphrase.get_secret_value() == PASSPHRASE
    assert PASSPHRASE not in repr(settings) and PASSPHRASE not in str(settings)


@pytest.mark.parametrize(
    ("extra", "field", "reason"),
    [
        ({"CHAIN_ID": PASSPHRASE}, "CHAIN_ID", "integer"),
        ({"CHAIN_ID": "0"}, "CHAIN_ID", "greater than 0"),
        ({"RPC_URLS": "ftp://" + PASSPHRASE}, "RPC_URLS", "http://"),
        ({"SOURCES": "bloomberg:" + PASSPHRASE}, "SOURCES", "KIND:ARGS"),
        ({"DEVIATION_BPS": "10000"}, "DEVIATION_BPS", "less than 10000"),
        ({"ASSET": PASSPHRASE}, "ASSET", "20-byte"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it_without_its_value(monkeypatch, extra, field, reason):
    base_env(monkeypatch, **extra)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert "\n" not in message
    assert f"STRIKELINE_KEEPER_{field}" in message and reason in message
    assert PASSPHRASE not in message and "input" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_a_missing_setting_is_named(monkeypatch):
    monkeypatch.setenv("STRIKELINE_KEEPER_RPC_URLS", "http://127.0.0.1:1")
    with pytest.raises(SettingsError, match="STRIKELINE_KEEPER_CHAIN_ID: Field required"):
        load_settings()


def test_test_keys_only_on_devnets(monkeypatch):
    base_env(monkeypatch, CHAIN_ID="42161", REPORTER_KEY="anvil:7")
    with pytest.raises(SettingsError, match="refused on chain 42161"):
        load_settings()
    base_env(monkeypatch, CHAIN_ID="31337", REPORTER_KEY="anvil:7")
    assert load_settings().reporter_key == "anvil:7"


def test_the_reporting_key_is_never_the_gas_key(monkeypatch):
    base_env(monkeypatch, REPORTER_KEY="anvil:7", GAS_KEY="anvil:7")
    with pytest.raises(SettingsError, match="never pays gas"):
        load_settings()


def test_a_keystore_needs_a_passphrase(monkeypatch, tmp_path):
    base_env(monkeypatch, GAS_KEY=str(tmp_path / "gas.json"))
    with pytest.raises(SettingsError, match="STRIKELINE_KEEPER_GAS_PASSPHRASE"):
        load_settings()


def test_keystores_decrypt_and_wrong_passphrases_are_refused_without_secrets(tmp_path):
    path = keystore(tmp_path / "reporter.json")
    key = ReportingKey.load(str(path), SecretStr(PASSPHRASE), 1)
    assert key.address == Account.from_key(KEY).address
    assert repr(key) == f"ReportingKey({key.address})"
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(key)
    with pytest.raises(KeyLoadError) as info:
        ReportingKey.load(str(path), SecretStr("wrong " + PASSPHRASE), 1)
    message = str(info.value)
    assert message == "reporter key: keystore reporter.json: wrong passphrase or corrupt file"
    assert info.value.__cause__ is None and info.value.__suppress_context__
    with pytest.raises(KeyLoadError, match="cannot read it as JSON"):
        gas_signer(str(tmp_path / "missing.json"), SecretStr(PASSPHRASE), 1)


def test_anvil_keys_refused_off_devnets():
    assert gas_signer("anvil:6", None, 31337).devnet_only
    with pytest.raises(KeyLoadError, match="refused on chain 1"):
        ReportingKey.load("anvil:7", None, 1)
