"""Margined writers, top-ups, removals, spot jumps, liquidations, expiry and settlement.

One system with a MarginEngine is deployed per test; every example runs in its own
anchored state. Three writers margin shorts of a call (WETH collateral) and two puts (USDC
collateral, two expiries) for a holder; a keeper liquidates and funds the insurance fund.
Spot moves by up to ±50% at a time (the Oracle's band in the fixtures) and time passes,
with the spot reported again so that it is always fresh. The two expiries are reached,
finalised at spot, and everyone is settled and redeemed.

After every step:

- solvency, per token: the Clearinghouse holds exactly everyone's free collateral, plus
  every series' collateral and payout pool, plus the insurance fund and margin reserves;
- every margined account's `account_margin` and `is_liquidatable` agree with the `risk`
  mirror over its live shorts at the current spot;
- no account below maintenance is stuck: a liquidation of one of its live shorts by the
  keeper succeeds (tried in an anchored state that is then discarded);

and each liquidation returns exactly what the mirror computes, pays the liquidator no
more than the base plus the reward, with the reward at most `max_bps` of the maintenance
requirement of what it took over.

Runs: 50 examples of 30 steps under the ci profile (its own settings: each step reads the
Oracle for every account), 200 nightly.
"""

from __future__ import annotations

import functools
import os
from dataclasses import astuple
from pathlib import Path

import boa
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

from strikeline import risk

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
UNIT = 10**8
USDC = 10**6
WETH = 10**18
PARAMS = risk.MarginParams(
    spot_shock_bps=1_500, time_shock_bps=5_000, min_bps=1_000, maintenance_bps=6_000
)
AUCTION = risk.AuctionParams(start_bps=500, max_bps=3_000, duration=3_600)
EXAMPLES = (
    200
    if os.environ.get("HYPOTHESIS_PROFILE") == "nightly"
    else int(os.environ.get("MARGIN_EXAMPLES", "50"))
)


@functools.cache
def _engine_deployer():
    return boa.load_partial(str(CONTRACTS / "v1" / "MarginEngine.vy"))


def _reason(error: BoaError) -> str:
    """The revert reason text of a boa error, best effort."""
    return " ".join(str(frame) for frame in error.stack_trace)


def test_margin_stateful(system, writer, holder, keeper, stranger, guardian):
    s = system
    engine = _engine_deployer().deploy(s.ch.address, s.admin)
    with boa.env.prank(s.admin):
        s.ch.grantRole(s.ch.MARGIN_ROLE(), engine.address)
        for product in (s.call_product, s.put_product):
            engine.set_margin_params(product, astuple(PARAMS))
        engine.set_auction_params(astuple(AUCTION))
    s.push_spot(s.weth, 3_000 * UNIT)
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
    actors = [*writers, holder, keeper, s.fee_recipient]

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

        def teardown(self):
            self._anchor.__exit__(None, None, None)

        # helpers -------------------------------------------------------------
        def now(self) -> int:
            return boa.env.evm.patch.timestamp

        def live(self):
            return [x for x in series if self.now() < s.ch.series(x[0])[2]]

        def positions(self, account, token):
            out = []
            for sid, is_put, strike, tok, _unit in series:
                if tok.address != token.address or self.now() >= s.ch.series(sid)[2]:
                    continue
                words = s.ch.margin_words(account, token.address, [sid])[1]
                if not words[0] & 2**127:
                    continue
                out.append(
                    (
                        sid,
                        risk.ShortPosition(
                            is_put=is_put,
                            strike=strike,
                            spot=self.spot,
                            amount=s.ch.positions(account, sid).short,
                            time_to_expiry=s.ch.series(sid)[2] - self.now(),
                            params=PARAMS,
                        ),
                    )
                )
            return out

        def collateral(self, account, token):
            held = sum(
                s.ch.positions(account, sid).collateral for sid, _ in self.positions(account, token)
            )
            return held + s.ch.margin_reserve(account, token.address)

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
        )
        def write(self, w, x, amount, share):
            sid, is_put, strike, token, _unit = series[x]
            if self.now() >= s.ch.series(sid)[2]:
                return
            collateral = s.ch.collateral_required(sid, amount) * share // 10_000
            if share < 0:
                # the least the initial check accepts, from the mirror
                mine = dict(self.positions(writers[w], token))
                ps = [p for i, p in mine.items() if i != sid]
                held = mine[sid].amount if sid in mine else s.ch.positions(writers[w], sid).short
                ps.append(
                    risk.ShortPosition(
                        is_put=is_put,
                        strike=strike,
                        spot=self.spot,
                        amount=held + amount,
                        time_to_expiry=s.ch.series(sid)[2] - self.now(),
                        params=PARAMS,
                    )
                )
                need = risk.account_requirement(_unit, ps, False)
                need -= self.collateral(writers[w], token)
                if sid not in mine:
                    need -= s.ch.positions(writers[w], sid).collateral
                collateral = min(max(need, 0), s.ch.collateral_required(sid, amount))
            with boa.env.prank(writers[w]):
                ok = self.expect_revert(
                    lambda: engine.write_margined(sid, amount, holder, collateral),
                    "engine: below initial margin",
                    "insufficient free collateral",
                )
            event("write", f"{'minimal' if share < 0 else share} {'ok' if ok else 'refused'}")

        @rule(w=st.integers(0, 2), x=st.integers(0, 2), share=st.sampled_from([100, 1_000, 5_000]))
        def top_up(self, w, x, share):
            sid, _, _, token, _ = series[x]
            if self.now() >= s.ch.series(sid)[2] or not s.ch.positions(writers[w], sid).short:
                return
            short = s.ch.positions(writers[w], sid).short
            amount = max(1, s.ch.collateral_required(sid, short) * share // 10_000)
            with boa.env.prank(writers[w]):
                self.expect_revert(
                    lambda: engine.add_collateral(sid, amount),
                    "clearinghouse: not margined",
                    "insufficient free collateral",
                )

        @rule(w=st.integers(0, 2), x=st.integers(0, 2), share=st.sampled_from([100, 2_000, 10_000]))
        def remove(self, w, x, share):
            sid, _, _, token, _ = series[x]
            held = s.ch.positions(writers[w], sid).collateral
            if self.now() >= s.ch.series(sid)[2] or held == 0:
                return
            with boa.env.prank(writers[w]):
                amount = max(1, held * share // 10_000)
                self.expect_revert(
                    lambda: engine.remove_collateral(sid, amount),
                    "engine: below initial margin",
                    "clearinghouse: not margined",
                )

        @rule(w=st.integers(0, 2), x=st.integers(0, 2), share=st.sampled_from([5_000, 10_000]))
        def burn(self, w, x, share):
            sid = series[x][0]
            short = min(s.ch.positions(writers[w], sid).short, s.token.balanceOf(writers[w], sid))
            if self.now() >= s.ch.series(sid)[2] or short == 0:
                return
            with boa.env.prank(writers[w]):
                s.ch.burn(sid, max(1, short * share // 10_000))

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
                if self.now() >= s.ch.series(sid)[2]:
                    continue
                if not engine.is_liquidatable(account, token.address):
                    continue
                positions = self.positions(account, token)
                mine = [p for i, p in positions if i == sid]
                if mine:
                    break
            else:
                return
            started = engine.auction_start(account, token.address) or self.now()
            discount = risk.auction_discount(self.now() - started, AUCTION)
            c = self.collateral(account, token)
            ps = [p for _, p in positions]
            want = risk.liquidate(
                unit,
                mine[0],
                c,
                risk.account_requirement(unit, ps, True),
                risk.account_intrinsic(unit, ps),
                discount,
                cap,
                s.ch.insurance(token.address),
            )
            free_before = s.ch.free_collateral(keeper, token.address)
            full = s.ch.collateral_required(sid, want.amount)
            with boa.env.prank(keeper):
                got = engine.liquidate(account, token.address, sid, cap)
            event("liquidated", "restored" if got.restored else "partial")
            assert tuple(got) == astuple(want)
            paid = s.ch.free_collateral(keeper, token.address) - free_before + full
            assert paid == want.from_account + want.from_insurance <= want.base + want.reward
            taken = risk.maintenance_requirement(
                is_put, unit, strike, self.spot, want.amount, mine[0].time_to_expiry, PARAMS
            )
            assert want.reward * 10_000 <= AUCTION.max_bps * taken

        @rule(w=st.integers(0, 2), x=st.integers(0, 2), amount=st.sampled_from([UNIT, 5 * UNIT]))
        def write_minimal(self, w, x, amount):
            """Weights writing at exactly the initial requirement, which spot moves then test."""
            self.write(w, x, amount, -1)

        @rule(pick=st.integers(0, 8))
        def liquidate_all(self, pick):
            """Weights liquidation: take over as much as restores the account."""
            self.liquidate(pick, 10**20)

        @rule(amount=st.sampled_from([1, 10**3 * USDC]))
        def fund_insurance(self, amount):
            with boa.env.prank(keeper):
                s.ch.fund_insurance(s.usdc.address, amount)

        @precondition(lambda self: self.steps >= 12)
        @rule()
        def expire_and_settle(self):
            pending = [x for x in series if x[0] not in self.settled]
            if not pending:
                return
            expiry = min(s.ch.series(x[0])[2] for x in pending)
            s.finalise_expiry(s.weth, expiry, self.spot)
            s.push_spot(s.weth, self.spot)
            for sid, *_ in series:
                if s.ch.series(sid)[2] != expiry:
                    continue
                for account in actors:
                    s.ch.settle(sid, account)
                for account in actors:
                    s.ch.redeem(sid, account)
                event("settled", "bad debt" if s.ch.margin_book(sid)[1] else "solvent")
                self.settled.add(sid)
                assert s.ch.series_state(sid).open_interest == 0
                assert s.token.total_supply(sid) == 0

        # invariants ----------------------------------------------------------
        @invariant()
        def solvent(self):
            self.steps += 1
            for token in (s.usdc, s.weth):
                free = sum(s.ch.free_collateral(a, token.address) for a in actors)
                reserve = sum(s.ch.margin_reserve(a, token.address) for a in actors)
                book = sum(
                    s.ch.series_state(x[0]).collateral + s.ch.series_state(x[0]).payout_pool
                    for x in series
                    if x[3] is token
                )
                held = token.balanceOf(s.ch.address)
                assert held >= free + reserve + book + s.ch.insurance(token.address)
                assert held == free + reserve + book + s.ch.insurance(token.address)

        @invariant()
        def margin_matches_mirror_and_nobody_is_stuck(self):
            for account in writers:
                for token, unit in ((s.usdc, USDC), (s.weth, WETH)):
                    positions = self.positions(account, token)
                    ps = [p for _, p in positions]
                    c = self.collateral(account, token)
                    m = risk.account_requirement(unit, ps, True)
                    got = engine.account_margin(account, token.address)
                    assert tuple(got) == (c, risk.account_requirement(unit, ps, False), m)
                    assert engine.is_liquidatable(account, token.address) == (c < m)
                    if c < m:
                        event("stuck check", "below maintenance")
                        with boa.env.anchor(), boa.env.prank(keeper):
                            engine.liquidate(account, token.address, positions[0][0], 10**20)

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )
