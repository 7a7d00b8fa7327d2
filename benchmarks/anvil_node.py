"""The benchmarks' anvil node: `strikeline.chain`'s, tied to the benchmark's life.

Benchmarks compile and deploy through `strikeline.bindings` and talk to the node through
`strikeline.chain` and web3, like any SDK user. What they add is cleanup for long runs that
get killed from outside: the node runs in its own process group, which `stop` ends as a
whole (SIGTERM, then SIGKILL), `stop` also runs at interpreter exit, and on Linux the kernel
sends the node SIGTERM when the benchmark dies (`PR_SET_PDEATHSIG`), so even a benchmark
killed with SIGKILL leaves no anvil behind. `strikeline.chain.start_anvil` has no hook for
the last two (they must be set between fork and exec), hence this small launcher.

    with start_node(accounts=28, steps_tracing=True) as node:
        token = node.deploy("MockERC20", "USD Coin", "USDC", 6, sender=node.accounts[0])
        receipt = node.transact(token.functions.mint(node.accounts[1], 10**6))
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.types import TxReceipt

from strikeline.bindings import ContractBinding, send
from strikeline.chain import (
    DEFAULT_MNEMONIC,
    LOCALHOST,
    Anvil,
    AnvilStartError,
    anvil_binary,
    free_port,
    latest_timestamp,
    rpc_request,
    warp,
)

START_TIMEOUT_S = 15.0
RPC_TIMEOUT_S = 10.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Callable[[], None]:
    """The child's pre-exec step: SIGTERM when the parent dies (Linux), resolved before fork."""
    if not sys.platform.startswith("linux"):
        return lambda: None
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

    return arm


class BenchNode:
    """A running anvil (its `strikeline.chain.Anvil` handle) with web3 and SDK deploys."""

    def __init__(self, anvil: Anvil):
        self.anvil = anvil
        self.web3 = Web3(
            HTTPProvider(
                anvil.url,
                request_kwargs={"timeout": RPC_TIMEOUT_S},
                exception_retry_configuration=None,
            )
        )
        self.accounts: list[str] = list(self.web3.eth.accounts)
        self.chain_id = int(self.web3.eth.chain_id)

    def stop(self) -> None:
        """Stop the node's whole process group (SIGTERM, SIGKILL after 5 s); idempotent."""
        atexit.unregister(self.stop)
        process = self.anvil.process
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
            except ProcessLookupError:
                pass
        self.anvil.stop()  # closes and removes the log

    def timestamp(self) -> int:
        """The latest block's timestamp."""
        return latest_timestamp(self.anvil.request)

    def mine_at(self, timestamp: int) -> None:
        """Mine one block at exactly `timestamp`."""
        warp(self.anvil.request, timestamp)

    def trace(self, tx_hash: Any) -> dict[str, Any]:
        """`debug_traceTransaction` with the struct logger, no memory or storage (the node
        must have been started with `steps_tracing`)."""
        result: dict[str, Any] = self.anvil.request(
            "debug_traceTransaction",
            [Web3.to_hex(tx_hash), {"disableMemory": True, "disableStorage": True}],
        )
        return result

    def deploy(self, name: str, *args: Any, sender: str | None = None) -> Contract:
        """Deploy contract `name` (compiled and cached by `strikeline.bindings`)."""
        chosen = sender or self.accounts[0]
        return ContractBinding.deploy(self.web3, *args, sender=chosen, name=name).contract

    def transact(self, call: Any, sender: str | None = None) -> TxReceipt:
        """Send a bound function from an unlocked account and return its receipt
        (`strikeline.bindings.send`: a revert raises `TransactionFailed`)."""
        return send(self.web3, call, sender or self.accounts[0])


@contextmanager
def start_node(
    accounts: int, hardfork: str = "prague", steps_tracing: bool = False
) -> Iterator[BenchNode]:
    """Start anvil (anvil's default mnemonic, `accounts` funded) and stop it on leaving."""
    command = [
        str(anvil_binary()),
        "--mnemonic",
        DEFAULT_MNEMONIC,
        "--accounts",
        str(accounts),
        "--hardfork",
        hardfork,
        *(["--steps-tracing"] * steps_tracing),
    ]
    node = BenchNode(_launch(command))
    atexit.register(node.stop)
    try:
        yield node
    finally:
        node.stop()


def _launch(command: list[str]) -> Anvil:
    """Run `command` on a free port in its own session; retry once on a port race."""
    for _attempt in range(2):
        port = free_port()
        log = tempfile.NamedTemporaryFile(  # closed by Anvil.stop
            "w+", prefix=f"anvil-{port}-", suffix=".log", delete=False
        )
        process = subprocess.Popen(
            [*command, "--host", LOCALHOST, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent(),
        )
        anvil = Anvil(process, port, Path(log.name), log)
        deadline = time.monotonic() + START_TIMEOUT_S
        while process.poll() is None and time.monotonic() < deadline:
            try:
                rpc_request(anvil.url, timeout=1.0)("eth_chainId", [])
                return anvil
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
        tail = anvil.log_tail()
        anvil.stop()
    raise AnvilStartError(f"anvil did not start: {tail}")
