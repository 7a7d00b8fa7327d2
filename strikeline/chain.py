"""Local anvil nodes for the demo, scripts and tests: find, start, wait, stop; time travel.

anvil comes from the npm registry (`@foundry-rs/anvil`, installed by `make install` into
`node_modules`). Its `node_modules/.bin/anvil` is a Node wrapper around a native binary in a
platform package; this module runs the native binary directly when it finds it (it starts in
about 50 ms and a signal reaches it without a relay), and falls back to the wrapper, then to
whatever `anvil` is on PATH. `STRIKELINE_ANVIL` overrides the search.

Nothing here depends on ape: the JSON-RPC calls go over plain HTTP, so keepers, the relayer
and their tests can use the same node management.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from strikeline.errors import StrikelineError

#: anvil's default mnemonic, which is also ape's default test mnemonic (devnet keys only).
DEFAULT_MNEMONIC = "test test test test test test test test test test test junk"
LOCALHOST = "127.0.0.1"

#: A JSON-RPC request function: (method, params) -> result. `Anvil.request`, ape's
#: `provider.make_request` and `rpc_request(url)` all fit.
RequestFn = Callable[[str, list[Any]], Any]


class ChainError(StrikelineError, RuntimeError):
    """Base class of this module's errors (a `RuntimeError` too, as before)."""


class AnvilNotFoundError(ChainError):
    """No anvil binary was found (run `make install`)."""


class AnvilStartError(ChainError):
    """anvil exited or did not answer in time; the message carries the end of its log."""


class RpcError(ChainError):
    """The node answered a JSON-RPC request with an error."""


#: anvil's start banner lists each funded account's private key as "(i) 0x<64 hex>" and the
#: mnemonic they derive from; neither may reach an error message or a log.
_KEY_LINE = re.compile(r"^([ \t]*\(\d+\)[ \t]+)0x[0-9a-fA-F]{64}[ \t]*$", re.MULTILINE)
_MNEMONIC_LINE = re.compile(r"^(\s*Mnemonic:\s*).*$", re.MULTILINE)


def redact_log(text: str) -> str:
    """`text` (anvil output) with the private keys and the mnemonic of its banner replaced by
    "<not shown>"; everything else (addresses, hashes, errors) is kept."""
    return _MNEMONIC_LINE.sub(r"\1<not shown>", _KEY_LINE.sub(r"\1<not shown>", text))


def repo_root() -> Path:
    """The checkout this package lives in (the parent of `strikeline/`)."""
    return Path(__file__).resolve().parents[1]


def anvil_binary(root: Path | None = None) -> Path:
    """Locate the anvil executable.

    Order: `$STRIKELINE_ANVIL`; the native binary of `@foundry-rs/anvil`'s platform package
    under `<root>/node_modules`; `<root>/node_modules/.bin/anvil`; `anvil` on PATH.

    Raises:
        AnvilNotFoundError: none of them exists.
    """
    override = os.environ.get("STRIKELINE_ANVIL")
    if override:
        path = Path(override)
        if not path.is_file():
            raise AnvilNotFoundError(f"STRIKELINE_ANVIL={override} is not a file")
        return path
    modules = (root or repo_root()) / "node_modules"
    native = sorted(modules.glob("@foundry-rs/anvil-*/bin/anvil"))
    if native:
        return native[0]
    wrapper = modules / ".bin" / "anvil"
    if wrapper.exists():
        return wrapper
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    raise AnvilNotFoundError("anvil not found: run `make install` (npm install @foundry-rs/anvil)")


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port that was free on `host` a moment ago (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def rpc_request(url: str, timeout: float = 5.0) -> RequestFn:
    """A JSON-RPC request function for the node at `url` (plain HTTP, no retries)."""
    counter = iter(range(1, 2**62))

    def request(method: str, params: list[Any]) -> Any:
        body = json.dumps(
            {"jsonrpc": "2.0", "id": next(counter), "method": method, "params": params}
        ).encode()
        req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as response:
            answer = json.loads(response.read())
        if "error" in answer:
            raise RpcError(f"{method}: {answer['error'].get('message', answer['error'])}")
        return answer["result"]

    return request


def warp(request: RequestFn, timestamp: int) -> None:
    """Mine one block at exactly `timestamp` (must not be before the latest block's).

    `evm_setNextBlockTimestamp` followed by `evm_mine`; later blocks continue from there.
    """
    request("evm_setNextBlockTimestamp", [timestamp])
    request("evm_mine", [])


def latest_timestamp(request: RequestFn) -> int:
    """The timestamp of the latest block."""
    return int(request("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)


@dataclass
class Anvil:
    """A running anvil process that this program started; stop it with `stop()` or `with`."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    _log: IO[str] = field(repr=False)

    @property
    def url(self) -> str:
        """The node's HTTP JSON-RPC endpoint."""
        return f"http://{LOCALHOST}:{self.port}"

    def request(self, method: str, params: list[Any]) -> Any:
        """Send one JSON-RPC request and return its result."""
        return rpc_request(self.url)(method, params)

    def log_tail(self, lines: int = 20) -> str:
        """The last `lines` lines anvil wrote (stdout and stderr), its private keys and
        mnemonic blanked out (`redact_log`), so the text may go into errors and logs."""
        if not self._log.closed:
            self._log.flush()
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return redact_log("\n".join(text.splitlines()[-lines:]))

    def stop(self, timeout: float = 5.0, keep_log: bool = False) -> None:
        """Stop the process (SIGTERM, then SIGKILL after `timeout`); safe to call twice.

        The log file is deleted unless `keep_log`.
        """
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        if not self._log.closed:
            self._log.close()
        if not keep_log:
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> Anvil:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_anvil(
    *,
    port: int | None = None,
    mnemonic: str = DEFAULT_MNEMONIC,
    accounts: int = 10,
    balance_eth: int = 10_000,
    extra_args: Sequence[str] = (),
    timeout: float = 10.0,
    binary: Path | None = None,
    log_dir: Path | None = None,
) -> Anvil:
    """Start anvil on 127.0.0.1 and return once it answers `eth_chainId`.

    Args:
        port: the port to listen on; by default a free one (never assumes 8545 is free).
            With the default, a port lost to another process between the pick and anvil's
            bind is retried on a new one, up to three times.
        mnemonic: the mnemonic of the funded accounts (anvil's and ape's default).
        accounts: how many accounts to fund.
        balance_eth: each account's balance, in whole ether.
        extra_args: more anvil flags (e.g. `["--fork-url", url]`).
        timeout: seconds to wait for the node to answer.
        binary: the anvil executable; `anvil_binary()` by default.
        log_dir: where the log file goes; the system temp directory by default.

    Raises:
        AnvilStartError: anvil exited early or did not answer within `timeout`.
    """
    exe = binary or anvil_binary()
    attempts = 1 if port is not None else 3
    error: AnvilStartError | None = None
    for _ in range(attempts):
        chosen = port if port is not None else free_port()
        command = [
            str(exe),
            "--host",
            LOCALHOST,
            "--port",
            str(chosen),
            "--mnemonic",
            mnemonic,
            "--accounts",
            str(accounts),
            "--balance",
            str(balance_eth),
            *extra_args,
        ]
        log = tempfile.NamedTemporaryFile(  # closed by Anvil.stop
            "w+", prefix=f"anvil-{chosen}-", suffix=".log", dir=log_dir, delete=False
        )
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        node = Anvil(process, chosen, Path(log.name), log)
        try:
            _wait_until_ready(node, timeout)
            return node
        except AnvilStartError as exc:
            node.stop()
            error = exc
    assert error is not None
    raise error


def _wait_until_ready(node: Anvil, timeout: float) -> None:
    """Poll `eth_chainId` until the node answers, it exits, or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        if node.process.poll() is not None:
            raise AnvilStartError(
                f"anvil exited with code {node.process.returncode}:\n{node.log_tail()}"
            )
        try:
            rpc_request(node.url, timeout=1.0)("eth_chainId", [])
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise AnvilStartError(f"anvil did not answer within {timeout} s:\n{node.log_tail()}")
        time.sleep(0.05)
