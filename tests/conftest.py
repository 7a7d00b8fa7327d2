"""Shared fixtures: hypothesis profiles, titanoboa deployers and actors named by role."""

from __future__ import annotations

import gc
import os
import signal
import threading
from pathlib import Path

import boa
import pytest
from eth_account import Account
from eth_utils import to_canonical_address
from hypothesis import HealthCheck, settings

from strikeline import ids
from strikeline.oracle_reports import ordered, sign_expiry, sign_spot

ROOT = Path(__file__).resolve().parents[1]


def _safe_storage_dump(dump):
    """Wrap boa's storage dump, which it renders into the message of every revert.

    titanoboa 0.2.8 rebuilds HashMap keys from its keccak trace; a key that is itself a
    keccak output (every series id) unwraps one level too deep and raises AttributeError
    inside the revert handler, turning an expected revert into a crash. The dump is only
    decoration for error messages, so a failure to render it must not fail the test.
    """

    def safe(self):
        try:
            return dump(self)
        except (AttributeError, KeyError, TypeError, ValueError):
            return {}

    return safe


_StorageModel = boa.contracts.vyper.vyper_contract.StorageModel
_StorageModel.dump = _safe_storage_dump(_StorageModel.dump)
CONTRACTS = ROOT / "contracts"
settings.register_profile(
    "ci",
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "nightly",
    max_examples=2000,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", max_examples=20, stateful_step_count=20, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# ---------------------------------------------------------------------------------------------
# Ending a test process quietly. `import ape` (tests/sdk signs with an ape account) replaces
# Python's SIGINT handler with `sys.exit(130)`, meant for ape's own commands. pytest-xdist's
# controller tells each worker to exit once all tests ran, and execnet sends a worker SIGINT
# when it is still busy 5 s later. What keeps a worker busy is pytest's cleanup: five full
# garbage collections (to report unraisable exceptions), over the millions of objects a long
# titanoboa and hypothesis session leaves, took over 5 s on two busy cores. The SIGINT then
# raised SystemExit: 130 inside whatever ran, hypothesis's gc callback, and a traceback
# followed a green run. Both halves are fixed: ape's handler is undone after every test (an
# interrupt is a KeyboardInterrupt again), and the heap is collected once and frozen before
# pytest's cleanup, so its five collections find nothing left to walk.
# ---------------------------------------------------------------------------------------------


def _restore_default_sigint() -> None:
    """Put Python's SIGINT handler back if ape installed its own in this process."""
    handler = signal.getsignal(signal.SIGINT)
    from_ape = (getattr(handler, "__module__", None) or "").partition(".")[0] == "ape"
    if from_ape and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_finish(session):
    """Test modules that import ape at collection installed ape's handler: undo it."""
    _restore_default_sigint()


def pytest_runtest_teardown(item, nextitem):
    """A test that imported ape inside its body installed ape's handler: undo it."""
    _restore_default_sigint()


def pytest_unconfigure(config):
    """One collection (unraisable exceptions are still found and reported), then freeze the
    survivors so that pytest's five cleanup collections take milliseconds, not seconds."""
    gc.collect()
    gc.freeze()


# Oracle parameters used by the fixtures
QUORUM = 2
MAX_AGE = 3_600
MAX_DEVIATION_BPS = 5_000
LOCKING_PERIOD = 300
DISPUTE_PERIOD = 3_600
# deterministic reporter keys (test only)
REPORTER_KEYS = [bytes([i]) * 32 for i in (0x11, 0x22, 0x33)]


def next_create(sender: str, ahead: int = 0) -> str:
    """The address `sender`'s CREATE `ahead` transactions from now deploys to (boa's nonce)."""
    nonce = boa.env.evm.vm.state.get_nonce(to_canonical_address(sender))
    return ids.create_address(sender, nonce + ahead)


@pytest.fixture(scope="session")
def predict_create():
    """`next_create` for sub-directory conftests and tests, which cannot import this one."""
    return next_create


def contract_path(name: str) -> Path:
    """`contracts/<name>.vy`, or `contracts/test/<name>.vy` for a test contract."""
    path = CONTRACTS / f"{name}.vy"
    return path if path.exists() else CONTRACTS / "test" / f"{name}.vy"


@pytest.fixture(scope="session")
def deployers():
    """Compiled deployers, compiled once per session."""
    names = [
        "Ledger",
        "Clearinghouse",
        "Oracle",
        "Timelock",
        "MockERC20",
        "MockERC20NoReturn",
        "MockERC20FeeOnTransfer",
        "ReentrantToken",
    ]
    return {name: boa.load_partial(str(contract_path(name))) for name in names}


@pytest.fixture(autouse=True)
def _isolate():
    """Every test runs in its own anchored EVM state."""
    with boa.env.anchor():
        yield


def _actor(name: str) -> str:
    addr = boa.env.generate_address(name)
    boa.env.set_balance(addr, 10**21)
    return addr


@pytest.fixture(scope="session")
def admin():
    return _actor("admin")


@pytest.fixture(scope="session")
def guardian():
    return _actor("guardian")


@pytest.fixture(scope="session")
def disputer():
    return _actor("disputer")


@pytest.fixture(scope="session")
def writer():
    return _actor("writer")


@pytest.fixture(scope="session")
def holder():
    return _actor("holder")


@pytest.fixture(scope="session")
def keeper():
    return _actor("keeper")


@pytest.fixture(scope="session")
def fee_recipient():
    return _actor("fee_recipient")


@pytest.fixture(scope="session")
def stranger():
    return _actor("stranger")


@pytest.fixture(scope="session")
def reporters():
    """Reporter accounts with their private keys (they sign, never send)."""
    return [Account.from_key(k) for k in REPORTER_KEYS]


class System:
    """A deployed Strikeline system plus helpers to drive it in tests: the Oracle, the Ledger
    (tokens, free balances, full shorts, the ERC-1155 longs) and the Clearinghouse beside it
    (products, series, settlement), USDC and WETH with a WETH/USDC call and put. The v2
    tests under tests/unit/v2 use their own, fuller system (MarginEngine, relayer, spot)."""

    MAKER_FEE_BPS = 10
    TAKER_FEE_BPS = 30

    def __init__(self, deployers, admin, guardian, disputer, fee_recipient, reporters):
        self.admin, self.guardian, self.disputer = admin, guardian, disputer
        self.fee_recipient = fee_recipient
        self.reporters = reporters
        self.deployers = deployers
        with boa.env.prank(admin):
            self.oracle = deployers["Oracle"].deploy(
                admin, QUORUM, MAX_AGE, MAX_DEVIATION_BPS, LOCKING_PERIOD, DISPUTE_PERIOD
            )
            # the Ledger names the Clearinghouse deployed right after it
            self.ledger = deployers["Ledger"].deploy(
                next_create(admin, 1), admin, fee_recipient, self.MAKER_FEE_BPS, self.TAKER_FEE_BPS
            )
            self.ch = deployers["Clearinghouse"].deploy(
                self.ledger.address, self.oracle.address, admin, guardian
            )
            for r in reporters:
                self.oracle.grantRole(self.oracle.REPORTER_ROLE(), r.address)
            self.oracle.grantRole(self.oracle.DISPUTER_ROLE(), disputer)
            self.usdc = deployers["MockERC20"].deploy("USD Coin", "USDC", 6)
            self.weth = deployers["MockERC20"].deploy("Wrapped Ether", "WETH", 18)
        self.call_product = self.whitelist(self.weth, self.usdc, is_put=False)
        self.put_product = self.whitelist(self.weth, self.usdc, is_put=True)

    def whitelist(self, underlying, quote, is_put: bool) -> bytes:
        collateral = quote if is_put else underlying
        with boa.env.prank(self.admin):
            return self.ch.set_product(
                underlying.address, quote.address, collateral.address, is_put, True
            )

    def expiry(self, days_ahead: int = 7) -> int:
        return ids.next_expiry(boa.env.evm.patch.timestamp, days_ahead)

    def series(self, product: bytes, strike: int, expiry: int | None = None) -> int:
        return self.ch.create_series(product, strike, expiry or self.expiry())

    def fund(self, token, account: str, amount: int, deposit: bool = True) -> None:
        """Mint `amount` of `token` to `account` and (by default) deposit it in the Ledger."""
        token.mint(account, amount)
        if deposit:
            with boa.env.prank(account):
                token.approve(self.ledger.address, amount)
                self.ledger.deposit(token.address, amount, account)

    def write(self, writer: str, sid: int, amount: int, recipient: str | None = None) -> int:
        """Deposit exactly the full collateral needed and write `amount` of `sid` in the
        Ledger."""
        s = self.ch.series(sid)
        product = self.ch.products(s[0])
        token = self.deployers["MockERC20"].at(product[2])
        need = self.ch.collateral_required(sid, amount)
        self.fund(token, writer, need)
        with boa.env.prank(writer):
            return self.ledger.write(sid, amount, recipient or writer)

    def chain_id(self) -> int:
        return boa.env.evm.patch.chain_id

    def push_spot(self, asset, price: int, signers=None) -> int:
        now = boa.env.evm.patch.timestamp
        reports = [
            sign_spot(r.key, self.chain_id(), self.oracle.address, asset.address, price, now)
            for r in (signers or self.reporters[:QUORUM])
        ]
        return self.oracle.report_spot(asset.address, ordered(reports))

    def finalise_expiry(self, asset, expiry: int, price: int) -> None:
        """Warp past expiry + locking, report, warp past the dispute window."""
        now = boa.env.evm.patch.timestamp
        if now < expiry + LOCKING_PERIOD:
            boa.env.time_travel(seconds=expiry + LOCKING_PERIOD - now)
        self.report_expiry(asset, expiry, price)
        boa.env.time_travel(seconds=DISPUTE_PERIOD)

    def report_expiry(self, asset, expiry: int, price: int, signers=None) -> int:
        reports = [
            sign_expiry(r.key, self.chain_id(), self.oracle.address, asset.address, expiry, price)
            for r in (signers or self.reporters[:QUORUM])
        ]
        return self.oracle.report_expiry(asset.address, expiry, ordered(reports))


@pytest.fixture
def system(deployers, admin, guardian, disputer, fee_recipient, reporters) -> System:
    return System(deployers, admin, guardian, disputer, fee_recipient, reporters)
