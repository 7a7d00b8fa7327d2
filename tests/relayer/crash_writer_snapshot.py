"""An engine that snapshots every few events, under random load, for the snapshot crash test:
`python crash_writer_snapshot.py <journal url> <seed>`.

It restarts from the journal's newest snapshot, prints `ready <seq>`, then runs random operations
(`snapshot_views.Driver`), printing `ack <durable seq>` after each. Each snapshot write prints
`snapshot <seq>` just before its last statement and then waits 0.3 s inside the open transaction,
so that the test can kill it with SIGKILL in the middle of a snapshot write.
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

SETTINGS = {"snapshot_every": 9, "keep_blocks": 3, "recent_matches": 4}


def main() -> None:
    url, seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(seed)
    out = sys.stdout
    journal = open_journal(url)
    execute = journal.db.execute

    def slow_snapshot(sql: str, params=()):  # type: ignore[no-untyped-def]
        if sql.startswith("INSERT INTO relayer_snapshots"):
            out.write(f"snapshot {params[0]}\n")
            out.flush()
            time.sleep(0.3)
        return execute(sql, params)

    journal.db.execute = slow_snapshot  # type: ignore[method-assign]
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
