"""End-to-end intake of the relayer: signed orders posted over HTTP on loopback, each verified
(schema, EIP-712 signature, nonces, funds), journaled (SQLite WAL, fsync per group commit) and
matched, and acknowledged.

Starts anvil, deploys the v2 system through `strikeline.bindings` (the test helper
`tests/relayer/system.py`), funds 40 makers, starts `python -m relayer` as an operator would,
pre-signs the orders, then fires them from a small keep-alive HTTP/1.1 load generator (raw asyncio
streams: an HTTP client library would be the bottleneck on 2 cores) with N connections, each
sending its next order when the previous one is answered. Prints orders/s and latency
percentiles. Goal (issue 12): 8,000 orders/s with p99 <= 20 ms on this 2-core machine; anchors:
bare Starlette + msgspec verifier 17.6k/s, FastAPI about 11k/s.

The machine is shared, so beside each figure it prints the load average and the CPU time the
relayer and the load generator spent per order (from /proc: less sensitive to other work than
orders/s). `--ceiling` measures the load generator itself against two trivial servers (a raw
uvloop protocol answering a constant 201, and a bare ASGI app on uvicorn as the relayer runs it):
the relayer cannot be measured above those figures.

    .venv/bin/python benchmarks/bench_relayer.py [--orders 20000] [--connections 64]
        [--database-url postgresql://...] [--cross] [--profile out.prof] [--ceiling]

`--cross` makes half the orders cross the book (matches, then settlement on anvil in the
background); by default buys rest below sells, so the figure is intake alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "relayer")]

from system import ONE, RelayerProcess, body, deploy, fund, new_maker, signed  # noqa: E402

from strikeline.chain import free_port, start_anvil  # noqa: E402

GOAL = "goal: 8,000 orders/s, p99 <= 20 ms (issue 12)"
ANCHORS = "anchors (same machine): bare Starlette + msgspec verifier 17.6k/s, FastAPI ~11k/s"
TICK = os.sysconf("SC_CLK_TCK")


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """The load generator on uvloop when installed (half the client CPU of asyncio's loop)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of a process (the main thread's id is the pid)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out[int(task.name)] = cpu_seconds_of(task / "stat")
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def children(pid: int) -> list[int]:
    """The child processes of `pid` (the gateway processes of the relayer)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def cpu_seconds_of(stat: Path) -> float:
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


_HEAD = (
    b"POST /v1/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n"
)
_CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


class _Client(asyncio.Protocol):
    """One keep-alive connection of the load generator: it sends its next request when the
    answer to the last one is complete. A plain protocol (no stream reader, no coroutine per
    header line): the generator shares the relayer's 2 cores, so its CPU per request counts."""

    def __init__(self, queue: list[bytes], latencies: list[float], statuses: dict[int, int]):
        self.queue, self.latencies, self.statuses = queue, latencies, statuses
        self.buffer = bytearray()
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.started = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._send_next()

    def _send_next(self) -> None:
        if not self.queue:
            self.transport.close()
            return
        payload = self.queue.pop()
        self.started = time.perf_counter()
        self.transport.write(_HEAD % len(payload) + payload)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            found = _CONTENT_LENGTH.search(buffer, 0, end + 2)
            total = end + 4 + (int(found.group(1)) if found else 0)
            if len(buffer) < total:
                return
            self.latencies.append(time.perf_counter() - self.started)
            code = int(buffer[9:12])
            self.statuses[code] = self.statuses.get(code, 0) + 1
            del buffer[:total]
            self._send_next()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def fire(
    port: int, requests: list[bytes], connections: int
) -> tuple[float, list[float], dict[int, int]]:
    """`requests` over `connections` keep-alive connections, each sending its next request
    when the last one is answered: (seconds, latencies, statuses)."""
    queue = list(reversed(requests))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    clients = []
    for _ in range(connections):
        _, client = await loop.create_connection(
            lambda: _Client(queue, latencies, statuses), "127.0.0.1", port
        )
        clients.append(client)
    await asyncio.gather(*(c.done for c in clients))
    return time.perf_counter() - started, latencies, statuses


TRIVIAL_SERVER = r"""
import sys, uvloop, asyncio
RESPONSE = (b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n"
            b"content-length: 300\r\n\r\n" + b" " * 300)
kind, port = sys.argv[1], int(sys.argv[2])
if kind == "raw":
    class P(asyncio.Protocol):
        def connection_made(self, t): self.t, self.buf = t, b""
        def data_received(self, data):
            self.buf += data
            while True:  # one answer per complete request (headers + Content-Length body)
                head, sep, rest = self.buf.partition(b"\r\n\r\n")
                if not sep: return
                n = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                if len(rest) < n: return
                self.buf = rest[n:]
                self.t.write(RESPONSE)
    async def main():
        server = await asyncio.get_running_loop().create_server(P, "127.0.0.1", port)
        print("ready", flush=True)
        await server.serve_forever()
    uvloop.run(main())
else:
    import uvicorn
    async def app(scope, receive, send):
        while (await receive()).get("more_body"): pass
        await send({"type": "http.response.start", "status": 201,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", b"300")]})
        await send({"type": "http.response.body", "body": b" " * 300})
    print("ready", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", loop="uvloop",
                http="httptools", lifespan="off", interface="asgi3", access_log=False)
"""


def ceiling(requests: list[bytes], connections: int) -> None:
    """The load generator against trivial servers: the most it can measure on this machine."""
    for kind, what in (("raw", "raw uvloop protocol"), ("asgi", "bare ASGI app on uvicorn")):
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-c", TRIVIAL_SERVER, kind, str(port)], stdout=subprocess.PIPE
        )
        try:
            assert server.stdout is not None
            server.stdout.readline()
            for _ in range(100):  # uvicorn binds after printing
                try:
                    run(fire(port, requests[:50], 1))
                    break
                except (OSError, IndexError):
                    time.sleep(0.2)
            cpu0, client0 = cpu_seconds(server.pid), time.process_time()
            elapsed, lat, _ = run(fire(port, requests, connections))
            server_cpu = cpu_seconds(server.pid) - cpu0
            client_cpu = time.process_time() - client0
        finally:
            server.terminate()
            server.wait()
        lat.sort()
        q = statistics.quantiles(lat, n=100)
        n = len(lat)
        print(
            f"ceiling, {what}: {n / elapsed:,.0f} req/s, p99 {q[98] * 1e3:.1f} ms; "
            f"CPU per request: server {server_cpu / n * 1e6:.0f} us, "
            f"client {client_cpu / n * 1e6:.0f} us ({load()})"
        )


def settle_figures(c, proc: RelayerProcess, first_block: int, expected: int) -> None:
    """Wait until every match is confirmed; print confirmed matches/s and gas per match."""
    c.w3.provider.make_request("evm_setIntervalMining", [1])
    started = time.perf_counter()
    health: dict = {}
    while time.perf_counter() - started < 600:
        health = proc.get("/v1/health").json()
        if health["matchesConfirmed"] + health["matchesReverted"] >= expected:
            break
        time.sleep(0.5)
    took = time.perf_counter() - started
    gas = txs = 0
    for number in range(first_block, c.w3.eth.block_number + 1):
        block = c.w3.eth.get_block(number, full_transactions=True)
        for tx in block["transactions"]:
            if tx["from"] == c.relayer:
                gas += c.w3.eth.get_transaction_receipt(tx["hash"])["gasUsed"]
                txs += 1
    done = health["matchesConfirmed"]
    print(f"settlement: {done} matches confirmed ({health['matchesReverted']} reverted)")
    print(f"  {done / took:,.0f} matches/s after intake ended, 1 s blocks, 2 confirmations")
    if done:
        print(f"  {txs} match_orders transactions, {gas / done:,.0f} gas per match")


def measure(
    c: Any, args: argparse.Namespace, requests: list[bytes], url: str, gateways: int, workdir: Path
) -> tuple[float, float]:
    """One relayer (`gateways` gateway processes, journal at `url`) fed `requests`: prints the
    figures, returns (orders/s, p99 ms)."""
    proc = RelayerProcess(
        c,
        url,
        workdir,
        rate_ip_per_s=10**9,
        rate_ip_burst=10**9,
        rate_maker_per_s=10**9,
        rate_maker_burst=10**9,
        max_open_per_maker=10**9,
        max_open_per_instrument=10**9,
        log_level=args.log_level,
        gateway_processes=gateways,
    )
    if args.profile:
        proc.python_args = ["-m", "cProfile", "-o", str(Path(args.profile).resolve())]
    proc.start(timeout=300)  # the first start after a contract change compiles them
    try:
        warm = requests[:200]
        run(fire(proc.port, warm, 8))  # funds cache and connections warm
        first_block = c.w3.eth.block_number
        assert proc.process is not None
        load_before = load()
        cpu0, client0 = cpu_seconds(proc.process.pid), time.process_time()
        threads0 = thread_cpu(proc.process.pid)
        kids = children(proc.process.pid)
        kids0 = {g: cpu_seconds(g) for g in kids}
        attached = None
        if args.attach:  # a profiler on the relayer during the measured run, then SIGINT
            command = args.attach.replace("{pid}", str(proc.process.pid))
            if kids:
                command = command.replace("{gateway}", str(kids[0]))
            attached = subprocess.Popen("exec " + command, shell=True, stdout=subprocess.DEVNULL)
            time.sleep(1)
        elapsed, lat, statuses = run(fire(proc.port, requests[200:], args.connections))
        relayer_cpu = cpu_seconds(proc.process.pid) - cpu0
        gateway_cpu = [cpu_seconds(g) - kids0[g] for g in kids]
        threads = thread_cpu(proc.process.pid)
        main_cpu = threads[proc.process.pid] - threads0.get(proc.process.pid, 0)
        busiest = sorted(
            (v - threads0.get(k, 0) for k, v in threads.items() if k != proc.process.pid),
            reverse=True,
        )
        client_cpu = time.process_time() - client0
        load_after = load()
        if attached is not None:
            attached.send_signal(2)
            attached.wait(30)
        if args.cross:
            settle_figures(c, proc, first_block, expected=args.orders // 2)
    finally:
        if args.profile:
            proc.terminate()
        proc.stop()
        print(f"relayer log: {proc.log_path}")
    n = len(lat)
    lat.sort()
    q = statistics.quantiles(lat, n=100)
    backend = url.split(":")[0]
    rate = n / elapsed
    print(
        f"intake, {gateways} gateway processes: {n} orders in {elapsed:.2f} s "
        f"= {rate:,.0f} orders/s"
    )
    print(f"  over {args.connections} connections, journal on {backend}")
    print(
        f"latency ms: p50 {q[49] * 1e3:.1f}  p90 {q[89] * 1e3:.1f}  "
        f"p99 {q[98] * 1e3:.1f}  max {lat[-1] * 1e3:.1f}"
    )
    print(f"statuses: {statuses}")
    total_cpu = relayer_cpu + sum(gateway_cpu)
    print(
        f"CPU per order: relayer {total_cpu / n * 1e6:.0f} us "
        f"(= {n / total_cpu:,.0f} orders per CPU-second), load generator "
        f"{client_cpu / n * 1e6:.0f} us"
    )
    if gateway_cpu:
        print(
            f"  main process {relayer_cpu / n * 1e6:.0f} us, gateway processes "
            + ", ".join(f"{c / n * 1e6:.0f}" for c in gateway_cpu)
            + " us"
        )
    print(
        f"  main process threads: event loop {main_cpu / n * 1e6:.0f} us, others "
        + ", ".join(f"{c / n * 1e6:.0f}" for c in busiest[:3] if c > 0)
        + " us (the engine and signature threads), "
        + f"{sum(busiest[3:]) / n * 1e6:.0f} us in the other {len(busiest[3:])} "
        "(the follower's and submitter's RPC executor threads)"
    )
    print(f"{load_before} before, {load_after} after (2 cores, shared)")
    return rate, q[98] * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--makers", type=int, default=40)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--cross", action="store_true")
    parser.add_argument(
        "--gateways",
        default="0,1,2",
        help="STRIKELINE_RELAYER_GATEWAY_PROCESSES to measure, comma-separated (0: one process "
        "serves everything); each gets a fresh relayer and journal, the same signed orders",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure the configurations this many times, alternating",
    )
    parser.add_argument("--profile", help="write a cProfile of the relayer process here")
    parser.add_argument(
        "--attach",
        help="a command run during the measured intake, then SIGINT; {pid} is the relayer's "
        "({gateway}: its first gateway process's): e.g. 'py-spy record --pid {pid} --threads "
        "--nonblocking -f raw -o x.txt' or 'perf record -g -p {pid} -o perf.data'",
    )
    parser.add_argument("--log-level", default="WARNING", help="the relayer's (its log is kept)")
    parser.add_argument(
        "--ceiling", action="store_true", help="also fire at trivial servers (client ceiling)"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-relayer-"))
    with start_anvil(accounts=10) as node:
        c = deploy(node, workdir)
        sellers = [new_maker(c) for _ in range(args.makers // 2)]
        buyers = [new_maker(c) for _ in range(args.makers // 2)]
        for s in sellers:
            fund(c, s, c.weth, 10**9 * 10**18)
        for b in buyers:
            fund(c, b, c.usdc, 10**15 * 10**6)
        t0 = time.perf_counter()
        requests = []
        for i in range(args.orders):
            is_buy = i % 2 == 1
            maker = (buyers if is_buy else sellers)[i // 2 % len(sellers)]
            price = 100 * 10**6 - (i % 97) * 10**4 if is_buy else 200 * 10**6 + (i % 97) * 10**4
            if args.cross and is_buy:
                price = 300 * 10**6
            s = signed(c, maker, is_buy, 1_000 + i, ONE, limit_price=price)
            requests.append(json.dumps(body(s)).encode())
        sign_s = time.perf_counter() - t0
        print(f"signed {args.orders} orders in {sign_s:.1f} s (not measured below)")
        configs = [int(g) for g in args.gateways.split(",")] * args.repeat
        if args.database_url and len(configs) > 1:
            raise SystemExit("one configuration at a time on --database-url (a fresh journal each)")
        figures: dict[int, list[tuple[float, float]]] = {}
        for run_no, gateways in enumerate(configs):
            url = args.database_url or f"sqlite:///{workdir / f'relayer-{run_no}.db'}"
            rate, p99 = measure(c, args, requests, url, gateways, workdir)
            figures.setdefault(gateways, []).append((rate, p99))
    if len(configs) > 1:
        print("summary (orders/s, p99 ms), in the order run, alternating:")
        for gateways, runs in figures.items():
            print(
                f"  {gateways} gateway processes: "
                + ", ".join(f"{r:,.0f} ({p:.1f})" for r, p in runs)
                + f"; median {statistics.median(r for r, _ in runs):,.0f} orders/s"
            )
    print(GOAL)
    print(ANCHORS)
    if args.ceiling:
        ceiling(requests[200:], args.connections)


if __name__ == "__main__":
    main()
