"""Margined writers, top-ups, removals, burns, spot jumps, liquidations, expiry and settlement
on the v2 system (Ledger, Clearinghouse, MarginEngine, Oracle).

One v2 system is deployed per test (the fixtures of tests/unit/v2/conftest.py, loaded by
path); every example runs in its own anchored state. Three writers margin shorts of a call
(WETH collateral) and two puts (USDC collateral, two expiries) for a holder or themselves;
a keeper liquidates and funds the insurance fund. Spot moves by up to ±50% at a time and
time passes (by up to a day, so expiries can pass unsettled), with the spot reported again.
The expiries are finalised at spot and everyone is settled (margined writers through
`MarginEngine.settle`) and redeemed.

After every step (the views read through `views.Views`, which calls one again only once a
storage word it read has changed, so the comparisons are with what the contracts return then):

- custody, per token: the Ledger holds exactly every free balance, margin reserve, the
  insurance fund and every series' collateral and payout pool (`System.custody`);
- the margin mirror: every margined account's `account_margin` and `is_liquidatable`
  equal the `strikeline.risk` mirror over its live shorts at the current spot;
- nobody is stuck: an account below maintenance is liquidated by the keeper on a price newer
  than its last change (tried in an anchored state that is then discarded);
- issue 10 (High): every expired-but-unsettled margined short is covered by what its writer
  cannot withdraw: while one is pending the account's free margin is 0 and its locked margin
  (reserve plus every listed short's collateral) never falls, except by a liquidation or a
  settlement;

and each liquidation returns exactly what the mirror computes (the auction clock as the
engine's rule says, the dust floor included), pays the liquidator no more than the base plus
the reward, with the reward at most `max_bps` of the maintenance of what it took over.

Runs: a tenth of the profile's examples (20 under ci, 200 nightly), 30 steps each.
"""

from __future__ import annotations

import importlib.util
from dataclasses import astuple
from pathlib import Path
from types import SimpleNamespace

import boa
import pytest
from boa.contracts.base_evm_contract import BoaError
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from utils.contracts import DEPLOYERS
from utils.profiles import scaled  # a share of the active profile's count

from strikeline import risk

from .views import Views

ROOT = Path(__file__).resolve().parents[2]
UNIT = 10**8
USDC = 10**6
WETH = 10**18
MARGIN_BIT = 2**127


def _v2_fixtures():
    """tests/unit/v2/conftest.py, loaded by path (a conftest is not importable as a module)."""
    spec = importlib.util.spec_from_file_location(
        "v2_fixtures", ROOT / "tests" / "unit" / "v2" / "conftest.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


V2 = _v2_fixtures()


@pytest.fixture(scope="module")
def v2_deployers():
    """The session's deployers (one compile cache per process, tests/utils/contracts.py):
    compiling the five contracts again here cost the module tens of seconds of set-up."""
    return DEPLOYERS


def _reason(error: BoaError) -> str:
    """The revert reason text of a boa error, best effort."""
    return " ".join(str(frame) for frame in error.stack_trace)


def test_margin_stateful(
    v2_deployers,
    admin,
    guardian,
    disputer,
    fee_recipient,
    reporters,
    writer,
    holder,
    keeper,
    stranger,
):
    relayer = boa.env.generate_address("relayer")
    s = V2.System(v2_deployers, admin, guardian, disputer, fee_recipient, relayer, reporters)
    engine, params, auction = s.engine, V2.MARGIN_PARAMS, V2.AUCTION
    writers = [writer, stranger, guardian]
    # (series id, is_put, strike, token, token unit)
    series = [
        (s.series(s.call_product, 3_000 * UNIT, s.expiry(7)), False, 3_000 * UNIT, s.weth, WETH),
        (s.series(s.put_product, 3_000 * UNIT, s.expiry(7)), True, 3_000 * UNIT, s.usdc, USDC),
        (s.series(s.put_product, 2_500 * UNIT, s.expiry(14)), True, 2_500 * UNIT, s.usdc, USDC),
    ]
    for token, amount in ((s.usdc, 10**9 * USDC), (s.weth, 10**6 * WETH)):
        s.fund(token, keeper, amount)
        for w in writers:
            s.fund(token, w, amount // 1_000)
    actors = [*writers, holder, keeper]
    tokens = ((s.usdc, USDC), (s.weth, WETH))
    # a series' expiry never changes: read once, not on every use (it was a call each time)
    expiries = {sid: s.ch.series(sid)[2] for sid, *_ in series}
    # what the checks read goes through one memo shared by every example: a view is called
    # again only once something it read has changed (tests/stateful/views.py)
    views = Views()
    ch, ledger, eng = views.bind(s.ch), views.bind(s.ledger), views.bind(engine)
    # `System.custody` over the memo: the same sum, read through `views`
    custody_reader = SimpleNamespace(ledger=ledger, ch=ch, fee_recipient=s.fee_recipient)

    class Machine(RuleBasedStateMachine):
        """Margin and liquidation against the `risk` mirror (see the module docstring)."""

        def __init__(self):
            super().__init__()
            # each example starts from the deployed state and is rolled back by `teardown`
            self._anchor = boa.env.anchor()
            self._anchor.__enter__()
            self.spot = 3_000 * UNIT
            self.settled: set[int] = set()
            self.steps = 0
            # (account, token) -> locked margin at the last step while a short is pending
            self.locked: dict[tuple[str, str], int] = {}

        def teardown(self):
            self._anchor.__exit__(None, None, None)

        # helpers -------------------------------------------------------------
        def now(self) -> int:
            return boa.env.evm.patch.timestamp

        def expiry(self, sid) -> int:
            return expiries[sid]

        def positions(self, account, token):
            """(series id, mirror position) of the account's live margined shorts in `token`."""
            out = []
            for sid, is_put, strike, tok, _unit in series:
                if tok.address != token.address or self.now() >= self.expiry(sid):
                    continue
                pos = ch.margin_positions(account, sid)
                if pos.short == 0:
                    continue
                out.append(
                    (
                        sid,
                        risk.ShortPosition(
                            is_put=is_put,
                            strike=strike,
                            spot=self.spot,
                            amount=pos.short,
                            time_to_expiry=self.expiry(sid) - self.now(),
                            params=params,
                        ),
                    )
                )
            return out

        def collateral(self, account, token):
            held = sum(
                ch.margin_positions(account, sid).collateral
                for sid, _ in self.positions(account, token)
            )
            return held + ch.margin_reserve(account, token.address)

        def pending(self, account, token) -> bool:
            """A listed margined short of the account in `token` expired unsettled."""
            listed = eng.margined_series(account, token.address)
            _, words = ch.margin_words(account, token.address, listed)
            return any(
                w & MARGIN_BIT and self.now() >= self.expiry(sid)
                for sid, w in zip(listed, words, strict=True)
            )

        def locked_margin(self, account, token) -> int:
            listed = eng.margined_series(account, token.address)
            reserve, words = ch.margin_words(account, token.address, listed)
            return reserve + sum(w >> 128 for w in words if w & MARGIN_BIT)

        def forget(self, account=None):
            """A liquidation or settlement may lower locked margin: restart its tracking."""
            if account is None:
                self.locked.clear()
            else:
                for key in [k for k in self.locked if k[0] == account]:
                    del self.locked[key]

        def expect_revert(self, call, *reasons):
            try:
                call()
            except BoaError as error:
                text = _reason(error)
                assert any(r in text for r in reasons), text
                return False
            return True

        # rules ---------------------------------------------------------------
        @rule(
            w=st.integers(0, 2),
            x=st.integers(0, 2),
            amount=st.sampled_from([1, UNIT // 3, UNIT, 5 * UNIT]),
            share=st.sampled_from([-1, -1, -1, 0, 2_500, 10_000]),
            to_self=st.booleans(),
        )
        def write(self, w, x, amount, share, to_self):
            sid, is_put, strike, token, unit = series[x]
            if self.now() >= self.expiry(sid):
                return
            collateral = s.ch.collateral_required(sid, amount) * share // 10_000
            if share < 0:
                # the least the initial check accepts, from the mirror
                mine = dict(self.positions(writers[w], token))
                ps = [p for i, p in mine.items() if i != sid]
                held = mine[sid].amount if sid in mine else 0
                ps.append(
                    risk.ShortPosition(
                        is_put=is_put,
                        strike=strike,
                        spot=self.spot,
                        amount=held + amount,
                        time_to_expiry=self.expiry(sid) - self.now(),
                        params=params,
                    )
                )
                need = risk.account_requirement(unit, ps, False) - self.collateral(
                    writers[w], token
                )
                collateral = min(max(need, 0), s.ch.collateral_required(sid, amount))
            recipient = writers[w] if to_self else holder
            with boa.env.prank(writers[w]):
                ok = self.expect_revert(
                    lambda: engine.write_margined(sid, amount, recipient, collateral),
                    "engine: below initial margin",
                    "engine: settlement pending",
                    "insufficient free collateral",
                )
            if ok:
                assert not self.pending(writers[w], token)
            event("write", f"{'minimal' if share < 0 else share} {'ok' if ok else 'refused'}")

        @rule(w=st.integers(0, 2), x=st.integers(0, 2), share=st.sampled_from([100, 1_000, 5_000]))
        def top_up(self, w, x, share):
            sid = series[x][0]
            short = s.ch.margin_positions(writers[w], sid).short
            if self.now() >= self.expiry(sid) or not short:
                return
            amount = max(1, s.ch.collateral_required(sid, short) * share // 10_000)
            with boa.env.prank(writers[w]):
                self.expect_revert(
                    lambda: engine.add_collateral(sid, amount),
                    "insufficient free collateral",
                )

        @rule(w=st.integers(0, 2), x=st.integers(0, 2), share=st.sampled_from([100, 2_000, 10_000]))
        def remove(self, w, x, share):
            sid, token = series[x][0], series[x][3]
            held = s.ch.margin_positions(writers[w], sid).collateral
            if self.now() >= self.expiry(sid) or held == 0:
                return
            pending = self.pending(writers[w], token)
            with boa.env.prank(writers[w]):
                amount = max(1, held * share // 10_000)
                ok = self.expect_revert(
                    lambda: engine.remove_collateral(sid, amount),
                    "engine: below initial margin",
                    "engine: settlement pending",
                )
            assert not (ok and pending), "margin left an account with a pending settlement"
            event("remove", "pending" if pending else ("ok" if ok else "refused"))

        @rule(
            w=st.integers(0, 2), token_index=st.integers(0, 1), share=st.sampled_from([1, 10_000])
        )
        def release(self, w, token_index, share):
            token = tokens[token_index][0]
            reserve = s.ch.margin_reserve(writers[w], token.address)
            if reserve == 0:
                return
            pending = self.pending(writers[w], token)
            with boa.env.prank(writers[w]):
                ok = self.expect_revert(
                    lambda: engine.release_reserve(
                        token.address, max(1, reserve * share // 10_000)
                    ),
                    "engine: below initial margin",
                    "engine: settlement pending",
                )
            assert not (ok and pending), "the reserve left an account with a pending settlement"
            event("release", "pending" if pending else ("ok" if ok else "refused"))

        @rule(w=st.integers(0, 2), x=st.integers(0, 2), share=st.sampled_from([5_000, 10_000]))
        def burn(self, w, x, share):
            sid = series[x][0]
            short = min(
                s.ch.margin_positions(writers[w], sid).short, s.ledger.balanceOf(writers[w], sid)
            )
            if self.now() >= self.expiry(sid) or short == 0:
                return
            with boa.env.prank(writers[w]):
                s.ch.burn_margined(sid, max(1, short * share // 10_000))

        @rule(
            move=st.sampled_from([-5_000, -3_000, -2_000, -500, 500, 2_000, 3_000, 5_000]),
            wait=st.sampled_from([60, 3_600, 86_400]),
        )
        def move_spot(self, move, wait):
            boa.env.time_travel(seconds=wait)
            self.spot = min(max(self.spot * (10_000 + move) // 10_000, 200 * UNIT), 50_000 * UNIT)
            s.push_spot(s.weth, self.spot)

        @rule(pick=st.integers(0, 8), cap=st.sampled_from([1, UNIT, 10**20]))
        def liquidate(self, pick, cap):
            """Liquidate the first liquidatable (account, series) from `pick` on, if any."""
            for k in range(9):
                w, x = divmod((pick + k) % 9, 3)
                sid, is_put, strike, token, unit = series[x]
                account = writers[w]
                if self.now() >= self.expiry(sid):
                    continue
                if not eng.is_liquidatable(account, token.address):
                    continue
                positions = self.positions(account, token)
                mine = [p for i, p in positions if i == sid]
                if mine:
                    break
            else:
                return
            spot_time = s.oracle.spot(s.weth.address)[1]
            if spot_time <= engine.last_change(account, token.address):
                with boa.env.prank(keeper), boa.reverts("engine: price older than last change"):
                    engine.liquidate(account, token.address, sid, cap)
                event("liquidated", "price older than last change")
                return
            # the engine's auction clock: restarted unless it saw every price update since
            started = engine.auction_start(account, token.address)
            updates = s.oracle.spot_updates(s.weth.address)[1]
            seen = engine.auction_seen(account, token.address)
            if started == 0 or updates > seen + 1 or updates < seen:
                started = self.now()
            discount = risk.auction_discount(self.now() - started, auction)
            ps = [p for _, p in positions]
            args = (
                unit,
                mine[0],
                self.collateral(account, token),
                risk.account_requirement(unit, ps, True),
                risk.account_intrinsic(unit, ps),
                discount,
                cap,
                s.ch.insurance(token.address),
            )
            try:
                want = risk.liquidate(*args)
            except risk.MarginError as error:
                with boa.env.prank(keeper), boa.reverts(str(error)):
                    engine.liquidate(account, token.address, sid, cap)
                event("liquidated", str(error))
                return
            free_before = s.ledger.free_collateral(keeper, token.address)
            full = s.ch.collateral_required(sid, want.amount)
            with boa.env.prank(keeper):
                got = engine.liquidate(account, token.address, sid, cap)
            self.forget(account)
            event("liquidated", "restored" if got.restored else "partial")
            assert tuple(got) == astuple(want)
            left = s.ch.margin_positions(account, sid).short
            assert left == 0 or left >= risk.DUST_AMOUNT
            paid = s.ledger.free_collateral(keeper, token.address) - free_before + full
            assert paid == want.from_account + want.from_insurance <= want.base + want.reward
            taken = risk.maintenance_requirement(
                is_put, unit, strike, self.spot, want.amount, mine[0].time_to_expiry, params
            )
            assert want.reward * 10_000 <= auction.max_bps * taken

        @rule(w=st.integers(0, 2), x=st.integers(0, 2), amount=st.sampled_from([UNIT, 5 * UNIT]))
        def write_minimal(self, w, x, amount):
            """Weights writing at exactly the initial requirement, which spot moves then test."""
            self.write(w, x, amount, -1, False)

        @rule(w=st.integers(0, 2))
        def write_backed_pair(self, w):
            """Issue 10's shape: a short of the later put written at full collateral backs a
            short of the earlier put written with none."""
            self.write(w, 2, UNIT, 10_000, True)
            self.write(w, 1, UNIT, 0, False)

        @rule(pick=st.integers(0, 8))
        def liquidate_all(self, pick):
            """Weights liquidation: take over as much as restores the account."""
            self.liquidate(pick, 10**20)

        @rule(amount=st.sampled_from([1, 10**3 * USDC]))
        def fund_insurance(self, amount):
            with boa.env.prank(keeper):
                s.ch.fund_insurance(s.usdc.address, amount)

        @rule(after=st.sampled_from([0, 60, 3_600]))
        def pass_expiry(self, after):
            """Time reaches the next unsettled expiry and passes it unsettled: the margined
            shorts of that expiry are pending until `expire_and_settle`."""
            pending = [self.expiry(x[0]) for x in series if x[0] not in self.settled]
            upcoming = [e for e in pending if e > self.now()]
            if not upcoming:
                return
            boa.env.time_travel(seconds=min(upcoming) - self.now() + after)
            s.push_spot(s.weth, self.spot)

        @precondition(lambda self: self.steps >= 12)
        @rule()
        def expire_and_settle(self):
            pending = [x for x in series if x[0] not in self.settled]
            if not pending:
                return
            expiry = min(self.expiry(x[0]) for x in pending)
            s.finalise_expiry(s.weth, expiry, self.spot)
            boa.env.time_travel(seconds=1)
            s.push_spot(s.weth, self.spot)
            self.forget()
            for sid, *_ in series:
                if self.expiry(sid) != expiry:
                    continue
                for account in actors:
                    if s.ch.margin_positions(account, sid).short:
                        engine.settle(account, sid)
                    else:
                        s.ch.settle(sid, account)
                for account in actors:
                    s.ch.redeem(sid, account)
                event("settled", "bad debt" if s.ch.margin_book(sid)[1] else "solvent")
                self.settled.add(sid)
                assert s.ch.series_state(sid).open_interest == 0
                assert s.supply(sid) == 0

        # invariants ----------------------------------------------------------
        @invariant()
        def custody(self):
            self.steps += 1
            for token, _ in tokens:
                mine = [x[0] for x in series if x[3] is token]
                balance, held = V2.System.custody(custody_reader, views.bind(token), actors, mine)
                assert balance == held

        @invariant()
        def margin_matches_mirror_and_nobody_is_stuck(self):
            for account in writers:
                for token, unit in tokens:
                    positions = self.positions(account, token)
                    ps = [p for _, p in positions]
                    c = self.collateral(account, token)
                    m = risk.account_requirement(unit, ps, True)
                    got = eng.account_margin(account, token.address)
                    assert tuple(got) == (c, risk.account_requirement(unit, ps, False), m)
                    assert eng.is_liquidatable(account, token.address) == (c < m)
                    if c < m:
                        event("stuck check", "below maintenance")
                        with boa.env.anchor(), boa.env.prank(keeper):
                            # a price newer than the account's last change
                            boa.env.time_travel(seconds=1)
                            s.push_spot(s.weth, self.spot)
                            if engine.is_liquidatable(account, token.address):
                                engine.liquidate(account, token.address, positions[0][0], 10**20)

        @invariant()
        def pending_shorts_stay_covered(self):
            """Issue 10 (High): from expiry to settlement the writer withdraws nothing."""
            for account in writers:
                for token, _ in tokens:
                    key = (account, token.address)
                    if not self.pending(account, token):
                        self.locked.pop(key, None)
                        continue
                    event("pending", "expired unsettled margined short")
                    assert eng.free_margin(account, token.address) == 0
                    # nothing can be withdrawn: not one unit of any live series or the reserve
                    live = [sid for sid, _ in self.positions(account, token)]
                    for sid in live:
                        if ch.margin_positions(account, sid).collateral:
                            with boa.env.anchor(), boa.env.prank(account):
                                with boa.reverts("engine: settlement pending"):
                                    engine.remove_collateral(sid, 1)
                    if ch.margin_reserve(account, token.address):
                        with boa.env.anchor(), boa.env.prank(account):
                            with boa.reverts("engine: settlement pending"):
                                engine.release_reserve(token.address, 1)
                    locked = self.locked_margin(account, token)
                    if key in self.locked:
                        assert locked >= self.locked[key], "pending backing left the account"
                    self.locked[key] = locked

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=scaled(
                1 / 10
            ),  # each example deploys and runs 30 steps: 20 under ci, 200 nightly
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )
