"""Relayer benchmarks: the matcher alone, and journal appends with group commit.

1. Book operations per second of `relayer.book.Book` on one core: a stream of orders around a mid
   price (most rest, about a fifth cross and match, partly or wholly) mixed with cancels of
   resting orders, as a market maker's quoting produces. One operation is one `submit` or one
   `cancel`, with the events it returns; the `BookOrder`s are built beforehand (the intake makes
   them from the verified signed orders). Run with fees on, and again with the reservation model
   checking and reserving every maker's funds. Goal: at least 500,000 ops/s (anchor: a plain
   price-time book measured on this machine did 0.8M).
2. Journal appends per second through `relayer.journal` on SQLite (WAL, fsync per commit) and on
   PostgreSQL (127.0.0.1:5432), with 1, 10 and 100 events per commit (anchors measured on
   these machines: one row per commit 4-6k/s, 100 rows per commit 80-380k/s).

Run: `.venv/bin/python benchmarks/bench_matcher.py` (`--quick` for a short run).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relayer.book import Book  # noqa: E402
from relayer.engine import Engine  # noqa: E402
from relayer.events import Event, Matched, OrderReceived  # noqa: E402
from relayer.journal import open_journal  # noqa: E402
from relayer.model import BookOrder, FeeSchedule, Instrument, TimeInForce  # noqa: E402
from relayer.reservations import Reservations, UnlimitedFunds  # noqa: E402
from relayer.worker import EngineWorker  # noqa: E402
from strikeline import db  # noqa: E402

UNIT = 10**8
INSTRUMENT = Instrument(
    series_id=1,
    name="ETH-27DEC24-3000-C",
    quote_token="0x" + "11" * 20,
    collateral_token="0x" + "22" * 20,
    is_put=False,
    strike=3000 * UNIT,
    expiry=1_735_286_400,
    collateral_unit=10**18,
)
POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432"


def workload(n: int, seed: int = 7, cancel_share: float = 0.33) -> list[tuple[str, object]]:
    """`n` operations: submits of GTC orders around a mid of 150 USDC (tick 0.01 USDC; about one
    in ten crosses) and cancels of earlier orders (a `cancel_share` of the operations; a cancel
    may find its order already matched)."""
    rng = random.Random(seed)
    makers = [f"0x{i:040x}" for i in range(1, 201)]
    ops: list[tuple[str, object]] = []
    live: list[bytes] = []
    mid = 150_000_000
    for i in range(n):
        if live and rng.random() < cancel_share:
            ops.append(("cancel", live.pop(rng.randrange(len(live)))))
            continue
        is_buy = rng.random() < 0.5
        # most orders rest within 1% of mid; those priced through mid may cross by up to 0.1%
        offset = rng.randint(-150, 1500) * 1_000
        price = mid - offset if is_buy else mid + offset
        order = BookOrder(
            hash=i.to_bytes(32, "big"),
            maker=makers[rng.randrange(len(makers))],
            series_id=1,
            is_buy=is_buy,
            amount=rng.randint(1, 20) * UNIT // 10,
            price=price,
            max_fee=10**30,
            nonce=i,
            deadline=2**40,
            tif=TimeInForce.GTC,
            seq=i + 1,
        )
        live.append(order.hash)
        ops.append(("submit", order))
    return ops


def bench_book(
    n: int, fees: FeeSchedule, reserve: bool, repeat: int = 3, cancel_share: float = 0.33
) -> dict[str, float]:
    """Best of `repeat` runs over fresh orders: ops per CPU second and per wall second, with the
    matches made and the orders left resting."""
    best: dict[str, float] = {}
    for _ in range(repeat):
        ops = workload(n, cancel_share=cancel_share)
        reservations = Reservations(UnlimitedFunds()) if reserve else None
        book = Book(INSTRUMENT, fees=fees, reservations=reservations)
        submit, cancel, now = book.submit, book.cancel, 1
        wall, cpu = time.perf_counter(), time.process_time()
        for kind, arg in ops:
            if kind == "submit":
                submit(arg, now)  # type: ignore[arg-type]
            else:
                cancel(arg)  # type: ignore[arg-type]
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        book.check_invariants()
        if not best or n / cpu > best["cpu"]:
            best = {
                "cpu": n / cpu,
                "wall": n / wall,
                "matches": len(book.matches),
                "resting": book.bids_count() + book.asks_count(),
            }
    return best


def sample_events(n: int) -> list[Event]:
    """A realistic mix for the journal: two orders (each with a 300-byte signed payload, as the
    intake journals it) for every match. Hashes are unique across runs on one database."""
    payload = os.urandom(300)
    out: list[Event] = []
    for i in range(n):
        if i % 3 == 2:
            out.append(
                Matched(
                    i,
                    2**255 + 1,
                    b"\x01" * 32,
                    b"\x02" * 32,
                    10**8,
                    150 * 10**6,
                    True,
                    150 * 10**6,
                    0,
                    10**18,
                )
            )
        else:
            out.append(
                OrderReceived(
                    _RUN + next(_SERIAL).to_bytes(16, "big"),
                    f"0x{i % 500:040x}",
                    2**255 + 1,
                    i % 2 == 0,
                    10**8,
                    150 * 10**6,
                    10**6,
                    i,
                    2**40,
                    "GTC",
                    None,
                    payload,
                    1_700_000_000,
                )
            )
    return out


_RUN = os.urandom(16)  # distinct order hashes from one run to the next on the same database
_SERIAL = itertools.count()


def bench_journal(url: str, per_commit: int, seconds: float) -> float:
    """Events per second appended and committed, `per_commit` per transaction, for about
    `seconds` (events are built beforehand, in pools, outside the timing)."""
    journal = open_journal(url)
    written, elapsed = 0, 0.0
    try:
        while elapsed < seconds:
            pool = sample_events(20_000 - 20_000 % per_commit)
            start = time.perf_counter()
            for k in range(0, len(pool), per_commit):
                for event in pool[k : k + per_commit]:
                    journal.append(event)
                journal.commit()
                written += per_commit
                if elapsed + time.perf_counter() - start >= seconds:
                    break
            elapsed += time.perf_counter() - start
    finally:
        journal.close()
    return written / elapsed


def fsyncs_per_second(directory: str, seconds: float = 1.0) -> float:
    """How many small write + fdatasync pairs this disk does per second: the ceiling of durable
    commits per second, whatever the database."""
    path = os.path.join(directory, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    done, start = 0, time.perf_counter()
    try:
        while time.perf_counter() - start < seconds:
            os.write(fd, b"x" * 128)
            os.fdatasync(fd)
            done += 1
    finally:
        os.close(fd)
        os.unlink(path)
    return done / (time.perf_counter() - start)


def bench_worker(url: str, orders: int, callers: int = 256) -> tuple[float, float, float]:
    """Orders placed per second through `EngineWorker` (engine + journal, group commit) by
    `callers` concurrent asyncio callers, each answered after its commit; the mean orders per
    commit; and the replay rate (journal events per second) of a restart on that journal."""
    ops = [op for kind, op in workload(int(orders * 1.6)) if kind == "submit"][:orders]
    for i, o in enumerate(ops):  # distinct hashes on a shared database
        o.hash = _RUN + i.to_bytes(16, "big")  # type: ignore[attr-defined]
    engine = Engine.open(open_journal(url), [INSTRUMENT], fees=FeeSchedule(2, 5))
    worker = EngineWorker(engine, clock=lambda: 1)

    async def run() -> float:
        queue = list(reversed(ops))

        async def caller() -> None:
            while queue:
                await worker.place(queue.pop())  # type: ignore[arg-type]

        start = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(callers)))
        elapsed = time.perf_counter() - start
        await worker.close()
        return elapsed

    elapsed = asyncio.run(run())
    engine.journal.close()
    with open_journal(url, readonly=True) as journal:
        events = journal.count()
        start = time.perf_counter()
        # the whole journal, as before snapshots: closing the engine's journal above took one
        Engine.open(journal, [INSTRUMENT], fees=FeeSchedule(2, 5), from_snapshot=False)
        replay = events / (time.perf_counter() - start)
    return orders / elapsed, orders / max(worker.batches, 1), replay


def main() -> None:
    quick = "--quick" in sys.argv
    n = 100_000 if quick else 300_000
    load = os.getloadavg()[0]
    print(
        f"matcher: {n:,} operations (submit or cancel), one core, best of 3; "
        f"load average {load:.1f} on {os.cpu_count()} cores"
    )
    for share, book_kind in (
        (0.33, "growing book, 1 cancel : 2 submits"),
        (0.5, "steady book, 1 cancel : 1 submit"),
    ):
        print(f" {book_kind}")
        for label, fees, reserve in (
            ("no fees, no reservations", FeeSchedule(0, 0), False),
            ("fees 2/5 bps checked against maxFee", FeeSchedule(2, 5), False),
            ("fees + reservation model", FeeSchedule(2, 5), True),
        ):
            r = bench_book(n, fees, reserve, cancel_share=share)
            print(
                f"  {label:<38} {r['cpu']:>9,.0f} ops/s CPU ({r['wall']:>9,.0f} wall)"
                f"   goal >= 500,000; anchor plain book 800,000"
                f"   [{r['matches']:,.0f} matches, {r['resting']:,.0f} resting]"
            )
    seconds = 1.0 if quick else 3.0
    print(f"journal appends (orders and matches, ~400 bytes each), {seconds:.0f} s per figure")
    with tempfile.TemporaryDirectory() as tmp:
        print(
            f"  this disk now: {fsyncs_per_second(tmp):,.0f} write+fdatasync/s (the ceiling of "
            "durable commits/s; the anchors need fsyncs well under 1 ms)"
        )
        for per_commit, anchor in ((1, "anchor 4-6k/s"), (10, ""), (100, "anchor 80-380k/s")):
            for backend in ("sqlite", "sqlite-normal", "postgresql"):
                pg = ""
                if backend == "postgresql":
                    pg = f"{POSTGRES_SERVER}/strikeline_relayer_bench_{uuid.uuid4().hex[:10]}"
                    db.create_postgres_database(pg)
                    url = pg
                elif backend == "sqlite":
                    url = f"sqlite:///{tmp}/full-{per_commit}.db"
                else:
                    url = f"sqlite:///{tmp}/normal-{per_commit}.db?synchronous=normal"
                try:
                    rate = bench_journal(url, per_commit, seconds)
                finally:
                    if pg:
                        db.drop_postgres_database(pg)
                print(
                    f"  {backend:<14} {per_commit:>3} events/commit {rate:>10,.0f} events/s"
                    f"   {anchor}"
                )
    print(
        "  (sqlite: synchronous=FULL, an fsync per commit, the journal's default; "
        "sqlite-normal: ?synchronous=normal, survives kill -9 but not a power cut)"
    )


if __name__ == "__main__":
    main()
