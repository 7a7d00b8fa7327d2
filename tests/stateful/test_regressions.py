"""Every failure the Clearinghouse state machine ever found, kept as a named test.

Each test replays the steps hypothesis printed for a failure, against the same machine and
with the same checks after every step, so the failure can never come back unnoticed. Rules were
renamed since some failures were found; the steps are written with today's names and each
docstring says what the failure was and what was done about it. A contract bug not yet fixed
would be replayed once more, marked `xfail(strict=True)`, asserting the behaviour the
specification asks for.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .conftest import ACTORS, World
from .test_clearinghouse_stateful import ClearinghouseMachine


@contextmanager
def machine(world: World) -> Iterator[ClearinghouseMachine]:
    """A fresh machine on the module's world, torn down (wound down and checked) at the end."""
    state = ClearinghouseMachine(world)
    try:
        yield state
    finally:
        state.teardown()


def test_holder_redeems_before_its_writer_settles(world: World) -> None:
    """Found: `custody >= free + locked` failed once a holder was paid from the payout pool
    before its writer settled. A 0.99999999-strike put on USDC, collateralised in 18-decimal
    WETH, written to oneself, finalised deep in the money at 0.00009999 and redeemed by the
    keeper (four times in one batch) before anyone settled the short. The pool is carved out
    of the series' collateral when the price is fixed, but the per-account
    `locked_collateral` total (like each position) kept the full amount until the writer
    settled: the writer showed all 9,089,999,909,100 wei locked while the 9,089,091,000,000
    wei it owed already sat in the holder's free balance. Fixed in d85116a by dropping
    `locked_collateral`: what is locked is counted per series, `collateral + payout_pool`,
    and the machine checks custody against that exactly, and against every claim still open.
    """
    with machine(world) as state:
        state.create_series(specs=[(("usdc", "weth", True), 99_999_999, 0)], second_expiry_days=0)
        state.check_state()
        state.write_to_self(amount=909, series=0, top_up=True, writer="writer")
        state.check_state()
        state.expire_and_finalise(
            basis=0, dispute=False, dispute_level=1, level=1, offsets=[0, 0], pair=0
        )
        state.check_state()
        state.write_to_self(amount=0, series=0, top_up=False, writer="writer")
        state.check_state()
        state.expire_and_finalise(
            basis=0, dispute=False, dispute_level=1, level=1, offsets=[0, 0], pair=0
        )
        state.check_state()
        state.keeper_batch(settle=False, items=[(0, "writer")] * 4, mismatch=False)
        state.check_state()

        sid = state.series_ids[0]
        book = state.model.series[sid]
        assert book.paid == 9_089_091_000_000 and "writer" in book.shorts
        chain = state.reader.snapshot(state.series_ids, state.expiries, state.model)
        _, collateral, _, pool = chain.series_state[sid]
        free = sum(chain.free[(a, "weth")] for a in ACTORS)
        assert chain.custody["weth"] == free + collateral + pool + chain.insurance["weth"]
