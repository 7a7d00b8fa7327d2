"""strikeline.leader: one active instance per role; the standby takes over after kill -9 and
SIGSTOP of the leader, and a resumed leader knows it lost the role."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import IO

import pytest

from strikeline.leader import LeaderElection, LeaderError, lock_key

from .faults import wait_until


class Instance:
    """`python -m strikeline.leader ROLE` in a subprocess, its lines read by a thread."""

    def __init__(self, url: str, role: str, lease: float = 1.0):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "strikeline.leader", role, str(lease)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "STRIKELINE_LEADER_URL": url},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert self.process.stdout is not None
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.split()[0])

    def next_state(self, timeout: float = 15.0) -> str | None:
        """The next state line (READY, LEADER, STANDBY), or None within `timeout`."""
        try:
            state = self.lines.get(timeout=timeout)
        except queue.Empty:
            return None
        self.seen.append(state)
        return state

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.kill()
        self.process.wait(10)


@pytest.fixture
def instances(postgres_url: str) -> Iterator[list[Instance]]:
    started: list[Instance] = []
    yield started
    for instance in started:
        instance.stop()


def start_pair(url: str, started: list[Instance]) -> tuple[Instance, Instance]:
    active = Instance(url, "settlement")
    started.append(active)
    assert active.next_state() == "READY" and active.next_state() == "LEADER"
    standby = Instance(url, "settlement")
    started.append(standby)
    assert standby.next_state() == "READY"
    assert standby.next_state(timeout=0.6) is None  # waits while the active one lives
    return active, standby


def test_standby_takes_over_after_kill_9(postgres_url: str, instances: list[Instance]) -> None:
    active, standby = start_pair(postgres_url, instances)
    active.process.send_signal(signal.SIGKILL)
    assert standby.next_state() == "LEADER"


def test_standby_takes_over_after_sigstop_and_the_resumed_leader_steps_down(
    postgres_url: str, instances: list[Instance]
) -> None:
    active, standby = start_pair(postgres_url, instances)
    os.kill(active.process.pid, signal.SIGSTOP)
    assert standby.next_state() == "LEADER"  # the server ended the idle session of the stalled one
    os.kill(active.process.pid, signal.SIGCONT)
    assert active.next_state() == "STANDBY"  # it looks at its clock before anything else
    assert active.next_state(timeout=1.2) is None  # and does not take the role back (lease 1 s)
    assert standby.lines.empty()  # the new leader never wavered
    standby.process.send_signal(signal.SIGKILL)
    assert active.next_state() == "LEADER"  # and it is the standby now


def test_one_leader_per_role_in_process(postgres_url: str) -> None:
    changes: list[tuple[str, bool]] = []
    first = LeaderElection(postgres_url, "oracle", lease=1.0,
                           on_change=lambda v: changes.append(("first", v)))  # fmt: skip
    second = LeaderElection(postgres_url, "oracle", lease=1.0,
                            on_change=lambda v: changes.append(("second", v)))  # fmt: skip
    other_role = LeaderElection(postgres_url, "liquidation", lease=1.0)
    with first:
        assert first.wait_for_leadership(10)
        second.start()
        other_role.start()
        assert other_role.wait_for_leadership(10)  # another role has its own lock
        assert not second.wait_for_leadership(1.0)
        first.stop()  # a clean stop hands the role over
        assert not first.is_leader()
        assert second.wait_for_leadership(10)
        second.stop()
        other_role.stop()
    assert changes == [("first", True), ("first", False), ("second", True), ("second", False)]
    assert "leader=False" in repr(second)


def test_unreachable_server_never_leads_and_hides_the_password() -> None:
    url = "postgresql://keeper:s3cret-pw@127.0.0.1:1/strikeline_txmanager_none"
    with LeaderElection(url, "settlement", lease=1.0) as election:
        assert not election.wait_for_leadership(1.5)
        assert wait_until(lambda: election.last_error != "")
        assert "s3cret-pw" not in election.last_error + repr(election)


def test_arguments_and_keys() -> None:
    with pytest.raises(LeaderError, match="at least 1"):
        LeaderElection("postgresql://x@h/d", "r", lease=0.5)
    assert lock_key("settlement") == lock_key("settlement") != lock_key("oracle")
    assert -(2**63) <= lock_key("settlement") < 2**63
