"""An engine that snapshots every few events, under random load, for the snapshot crash test:
`python crash_writer_snapshot.py <journal url> <seed> [snapshot|chunk|in-chunk]`.

It restarts from the journal's newest snapshot, prints `ready <seq>`, then runs random operations
(`snapshot_views.Driver`), printing `ack <durable seq>` after each. Its snapshot cycles archive
two orders per step (`archive_chunk`), so most cycles take several steps. Then, by the mode:

- `snapshot` (the default): each snapshot write prints `snapshot <seq>` just before its last
  statement and then waits 0.3 s inside the open transaction;
- `chunk`: each archive step between two snapshots prints `chunk <durable seq>` once its
  transaction committed, and waits 0.3 s there (between two steps of a cycle);
- `in-chunk`: each such step prints `chunk <durable seq>` after its first statement and waits
  0.3 s inside its open transaction;

so that the test can kill it with SIGKILL there.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE)]

from relayer_helpers import CALL, PUT  # noqa: E402
from snapshot_views import Driver, funds  # noqa: E402

from relayer.engine import Engine  # noqa: E402
from relayer.journal import open_journal  # noqa: E402
from relayer.model import FeeSchedule  # noqa: E402

SETTINGS = {"snapshot_every": 9, "keep_blocks": 3, "recent_matches": 4, "archive_chunk": 2}


def main() -> None:
    url, seed = sys.argv[1], int(sys.argv[2])
    mode = sys.argv[3] if len(sys.argv) > 3 else "snapshot"
    rng = random.Random(seed)
    out = sys.stdout
    journal = open_journal(url)
    execute, executemany, archive = journal.db.execute, journal.db.executemany, journal.archive

    def say(line: str) -> None:
        out.write(line + "\n")
        out.flush()
        time.sleep(0.3)

    def slow_snapshot(sql: str, params=()):  # type: ignore[no-untyped-def]
        if sql.startswith("INSERT INTO relayer_snapshots"):
            say(f"snapshot {params[0]}")
        return execute(sql, params)

    in_archive = [False]

    def slow_rows(sql: str, rows):  # type: ignore[no-untyped-def]
        done = executemany(sql, rows)
        if in_archive[0]:
            in_archive[0] = False
            say(f"chunk {journal.durable_seq}")
        return done

    def slow_archive(orders=(), matches=()):  # type: ignore[no-untyped-def]
        in_archive[0] = mode == "in-chunk"
        try:
            archive(orders, matches)
        finally:
            in_archive[0] = False
        if mode == "chunk":
            say(f"chunk {journal.durable_seq}")

    if mode == "snapshot":
        journal.db.execute = slow_snapshot  # type: ignore[method-assign]
    else:
        journal.db.executemany = slow_rows  # type: ignore[method-assign]
        journal.archive = slow_archive  # type: ignore[method-assign]
    view = funds()
    engine = Engine.open(journal, [CALL, PUT], fees=FeeSchedule(3, 7), funds=view, **SETTINGS)
    out.write(f"ready {journal.durable_seq}\n")
    out.flush()
    driver = Driver(engine, view, seed=seed)
    while True:
        driver.step(driver.random_op(rng))
        out.write(f"ack {journal.durable_seq}\n")
        out.flush()


if __name__ == "__main__":
    main()
