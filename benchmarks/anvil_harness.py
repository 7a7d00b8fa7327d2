"""A small harness for benchmarks that run the contracts on a real anvil node.

`Anvil` starts `node_modules/.bin/anvil` on a free loopback port, waits until it
answers, connects web3.py (no retry middleware, so a dead node fails fast) and
stops the node again on `close`, on leaving a `with` block, or at interpreter
exit, whichever comes first, even when the benchmark raised. Contracts are
compiled with the virtualenv's `vyper` (`vyper -f abi,bytecode`) and cached
under `.build/bench/`, keyed by the vyper and snekmate versions and every `.vy`
and `.vyi` file under `contracts/` (a contract may import any of them).

Typical use::

    with Anvil(hardfork="prague") as node:
        token = node.deploy("test/MockERC20", "USD Coin", "USDC", 6)
        receipt = node.transact(token.functions.mint(node.accounts[1], 10**6))
        print(receipt["gasUsed"])
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any

from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = ROOT / "contracts"
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"
VYPER = Path(sys.executable).with_name("vyper")
CACHE = ROOT / ".build" / "bench"

START_TIMEOUT_S = 15.0
RPC_TIMEOUT_S = 10.0


class HarnessError(RuntimeError):
    """The node, the compiler or a transaction did not do what the benchmark needs."""


@dataclass(frozen=True)
class Artifact:
    """A compiled contract: its ABI and its deployment bytecode."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str


def _detach_and_tie_to_parent() -> None:
    """In the child before exec: own process group, and SIGTERM when the parent dies.

    The process group lets `close` stop the npm wrapper and the real binary together;
    the parent-death signal (Linux `prctl(PR_SET_PDEATHSIG)`) stops the node even if
    the benchmark is killed without running its cleanup. The wrapper forwards SIGTERM.
    Runs between fork and exec, so start the node before starting threads.
    """
    os.setsid()
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _source(name: str) -> Path:
    """`contracts/<name>.vy`; `name` may carry a subfolder, e.g. `test/MockERC20`."""
    path = CONTRACTS / f"{name}.vy"
    if not path.is_file():
        raise HarnessError(f"no contract source {path}")
    return path


@functools.cache
def _toolchain() -> str:
    """The virtualenv's vyper and snekmate versions (asked once per process)."""
    if not VYPER.exists():
        raise HarnessError(f"{VYPER} missing: run `make install`")
    proc = subprocess.run([str(VYPER), "--version"], capture_output=True, text=True, check=True)
    return f"vyper {proc.stdout.strip()}; snekmate {metadata.version('snekmate')}"


def _cache_key(path: Path) -> str:
    """Hash of the toolchain, the contract's path and every source under `contracts/`."""
    digest = hashlib.sha256()
    digest.update(_toolchain().encode())
    digest.update(path.relative_to(ROOT).as_posix().encode())
    for file in sorted([*CONTRACTS.rglob("*.vy"), *CONTRACTS.rglob("*.vyi")]):
        digest.update(file.relative_to(ROOT).as_posix().encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def compile_contract(name: str) -> Artifact:
    """Compile `contracts/<name>.vy` with the virtualenv's vyper, or load it from the cache."""
    path = _source(name)
    cached = CACHE / f"{name.replace('/', '__')}-{_cache_key(path)}.json"
    if cached.is_file():
        data = json.loads(cached.read_text())
        return Artifact(name, data["abi"], data["bytecode"])
    proc = subprocess.run(
        [str(VYPER), "-f", "abi,bytecode", str(path.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise HarnessError(f"vyper failed on {path}:\n{proc.stderr}")
    abi_line, bytecode = proc.stdout.strip().splitlines()
    artifact = Artifact(name, json.loads(abi_line), bytecode.strip())
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"abi": artifact.abi, "bytecode": artifact.bytecode}))
    tmp.replace(cached)
    return artifact


def compile_all(names: Iterable[str], workers: int = 2) -> dict[str, Artifact]:
    """Compile several contracts at once (each vyper run is a separate process)."""
    names = list(names)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(names, pool.map(compile_contract, names), strict=True))


class Anvil:
    """One anvil node on a free port, with web3.py and deploy/transact helpers."""

    def __init__(
        self,
        accounts: int = 10,
        hardfork: str | None = None,
        steps_tracing: bool = False,
        extra_args: Iterable[str] = (),
    ) -> None:
        """Configure (not yet start) a node with `accounts` unlocked dev accounts.

        `steps_tracing` makes anvil record every opcode, which `trace` needs.
        """
        self._args = ["--accounts", str(accounts), "--silent", *extra_args]
        if hardfork is not None:
            self._args += ["--hardfork", hardfork]
        if steps_tracing:
            self._args.append("--steps-tracing")
        self._proc: subprocess.Popen[bytes] | None = None
        self._artifacts: dict[str, Artifact] = {}
        self._accounts: list[str] = []
        self.port = 0
        self.w3: Web3 | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Anvil:
        """Start the node and wait until it answers JSON-RPC; retries once on a port race."""
        if not ANVIL.exists():
            raise HarnessError(f"{ANVIL} missing: run `make install` (npm install)")
        for _attempt in range(2):
            self.port = _free_port()
            self._proc = subprocess.Popen(
                [str(ANVIL), "--host", "127.0.0.1", "--port", str(self.port), *self._args],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=_detach_and_tie_to_parent,
            )
            atexit.register(self.close)
            if self._wait_ready():
                return self
            self.close()
        raise HarnessError(f"anvil did not answer on 127.0.0.1:{self.port}")

    def _wait_ready(self) -> bool:
        """Poll `eth_chainId` until the node answers or exits or the timeout passes."""
        assert self._proc is not None
        provider = Web3.HTTPProvider(
            f"http://127.0.0.1:{self.port}",
            request_kwargs={"timeout": RPC_TIMEOUT_S},
            exception_retry_configuration=None,
        )
        w3 = Web3(provider)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            try:
                w3.eth.chain_id  # noqa: B018 - the call is the readiness probe
            except Exception:  # any failure means "not yet"
                time.sleep(0.05)
                continue
            self.w3 = w3
            return True
        return False

    def close(self) -> None:
        """Stop the node (its whole process group): SIGTERM, then SIGKILL after 5 s."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        atexit.unregister(self.close)
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
            except ProcessLookupError:
                pass

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ chain access

    @property
    def web3(self) -> Web3:
        """The connected web3 instance (the node must be started)."""
        if self.w3 is None:
            raise HarnessError("anvil is not running")
        return self.w3

    @property
    def accounts(self) -> list[str]:
        """anvil's unlocked dev accounts, in its order (asked once)."""
        if not self._accounts:
            self._accounts = list(self.web3.eth.accounts)
        return self._accounts

    @property
    def chain_id(self) -> int:
        """The node's chain id (31337 unless `--chain-id` was passed)."""
        return int(self.web3.eth.chain_id)

    def rpc(self, method: str, params: list[Any]) -> Any:
        """A raw JSON-RPC call; raises `HarnessError` on an error answer."""
        answer = self.web3.provider.make_request(method, params)  # type: ignore[arg-type]
        if "error" in answer:
            raise HarnessError(f"{method} failed: {answer['error']}")
        return answer["result"]

    def timestamp(self) -> int:
        """The latest block's timestamp."""
        return int(self.web3.eth.get_block("latest")["timestamp"])

    def mine_at(self, timestamp: int) -> None:
        """Mine one block at exactly `timestamp` (which must be later than the latest)."""
        self.rpc("evm_setNextBlockTimestamp", [timestamp])
        self.rpc("evm_mine", [])

    def trace(self, tx_hash: Any) -> dict[str, Any]:
        """`debug_traceTransaction` with the struct logger (no memory, no storage dump).

        The node must have been started with `steps_tracing=True`.
        """
        return self.rpc(
            "debug_traceTransaction",
            [Web3.to_hex(tx_hash), {"disableMemory": True, "disableStorage": True}],
        )

    # ------------------------------------------------------------------ contracts

    def artifact(self, name: str) -> Artifact:
        """The compiled `contracts/<name>.vy`, compiled on first use."""
        if name not in self._artifacts:
            self._artifacts[name] = compile_contract(name)
        return self._artifacts[name]

    def preload(self, names: Iterable[str]) -> None:
        """Compile several contracts up front, two at a time."""
        missing = [n for n in names if n not in self._artifacts]
        self._artifacts.update(compile_all(missing))

    def deploy(self, name: str, *args: Any, sender: str | None = None) -> Contract:
        """Deploy `contracts/<name>.vy` with `args`, from `sender` (default: account 0)."""
        art = self.artifact(name)
        factory = self.web3.eth.contract(abi=art.abi, bytecode=art.bytecode)
        receipt = self.transact(factory.constructor(*args), sender=sender)
        return self.at(name, receipt["contractAddress"])

    def at(self, name: str, address: str) -> Contract:
        """A web3 contract object for a deployed `contracts/<name>.vy`."""
        return self.web3.eth.contract(address=address, abi=self.artifact(name).abi)

    def transact(self, call: ContractFunction | Any, sender: str | None = None) -> TxReceipt:
        """Send `call` (a bound function or constructor) from an unlocked account.

        Gas is estimated first, so a call that would revert raises with its reason
        before anything is mined; a mined failure raises `HarnessError`.
        """
        tx_hash = call.transact({"from": sender or self.accounts[0]})
        receipt = self.web3.eth.wait_for_transaction_receipt(tx_hash, timeout=RPC_TIMEOUT_S)
        if receipt["status"] != 1:
            raise HarnessError(f"transaction {tx_hash.hex()} reverted")
        return receipt
