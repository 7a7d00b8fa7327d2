"""relayer.journal and relayer.engine on both backends: sequencing, group commit, the writer lock,
uniqueness in the database, idempotent re-posts, clientOrderId conflicts, replay, fail-stop."""

from __future__ import annotations

import pytest
from relayer_helpers import CALL, HOLDER, MAKER, NOW, PUT, TAKER, UNIT, WRITER, ChainFunds, order

from relayer.engine import Engine
from relayer.errors import (
    ClientOrderIdConflict,
    EngineStopped,
    JournalError,
    NotOrderMaker,
    UnknownInstrument,
    WriterLockError,
)
from relayer.events import Closed, Matched, OrderReceived, Reverted
from relayer.journal import open_journal
from relayer.model import FeeSchedule, MatchState, OrderStatus, Reason, TimeInForce
from strikeline import db


def _received(n: int, maker: str = MAKER, client_order_id: str | None = None) -> OrderReceived:
    return OrderReceived(
        n.to_bytes(32, "big"),
        maker,
        CALL.series_id,
        True,
        UNIT,
        10**8,
        2**255,
        n,
        2**64,
        "GTC",
        client_order_id,
        b"\x00\xff payload",
        NOW,
    )


def test_events_are_sequenced_committed_together_and_read_back(journal_url: str) -> None:
    with open_journal(journal_url) as journal:
        events = [
            _received(1),
            Matched(1, CALL.series_id, b"\x01" * 32, b"\x02" * 32, UNIT, 2**200, True, 5, 0, 7),
            Closed(b"\x03" * 32, OrderStatus.EXPIRED, Reason.DEADLINE_PASSED),
        ]
        seqs = [journal.append(e) for e in events]
        assert seqs == [1, 2, 3] and journal.buffered == 3 and journal.durable_seq == 0
        assert list(journal.events()) == []  # nothing visible before the commit
        assert journal.commit() == 3
        assert list(journal.events()) == list(zip(seqs, events, strict=True))
        assert [s for s, _ in journal.events(after=1, upto=2)] == [2]
        assert journal.order_seq((1).to_bytes(32, "big")) == 1
    with open_journal(journal_url) as again:  # numbering continues after a restart
        assert again.last_seq == 3
        assert again.append(_received(2)) == 4


def test_uncommitted_events_are_lost_with_the_process(journal_url: str) -> None:
    journal = open_journal(journal_url)
    journal.append(_received(1))
    journal.commit()
    journal.append(_received(2))
    journal.close()  # as a crash would: the buffer never reached the database
    with open_journal(journal_url) as again:
        assert [s for s, _ in again.events()] == [1]
        assert again.append(_received(3)) == 2


def test_a_second_writer_is_refused_until_the_first_closes(journal_url: str) -> None:
    first = open_journal(journal_url)
    with pytest.raises(WriterLockError, match="another process writes this journal"):
        open_journal(journal_url)
    reader = open_journal(journal_url, readonly=True)  # readers need no lock
    with pytest.raises(JournalError, match="read-only"):
        reader.append(_received(9))
    reader.close()
    first.close()
    open_journal(journal_url).close()


def test_the_database_refuses_a_duplicate_order_hash_and_client_order_id(journal_url) -> None:
    with open_journal(journal_url) as journal:
        journal.append(_received(1, client_order_id="q-1"))
        journal.commit()
        journal.append(_received(2))
        journal.append(_received(1))  # the same order hash again
        with pytest.raises(JournalError, match="journal commit failed"):
            journal.commit()
        assert journal.count() == 1  # nothing of the failed group was written
        journal.append(_received(3, client_order_id="q-1"))
        with pytest.raises(JournalError):
            journal.commit()
        journal.append(_received(4, maker=WRITER, client_order_id="q-1"))  # another maker: fine
        journal.commit()
        assert journal.client_order(WRITER, "q-1") == (4).to_bytes(32, "big")
        assert journal.client_order(MAKER, "q-1") == (1).to_bytes(32, "big")


def test_open_journal_names_a_bad_url_without_its_password() -> None:
    with pytest.raises(JournalError) as caught:
        open_journal("postgresql://user:hunter2@127.0.0.1:1/nothing")
    assert "hunter2" not in str(caught.value) and "***" in str(caught.value)
    with pytest.raises(JournalError, match="unsupported database url"):
        open_journal("mysql://x")


# ----------------------------------------------------------------------------- the engine


def _funds() -> ChainFunds:
    funds = ChainFunds()
    for maker in (MAKER, TAKER, WRITER, HOLDER):
        funds.balances[(maker, CALL.quote_token)] = 10**12
        funds.balances[(maker, CALL.collateral_token)] = 10**20
    return funds


def _engine(url: str, funds: ChainFunds | None = None) -> Engine:
    return Engine.open(
        open_journal(url), [CALL, PUT], fees=FeeSchedule(2, 5), funds=funds or _funds()
    )


def test_re_posting_an_order_is_idempotent_across_restarts(journal_url: str) -> None:
    engine = _engine(journal_url)
    ask = order(MAKER, False, 2 * UNIT, 100 * 10**6)
    engine.place(ask, NOW)
    bid = order(TAKER, True, UNIT, 100 * 10**6, client_order_id="b-1")
    first = engine.place(bid, NOW)
    events = engine.journal.count()
    again = engine.place(order(TAKER, True, UNIT, 100 * 10**6), NOW)  # another order: new
    assert not again.duplicate
    events = engine.journal.count()
    repost = engine.place(_copy(bid), NOW)
    assert repost.duplicate and repost.order is first.order
    assert [m.id for m in repost.matches] == [m.id for m in first.matches]
    assert engine.journal.count() == events  # nothing journaled for a re-post
    engine.journal.close()

    restarted = _engine(journal_url)
    after = restarted.place(_copy(bid), NOW)
    assert after.duplicate and after.order.seq == bid.seq
    assert after.order.status is OrderStatus.PARTIALLY_FILLED
    assert [m.key() for m in after.matches] == [m.key() for m in first.matches]
    restarted.journal.close()


def test_client_order_id_reuse_for_another_order_is_a_conflict(journal_url: str) -> None:
    engine = _engine(journal_url)
    original = order(MAKER, True, UNIT, 100, client_order_id="quote-7")
    engine.place(original, NOW)
    clash = order(MAKER, True, UNIT, 101, client_order_id="quote-7")
    with pytest.raises(ClientOrderIdConflict) as caught:
        engine.place(clash, NOW)
    assert caught.value.existing == original.hash
    # in a batch, the conflict is that order's result; the others go through
    other_maker = order(WRITER, True, UNIT, 99, client_order_id="quote-7")
    results = engine.place_many([clash, other_maker], NOW)
    assert isinstance(results[0].error, ClientOrderIdConflict) and results[1].error is None
    assert engine.client_order(WRITER, "quote-7") is other_maker
    assert engine.find(clash.hash) is None
    engine.journal.close()
    restarted = _engine(journal_url)
    with pytest.raises(ClientOrderIdConflict):
        restarted.place(order(MAKER, False, UNIT, 500, client_order_id="quote-7"), NOW)
    assert restarted.client_order(MAKER, "quote-7").hash == original.hash  # type: ignore[union-attr]
    restarted.journal.close()


def test_an_unknown_instrument_is_refused_and_nothing_is_journaled(journal_url: str) -> None:
    engine = _engine(journal_url)
    from dataclasses import replace

    stranger = order(MAKER, True, UNIT, 100, instrument=replace(CALL, series_id=1))
    result = engine.place_many([stranger], NOW)[0]
    assert isinstance(result.error, UnknownInstrument)
    assert engine.journal.count() == 0
    engine.journal.close()


def test_a_failed_commit_stops_the_engine_and_nothing_of_it_survives(journal_url: str) -> None:
    engine = _engine(journal_url)
    kept = order(MAKER, False, UNIT, 100)
    engine.place(kept, NOW)
    # another writer takes the next sequence number behind the engine's back
    with db.connect(journal_url) as intruder:
        intruder.execute(
            "INSERT INTO relayer_events (seq, kind, body) VALUES (?, ?, ?)",
            (engine.journal.last_seq + 1, "reorg", b'{"kind":"reorg","match_id":0}'),
        )
    lost = order(TAKER, True, UNIT, 100)
    with pytest.raises(EngineStopped, match="journal commit failed"):
        engine.place(lost, NOW)
    assert engine.stopped
    with pytest.raises(EngineStopped):
        engine.expire(NOW)
    engine.journal.close()
    with db.connect(journal_url) as fix:
        fix.execute("DELETE FROM relayer_events WHERE kind = 'reorg'")
    restarted = _engine(journal_url)
    assert restarted.find(lost.hash) is None  # never acknowledged, never there
    assert restarted.order(kept.hash).open == UNIT  # the acknowledged order is whole
    restarted.journal.close()


def test_a_whole_session_replays_to_the_same_state(journal_url: str) -> None:
    funds = _funds()
    engine = _engine(journal_url, funds)
    asks = [
        order(m, False, 2 * UNIT, (100 + i) * 10**6, max_fee=10**7)
        for i, m in enumerate((MAKER, WRITER, HOLDER))
    ]
    engine.place_many(asks, NOW)
    bids = [
        order(TAKER, True, 3 * UNIT, 101 * 10**6, max_fee=10**7, client_order_id="t-1"),
        order(HOLDER, True, UNIT, 99 * 10**6, tif=TimeInForce.POST_ONLY, max_fee=10**7),
        order(TAKER, True, UNIT, 102 * 10**6, tif=TimeInForce.IOC, max_fee=10**7),
    ]
    engine.place_many(bids, NOW)
    sent = engine.unsubmitted(limit=2)
    engine.batch_submitted([m.id for m in sent], b"\x0a" * 32)
    engine.fill_confirmed(sent[0].id, b"\x0a" * 32, 123)
    reverted = engine.fill_reverted(sent[1].id, {sent[1].sell}, "exchange: order cancelled", NOW)
    assert isinstance(reverted[0], Reverted)
    engine.cancel(asks[2].hash, HOLDER)
    with pytest.raises(NotOrderMaker):
        engine.cancel(asks[0].hash, TAKER)
    engine.prune_maker(HOLDER, Reason.NONCE_BELOW_MINIMUM, below_nonce=2**64)
    engine.expire(NOW + 1)
    state = engine.snapshot()
    assert engine.match(sent[0].id).state is MatchState.CONFIRMED
    assert engine.match(sent[1].id).state is MatchState.REVERTED
    engine.journal.close()

    rebuilt = _engine(journal_url, funds)
    assert rebuilt.snapshot() == state
    assert rebuilt.match_ids.last == engine.match_ids.last
    # a prefix of the journal rebuilds the state of that moment: the first group only
    with open_journal(journal_url, readonly=True) as j:
        early = Engine.open(j, [CALL, PUT], funds=funds, upto=3)
        assert [o.hash for o in early.books[CALL.series_id].resting(False)] == [
            a.hash for a in asks
        ]
    rebuilt.journal.close()


def _copy(o):
    """The same signed order posted again: a new object with the same fields."""
    from relayer.model import BookOrder

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


def test_replay_reads_page_by_page(journal_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import relayer.journal as journal_module

    monkeypatch.setattr(journal_module, "REPLAY_PAGE", 2)
    with open_journal(journal_url) as journal:
        for n in range(1, 6):
            journal.append(_received(n))
        journal.commit()
        assert [s for s, _ in journal.events()] == [1, 2, 3, 4, 5]
        assert [s for s, _ in journal.events(after=1, upto=4)] == [2, 3, 4]
        assert [e.hash for _, e in journal.events(after=4)] == [(5).to_bytes(32, "big")]


def test_confirming_a_batch_is_one_commit_and_replays(journal_url: str) -> None:
    with open_journal(journal_url) as journal:
        engine = Engine(journal, [CALL])
        for n in range(3):
            engine.place(order(MAKER, False, UNIT, 100 + n), NOW)
        taker = order(TAKER, True, 3 * UNIT, 200)
        ids = [m.id for m in engine.place(taker, NOW).matches]
        assert len(ids) == 3
        engine.batch_submitted(ids, b"\x01" * 32)
        before = journal.durable_seq
        done = engine.fill_confirmed_many(ids, b"\x02" * 32, 7)
        assert [m.state for m in done] == [MatchState.CONFIRMED] * 3
        assert journal.durable_seq == before + 3  # three events, one commit
        assert engine.order(taker.hash).status is OrderStatus.FILLED
        assert engine.fill_confirmed_many(ids, b"\x02" * 32, 7) == []  # idempotent
        snapshot = engine.snapshot()
    with open_journal(journal_url) as again:
        assert Engine.open(again, [CALL]).snapshot() == snapshot
