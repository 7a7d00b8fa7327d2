"""A relayer engine under load, for the crash test: `python crash_writer.py <journal url> <seed>`.

It replays the journal, prints `ready <seq> <digest>`, then forever: places a random group of
orders (one commit), and now and then sends, confirms or reverts matches and expires orders,
printing `ack <durable seq> <digest of the whole engine state>` after each commit returned. The
test kills it with SIGKILL at a random moment and checks the journal against the acks.
"""

from __future__ import annotations

import hashlib
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE)]

from relayer_helpers import CALL, NOW, UNIT, order  # noqa: E402

from relayer.engine import Engine  # noqa: E402
from relayer.journal import open_journal  # noqa: E402
from relayer.model import FeeSchedule, MatchState, TimeInForce  # noqa: E402

MAKERS = ["0x" + f"{i:02x}" * 20 for i in range(1, 9)]


def digest(engine: Engine) -> str:
    return hashlib.sha256(repr(engine.snapshot()).encode()).hexdigest()


def main() -> None:
    url, seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(seed)
    engine = Engine.open(open_journal(url), [CALL], fees=FeeSchedule(2, 5))
    out = sys.stdout
    out.write(f"ready {engine.journal.durable_seq} {digest(engine)}\n")
    out.flush()
    step = 0
    while True:
        step += 1
        now = NOW + step
        group = [
            order(
                rng.choice(MAKERS),
                rng.random() < 0.5,
                rng.randint(1, 5) * UNIT,
                rng.randint(95, 105) * 10**6,
                tif=rng.choice(list(TimeInForce)),
                deadline=now + rng.randint(1, 50),
                max_fee=10**7 * 5,
            )
            for _ in range(rng.randint(1, 40))
        ]
        # unique hashes across restarts: the seed and step are in them
        for i, o in enumerate(group):
            o.hash = hashlib.sha256(f"{seed}:{step}:{i}".encode()).digest()
        engine.place_many(group, now)
        report(engine, out)
        roll = rng.random()
        if roll < 0.3:
            todo = engine.unsubmitted(limit=8)
            if todo:
                engine.batch_submitted([m.id for m in todo], rng.randbytes(32))
                report(engine, out)
        elif roll < 0.5:
            matches = [engine.match(m) for m in sorted(engine._matches)]
            live = [m for m in matches if m.state in (MatchState.MATCHED, MatchState.PENDING)]
            if live:
                m = rng.choice(live)
                if rng.random() < 0.6:
                    engine.fill_confirmed(m.id, m.tx_hash or b"\x00" * 32, step)
                else:
                    engine.fill_reverted(m.id, {rng.choice((m.buy, m.sell))}, "revert", now)
                report(engine, out)
        elif roll < 0.6:
            engine.expire(now)
            report(engine, out)


def report(engine: Engine, out) -> None:  # type: ignore[no-untyped-def]
    out.write(f"ack {engine.journal.durable_seq} {digest(engine)}\n")
    out.flush()


if __name__ == "__main__":
    main()
