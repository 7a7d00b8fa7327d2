"""The relayer's settings: pydantic-settings, `STRIKELINE_RELAYER_` prefix, `.env`, a secrets dir.

Every setting can come from (highest first) a command-line flag (`--batch-size 8`), the
environment (`STRIKELINE_RELAYER_BATCH_SIZE=8`), a `.env` file in the working directory, or a file
named after the setting's variable in the secrets directory (`STRIKELINE_RELAYER_SECRETS_DIR`,
e.g. `/run/secrets/strikeline_relayer_keystore_passphrase`, the Docker and Kubernetes
convention for secrets).

A bad setting stops the boot with one line naming it (`SettingError`), never a traceback and
never a secret: `load_settings` turns pydantic's errors into that line, and `boot_checks` does the
same for what can only be checked against the outside world (the deployment file, the keystore,
the chain id the nodes serve).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from strikeline.errors import InvalidArgument, StrikelineError, check_address

PREFIX = "STRIKELINE_RELAYER_"
MAX_MATCHES = 16  # Ledger.MAX_MATCHES: the most matches one match_orders call takes


class SettingError(StrikelineError):
    """A setting is missing or wrong; the message is one line naming it (never its secret)."""


class RelayerSettings(BaseSettings):
    """Everything an operator sets. Field descriptions are the `--help` text."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    rpc_urls: Annotated[list[str], NoDecode] = Field(
        description="JSON-RPC URLs, comma separated, tried in order (failover to the next)",
    )
    chain_id: int = Field(description="the chain id the nodes must serve (checked at boot)", gt=0)
    deployment: Path = Field(
        description="the address file the deploy script wrote (contracts.Ledger, Clearinghouse)"
    )
    keystore: Path | None = Field(
        default=None, description="the submitter's encrypted keystore (V3 JSON)"
    )
    keystore_passphrase: SecretStr | None = Field(
        default=None, description="the keystore's passphrase (best from the secrets dir)"
    )
    anvil_account: int | None = Field(
        default=None,
        ge=0,
        le=19,
        description="devnets only: submit from anvil's public test account with this index",
    )
    database_url: str = Field(
        default="sqlite:///relayer.db",
        description="journal database: sqlite:///path (embedded) or postgresql://user@host/db",
    )
    snapshot_every: int = Field(
        default=100_000,
        ge=0,
        description="snapshot the engine every this many journal events (0: never); a restart "
        "replays from the newest snapshot, and orders that are done leave memory at each one",
    )
    host: str = Field(default="127.0.0.1", description="address the HTTP server binds")
    port: int = Field(default=8080, ge=0, le=65535, description="HTTP port (0: any free port)")
    batch_size: int = Field(
        default=MAX_MATCHES,
        ge=1,
        le=MAX_MATCHES,
        description=f"most matches per match_orders transaction (1-{MAX_MATCHES})",
    )
    batch_wait_ms: int = Field(
        default=100, ge=0, le=60_000, description="wait this long for a batch to fill up"
    )
    confirmations: int = Field(
        default=2, ge=1, le=1_000, description="blocks on top before a fill counts as filled"
    )
    reorg_horizon: int = Field(
        default=256,
        ge=1,
        le=100_000,
        description="blocks after a confirmation within which a reorg still undoes the fill",
    )
    poll_interval: float = Field(
        default=0.5, gt=0, le=60, description="seconds between chain polls (head, logs, txs)"
    )
    rpc_timeout: float = Field(default=2.0, gt=0, le=60, description="seconds per RPC call")
    max_fee_gwei: int = Field(
        default=500, ge=1, description="fee cap of the submitter's transactions, in gwei"
    )
    rate_ip_per_s: float = Field(default=200.0, gt=0, description="requests/s per client IP")
    rate_ip_burst: int = Field(default=400, ge=1, description="burst of requests per client IP")
    rate_maker_per_s: float = Field(default=100.0, gt=0, description="orders/s per maker")
    rate_maker_burst: int = Field(default=200, ge=1, description="burst of orders per maker")
    max_open_per_maker: int = Field(
        default=1_000, ge=1, description="most live orders per maker (all instruments)"
    )
    max_open_per_instrument: int = Field(
        default=200, ge=1, description="most live orders per maker on one instrument"
    )
    max_batch_orders: int = Field(
        default=50, ge=1, le=1_000, description="most orders in one batch placement request"
    )
    max_body_bytes: int = Field(
        default=256 * 1024, ge=1_024, description="largest request body accepted, in bytes"
    )
    min_deadline_s: int = Field(
        default=5, ge=0, description="refuse orders whose deadline is closer than this"
    )
    tick: int = Field(default=1, ge=1, description="price step in quote base units")
    lot: int = Field(default=1, ge=1, description="amount step in option units (8 decimals)")
    gateway_processes: int = Field(
        default=0,
        ge=0,
        le=64,
        description="processes that take order posts on the port beside the main one "
        "(0: the main process serves everything; 1 or more spreads intake over cores, see "
        "docs/relayer.md)",
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")

    @field_validator("rpc_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [u.strip() for u in value.split(",") if u.strip()]
        return value

    @field_validator("rpc_urls")
    @classmethod
    def _check_urls(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one URL")
        for url in value:
            if not url.startswith(("http://", "https://")):
                raise ValueError("each URL must start with http:// or https://")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_db(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("one of DEBUG, INFO, WARNING, ERROR")
        return value.upper()

    @model_validator(mode="after")
    def _one_key(self) -> RelayerSettings:
        if self.keystore is None and self.anvil_account is None:
            raise ValueError(
                "set keystore (and keystore_passphrase) or, on a devnet, anvil_account"
            )
        if self.keystore is not None and self.anvil_account is not None:
            raise ValueError("set keystore or anvil_account, not both")
        if self.keystore is not None and self.keystore_passphrase is None:
            raise ValueError("keystore_passphrase is required with keystore")
        return self


def env_name(field: str) -> str:
    return PREFIX + field.upper()


def _one_line(exc: ValidationError) -> str:
    """The first error of `exc` as one line naming the setting; the value is never shown."""
    error = exc.errors(include_input=False, include_url=False)[0]
    loc = [str(p) for p in error.get("loc", ()) if not isinstance(p, int)]
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if not loc:  # a model-level check: the message names the settings itself
        return f"bad settings: {message}"
    return f"bad setting {env_name(loc[0])} (--{loc[0].replace('_', '-')}): {message}"


def build_parser() -> argparse.ArgumentParser:
    """`python -m relayer --help`: one flag per setting, with its environment variable."""
    parser = argparse.ArgumentParser(
        prog="strikeline-relayer",
        description=(
            "Strikeline relayer: HTTP/WebSocket gateway, matcher, submitter and chain follower "
            f"in one process. Every flag may also be set as {PREFIX}<NAME> in the environment, "
            f"a .env file, or a file <name> in the directory {PREFIX}SECRETS_DIR."
        ),
    )
    for name, info in RelayerSettings.model_fields.items():
        default = info.default
        shown = "" if info.is_required() or default is None else f" (default {default})"
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            default=None,
            metavar=name.upper(),
            help=f"{info.description}{shown}; env {env_name(name)}",
        )
    return parser


def load_settings(
    argv: list[str] | None = None, env: dict[str, str] | None = None
) -> RelayerSettings:
    """Settings from the command line over the environment, `.env` and the secrets dir.

    Raises:
        SettingError: one line naming the first bad or missing setting.
    """
    args = build_parser().parse_args(argv or [])
    given = {k: v for k, v in vars(args).items() if v is not None}
    environ = os.environ if env is None else env
    secrets_dir = environ.get(PREFIX + "SECRETS_DIR")
    if secrets_dir and not Path(secrets_dir).is_dir():
        raise SettingError(f"bad setting {PREFIX}SECRETS_DIR: not a directory")
    factory: Any = RelayerSettings  # pydantic-settings' private init arguments are untyped
    try:
        if env is not None:  # tests: read this mapping instead of the process environment
            merged = {
                k.removeprefix(PREFIX).lower(): v for k, v in env.items() if k.startswith(PREFIX)
            }
            merged.pop("secrets_dir", None)
            merged.update(given)
            settings: RelayerSettings = factory(_env_file=None, _secrets_dir=secrets_dir, **merged)
            return settings
        settings = factory(_secrets_dir=secrets_dir, **given)
        return settings
    except ValidationError as exc:
        raise SettingError(_one_line(exc)) from None


class Deployment:
    """What the relayer needs from the deploy script's address file."""

    def __init__(
        self, chain_id: int, ledger: str, clearinghouse: str, oracle: str | None, block_number: int
    ):
        self.chain_id = chain_id
        self.ledger = ledger
        self.clearinghouse = clearinghouse
        self.oracle = oracle
        self.block_number = block_number


def read_deployment(path: Path) -> Deployment:
    """Parse the address file (`contracts.Ledger`, `contracts.Clearinghouse`, `chain_id`).

    Raises:
        SettingError: naming the deployment setting and what is wrong with the file.
    """
    where = f"bad setting {env_name('deployment')}"
    try:
        data = json.loads(Path(path).read_text())
    except OSError:
        raise SettingError(f"{where}: cannot read {path}") from None
    except ValueError:
        raise SettingError(f"{where}: {path} is not JSON") from None
    try:
        contracts = data["contracts"]
        ledger = check_address("contracts.Ledger", contracts["Ledger"])
        clearinghouse = check_address("contracts.Clearinghouse", contracts["Clearinghouse"])
        oracle = contracts.get("Oracle")
        return Deployment(
            int(data["chain_id"]),
            ledger,
            clearinghouse,
            None if oracle is None else check_address("contracts.Oracle", oracle),
            int(data.get("block_number", 0)),
        )
    except KeyError as exc:
        raise SettingError(f"{where}: {path} has no {exc.args[0]} (not a v2 deployment?)") from None
    except (InvalidArgument, TypeError, ValueError) as exc:
        raise SettingError(f"{where}: {path}: {exc}") from None
