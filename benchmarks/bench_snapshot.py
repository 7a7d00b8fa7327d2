"""Relayer benchmark: restart time from a snapshot against a replay of the whole journal, and what
a snapshot costs (relayer.engine `checkpoint`, docs/relayer.md "The journal").

Builds a journal of `--orders` orders through the engine (group commits of 100 orders): a resting
book of 2,000 orders that stay live, and churn around it as trading produces it: crossing pairs
that match, are sent and confirmed, and orders placed and then cancelled. Then, on that journal:

1. a full replay from sequence 0 (what every restart cost before snapshots): seconds, events/s,
   orders in memory afterwards;
2. `checkpoint` on that engine: the snapshot and the archive of every order that is done, one
   transaction; seconds, snapshot bytes (compressed), orders kept;
3. a restart from the snapshot, after `--after` more orders (the most a restart replays is
   `snapshot_every` events, 100,000 by default): seconds, orders in memory;
4. trading on until the default `snapshot_every` (100,000 events) takes the next snapshot, in
   bounded steps after commits (`Engine.archive_some`): the longest pause a step caused on the
   engine's thread (the snapshot header's step apart), the amortized cost per archived order, and
   the longest engine call of the run against the same calls without snapshots.

Run: `.venv/bin/python benchmarks/bench_snapshot.py [--orders 100000] [--after 20000]
[--url postgresql://postgres@127.0.0.1:5432/...]` (default: SQLite in a temporary directory).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relayer.engine import Engine  # noqa: E402
from relayer.journal import open_journal  # noqa: E402
from relayer.model import BookOrder, FeeSchedule, Instrument, Reason  # noqa: E402

UNIT = 10**8
INSTRUMENT = Instrument(
    series_id=2**255 + 7,
    name="ETH-27DEC24-3000-C",
    quote_token="0x" + "a0" * 20,
    collateral_token="0x" + "c0" * 20,
    is_put=False,
    strike=3000 * UNIT,
    expiry=1_735_286_400,
    collateral_unit=10**18,
)
MAKERS = ["0x" + f"{i:02x}" * 20 for i in range(1, 41)]
RESTING = ["0x" + f"{i:02x}" * 20 for i in range(101, 121)]  # never cancelled
_serial = itertools.count(1)
_RUN = os.urandom(8)


def _order(maker: str, is_buy: bool, price: int, cid: bool = False) -> BookOrder:
    n = next(_serial)
    return BookOrder(
        hash=_RUN + n.to_bytes(24, "big"),
        maker=maker,
        series_id=INSTRUMENT.series_id,
        is_buy=is_buy,
        amount=UNIT,
        price=price * 10**6,
        max_fee=2**200,
        nonce=n,
        deadline=2**40,
        client_order_id=f"c{n}" if cid else None,
        payload=os.urandom(400),  # about what the intake journals per signed order
    )


def _churn(engine: Engine, orders: int, block: list[int]) -> None:
    """`orders` orders in groups of 100: 30 crossing pairs matched, sent and confirmed, 40
    orders placed and cancelled."""
    done = 0
    while done < orders:
        group = []
        for i in range(30):
            group.append(_order(MAKERS[i], True, 100, cid=i % 4 == 0))
            group.append(_order(MAKERS[i + 1], False, 100))
        results = engine.place_many(group, 1)
        ids = [m.id for r in results for m in r.matches]
        block[0] += 1
        tx = block[0].to_bytes(32, "big")
        engine.batch_submitted(ids, tx)
        engine.fill_confirmed_many(ids, tx, block[0])
        maker = MAKERS[block[0] % len(MAKERS)]
        engine.place_many([_order(maker, False, 300) for _ in range(40)], 1)
        engine.prune_maker(maker, Reason.CANCELLED_BY_MAKER)
        done += 100


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--after", type=int, default=20_000, help="orders after the snapshot")
    parser.add_argument("--url", default=None)
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory()
    url = args.url or f"sqlite:///{tmp.name}/journal.db"
    fees = FeeSchedule(2, 5)
    engine = Engine.open(open_journal(url), [INSTRUMENT], fees=fees, snapshot_every=0)
    engine.place_many(
        [_order(RESTING[i % 20], i % 2 == 0, 50 if i % 2 == 0 else 150) for i in range(2_000)], 1
    )
    block = [0]
    start = time.perf_counter()
    _churn(engine, args.orders, block)
    built = time.perf_counter() - start
    engine.journal.close()
    print(
        f"journal: {args.orders:,} orders of churn + 2,000 resting, built in {built:.1f} s; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {url.split('://')[0]}"
    )

    journal = open_journal(url)
    events = journal.durable_seq
    start = time.perf_counter()
    full = Engine.open(journal, [INSTRUMENT], fees=fees, snapshot_every=0, from_snapshot=False)
    replay = time.perf_counter() - start
    print(
        f" full replay from 0:     {replay:6.2f} s  {events / replay:>9,.0f} events/s"
        f"  {events:,} events, {full.in_memory()[0]:,} orders in memory"
    )
    start = time.perf_counter()
    assert full.checkpoint()
    stats = full.last_checkpoint
    print(
        f" checkpoint:             {time.perf_counter() - start:6.2f} s  snapshot"
        f" {int(stats['bytes']):,} bytes before compression, {int(stats['orders_kept']):,}"
        f" orders kept, {int(stats['orders_archived']):,} archived (one transaction)"
    )
    _churn(full, args.after, block)
    after = journal.durable_seq - full.snapshot_seq
    journal.close()

    journal = open_journal(url)
    start = time.perf_counter()
    restored = Engine.open(journal, [INSTRUMENT], fees=fees, snapshot_every=0)
    restart = time.perf_counter() - start
    print(
        f" restart from snapshot:  {restart:6.2f} s  ({after:,} events after it replayed;"
        f" {restored.in_memory()[0]:,} orders in memory)"
    )
    total = journal.durable_seq
    start = time.perf_counter()
    Engine.open(journal, [INSTRUMENT], fees=fees, snapshot_every=0, from_snapshot=False)
    print(f" same journal from 0:    {time.perf_counter() - start:6.2f} s  ({total:,} events)")
    # steady state: the default snapshot_every, one snapshot taken in the course of trading
    restored.snapshot_every = 100_000
    restored._next_snapshot = restored.snapshot_seq + restored.snapshot_every
    taken = restored.snapshot_seq
    steps = restored.snapshot_stats
    steps.update(steps=0, longest_step=0.0, step_seconds=0.0, orders_archived=0)
    calls = _Timed(restored)
    gc.callbacks.append(calls.gc)
    durations: list[float] = []
    step = restored.archive_some

    def timed_step(budget: float | None = None) -> bool:  # what each commit calls
        start = time.perf_counter()
        out = step(budget)
        durations.append(time.perf_counter() - start)
        return out

    restored.archive_some = timed_step  # type: ignore[method-assign]
    while restored.snapshot_seq == taken:
        _churn(calls, 1_000, block)  # type: ignore[arg-type]
    stats = restored.last_checkpoint
    archived = int(steps["orders_archived"])
    print(
        f" snapshot cycle every 100,000 events: {int(steps['steps'])} steps,"
        f" longest step {1e3 * steps['longest_step']:.1f} ms, header step"
        f" {1e3 * stats['last_step']:.1f} ms ({int(stats['orders_kept']):,} orders and"
        f" {int(stats['matches_kept']):,} matches kept), {steps['step_seconds']:.2f} s in all for"
        f" {archived:,} orders archived: {1e6 * steps['step_seconds'] / max(1, archived):.0f} us"
        f" per order amortized; load average {os.getloadavg()[0]:.1f}"
    )
    gc.callbacks.remove(calls.gc)
    del restored.archive_some
    durations.sort()
    print(
        f" steps' pauses: median {1e3 * durations[len(durations) // 2]:.1f} ms, p99"
        f" {1e3 * durations[int(len(durations) * 0.99)]:.1f} ms, max {1e3 * durations[-1]:.1f} ms,"
        f" {sum(d > 0.010 for d in durations)} over 10 ms and {sum(d > 0.020 for d in durations)}"
        f" over 20 ms of {len(durations)}; load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f" longest engine call meanwhile: {1e3 * calls.longest:.1f} ms ({calls.longest_name});"
        f" longest garbage collection {1e3 * calls.longest_gc:.1f} ms;"
        f" load average {os.getloadavg()[0]:.1f}"
    )
    restored.snapshot_every = 0  # the same trading without snapshots, for comparison
    calls = _Timed(restored)
    gc.callbacks.append(calls.gc)
    _churn(calls, 20_000, block)  # type: ignore[arg-type]
    gc.callbacks.remove(calls.gc)
    print(
        f" longest engine call without snapshots (20,000 orders): {1e3 * calls.longest:.1f} ms"
        f" ({calls.longest_name}); longest garbage collection {1e3 * calls.longest_gc:.1f} ms;"
        f" load average {os.getloadavg()[0]:.1f}"
    )
    journal.close()


class _Timed:
    """The engine, each call timed: the longest is what the engine's thread was busy with for
    one caller at most (snapshot steps run inside the calls that commit)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.longest = 0.0
        self.longest_name = ""
        self.longest_gc = 0.0
        self._gc_start = 0.0

    def gc(self, phase: str, info: dict) -> None:  # type: ignore[type-arg]
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.longest_gc = max(self.longest_gc, time.perf_counter() - self._gc_start)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        method = getattr(self.engine, name)

        def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            out = method(*args, **kwargs)
            took = time.perf_counter() - start
            if took > self.longest:
                self.longest, self.longest_name = took, name
            return out

        return timed


if __name__ == "__main__":
    main()
