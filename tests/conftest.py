"""Shared fixtures: hypothesis profiles, titanoboa deployers and actors named by role."""

from __future__ import annotations

import gc
import signal
import threading

import boa
import pytest
from eth_account import Account
from utils import profiles
from utils.chain import actor as _actor
from utils.chain import next_create
from utils.contracts import CONTRACTS, DEPLOYERS, ROOT, contract_path
from utils.system import REPORTER_KEYS, System

__all__ = ["CONTRACTS", "ROOT", "System", "contract_path", "next_create"]


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
# example counts come only from these profiles (tests/utils/profiles.py)
profiles.register()


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


@pytest.fixture(scope="session")
def predict_create():
    """`next_create` for sub-directory conftests and tests, which cannot import this one."""
    return next_create


@pytest.fixture(scope="session")
def deployers():
    """Deployers by contract name, compiled once per session on first use (utils.contracts)."""
    return DEPLOYERS


@pytest.fixture(autouse=True)
def _isolate():
    """Every test runs in its own anchored EVM state."""
    with boa.env.anchor():
        yield


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


@pytest.fixture
def system(deployers, admin, guardian, disputer, fee_recipient, reporters) -> System:
    """The Oracle, the Ledger and the Clearinghouse beside it, deployed per test (the v2 tests
    under tests/unit/v2 override it with the session's whole system, MarginEngine included)."""
    return System(
        deployers, admin, guardian, disputer, fee_recipient, None, reporters, margin=False
    )
