"""A JSON-RPC proxy that fails on purpose: errors, dropped connections and hung replies."""

from __future__ import annotations

import random
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FlakyProxy:
    """Forwards POSTs to `upstream`; a `failure_rate` share of calls fail in one of three ways.

    The ways: an HTTP 502, a connection closed without an answer, a reply held back for
    `hang` seconds (longer than the client's timeout) and then dropped, or the request
    forwarded to the node and its answer lost (the node acted; the client never hears).
    Seeded, so a test run replays the same faults.
    """

    def __init__(self, upstream: str, failure_rate: float, hang: float = 5.0, seed: int = 7):
        self.upstream = upstream
        self.failure_rate = failure_rate
        self.hang = hang
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.counts = {"forwarded": 0, "http_error": 0, "dropped": 0, "hung": 0, "lost_answer": 0}
        self.stopping = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fault = proxy._pick_fault()
                if fault == "http_error":
                    self.send_response(502)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if fault == "dropped":
                    self.close_connection = True
                    return
                if fault == "hung":
                    proxy.stopping.wait(proxy.hang)
                    self.close_connection = True
                    return
                request = urllib.request.Request(
                    proxy.upstream, body, {"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=10) as response:
                    answer = response.read()
                if fault == "lost_answer":
                    self.close_connection = True
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _pick_fault(self) -> str:
        with self.lock:
            if self.random.random() >= self.failure_rate:
                self.counts["forwarded"] += 1
                return "forwarded"
            fault = self.random.choice(["http_error", "dropped", "hung", "lost_answer"])
            self.counts[fault] += 1
            return fault

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll `predicate` until it is true or `timeout` passes (a bound for failures, not a timer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
