"""Crash safety of the journal: an engine under load killed with SIGKILL at random moments.

After every kill, on both backends: every acknowledged commit is in the journal, replaying the
journal up to the last acknowledged sequence number rebuilds exactly the state the engine had when
it acknowledged it, and a restarted engine replays everything and goes on numbering from there.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from relayer_helpers import CALL

from relayer.engine import Engine
from relayer.journal import open_journal
from relayer.model import FeeSchedule

WRITER = Path(__file__).resolve().parent / "crash_writer.py"
KILLS = 4  # per backend


def _digest(engine: Engine) -> str:
    return hashlib.sha256(repr(engine.snapshot()).encode()).hexdigest()


def _run_and_kill(url: str, seed: int, rng: random.Random) -> tuple[str, list[tuple[int, str]]]:
    """Start the writer, let it acknowledge a random number of commits, kill -9 it a random
    moment later; returns its `ready` digest and every ack it printed before it died."""
    child = subprocess.Popen(
        [sys.executable, str(WRITER), url, str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    ready = child.stdout.readline().split()
    assert ready and ready[0] == "ready", child.stderr.read() if child.stderr else ""
    acks: list[tuple[int, str]] = []
    target = rng.randint(3, 25)
    while len(acks) < target:
        line = child.stdout.readline()
        assert line, child.stderr.read() if child.stderr else "writer died"
        _, seq, digest = line.split()
        acks.append((int(seq), digest))
    time.sleep(rng.random() * 0.05)  # somewhere inside the next commits
    os.kill(child.pid, signal.SIGKILL)
    rest = child.stdout.read()  # acks printed before the kill landed
    child.wait()
    assert child.returncode == -signal.SIGKILL
    for line in rest.splitlines():
        kind, seq, digest = line.split()
        acks.append((int(seq), digest))
    return ready[2], acks


def test_kill_9_under_load_loses_no_acknowledged_event(journal_url: str) -> None:
    rng = random.Random(20261206)
    last_full: str | None = None
    total_acks = 0
    for kill in range(KILLS):
        ready, acks = _run_and_kill(journal_url, seed=kill, rng=rng)
        if last_full is not None:
            assert ready == last_full  # the restart replayed to what we replayed
        total_acks += len(acks)
        last_seq, last_digest = acks[-1]
        assert [s for s, _ in acks] == sorted(s for s, _ in acks)
        with open_journal(journal_url, readonly=True) as journal:
            seqs = [seq for seq, _ in journal.events()]
            assert seqs == list(range(1, len(seqs) + 1))  # no gap, nothing half written
            assert seqs[-1] >= last_seq  # every acknowledged event is there
            at_ack = Engine.open(journal, [CALL], fees=FeeSchedule(2, 5), upto=last_seq)
            assert _digest(at_ack) == last_digest
            # an earlier ack too: any prefix at a commit boundary replays to what was acked
            seq, digest = acks[len(acks) // 2]
            assert _digest(Engine.open(journal, [CALL], fees=FeeSchedule(2, 5), upto=seq)) == (
                digest
            )
            last_full = _digest(Engine.open(journal, [CALL], fees=FeeSchedule(2, 5)))
    assert total_acks >= KILLS * 3
