"""Relayer benchmarks: the matcher alone, and journal appends with group commit.

1. Book operations per second of `relayer.book.Book` on one core: a stream of orders around a mid
   price (most rest, about a fifth cross and match, partly or wholly) mixed with cancels of
   resting orders, as a market maker's quoting produces. One operation is one `submit` or one
   `cancel`, with the events it returns; the `BookOrder`s are built beforehand (the intake makes
   them from the verified signed orders). Run with fees on, and again with the reservation model
   checking and reserving every maker's funds. Goal: at least 500,000 ops/s (anchor: a plain
   price-time book measured on this machine did 0.8M).
2. Journal appends per second through `relayer.journal` on SQLite (WAL, fsync per commit) and on
   PostgreSQL (127.0.0.1:5432), with 1, 10 and 100 events per commit (anchors from DESIGN.md: one
   row per commit 4-6k/s, 100 rows per commit 80-380k/s).

Run: `.venv/bin/python benchmarks/bench_matcher.py` (`--quick` for a short run).
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relayer.book import Book  # noqa: E402
from relayer.events import Matched, OrderReceived  # noqa: E402
from relayer.journal import open_journal  # noqa: E402
from relayer.model import BookOrder, FeeSchedule, Instrument, TimeInForce  # noqa: E402
from relayer.reservations import Reservations, UnlimitedFunds  # noqa: E402
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


def workload(n: int, seed: int = 7) -> list[tuple[str, object]]:
    """`n` operations: submits of orders around a mid of 150 USDC (tick 0.01 USDC) and cancels of
    earlier orders, about one cancel for every two submits."""
    rng = random.Random(seed)
    makers = [f"0x{i:040x}" for i in range(1, 201)]
    ops: list[tuple[str, object]] = []
    live: list[bytes] = []
    mid = 150_000_000
    for i in range(n):
        if live and rng.random() < 0.33:
            ops.append(("cancel", live.pop(rng.randrange(len(live)))))
            continue
        is_buy = rng.random() < 0.5
        # most orders rest inside 1% of mid; a fifth cross by up to 0.3%
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


def bench_book(n: int, fees: FeeSchedule, reserve: bool) -> tuple[float, int, int]:
    """(ops/s, matches, resting at the end) for one run over fresh orders."""
    ops = workload(n)
    reservations = Reservations(UnlimitedFunds()) if reserve else None
    book = Book(INSTRUMENT, fees=fees, reservations=reservations)
    submit, cancel, now = book.submit, book.cancel, 1
    matches = 0
    start = time.perf_counter()
    for kind, arg in ops:
        if kind == "submit":
            events = submit(arg, now)  # type: ignore[arg-type]
        else:
            events = cancel(arg)  # type: ignore[arg-type]
        matches += len(events)
    elapsed = time.perf_counter() - start
    book.check_invariants()
    return n / elapsed, sum(1 for _ in book.matches), book.bids_count() + book.asks_count()


def sample_events(n: int) -> list:
    """A realistic mix for the journal: orders (with a 300-byte signed payload) and matches."""
    out: list = []
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
                    i.to_bytes(32, "big"),
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
                    os.urandom(300),
                    1_700_000_000,
                )
            )
    return out


def bench_journal(url: str, per_commit: int, seconds: float) -> float:
    """Events per second appended and committed, `per_commit` per transaction."""
    journal = open_journal(url)
    events = sample_events(per_commit * 50)
    written = 0
    start = time.perf_counter()
    try:
        while time.perf_counter() - start < seconds:
            for k in range(0, len(events), per_commit):
                for event in events[k : k + per_commit]:
                    journal.append(_fresh(event, written))
                    written += 1
                journal.commit()
                if time.perf_counter() - start >= seconds:
                    break
    finally:
        elapsed = time.perf_counter() - start
        journal.close()
    return written / elapsed


def _fresh(event: object, i: int) -> object:
    """The order events need distinct hashes (the journal refuses a hash received twice)."""
    if isinstance(event, OrderReceived):
        return OrderReceived(
            i.to_bytes(32, "big"), *[getattr(event, f) for f in event.__struct_fields__[1:]]
        )
    return event


def main() -> None:
    quick = "--quick" in sys.argv
    n = 100_000 if quick else 400_000
    print(f"matcher: {n:,} operations (submit or cancel), one core")
    for label, fees, reserve in (
        ("no fees, no reservations", FeeSchedule(0, 0), False),
        ("fees 2/5 bps checked against maxFee", FeeSchedule(2, 5), False),
        ("fees + reservation model", FeeSchedule(2, 5), True),
    ):
        rate, matches, resting = bench_book(n, fees, reserve)
        print(
            f"  {label:<40} {rate:>11,.0f} ops/s   goal >= 500,000; anchor plain book 800,000"
            f"   ({matches:,} matches, {resting:,} resting)"
        )
    seconds = 1.0 if quick else 3.0
    print(f"journal appends, {seconds:.0f} s per figure")
    with tempfile.TemporaryDirectory() as tmp:
        pg = f"{POSTGRES_SERVER}/strikeline_relayer_bench_{uuid.uuid4().hex[:10]}"
        db.create_postgres_database(pg)
        try:
            for per_commit, anchor in ((1, "anchor 4-6k/s"), (10, ""), (100, "anchor 80-380k/s")):
                for backend, url in (
                    ("sqlite", f"sqlite:///{tmp}/bench-{per_commit}.db"),
                    ("postgresql", pg),
                ):
                    if backend == "postgresql":
                        with db.connect(pg) as conn:
                            conn.execute("DROP TABLE IF EXISTS relayer_events")
                            conn.execute("DELETE FROM strikeline_schema")
                    rate = bench_journal(url, per_commit, seconds)
                    print(
                        f"  {backend:<10} {per_commit:>3} events/commit {rate:>11,.0f} events/s"
                        f"   {anchor}"
                    )
        finally:
            db.drop_postgres_database(pg)


if __name__ == "__main__":
    main()
