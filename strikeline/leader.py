"""One active instance per keeper role: leader election on a PostgreSQL advisory lock.

Two or more instances of a role (`settlement`, `liquidation`, ...) run at once for high
availability; each keeps a `LeaderElection` and acts only while `is_leader()` is true. The
standby takes over when the active instance dies or stalls.

How it works (and why this design):

- Each instance holds a dedicated PostgreSQL connection. The leader is whoever holds the
  session-level advisory lock `pg_advisory_lock(key)`, `key` a 64-bit hash of the role. A
  standby waits *inside* `pg_advisory_lock` (in slices of `lock_timeout`, so it can stop), so
  the server hands it the lock the moment the old session ends: no polling delay.
- Death (`kill -9`, a crash, a closed socket): the kernel closes the TCP connection, the
  server ends the session and releases its locks at once (measured: ~40 ms to takeover).
- Stall (`SIGSTOP`, a frozen VM, a black-holed network): the connection stays open, so a plain
  session lock would be held forever. The leader's session therefore sets
  `idle_session_timeout = lease` (PostgreSQL 14+): the server ends any session idle for longer
  than `lease` seconds, which releases the lock. A live leader heartbeats (`SELECT 1`) every
  `lease / 4`, so its session is never idle that long; a stopped one stops heartbeating and
  loses the lock `lease` seconds later (2 s by default: takeover ~2 s after the stall).
  A lease row with an expiry would also work but needs clock agreement between machines and a
  polling standby; the server-side timeout needs neither.
- The stalled leader must also *know* it lost: `is_leader()` is true only while the last
  successful heartbeat is younger than `lease / 2` (a monotonic clock, which keeps running
  through SIGSTOP). The server cannot release the lock before `lease` has passed since that
  heartbeat, so a process that believes it leads always does. On resume, its next heartbeat
  fails (the server closed the session), it reconnects and queues as a standby.
- TCP keepalives (1 s idle, 1 s interval, 3 probes) make a heartbeat on a dead network fail
  within seconds instead of hanging; `is_leader()` turns false by the clock before that anyway.

Leadership narrows who acts; it is not what makes actions safe. A process can check
`is_leader()`, stall, and act after the standby took over. Exactly-once comes from the
transaction manager: instances of a role share one PostgreSQL journal, so an intent's
idempotency key is journaled once and its nonce is used once whoever sends it.

`python -m strikeline.leader ROLE` (URL in `STRIKELINE_LEADER_URL`) prints `LEADER <t>` and
`STANDBY <t>` (unix time) as this process gains and loses the role: a diagnostic, and what the
failover tests and benchmark run.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

from strikeline.db import redact_url
from strikeline.errors import StrikelineError

log = logging.getLogger("strikeline.leader")


class LeaderError(StrikelineError):
    """Base class of this module's errors."""


def lock_key(role: str) -> int:
    """The advisory-lock key of `role`: a signed 64-bit hash, namespaced to Strikeline."""
    digest = hashlib.blake2b(f"strikeline-leader:{role}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class LeaderElection:
    """Competes for `role` on the PostgreSQL server at `url` from a background thread."""

    def __init__(
        self,
        url: str,
        role: str,
        *,
        lease: float = 2.0,
        on_change: Callable[[bool], None] | None = None,
    ):
        """
        Args:
            url: a `postgresql://` URL; every instance of the role must use the same server.
            role: the role's name; instances with the same name exclude each other.
            lease: seconds after its last heartbeat that a stalled leader loses the lock (at
                least 1; the server's `idle_session_timeout` has millisecond resolution).
            on_change: called from the election thread with True when this instance becomes
                the leader and False when it stops being one.
        """
        if lease < 1.0:
            raise LeaderError("lease must be at least 1 second")
        self.role = role
        self.key = lock_key(role)
        self.lease = lease
        self.heartbeat = lease / 4
        self._url = url
        self._safe_url = redact_url(url)
        self._on_change = on_change
        self._stop = threading.Event()
        self._elected = threading.Event()
        self._conn: psycopg.Connection[Any] | None = None
        self._last_ok = float("-inf")
        self._thread: threading.Thread | None = None
        self.last_error = ""

    def __repr__(self) -> str:
        return f"LeaderElection({self.role!r} on {self._safe_url}, leader={self.is_leader()})"

    # ----------------------------------------------------------------------------- public

    def start(self) -> LeaderElection:
        """Start competing (returns at once; see `wait_for_leadership`)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"leader-{self.role}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop competing and give the role up (closing the session releases the lock)."""
        self._stop.set()
        conn = self._conn
        if conn is not None:
            try:
                conn.cancel_safe(timeout=1.0)  # interrupt a standby waiting for the lock
            except psycopg.Error:
                pass
        if self._thread is not None:
            self._thread.join(timeout=self.lease + 5)
        self._drop()
        if self._elected.is_set():
            self._elected.clear()
            log.info("%s: stepped down", self.role)
            self._notify(False)

    def is_leader(self) -> bool:
        """True while this instance holds the role and its last heartbeat is fresh."""
        return self._elected.is_set() and time.monotonic() - self._last_ok < self.lease / 2

    def wait_for_leadership(self, timeout: float | None = None) -> bool:
        """Block until this instance leads (True) or `timeout` passes (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._stop.is_set():
            if self.is_leader():
                return True
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            self._elected.wait(0.05 if remaining is None else min(0.05, remaining))
        return False

    def __enter__(self) -> LeaderElection:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------------------- thread

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self._conn is None:
                    self._conn = self._connect()
                if self._elected.is_set():
                    self._stop.wait(self.heartbeat)
                    if not self._stop.is_set():
                        self._conn.execute("SELECT 1")
                        self._last_ok = time.monotonic()
                else:
                    self._try_acquire(self._conn)
            except psycopg.Error as exc:
                self._lost(exc)
                self._stop.wait(self.heartbeat)

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(
            self._url,
            autocommit=True,
            connect_timeout=max(1, int(self.lease)),
            keepalives=1,
            keepalives_idle=1,
            keepalives_interval=1,
            keepalives_count=3,
            application_name=f"strikeline-leader-{self.role}"[:63],
        )
        # The server ends this session (and frees the lock) once it has been idle for
        # `lease`; the standby's wait for the lock is cut in slices so that stop() is prompt.
        conn.execute(f"SET idle_session_timeout = {int(self.lease * 1000)}")
        conn.execute(f"SET lock_timeout = {int(self.lease * 1000)}")
        return conn

    def _try_acquire(self, conn: psycopg.Connection[Any]) -> None:
        try:
            conn.execute("SELECT pg_advisory_lock(%s)", (self.key,))
        except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled):
            return  # still held by another instance (or stop() interrupted the wait)
        self._last_ok = time.monotonic()
        self._elected.set()
        log.info("%s: this instance is now the leader", self.role)
        self._notify(True)

    def _lost(self, exc: psycopg.Error) -> None:
        self.last_error = " ".join(str(exc).split()).replace(self._url, self._safe_url)[:300]
        self._drop()
        if self._elected.is_set():
            self._elected.clear()
            log.warning("%s: leadership lost: %s", self.role, self.last_error)
            self._notify(False)
        elif not self._stop.is_set():
            log.warning("%s: election connection failed: %s", self.role, self.last_error)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:
                pass

    def _notify(self, leader: bool) -> None:
        if self._on_change is not None:
            try:
                self._on_change(leader)
            except Exception:  # a callback's bug must not end the election thread
                log.exception("%s: on_change callback failed", self.role)


def main(argv: list[str] | None = None) -> int:
    """`python -m strikeline.leader ROLE [LEASE]`: print leadership changes of this process."""
    args = sys.argv[1:] if argv is None else argv
    url = os.environ.get("STRIKELINE_LEADER_URL", "")
    if not args or not url:
        print(
            "usage: STRIKELINE_LEADER_URL=postgresql://... python -m strikeline.leader ROLE [LEASE]"
        )
        return 2
    election = LeaderElection(url, args[0], lease=float(args[1]) if len(args) > 1 else 2.0)
    election.start()
    leading = False
    print(f"READY {time.time():.6f}", flush=True)
    try:
        while True:  # what a keeper's job loop does: look before acting
            now_leading = election.is_leader()
            if now_leading != leading:
                leading = now_leading
                print(f"{'LEADER' if leading else 'STANDBY'} {time.time():.6f}", flush=True)
            time.sleep(0.005)
    except KeyboardInterrupt:
        election.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
