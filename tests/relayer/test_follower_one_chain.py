"""One follower step sees one chain (`relayer.follower.Follower.step`), against a real anvil with
the v2 system deployed, on both journal backends.

The step is driven directly, with the chain changed by the test at the worst moment: right after
the step read the logs up to the head, a reorg (`anvil_reorg`) drops the block of this relayer's
`Fill`. The step re-reads the makers' funds at the block hash of the head it read the logs to
(EIP-1898); that block is gone, so the step notices and changes nothing: the match's reservation
keeps counting. (Read at `latest`, the funds would be the new chain's, without the fill, and the
fill landed against them: the buyer's funds counted once more than it has.)

A reorg that removes the block of a raised minimum nonce (here `evm_revert` to a snapshot: the
chain even gets shorter) takes it out of the event index the intake checks, without a restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from system import ONE, STRIKE, automined, fund_manually, mine, new_maker, rpc, signed

from relayer.chainview import ChainView, Log
from relayer.engine import Engine
from relayer.follower import Follower, load_history
from relayer.journal import open_journal
from relayer.model import BookOrder, MatchState, OrderStatus, Reason
from relayer.settings import read_deployment
from relayer.worker import EngineWorker
from strikeline import db
from strikeline.orders import Match, SignedOrder
from strikeline.rpc import RpcPool

HORIZON = 8


def book_order(s: SignedOrder) -> BookOrder:
    """The order as the intake hands it to the engine."""
    o = s.order
    return BookOrder(
        hash=s.hash,
        maker=o.maker,
        series_id=o.series_id,
        is_buy=o.is_buy,
        amount=o.amount,
        price=o.limit_price,
        max_fee=o.max_fee,
        nonce=o.nonce,
        deadline=o.deadline,
    )


@contextmanager
def booted(c: SimpleNamespace, journal_url: str, *, mined: int = 0) -> Iterator[SimpleNamespace]:
    """A relayer's chain view, engine, engine thread and follower booted as `python -m relayer`
    boots them, at the head after `mined` new blocks (`booted`: that block); the journal and the
    follower's database are closed on the way out."""
    chain = ChainView(RpcPool([c.node.url], head_interval=None), read_deployment(c.deployment))
    database = db.connect(journal_url)
    journal = open_journal(journal_url)
    try:
        mine(c, mined)
        head = c.w3.eth.block_number
        load_history(chain, database, head, horizon=HORIZON)
        engine = Engine.open(
            journal, chain.instruments.values(), fees=chain.fees(), funds=chain.funds
        )
        worker = EngineWorker(engine)
        follower = Follower(engine, worker, chain, database, confirmations=2, horizon=HORIZON)
        yield SimpleNamespace(
            chain=chain,
            database=database,
            engine=engine,
            worker=worker,
            follower=follower,
            booted=head,
        )
    finally:
        journal.close()
        database.close()


def test_a_fill_whose_block_leaves_the_chain_mid_step_does_not_land(
    system: SimpleNamespace, manual_mining: None, journal_url: str, tmp_path: Path
) -> None:
    c = system
    seller, buyer = new_maker(c), new_maker(c)
    fund_manually(c, seller, c.weth, 10**18)
    fund_manually(c, buyer, c.usdc, 1_000 * 10**6)
    usdc = c.usdc.address
    with booted(c, journal_url) as r:
        chain, engine, worker, follower = r.chain, r.engine, r.worker, r.follower
        res = engine.reservations
        assert res is not None
        chain.funds.load(seller.address, [c.weth.address], c.series)
        chain.funds.load(buyer.address, [usdc], c.series)
        balance = chain.funds.free(buyer.address, usdc)

        # the relayer matches the two orders; the batch is mined in block `filled`
        sell, buy = signed(c, seller, False, 1, ONE), signed(c, buyer, True, 1, ONE)
        now = int(c.w3.eth.get_block("latest")["timestamp"])
        engine.place(book_order(sell), now)
        (match,) = engine.place(book_order(buy), now).matches
        assert match.state is MatchState.MATCHED
        requirement = res.of_match(match.id)
        assert requirement is not None and requirement.buyer_quote > 0
        assert res.available(buyer.address, usdc) == balance - requirement.buyer_quote

        read = chain.logs
        reorged: list[int] = []

        def logs_then_reorg(from_block: int, to_block: int) -> list[Log]:
            """The logs as the node has them now; then the Fill's block leaves the chain."""
            out = read(from_block, to_block)
            if not reorged and any(e.name == "Fill" for e in out):
                rpc(c, "anvil_reorg", 1, [])  # the new block has no transaction
                reorged.append(to_block)
            return out

        async def run() -> Any:
            await follower.start(r.booted)
            with automined(c):
                receipt = c.ledger.match_orders([Match(buy, sell, ONE, False)], sender=c.relayer)
            chain.logs = logs_then_reorg  # type: ignore[method-assign]
            await follower.step()
            assert reorged == [receipt["blockNumber"]]  # the Fill was read, then its block left
            assert c.ledger.remaining(buy.order) == ONE  # not filled on the chain there is
            # the fill did not land: the buyer's funds still count the match's reservation
            assert res.landed_in(match.id) is None
            assert res.available(buyer.address, usdc) == balance - requirement.buyer_quote
            # the next steps read the new chain: nothing to land there; the follower is at the head
            await follower.step()
            mine(c)
            await follower.step()
            assert res.landed_in(match.id) is None
            assert res.available(buyer.address, usdc) == balance - requirement.buyer_quote
            assert chain.funds.free(buyer.address, usdc) == balance
            assert follower.scanned == c.w3.eth.block_number
            await worker.close()

        asyncio.run(run())


def test_a_minimum_nonce_of_a_reverted_block_leaves_the_index(
    system: SimpleNamespace, manual_mining: None, journal_url: str
) -> None:
    c = system
    maker = new_maker(c)
    with booted(c, journal_url, mined=HORIZON + 1) as r:
        chain, worker, follower = r.chain, r.worker, r.follower

        async def run() -> None:
            await follower.start(r.booted)
            snapshot = rpc(c, "evm_snapshot")
            with automined(c):
                c.ledger.raise_min_nonce(5, sender=maker)
            mine(c)
            await follower.step()
            assert chain.index.min_nonce.get(maker.address) == 5
            assert follower.scanned == r.booted + 2
            rpc(c, "evm_revert", snapshot)  # back to `booted`: both blocks are gone
            assert c.w3.eth.block_number == r.booted
            await follower.step()
            assert maker.address not in chain.index.min_nonce  # what the chain there is says
            assert follower.scanned == r.booted
            mine(c, 3)  # a new chain, longer than the old one, without the transaction
            await follower.step()
            assert maker.address not in chain.index.min_nonce
            assert follower.scanned == r.booted + 3
            await worker.close()

        asyncio.run(run())


def test_a_series_whose_creation_left_the_chain_is_unlisted_and_its_orders_cancelled(
    system: SimpleNamespace, manual_mining: None, journal_url: str
) -> None:
    """A series created at the head is listed; a reorg (`anvil_reorg`) drops its block: it is
    unlisted (the intake's `chain.instruments` has it no more), its resting order is cancelled
    with `instrument_unlisted`, and so is an order that reaches its book after (an intake that
    looked just before). It was never stored with the checkpoint. Mined again, it is listed
    again and takes orders."""
    c = system
    buyer = new_maker(c)
    fund_manually(c, buyer, c.usdc, 1_000 * 10**6)
    with booted(c, journal_url, mined=HORIZON + 1) as r:
        chain, engine, worker, follower = r.chain, r.engine, r.worker, r.follower

        strike = STRIKE + (r.booted + 1) * ONE  # a series no other test (one anvil for all) created

        def create_series() -> int:
            with automined(c):
                return int(c.ch.create_series(c.product, strike, c.expiry, sender=c.admin))

        def place(nonce: int, sid: int) -> BookOrder:
            order = book_order(signed(c, buyer, True, nonce, ONE, series_id=sid))
            chain.funds.load(buyer.address, [c.usdc.address], sid)
            result = engine.place(order, int(c.w3.eth.get_block("latest")["timestamp"]))
            assert result.error is None and result.order.terminal is None
            return result.order

        def stored() -> set[int]:
            return {
                int(s) for (s,) in r.database.fetchall("SELECT series_id FROM relayer_instruments")
            }

        async def run() -> None:
            await follower.start(r.booted)
            sid = create_series()
            mine(c)  # the creating block is 2 deep
            await follower.step()
            assert sid in chain.instruments and sid in engine.books
            resting = place(1, sid)
            assert c.series in stored() and sid not in stored()  # the checkpoint's only (deep)
            rpc(c, "anvil_reorg", 2, [])  # the new chain has no such transaction
            assert int(c.ch.series(sid).expiry) == 0
            await follower.step()
            assert sid not in chain.instruments and sid not in chain.underlying
            assert c.series in chain.instruments  # the deployment's series stays
            assert follower.unlisted == {sid}
            assert (resting.terminal, resting.reason) == (
                OrderStatus.CANCELLED,
                Reason.INSTRUMENT_UNLISTED,
            )
            late = place(2, sid)  # verified before the unlisting, placed after it
            await follower.step()  # no new block: the step still cancels it
            assert (late.terminal, late.reason) == (
                OrderStatus.CANCELLED,
                Reason.INSTRUMENT_UNLISTED,
            )
            assert create_series() == sid  # the same terms: the same id, mined again
            await follower.step()
            assert sid in chain.instruments and follower.unlisted == set()
            assert place(3, sid).terminal is None
            await follower.step()
            assert sid not in stored()
            await worker.close()

        asyncio.run(run())
