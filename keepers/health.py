"""`/healthz` and Prometheus `/metrics` on 127.0.0.1, and the metrics themselves.

Metrics (prefix `strikeline_keeper_`):

| name | labels | meaning |
| --- | --- | --- |
| `job_last_success_timestamp_seconds` | job | wall time of the job's last successful run |
| `job_runs_total` | job, outcome | runs by outcome (`nothing_to_do`, `submitted`, `failed`...) |
| `chain_lag_seconds` | | wall time minus the latest block's timestamp |
| `pending_tx_age_seconds` | | age of the oldest open transaction in the journal |
| `gas_balance_wei` | | the gas key's balance |
| `price_age_seconds` | asset | chain time minus the Oracle's spot timestamp |
| `price_deviation_bps` | asset | the sources' aggregate against the Oracle's price |

`/healthz` answers 200 with `{"status": "ok", ...}` when every job succeeded within
`stale_after` of its interval, else 503 with `"status": "stale"`. It shows job names,
times and one-line error kinds: nothing from the settings.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

HOST = "127.0.0.1"


@dataclass
class JobHealth:
    interval: float
    last_success: float = 0.0
    last_outcome: str = ""
    last_error: str = ""
    started: float = field(default_factory=time.time)


class Metrics:
    """The keeper's metrics in their own registry, and the jobs' health."""

    def __init__(self, role: str, stale_after: float = 3.0):
        self.role = role
        self.stale_after = stale_after
        self.registry = CollectorRegistry()
        prefix = "strikeline_keeper_"
        self.last_success = Gauge(
            prefix + "job_last_success_timestamp_seconds",
            "Wall time of the job's last successful run",
            ["job"],
            registry=self.registry,
        )
        self.runs = Counter(
            prefix + "job_runs", "Job runs by outcome", ["job", "outcome"], registry=self.registry
        )
        self.chain_lag = Gauge(
            prefix + "chain_lag_seconds",
            "Wall time minus the latest block's time",
            registry=self.registry,
        )
        self.pending_tx_age = Gauge(
            prefix + "pending_tx_age_seconds",
            "Age of the oldest open transaction in the journal",
            registry=self.registry,
        )
        self.balance = Gauge(
            prefix + "gas_balance_wei", "The gas key's balance", registry=self.registry
        )
        self.price_age = Gauge(
            prefix + "price_age_seconds",
            "Chain time minus the Oracle's spot timestamp",
            ["asset"],
            registry=self.registry,
        )
        self.price_deviation = Gauge(
            prefix + "price_deviation_bps",
            "The sources' aggregate against the Oracle's price",
            ["asset"],
            registry=self.registry,
        )
        self.margin_disagreements = Counter(
            prefix + "margin_disagreements",
            "Accounts whose margin computed off chain differed from the MarginEngine's view",
            registry=self.registry,
        )
        self.liquidations_unfunded = Counter(
            prefix + "liquidations_unfunded",
            "Paying liquidations skipped: the gas key's free collateral did not cover them",
            registry=self.registry,
        )
        self.jobs: dict[str, JobHealth] = {}
        self._lock = threading.Lock()

    def add_job(self, name: str, interval: float) -> None:
        self.jobs[name] = JobHealth(interval)

    def record(self, job: str, outcome: str, error: str = "") -> None:
        self.runs.labels(job, outcome).inc()
        with self._lock:
            health = self.jobs.setdefault(job, JobHealth(0.0))
            health.last_outcome = outcome
            if error:
                health.last_error = error
            else:
                health.last_success = time.time()
                health.last_error = ""
                self.last_success.labels(job).set(health.last_success)

    def health(self) -> tuple[bool, dict[str, object]]:
        now = time.time()
        jobs = {}
        healthy = True
        with self._lock:
            for name, job in self.jobs.items():
                since = job.last_success or job.started
                ok = now - since <= self.stale_after * job.interval + 30
                healthy &= ok
                jobs[name] = {
                    "ok": ok,
                    "last_success": job.last_success or None,
                    "last_outcome": job.last_outcome,
                    "last_error": job.last_error,
                }
        return healthy, {"status": "ok" if healthy else "stale", "role": self.role, "jobs": jobs}

    def serve(self, port: int) -> HealthServer:
        """Serve `/healthz` and `/metrics` on 127.0.0.1:`port` (0: any free port) in a thread."""
        return HealthServer(self, port)


class HealthServer:
    def __init__(self, metrics: Metrics, port: int):
        owner = metrics

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path == "/healthz":
                    healthy, body = owner.health()
                    self._reply(
                        200 if healthy else 503, "application/json", json.dumps(body).encode()
                    )
                elif self.path == "/metrics":
                    self._reply(200, CONTENT_TYPE_LATEST, generate_latest(owner.registry))
                else:
                    self._reply(404, "text/plain", b"not found\n")

            def _reply(self, status: int, kind: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return  # scrapes every few seconds would flood the log

        self.server = ThreadingHTTPServer((HOST, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="keeper-health", daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
