"""The keepers' settings: pydantic-settings, `STRIKELINE_KEEPER_` variables, `.env`, secrets.

Every field can be set as an environment variable (`STRIKELINE_KEEPER_RPC_URLS=...`), in a
`.env` file in the working directory, or as a file named after the field in the secrets
directory (`$STRIKELINE_KEEPER_SECRETS_DIR`, default `/run/secrets` when it exists) named
like the variable (`STRIKELINE_KEEPER_GAS_PASSPHRASE`), which is where passphrases belong.
Lists are comma-separated.

Keys are given as *key specs*:

- a path to an encrypted V3 keystore (geth, ape, eth-account), with its passphrase in
  `*_PASSPHRASE` (a `SecretStr`, best as a file in the secrets directory);
- `anvil:N`, anvil's public test account N, accepted only when `chain_id` is a local
  devnet's (31337, 1337).

The report-signing key (`REPORTER_KEY`) signs EIP-712 price reports and never pays gas; the
gas key (`GAS_KEY`) sends transactions. The same key in both is refused: a reporter key on a
hot wallet that pays gas widens what a stolen gas key can do.

`load_settings()` raises `SettingsError` with one line that names the bad field and never
its value (pydantic's own message quotes the input, which may be a passphrase).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from keepers.errors import KeeperError

ENV_PREFIX = "STRIKELINE_KEEPER_"
DEFAULT_SECRETS_DIR = Path("/run/secrets")
LOCAL_CHAIN_IDS = frozenset({31337, 1337})
_ANVIL_KEY = re.compile(r"^anvil:(\d{1,3})$")
_SOURCE_KINDS = ("coinbase", "binance", "kraken", "chainlink", "simulated")


class SettingsError(KeeperError):
    """A setting is missing or invalid; the message is one line without any value."""


def _split(value: Any) -> Any:
    """A comma-separated string as a list (pydantic-settings would expect JSON)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CommaList = Annotated[list[str], NoDecode]


class KeeperSettings(BaseSettings):
    """Settings of a keeper process (one role, or all)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        hide_input_in_errors=True,
    )

    # chain
    rpc_urls: CommaList = Field(min_length=1)
    """JSON-RPC URLs, the first is the primary; the rest are failovers."""
    chain_id: int = Field(gt=0)
    """The chain the keeper is meant for; checked against the nodes at boot."""
    deployment_file: Path
    """The addresses file the deploy script writes (`.build/deployments/<chain>.json`)."""
    rpc_timeout: float = Field(2.0, gt=0, le=30)

    # storage: the reporters' board and the transaction journal
    database_url: SecretStr = SecretStr("sqlite:///keepers.db")
    """`sqlite:///path` (one machine) or `postgresql://...` (several machines)."""

    # keys
    reporter_key: str | None = None
    reporter_passphrase: SecretStr | None = None
    gas_key: str | None = None
    gas_passphrase: SecretStr | None = None

    # the asset and its price sources
    asset: str | None = None
    """The underlying whose spot price is reported; the deployment's WETH by default."""
    sources: CommaList = Field(default_factory=list)
    """Source specs: `coinbase:ETH/USD`, `binance:ETH/USDT`, `kraken:ETH/USD` (each with an
    optional `@http://base-url`), `chainlink:0xFEED`, `simulated:SEED:PRICE[:STEP]` (PRICE
    with 8 decimals; the path starts at the deployment block's time)."""
    source_timeout: float = Field(2.0, gt=0, le=30)

    # thresholds
    max_age: int = Field(60, gt=0)
    max_future: int = Field(15, ge=0)
    min_sources: int = Field(1, ge=1)
    outlier_bps: int = Field(100, gt=0, lt=10_000)
    max_spread_bps: int = Field(150, gt=0, lt=10_000)
    deviation_bps: int = Field(50, gt=0, lt=10_000)
    heartbeat: int = Field(1_800, gt=0)
    submit_margin: int = Field(30, ge=0)
    """Seconds kept between a report's age and the Oracle's `max_age` when submitting, so a
    report does not go stale while its transaction waits for a block."""
    relay_wait: int = Field(10, ge=0)
    """Seconds of chain time a report waits on the board for a quorum of co-signers before
    it is relayed alone (then it is stored and counts with the others' stored reports)."""

    # settlement
    dispute_bps: int = Field(50, gt=0, lt=10_000)
    """The disputer replaces a reported expiry price farther than this from its own."""
    settle_batch: int = Field(32, ge=1, le=64)
    """Positions per `settle_many` / `redeem_many` (the Clearinghouse takes at most 64)."""

    # liquidation
    min_reward: int = Field(0, ge=0)
    """Collateral-token units a liquidation's simulated reward must reach (pays the gas)."""
    max_exposure: int = Field(100 * 10**8, gt=0)
    """Option units (8 decimals) taken over from one account in one transaction."""
    max_total_exposure: int = Field(1_000 * 10**8, gt=0)
    """Option units (8 decimals) all liquidations of one pass and those sent but not yet
    confirmed may take over together."""

    # transactions
    confirmations: int = Field(2, ge=1)
    bump_after_blocks: int = Field(3, ge=1)
    max_fee_gwei: int = Field(500, gt=0)

    # schedules (seconds)
    oracle_interval: float = Field(5.0, gt=0)
    tx_interval: float = Field(1.0, gt=0)
    settlement_interval: float = Field(15.0, gt=0)
    liquidation_interval: float = Field(5.0, gt=0)
    misfire_grace: int = Field(30, ge=1)
    once_wait: float = Field(60.0, ge=0)
    """With `--once`: how long to wait for sent transactions to confirm before exiting."""

    # high availability: instances of one keeper (same keys) elect one active instance
    leader_url: SecretStr | None = None
    """A `postgresql://` URL: compete for leadership (advisory lock with a heartbeat); the
    standby runs no job until it leads. Unset: this instance always acts."""
    leader_lease: float = Field(2.0, ge=1.0, le=60.0)

    # health and metrics (always bound to 127.0.0.1)
    metrics_port: int = Field(0, ge=0, le=65_535)
    """0: no HTTP server."""

    @field_validator("rpc_urls", "sources", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("rpc_urls")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("http://", "https://")):
                raise ValueError("each RPC URL must start with http:// or https://")
        return value

    @field_validator("sources")
    @classmethod
    def _sources(cls, value: list[str]) -> list[str]:
        for spec in value:
            kind = spec.split(":", 1)[0]
            if kind not in _SOURCE_KINDS or ":" not in spec:
                raise ValueError(
                    f"a source is KIND:ARGS with KIND one of {', '.join(_SOURCE_KINDS)}"
                )
        return value

    @field_validator("asset")
    @classmethod
    def _asset(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"0x[0-9a-fA-F]{40}", value):
            raise ValueError("must be a 20-byte hex address")
        return value

    @model_validator(mode="after")
    def _keys(self) -> KeeperSettings:
        for name in ("reporter", "gas"):
            spec: str | None = getattr(self, f"{name}_key")
            if spec is None:
                continue
            if _ANVIL_KEY.match(spec):
                if self.chain_id not in LOCAL_CHAIN_IDS:
                    raise ValueError(
                        f"{name}_key: anvil test keys are public, refused on chain {self.chain_id}"
                    )
            elif getattr(self, f"{name}_passphrase") is None:
                raise ValueError(
                    f"{name}_key: a keystore needs {ENV_PREFIX}{name.upper()}_PASSPHRASE"
                )
        if self.reporter_key is not None and self.reporter_key == self.gas_key:
            raise ValueError(
                "reporter_key and gas_key name the same key: a report-signing key never pays gas"
            )
        return self


def secrets_dir() -> Path | None:
    """`$STRIKELINE_KEEPER_SECRETS_DIR`, else /run/secrets if it exists, else None."""
    given = os.environ.get(ENV_PREFIX + "SECRETS_DIR")
    if given:
        return Path(given)
    return DEFAULT_SECRETS_DIR if DEFAULT_SECRETS_DIR.is_dir() else None


def describe(error: ValidationError) -> str:
    """The first problem of a validation error on one line: field and reason, never the value."""
    first = error.errors(include_input=False, include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    more = error.error_count() - 1
    suffix = f" (and {more} more)" if more else ""
    if not where:  # a rule across fields: its message names them
        return f"settings: {message}{suffix}"
    return f"setting {ENV_PREFIX}{where.upper()}: {message}{suffix}"


def load_settings(**overrides: Any) -> KeeperSettings:
    """The settings from the environment, `.env` and the secrets directory (`overrides` win).

    Raises:
        SettingsError: one line naming the first invalid or missing setting.
    """
    kwargs: dict[str, Any] = dict(overrides)
    directory = secrets_dir()
    if directory is not None:
        if not directory.is_dir():
            raise SettingsError(f"setting {ENV_PREFIX}SECRETS_DIR: {directory} is not a directory")
        kwargs["_secrets_dir"] = directory
    try:
        return KeeperSettings(**kwargs)
    except ValidationError as exc:
        raise SettingsError(describe(exc)) from None
