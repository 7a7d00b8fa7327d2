"""Snapshots and eviction (relayer.engine `checkpoint`, relayer.journal `write_snapshot`), on both
backends where a database is involved.

The model is the full replay: an engine that replays the whole journal from sequence 0 and keeps
everything in memory. An engine that snapshots every few events, archives the orders that are done
and restarts from its snapshots must answer every query (`snapshot_views.views`) exactly as the
model does, after any sequence of operations.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from relayer_helpers import CALL, MAKER, NOW, PUT, TAKER, UNIT, order
from snapshot_views import KINDS, MAKERS, TIFS, Driver, views
from snapshot_views import funds as _makers_funds
from utils.profiles import scaled

from relayer.engine import Engine
from relayer.errors import (
    ClientOrderIdConflict,
    EngineStopped,
    JournalError,
    NotOrderMaker,
    UnknownOrder,
)
from relayer.events import OrderReceived
from relayer.journal import open_journal
from relayer.model import BookOrder, FeeSchedule, MatchState, OrderStatus
from strikeline import db

FEES = FeeSchedule(3, 7)
INSTRUMENTS = [CALL, PUT]
#: small settings, so that a short run snapshots, archives and drops matches many times, most
#: snapshot cycles in several steps (two orders archived per step)
SMALL = {"snapshot_every": 9, "keep_blocks": 3, "recent_matches": 4, "archive_chunk": 2}
#: snapshots only when the test calls `checkpoint`, and nothing kept in memory that is done (not
#: even a match confirmed in the newest block)
BY_HAND = {"snapshot_every": 0, "keep_blocks": -1, "recent_matches": 0}


def funds():  # type: ignore[no-untyped-def]
    """The random makers' funds, and MAKER's and TAKER's."""
    view = _makers_funds()
    for maker in (MAKER, TAKER):
        view.balances[(maker, CALL.quote_token)] = 10**15
        view.balances[(maker, CALL.collateral_token)] = 10**22
    return view


def _open(journal, funds_view, **kwargs):  # type: ignore[no-untyped-def]
    return Engine.open(journal, INSTRUMENTS, fees=FEES, funds=funds_view, **kwargs)


def _model(journal, funds_view) -> Engine:  # type: ignore[no-untyped-def]
    """The full replay: every event from 0, nothing ever archived or snapshotted."""
    return _open(journal, funds_view, from_snapshot=False, snapshot_every=0)


def _compare(engine: Engine, driver: Driver, funds_view, journal) -> None:  # type: ignore[no-untyped-def]
    hashes = [o.hash for o in driver.placed]
    restored = _open(journal, funds_view, snapshot_every=0, keep_blocks=3, recent_matches=4)
    model = _model(journal, funds_view)
    for book in restored.books.values():
        book.check_invariants()
    want = views(model, hashes, driver.client_ids, trades=4, horizon=3)
    assert views(engine, hashes, driver.client_ids, trades=4, horizon=3) == want
    assert views(restored, hashes, driver.client_ids, trades=4, horizon=3) == want


op = st.tuples(
    st.sampled_from(KINDS + ["restart", "checkpoint"]),
    st.sampled_from(MAKERS),
    st.booleans(),
    st.integers(1, 4),
    st.integers(98, 102),
    st.sampled_from(TIFS),
    st.booleans(),
    st.integers(0, 3),
    st.integers(0, 10**6),
    st.integers(0, 3),
)


@settings(max_examples=scaled(1 / 3), deadline=None)
@given(st.lists(op, min_size=20, max_size=90), st.integers(0, 2**32))
def test_restarts_from_snapshots_answer_as_the_full_replay(ops: list[tuple], seed: int) -> None:
    journal = open_journal("sqlite:///:memory:")
    view = funds()
    driver = Driver(_open(journal, view, **SMALL), view, seed=seed)
    for o in ops:
        if o[0] == "restart":  # a new engine from the newest snapshot takes over
            driver.engine = _open(journal, view, **SMALL)
        elif o[0] == "checkpoint":
            driver.engine.checkpoint()
        else:
            driver.step(o)
    _compare(driver.engine, driver, view, journal)
    journal.close()


def test_a_long_random_run_on_both_backends(journal_url: str) -> None:
    """The same, seeded, 1,500 operations with restarts, on SQLite and PostgreSQL; what is in
    memory stays bounded while the journal grows."""
    rng = random.Random(20261207)
    view = funds()
    journal = open_journal(journal_url)
    driver = Driver(_open(journal, view, **SMALL), view, seed=7)
    for i in range(1_500):
        if i % 400 == 399:
            driver.engine = _open(journal, view, **SMALL)
        driver.step(driver.random_op(rng))
    assert driver.engine.snapshot_seq > journal.durable_seq - 2 * SMALL["snapshot_every"]
    _compare(driver.engine, driver, view, journal)
    archived = journal.db.fetchval("SELECT COUNT(*) FROM relayer_archived_orders")
    assert archived > len(driver.placed) / 3  # orders that were done left memory
    journal.close()


# ----------------------------------------------------------------------------- eviction


def _crossed(engine: Engine, block: int, cid: str | None = None) -> tuple[BookOrder, BookOrder]:
    """A bid and an ask that match wholly, sent and confirmed in `block`."""
    bid = order(MAKER, True, UNIT, 100 * 10**6, client_order_id=cid)
    ask = order(TAKER, False, UNIT, 100 * 10**6)
    engine.place(bid, NOW)
    (match,) = engine.place(ask, NOW).matches
    engine.batch_submitted([match.id], block.to_bytes(32, "big"))
    engine.fill_confirmed(match.id, block.to_bytes(32, "big"), block)
    return bid, ask


def _copy(o: BookOrder) -> BookOrder:
    return BookOrder(
        hash=o.hash,
        maker=o.maker,
        series_id=o.series_id,
        is_buy=o.is_buy,
        amount=o.amount,
        price=o.price,
        max_fee=o.max_fee,
        nonce=o.nonce,
        deadline=o.deadline,
        tif=o.tif,
        client_order_id=o.client_order_id,
        payload=o.payload,
    )


def test_archived_orders_answer_as_before_and_re_posts_stay_duplicates(journal_url: str) -> None:
    view = funds()
    journal = open_journal(journal_url)
    engine = _open(journal, view, **BY_HAND)
    bid, ask = _crossed(engine, 1, cid="mine-1")
    cancelled = order(MAKER, False, UNIT, 120 * 10**6, client_order_id="mine-2")
    engine.place(cancelled, NOW)
    engine.cancel(cancelled.hash, MAKER)
    resting = order(MAKER, True, 2 * UNIT, 90 * 10**6)
    engine.place(resting, NOW)
    done = [bid.hash, ask.hash, cancelled.hash]
    keys = [(MAKER, "mine-1"), (MAKER, "mine-2")]
    before = views(engine, [*done, resting.hash], keys, trades=0)
    assert engine.in_memory() == (4, 1)

    assert engine.checkpoint()
    assert engine.in_memory() == (1, 0)  # only the resting order
    assert engine.find(bid.hash) is not None and engine.find(bid.hash) is not bid  # a copy
    assert views(engine, [*done, resting.hash], keys, trades=0) == before
    assert engine.find(b"\x77" * 32) is None and engine.matches_of(b"\x77" * 32) == []
    with pytest.raises(UnknownOrder):
        engine.order(b"\x77" * 32)

    # re-posts of archived orders answer as duplicates and journal nothing; a clientOrderId of
    # an archived order is still taken; cancelling an archived order changes nothing
    events = journal.count()
    for o in (bid, cancelled):
        result = engine.place(_copy(o), NOW)
        assert result.duplicate and result.error is None
        assert (result.order.status, result.order.filled) == (o.status, o.filled)
        assert [(m.id, m.state_tuple()) for m in result.matches] == before["matches_of"][o.hash]
    results = engine.place_many(
        [order(MAKER, True, UNIT, 80 * 10**6, client_order_id="mine-1")], NOW
    )
    assert isinstance(results[0].error, ClientOrderIdConflict)
    assert engine.cancel(cancelled.hash, MAKER).status is OrderStatus.CANCELLED
    with pytest.raises(NotOrderMaker):
        engine.cancel(bid.hash, TAKER)
    assert journal.count() == events
    assert engine.in_memory() == (1, 0)  # queries brought nothing back into memory

    journal.close()
    journal = open_journal(journal_url)
    restarted = _open(journal, view, **BY_HAND)
    assert restarted.in_memory() == (1, 0)
    assert views(restarted, [*done, resting.hash], keys, trades=0) == before
    assert restarted.place(_copy(ask), NOW).duplicate
    with pytest.raises(ClientOrderIdConflict):
        restarted.place(order(MAKER, True, UNIT, 80 * 10**6, client_order_id="mine-2"), NOW)
    assert journal.count() == events
    journal.close()


def test_a_reorg_of_an_archived_fill_brings_it_back_and_replays(journal_url: str) -> None:
    view = funds()
    journal = open_journal(journal_url)
    engine = _open(journal, view, **BY_HAND)
    bid, ask = _crossed(engine, 5)
    (match_id,) = [m.id for m in engine.matches_of(bid.hash)]
    reserved = engine.snapshot()["reserved"]
    assert engine.checkpoint() and engine.in_memory() == (0, 0)
    again = engine.fill_reorged(match_id)  # the block left the chain: pending again
    assert again.state is MatchState.PENDING
    assert engine.in_memory() == (2, 1)
    assert engine.order(bid.hash).pending == UNIT and engine.order(bid.hash).filled == 0
    assert engine.snapshot()["reserved"] != reserved  # reserved again, as a full replay does
    # a crash now: the snapshot does not hold the reorg, the events after it do
    model = _model(journal, view)
    restored = _open(journal, view, snapshot_every=0)
    assert restored.snapshot_seq < journal.durable_seq
    hashes = [bid.hash, ask.hash]
    assert views(restored, hashes, []) == views(model, hashes, []) == views(engine, hashes, [])
    engine.fill_confirmed(match_id, b"\x05" * 32, 9)
    assert engine.checkpoint() and engine.in_memory() == (0, 0)
    assert views(engine, hashes, [], trades=0) == views(_model(journal, view), hashes, [], trades=0)
    journal.close()


def test_memory_stays_bounded_while_orders_churn(journal_url: str) -> None:
    """12,000 orders that fill or are cancelled, with 30 orders resting throughout: what the
    engine holds stays below a bound that does not grow with the journal."""
    view = funds()
    journal = open_journal(journal_url)
    engine = _open(journal, view, snapshot_every=500, keep_blocks=2, recent_matches=10)
    resting = [order(MAKER, True, UNIT, (10 + i) * 10**6) for i in range(30)]
    engine.place_many(resting, NOW)
    most_orders = most_matches = 0
    for block in range(1, 401):
        bids = [order(MAKER, True, UNIT, 100 * 10**6) for _ in range(10)]
        asks = [order(TAKER, False, UNIT, 100 * 10**6) for _ in range(10)]
        results = engine.place_many(bids + asks, NOW)
        ids = [m.id for r in results for m in r.matches]
        assert len(ids) == 10
        engine.batch_submitted(ids, block.to_bytes(32, "big"))
        engine.fill_confirmed_many(ids, block.to_bytes(32, "big"), block)
        maker = MAKERS[block % 5]
        engine.place_many([order(maker, False, UNIT, 500 * 10**6) for _ in range(10)], NOW)
        engine.prune_maker(maker, "collateral_withdrawn")
        orders, matches = engine.in_memory()
        most_orders, most_matches = max(most_orders, orders), max(most_matches, matches)
    assert journal.durable_seq > 24_000
    assert engine.snapshot_seq >= journal.durable_seq - 500
    # the resting orders and the orders of up to 500 events since the last snapshot (~250);
    # the 10 recent matches, those confirmed in the last 3 blocks (30) and those made since the
    # last snapshot (~90); never the 12,000 orders and 4,000 matches
    assert most_orders < 30 + 300, most_orders
    assert most_matches < 10 + 30 + 100, most_matches
    assert engine.last_checkpoint["orders_kept"] >= 30
    assert all(engine.find(o.hash) is o for o in resting)  # still the live objects
    journal.close()


def test_a_failed_snapshot_write_changes_nothing_and_is_retried(
    journal_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = funds()
    journal = open_journal(journal_url)
    engine = _open(journal, view, **BY_HAND)
    first, _ = _crossed(engine, 1)
    assert engine.checkpoint()
    kept = journal.snapshot()
    second, _ = _crossed(engine, 2)
    real = journal.db.execute

    def failing(sql: str, params=()):  # type: ignore[no-untyped-def]
        if sql.startswith("INSERT INTO relayer_snapshots"):  # the last write of the snapshot
            raise db.DatabaseError("disk full")
        return real(sql, params)

    monkeypatch.setattr(journal.db, "execute", failing)
    assert not engine.checkpoint()  # logged; the events are committed and the engine goes on
    monkeypatch.undo()
    assert engine.in_memory() == (2, 1) and not engine.stopped
    assert journal.snapshot() == kept  # the previous snapshot, whole
    assert journal.archived_order(second.hash) is None  # the archive rolled back with it
    assert journal.archived_order(first.hash) is not None
    restored = _open(journal, view, snapshot_every=0)
    assert restored.in_memory() == (2, 1)
    hashes = [first.hash, second.hash]
    assert views(restored, hashes, [], trades=0) == views(
        _model(journal, view), hashes, [], trades=0
    )
    failed_at = journal.durable_seq
    engine.snapshot_every = 4  # the next commit past the retry point starts a snapshot cycle
    _crossed(engine, 3)
    while engine._cycle is not None:  # its steps follow commits: the rest of it now
        engine.archive_some()
    assert journal.snapshot_seq() == engine.snapshot_seq > failed_at
    assert engine.in_memory()[0] <= 2  # the first two pairs left memory
    hashes.append(_crossed(engine, 4)[0].hash)
    restored = _open(journal, view, snapshot_every=0)
    assert views(restored, hashes, [], trades=0) == views(
        _model(journal, view), hashes, [], trades=0
    )
    journal.close()


def test_a_snapshot_is_taken_every_n_events_and_at_a_clean_shutdown(journal_url: str) -> None:
    view = funds()
    journal = open_journal(journal_url)
    engine = _open(journal, view, snapshot_every=20)
    while journal.durable_seq < 20:
        _crossed(engine, 1)
    passed = journal.durable_seq  # the commit that passed 20 built a snapshot header there
    assert engine.snapshot_seq == 0
    _crossed(engine, 2)  # and the next commit's step wrote it
    assert engine.snapshot_seq == passed == journal.snapshot_seq()
    taken = engine.snapshot_seq
    journal.close()  # a clean shutdown: at least snapshot_every / 10 events since the last
    with open_journal(journal_url) as again:
        assert again.snapshot_seq() == again.durable_seq > taken
    # a journal written before snapshots existed (or with them off) replays from 0 and takes its
    # first snapshot at once when it holds snapshot_every events or more
    with open_journal(journal_url) as again:
        again.db.execute("DELETE FROM relayer_snapshots")
        fresh = _open(again, view, snapshot_every=5)
        assert fresh.snapshot_seq == again.durable_seq


def test_replay_refuses_a_snapshot_that_names_a_series_it_was_not_given(journal_url: str) -> None:
    view = funds()
    journal = open_journal(journal_url)
    engine = _open(journal, view, snapshot_every=0)
    engine.place(order(MAKER, True, UNIT, 100 * 10**6, instrument=PUT), NOW)
    engine.checkpoint()
    with pytest.raises(JournalError, match="series"):
        Engine.open(journal, [CALL], fees=FEES, funds=view)
    journal.close()


def test_a_stopped_engine_takes_no_snapshot(journal_url: str) -> None:
    view = funds()
    journal = open_journal(journal_url)
    engine = _open(journal, view, snapshot_every=10)
    _crossed(engine, 1)
    engine._stopped = True
    with pytest.raises(EngineStopped):
        engine.checkpoint()
    journal.close()  # the shutdown hook skips a stopped engine
    with open_journal(journal_url) as again:
        assert again.snapshot_seq() == 0


# ----------------------------------------------------------------------------- kill -9

WRITER = Path(__file__).resolve().parent / "crash_writer_snapshot.py"


def _kill_during_snapshot(
    url: str, seed: int, snapshots: int, mode: str = "snapshot"
) -> tuple[int, int]:
    """Run the writer until it is inside its `snapshots`-th snapshot write (or archive step, by
    `mode`: see crash_writer_snapshot.py), kill -9 it there; returns the last acknowledged
    sequence number and the seq it printed."""
    child = subprocess.Popen(
        [sys.executable, str(WRITER), url, str(seed), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    acked, seen = 0, 0
    try:
        while True:
            line = child.stdout.readline()
            assert line, child.stderr.read() if child.stderr else "writer died"
            kind, seq = line.split()
            if kind == "ack":
                acked = int(seq)
            elif kind in ("snapshot", "chunk"):
                seen += 1
                if seen == snapshots:
                    os.kill(child.pid, signal.SIGKILL)  # inside the snapshot's transaction
                    child.wait()
                    return acked, int(seq)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def _restarts_as_the_full_replay(journal_url: str, acked: int) -> tuple[int, int]:
    """After a kill: nothing acknowledged is lost, and an engine restarted from the newest
    snapshot answers every query as the full replay. Returns the newest snapshot's seq and how
    many orders the archive holds."""
    with open_journal(journal_url, readonly=True) as journal:
        assert journal.durable_seq >= acked  # nothing acknowledged is lost
        newest = journal.snapshot_seq()
        hashes, client_ids = [], []
        for _, event in journal.events():
            if isinstance(event, OrderReceived):
                hashes.append(event.hash)
                if event.client_order_id is not None:
                    client_ids.append((event.maker, event.client_order_id))
        view = funds()
        restored = _open(journal, view, snapshot_every=0, keep_blocks=3, recent_matches=4)
        assert restored.snapshot_seq == newest
        model = _model(journal, view)
        want = views(model, hashes, client_ids, trades=4, horizon=3)
        assert views(restored, hashes, client_ids, trades=4, horizon=3) == want
        archived = journal.db.fetchval("SELECT COUNT(*) FROM relayer_archived_orders")
    return newest, int(archived)


def test_kill_9_inside_a_snapshot_write_leaves_the_previous_one_usable(journal_url: str) -> None:
    for seed, snapshots in ((1, 3), (2, 1), (3, 5)):
        acked, writing = _kill_during_snapshot(journal_url, seed, snapshots)
        with open_journal(journal_url, readonly=True) as journal:
            assert journal.snapshot_seq() < writing  # the killed write left nothing behind
        newest, _ = _restarts_as_the_full_replay(journal_url, acked)
    # and the writer starts again from there (the next round above did, three times)
    assert newest > 0


@pytest.mark.parametrize("mode", ["chunk", "in-chunk"])
def test_kill_9_between_or_inside_archive_steps_loses_nothing(journal_url: str, mode: str) -> None:
    """Killed after an archive step of a snapshot cycle committed (orders archived and gone
    from memory, the newest snapshot older than that), or inside one: the restart from the
    newest snapshot answers as the full replay; then the writer goes on from there."""
    rows = []
    for seed, steps in ((4, 2), (5, 7), (6, 4), (7, 11)):
        acked, at = _kill_during_snapshot(journal_url, seed, steps, mode)
        newest, archived = _restarts_as_the_full_replay(journal_url, acked)
        rows.append(archived)
        if mode == "chunk":
            assert newest < at  # the step archived orders the newest snapshot still holds
    assert rows[-1] > 0  # orders were archived, by the steps and the snapshots


def test_the_filter_of_archived_keys_grows_and_forgets_nothing(journal_url: str) -> None:
    """6,000 archived orders with clientOrderIds (12,000 keys, three times the filter's first
    capacity): after it grew, and after a restart, every one still answers as archived."""
    view = funds()
    journal = open_journal(journal_url)
    engine = _open(journal, view, **BY_HAND)
    placed = []
    for batch in range(12):
        group = [
            order(MAKER, False, UNIT, 500 * 10**6, client_order_id=f"k{batch}-{i}")
            for i in range(500)
        ]
        engine.place_many(group, NOW)
        engine.prune_maker(MAKER, "collateral_withdrawn")
        assert engine.checkpoint()
        placed.extend(group)
    assert engine.in_memory() == (0, 0)
    assert engine._archived.capacity > 12_000 and engine._archived.count == 12_000
    events = journal.count()
    for restarted in (False, True):
        if restarted:
            journal.close()
            journal = open_journal(journal_url)
            engine = _open(journal, view, **BY_HAND)
        for o in placed[::97]:
            assert engine.place(_copy(o), NOW).duplicate
            again = order(MAKER, True, UNIT, 1, client_order_id=o.client_order_id)
            assert isinstance(engine.place_many([again], NOW)[0].error, ClientOrderIdConflict)
            assert engine.client_order(MAKER, o.client_order_id or "").hash == o.hash
        assert journal.count() == events
    assert len(engine.orders_of(MAKER, live_only=False)) == 6_000
    journal.close()


def test_an_order_back_from_the_archive_leaves_again_only_with_a_snapshot(
    journal_url: str,
) -> None:
    """An archived fill is reorganised away and then reverted (both orders cancelled): done
    again, but the newest snapshot does not hold them, and a replay from it reads their archived
    state when it reaches the reorg. So an archive step between snapshots must not archive them
    again (a replay would then load their later state and apply the reorg and revert twice): they
    leave memory with the next snapshot. A restart in between answers as the full replay."""
    view = funds()
    journal = open_journal(journal_url)
    engine = _open(journal, view, **{**BY_HAND, "archive_chunk": 1})
    bid, ask = _crossed(engine, 5)
    (match_id,) = [m.id for m in engine.matches_of(bid.hash)]
    assert engine.checkpoint() and engine.in_memory() == (0, 0)
    first = engine.snapshot_seq
    engine.fill_reorged(match_id)
    engine.fill_reverted(match_id, [bid.hash, ask.hash], "blamed", NOW)
    later = order(MAKER, False, UNIT, 120 * 10**6)  # done, and not back from the archive
    engine.place(later, NOW)
    engine.cancel(later.hash, MAKER)
    engine.place(order(MAKER, True, UNIT, 90 * 10**6), NOW)  # live
    engine._start_cycle()
    hashes = [bid.hash, ask.hash, later.hash]
    steps = 0
    while not engine.archive_some(1.0):  # one order per step; the last one writes the header
        steps += 1
        # a crash here: the newest snapshot is the first one
        with open_journal(journal_url, readonly=True) as reader:
            assert reader.snapshot_seq() == first
            restored = _open(reader, funds(), snapshot_every=0, keep_blocks=-1, recent_matches=0)
            model = _model(reader, funds())
            assert views(restored, hashes, [], trades=0) == views(model, hashes, [], trades=0)
        assert bid.hash in engine._orders and ask.hash in engine._orders
    assert steps >= 1 and later.hash not in engine._orders  # a step archived it
    assert engine.snapshot_seq > first and engine.in_memory() == (1, 0)
    assert views(engine, hashes, [], trades=0) == views(_model(journal, view), hashes, [], trades=0)
    journal.close()


def test_a_header_is_dropped_when_what_it_archives_changes_before_its_write(
    journal_url: str,
) -> None:
    """The last step of a cycle builds the snapshot header, the next compresses it and the one
    after writes it: an order it archives that changed in between (its fill reorganised away
    again) is not archived with a stale state; the header is dropped and nothing leaves
    memory."""
    view = funds()
    journal = open_journal(journal_url)
    engine = _open(journal, view, **BY_HAND)
    bid, ask = _crossed(engine, 5)
    (match_id,) = [m.id for m in engine.matches_of(bid.hash)]
    assert engine.checkpoint()
    first = journal.snapshot_seq()
    engine.fill_reorged(match_id)
    engine.fill_confirmed(match_id, b"\x06" * 32, 6)  # done again, back from the archive
    engine._start_cycle()
    assert not engine.archive_some(1.0)  # built the header, with both orders leaving
    assert engine._cycle is not None and engine._cycle.pending is not None
    assert {o.hash for _, o in engine._cycle.pending.gone} == {bid.hash, ask.hash}
    assert not engine.archive_some(1.0)  # compressed it
    assert engine._cycle.pending.packed is not None
    engine.fill_reorged(match_id)  # pending again
    assert not engine.archive_some(1.0)  # dropped, not written
    assert engine._cycle is None and journal.snapshot_seq() == first
    assert engine.in_memory() == (2, 1) and engine.order(bid.hash).pending == UNIT
    hashes = [bid.hash, ask.hash]
    want = views(_model(journal, view), hashes, [], trades=0)
    assert views(engine, hashes, [], trades=0) == want
    assert views(_open(journal, view, snapshot_every=0), hashes, [], trades=0) == want
    engine.fill_confirmed(match_id, b"\x07" * 32, 7)
    engine._start_cycle()
    while not engine.archive_some(1.0):
        pass
    assert journal.snapshot_seq() > first and engine.in_memory() == (0, 0)
    want = views(_model(journal, view), hashes, [], trades=0)
    assert views(engine, hashes, [], trades=0) == want
    assert views(_open(journal, view, snapshot_every=0), hashes, [], trades=0) == want
    journal.close()
