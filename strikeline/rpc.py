"""JSON-RPC over several nodes: short timeouts, failover, and demotion of nodes that lag behind.

A keeper or the relayer's submitter must not stall for 12 s because one node hangs (web3.py's
default HTTP provider retries a failed call several times with back-off), nor act on a node
that serves an old head. `RpcPool` sends each call to the first usable node in this order:

1. nodes that are up and at (or within `max_lag` blocks of) the best head seen, in the order
   they were configured (the first URL is the primary);
2. nodes that are up but lag by more than `max_lag` blocks ("demoted"): used only when no
   fresh node answers;
3. nodes in their cool-down after a failure: a last resort before giving up.

A node fails a call when the transport fails: connection refused or reset, no answer within
`timeout` seconds (2 s by default), an HTTP error status (429 and 5xx included) or a body that is
not JSON-RPC. The pool then puts it in cool-down (`cooldown` seconds, doubled for each failure in
a row up to a minute; an answer resets it) and tries the next node with the same request, so
one call costs at most `timeout` per node. Re-sending is safe for
every method the SDK uses: reads are pure and `eth_sendRawTransaction` of the same signed bytes
is the same transaction (a second node answers "already known" or "nonce too low").

A JSON-RPC error answer (a revert, "nonce too low", an unknown method) is the node's verdict,
not a node failure: it goes back to the caller unchanged (`RpcPool.request` raises
`NodeError`; through `web3()`, web3.py raises its usual exceptions).

Heads are refreshed at most every `head_interval` seconds: the first call after that starts a
background thread that asks every node for `eth_blockNumber` in parallel, so a hung node never
delays a caller for that. `check_heads()` refreshes now and waits for the answers;
`head_interval=None` leaves refreshing to it alone.

`pool.web3()` is a `web3.Web3` whose provider is the pool, so `strikeline.bindings` objects run
on top of it unchanged.

RPC URLs often carry an API key in their path or query; logs and errors name a node only by its
`label` (scheme, host and port).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import CancelledError, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from itertools import count
from typing import Any
from urllib.parse import urlsplit

import httpx
from web3 import Web3
from web3._utils.encoding import Web3JsonEncoder
from web3.providers import JSONBaseProvider
from web3.types import RPCEndpoint, RPCResponse

from strikeline.errors import StrikelineError

log = logging.getLogger("strikeline.rpc")

#: The longest a failing node is left out (its cool-down doubles per failure in a row).
MAX_COOLDOWN = 60.0


class RpcError(StrikelineError):
    """Base class of this module's errors."""


class NoNodeAvailable(RpcError):
    """Every node failed the call (the message lists each one's failure)."""


class NodeError(RpcError):
    """A node answered the call with a JSON-RPC error object."""

    def __init__(self, method: str, error: dict[str, Any]):
        self.code = int(error.get("code", 0))
        self.message = str(error.get("message", ""))
        self.data = error.get("data")
        super().__init__(f"{method}: {self.message} (code {self.code})")


def node_label(url: str) -> str:
    """`scheme://host:port` of `url`: enough to tell nodes apart, without keys or passwords."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


@dataclass
class NodeStatus:
    """What the pool knows about one node (a snapshot; see `RpcPool.nodes`)."""

    label: str
    head: int | None = None
    demoted: bool = False
    down_until: float = 0.0  # monotonic time the cool-down ends
    failures: int = 0  # consecutive transport failures
    last_error: str = ""
    calls: int = 0  # callers' requests this node answered (head checks not counted)

    @property
    def up(self) -> bool:
        return time.monotonic() >= self.down_until


@dataclass
class _Node:
    url: str = field(repr=False)
    status: NodeStatus


class RpcPool:
    """JSON-RPC over several node URLs with timeouts, failover and lag demotion (thread-safe)."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        timeout: float = 2.0,
        max_lag: int = 3,
        cooldown: float = 5.0,
        head_interval: float | None = 2.0,
    ):
        if not urls:
            raise RpcError("no RPC URL given")
        self.timeout = timeout
        self.max_lag = max_lag
        self.cooldown = cooldown
        self.head_interval = head_interval
        self._nodes = [_Node(url, NodeStatus(node_label(url))) for url in urls]
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=8),
        )
        self._lock = threading.Lock()
        self._ids = count(1)
        self._heads_checked = float("-inf")
        self._refreshing = False
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=len(urls), thread_name_prefix="rpc-head")

    def __repr__(self) -> str:
        return f"RpcPool({[n.status.label for n in self._nodes]})"

    # ----------------------------------------------------------------------------- calls

    def request(self, method: str, params: Sequence[Any] = ()) -> Any:
        """The `result` of one JSON-RPC call, answered by the first usable node.

        Raises:
            NodeError: the node answered with a JSON-RPC error.
            NoNodeAvailable: every node failed (timeout, transport, HTTP status, bad body).
        """
        answer = self.request_raw(method, params)
        if "error" in answer:
            raise NodeError(method, answer["error"])
        return answer.get("result")

    def request_raw(self, method: str, params: Sequence[Any] = ()) -> dict[str, Any]:
        """The whole JSON-RPC answer (`result` or `error`) of the first node that gives one.

        Raises:
            NoNodeAvailable: every node failed.
        """
        self._maybe_refresh_heads()
        body = json.dumps(
            {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)},
            cls=Web3JsonEncoder,
        )
        failures: list[str] = []
        for node in self._ordered():
            try:
                answer = self._post(node, body)
            except RpcError as exc:
                failures.append(f"{node.status.label}: {exc}")
                self._mark_down(node, str(exc))
                continue
            self._mark_ok(node, count_call=True)
            return answer
        raise NoNodeAvailable(f"{method}: every RPC node failed ({'; '.join(failures)})")

    def request_batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[dict[str, Any]]:
        """The whole answers of `calls` sent as one JSON-RPC batch, in the order of `calls`.

        One HTTP round trip for many reads (a keeper reading dozens of positions at one
        block). The batch goes to the first node that answers all of it, like `request_raw`.

        Raises:
            NoNodeAvailable: every node failed, or none answered the whole batch.
        """
        if not calls:
            return []
        self._maybe_refresh_heads()
        ids = [next(self._ids) for _ in calls]
        body = json.dumps(
            [
                {"jsonrpc": "2.0", "id": i, "method": m, "params": list(p)}
                for i, (m, p) in zip(ids, calls, strict=True)
            ],
            cls=Web3JsonEncoder,
        )
        failures: list[str] = []
        for node in self._ordered():
            try:
                answers = self._post_batch(node, body)
                by_id = {a.get("id"): a for a in answers}
                if set(by_id) != set(ids):
                    raise RpcError("batch answer is incomplete")
            except RpcError as exc:
                failures.append(f"{node.status.label}: {exc}")
                self._mark_down(node, str(exc))
                continue
            self._mark_ok(node, count_call=True)
            return [by_id[i] for i in ids]
        raise NoNodeAvailable(
            f"batch of {len(calls)}: every RPC node failed ({'; '.join(failures)})"
        )

    def _post_batch(self, node: _Node, body: str) -> list[dict[str, Any]]:
        answers = self._send(node, body)
        if not isinstance(answers, list) or not all(isinstance(a, dict) for a in answers):
            raise RpcError("answer is not a JSON-RPC batch")
        return answers

    def _post(self, node: _Node, body: str) -> dict[str, Any]:
        answer = self._send(node, body)
        if not isinstance(answer, dict) or ("result" not in answer and "error" not in answer):
            raise RpcError("answer is not JSON-RPC")
        return answer

    def _send(self, node: _Node, body: str) -> Any:
        """POST `body` to `node`; its decoded JSON, or RpcError for any transport failure."""
        try:
            response = self._client.post(
                node.url, content=body, headers={"Content-Type": "application/json"}
            )
        except httpx.TimeoutException:
            raise RpcError(f"no answer within {self.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise RpcError(f"transport error ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise RpcError(f"HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise RpcError("answer is not JSON") from None

    def _ordered(self) -> list[_Node]:
        with self._lock:
            fresh = [n for n in self._nodes if n.status.up and not n.status.demoted]
            stale = [n for n in self._nodes if n.status.up and n.status.demoted]
            cooling = sorted(
                (n for n in self._nodes if not n.status.up), key=lambda n: n.status.down_until
            )
        return fresh + stale + cooling

    def _mark_down(self, node: _Node, error: str) -> None:
        with self._lock:
            status = node.status
            status.failures += 1
            status.last_error = error
            # doubles with each failure in a row: a node that stays down costs one timeout
            # a minute at most, not one every `cooldown`
            pause = min(self.cooldown * 2 ** min(status.failures - 1, 16), MAX_COOLDOWN)
            status.down_until = time.monotonic() + pause
        log.warning("rpc node %s failed: %s; cooling down %g s", status.label, error, pause)

    def _mark_ok(self, node: _Node, count_call: bool = False) -> None:
        with self._lock:
            node.status.calls += count_call
            if node.status.failures:
                log.info("rpc node %s answers again", node.status.label)
            node.status.failures = 0
            node.status.down_until = 0.0

    # ----------------------------------------------------------------------------- heads

    def check_heads(self) -> dict[str, int | None]:
        """Ask every node for its head now; demote those more than `max_lag` behind the best.

        Returns each node's head by label (None for a node that failed to answer).
        """
        body_for = {
            id(n): json.dumps(
                {"jsonrpc": "2.0", "id": 0, "method": "eth_blockNumber", "params": []}
            )
            for n in self._nodes
        }
        futures = {
            id(n): self._executor.submit(self._head_of, n, body_for[id(n)]) for n in self._nodes
        }
        heads = {id(n): futures[id(n)].result() for n in self._nodes}
        known = [h for h in heads.values() if h is not None]
        best = max(known) if known else None
        with self._lock:
            self._heads_checked = time.monotonic()
            for node in self._nodes:
                head = heads[id(node)]
                status = node.status
                if head is None:
                    continue
                status.head = head
                lagging = best is not None and best - head > self.max_lag
                if lagging != status.demoted:
                    log.warning(
                        "rpc node %s %s (head %d, best %s)",
                        status.label,
                        "demoted: it lags" if lagging else "promoted: caught up",
                        head,
                        best,
                    )
                status.demoted = lagging
        return {n.status.label: heads[id(n)] for n in self._nodes}

    def _head_of(self, node: _Node, body: str) -> int | None:
        try:
            answer = self._post(node, body)
            if "error" in answer:
                raise RpcError(f"eth_blockNumber: {answer['error']}")
            head = int(answer["result"], 16)
        except (RpcError, TypeError, ValueError) as exc:
            self._mark_down(node, str(exc))
            return None
        self._mark_ok(node)
        return head

    def _maybe_refresh_heads(self) -> None:
        """Start a head refresh in a background thread if one is due and none is running."""
        if len(self._nodes) < 2 or self.head_interval is None:
            return
        with self._lock:
            due = time.monotonic() - self._heads_checked >= self.head_interval
            if not due or self._refreshing or self._closed:
                return
            self._refreshing = True
        threading.Thread(target=self._refresh, name="rpc-heads", daemon=True).start()

    def _refresh(self) -> None:
        try:
            self.check_heads()
        except (RuntimeError, CancelledError):
            pass  # the pool was closed meanwhile (executor shut down, its queued reads cancelled)
        finally:
            with self._lock:
                self._refreshing = False

    # ----------------------------------------------------------------------------- views

    @property
    def nodes(self) -> list[NodeStatus]:
        """A snapshot of every node's status, in configured order."""
        with self._lock:
            return [replace(n.status) for n in self._nodes]

    def web3(self) -> Web3:
        """A `Web3` whose calls go through this pool (for `strikeline.bindings`)."""
        return Web3(PoolProvider(self))

    def close(self) -> None:
        """Close the HTTP connections and the head-check threads."""
        with self._lock:
            self._closed = True
        self._client.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> RpcPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PoolProvider(JSONBaseProvider):
    """A web3.py provider that sends every request through an `RpcPool` (no retries of its own)."""

    def __init__(self, pool: RpcPool):
        super().__init__()
        self.pool = pool

    def __repr__(self) -> str:
        return f"PoolProvider({self.pool!r})"

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        try:
            answer = self.pool.request_raw(str(method), list(params or []))
        except NoNodeAvailable as exc:
            # web3.py treats OSError subclasses as connection problems (is_connected -> False)
            raise ConnectionError(str(exc)) from None
        return answer  # type: ignore[return-value]

    def is_connected(self, show_traceback: bool = False) -> bool:
        try:
            self.pool.request("eth_chainId")
        except RpcError:
            if show_traceback:
                raise
            return False
        return True
