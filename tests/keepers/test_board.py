"""The reporters' board and the quorum submitter on a real Oracle (anvil), in process:
reporters sign onto the board, co-sign an open round, the submitter relays every usable
report once; forged, unregistered, stale and duplicate reports are not relayed."""

from __future__ import annotations

import os

import pytest
from fake_exchanges import rate_limited
from oracle_system import ASSET, START_PRICE, deploy_oracle, keeper_env

from keepers.board import Kind, Outcome, SpotSubmitter, read_oracle
from keepers.reporter import Reporter
from keepers.runtime import boot
from keepers.settings import load_settings
from strikeline.chain import start_anvil, warp
from strikeline.oracle_reports import SignedReport, sign_spot
from strikeline.txmanager import Status


@pytest.fixture(scope="module")
def node():
    with start_anvil(accounts=12) as anvil:
        yield anvil


@pytest.fixture
def system(node, tmp_path, monkeypatch, keeper_db_url):
    _, deployment = deploy_oracle(node, tmp_path)
    for name in list(os.environ):
        if name.startswith("STRIKELINE_KEEPER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    url = keeper_db_url
    runtimes = []

    def runtime(reporter: int | None, gas: int | None, database_url: str = url, **more: str):
        extra = dict(more)
        if reporter is not None:
            extra["REPORTER_KEY"] = f"anvil:{reporter}"
        if gas is not None:
            extra["GAS_KEY"] = f"anvil:{gas}"
        for name, value in keeper_env(node, deployment, database_url, **extra).items():
            monkeypatch.setenv(name, value)
        rt = boot(load_settings())
        for name in list(os.environ):
            if name.startswith("STRIKELINE_KEEPER_"):
                monkeypatch.delenv(name)
        runtimes.append(rt)
        return rt

    yield runtime
    for rt in runtimes:
        rt.close()


def reporter_of(rt) -> Reporter:
    return Reporter(
        rt.reporter_key, rt.board, rt.oracle, rt.asset, rt.panel, rt.aggregation, rt.push
    )


def submitter_of(rt) -> SpotSubmitter:
    return SpotSubmitter(rt.board, rt.oracle, rt.asset, rt.txm, rt.gas.address)


def step(rt, actor):
    view = read_oracle(rt.oracle, rt.asset)
    rt.clock.now = view.now
    return actor.step(view)


def settle(rt):
    for _ in range(20):
        rt.txm.tick()
        if not rt.txm.intents([Status.QUEUED, Status.SENT, Status.MINED]):
            return
    raise AssertionError("transactions did not confirm")


def test_a_quorum_of_two_reaches_the_oracle_once(node, system):
    a, b = system(7, 6), system(8, None)
    ra, rb, sa = reporter_of(a), reporter_of(b), submitter_of(a)

    assert step(a, ra) is Outcome.SIGNED  # first price: due
    assert step(a, ra) is Outcome.IN_FLIGHT  # one report a round
    assert step(a, sa) is Outcome.BELOW_QUORUM  # one signer of quorum two
    assert step(b, rb) is Outcome.SIGNED
    assert step(a, sa) is Outcome.SUBMITTED
    assert step(a, sa) is Outcome.IN_FLIGHT  # journaled and open: never twice
    settle(a)
    view = read_oracle(a.oracle, ASSET)
    assert view.price == START_PRICE and view.timestamp > 0
    intents = a.txm.intents()
    assert [i.status for i in intents] == [Status.CONFIRMED]
    assert intents[0].key.endswith(":0")  # the first attempt

    # both reports are stored: nothing left to relay, and neither signs again this round
    assert step(a, sa) is Outcome.NOTHING


def test_a_submitter_relays_every_usable_report_not_a_chosen_subset(node, system):
    a, b, c = system(7, 6), system(8, None), system(9, None)
    for rt in (a, b, c):
        assert step(rt, reporter_of(rt)) is Outcome.SIGNED
    sa = submitter_of(a)
    view = read_oracle(a.oracle, ASSET)
    assert len(sa.usable(view)) == 3
    assert step(a, sa) is Outcome.SUBMITTED
    settle(a)
    receipt = a.w3.eth.get_transaction_receipt(a.txm.intents()[0].tx_hash)
    [event] = a.oracle.events(receipt, "SpotUpdated")
    assert event["reporters"] == 3


def test_forged_unregistered_and_stale_reports_are_not_relayed(node, system):
    a = system(7, 6)
    view = read_oracle(a.oracle, ASSET)
    chain_id, oracle = a.board.chain_id, a.oracle.address
    good = a.reporter_key.sign_spot(chain_id, oracle, ASSET, START_PRICE, view.now)
    # a report claiming reporter 8 but signed by reporter 7's key
    forged = SignedReport("0x" + "00" * 19 + "08", START_PRICE, view.now, good.signature)  # noqa: E501
    stranger = sign_spot(bytes([0x33]) * 32, chain_id, oracle, ASSET, START_PRICE, view.now)
    stale = sign_spot(bytes([0x44]) * 32, chain_id, oracle, ASSET, START_PRICE, view.now - 10_000)
    for report in (good, forged, stranger, stale):
        a.board.post(Kind.SPOT, ASSET, report.timestamp, report)
    assert [r.signer for r in submitter_of(a).usable(view)] == [good.signer]
    assert step(a, submitter_of(a)) is Outcome.BELOW_QUORUM


def test_a_reporter_signs_once_per_round_and_the_board_keeps_the_first(node, system):
    a = system(7, None)
    report = a.reporter_key.sign_spot(a.board.chain_id, a.oracle.address, ASSET, 5, 100)
    other = a.reporter_key.sign_spot(a.board.chain_id, a.oracle.address, ASSET, 6, 100)
    assert a.board.post(Kind.SPOT, ASSET, 100, report)
    assert not a.board.post(Kind.SPOT, ASSET, 100, other)
    assert [r.price for r in a.board.spot_reports(ASSET, 0)] == [5]


def test_keepers_with_separate_journals_send_once_the_other_sees_it_done(node, system, tmp_path):
    a = system(7, 6)
    b = system(8, 10, database_url=f"sqlite:///{tmp_path / 'other.db'}")
    # both boards hold two reports (a shared board in production; here each gets both)
    view = read_oracle(a.oracle, ASSET)
    for rt in (a, b):
        for key_rt in (a, b):
            report = key_rt.reporter_key.sign_spot(
                rt.board.chain_id, rt.oracle.address, ASSET, START_PRICE + 1, view.now
            )
            rt.board.post(Kind.SPOT, ASSET, view.now, report)
    assert step(a, submitter_of(a)) is Outcome.SUBMITTED
    settle(a)
    # b's reports are no newer than the Oracle's price now: nothing to do
    assert step(b, submitter_of(b)) is Outcome.NOTHING
    assert b.txm.intents() == []


def test_a_price_move_opens_a_new_round(node, system):
    a, b = system(7, 6), system(8, None)
    ra, rb, sa = reporter_of(a), reporter_of(b), submitter_of(a)
    step(a, ra), step(b, rb), step(a, sa)
    settle(a)
    first = read_oracle(a.oracle, ASSET)
    warp(node.request, first.now + 30)  # heartbeat 5 s: due again
    assert step(a, ra) is Outcome.SIGNED
    assert step(b, rb) is Outcome.SIGNED  # its own heartbeat (or co-signing)
    assert step(a, sa) is Outcome.SUBMITTED
    settle(a)
    second = read_oracle(a.oracle, ASSET)
    assert second.timestamp > first.timestamp
    assert [i.status for i in a.txm.intents()] == [Status.CONFIRMED] * 2
    assert len({i.key for i in a.txm.intents()}) == 2


def test_a_lone_report_is_relayed_after_the_wait_and_counts_with_stored_ones(node, system):
    a, b, c = system(7, 6), system(8, None), system(9, None)
    sa = submitter_of(a)
    step(a, reporter_of(a)), step(b, reporter_of(b)), step(a, sa)
    settle(a)
    first = read_oracle(a.oracle, ASSET)
    assert first.price == START_PRICE
    # reporter 9 was down; it comes back and signs alone (its first report is due)
    assert step(c, reporter_of(c)) is Outcome.SIGNED
    assert step(a, sa) is Outcome.BELOW_QUORUM  # waits for co-signers first
    warp(node.request, first.now + 11)  # relay_wait (10 s) of chain time passes
    assert step(a, sa) is Outcome.SUBMITTED
    settle(a)
    receipt = a.w3.eth.get_transaction_receipt(a.txm.intents()[-1].tx_hash)
    [accepted] = a.oracle.events(receipt, "SpotReportAccepted")
    assert accepted["reporter"] == c.reporter_key.address
    [updated] = a.oracle.events(receipt, "SpotUpdated")
    assert updated["reporters"] == 3  # the median over all three stored fresh reports


def test_an_unmined_submission_is_in_flight_not_sent_again(node, system):
    a, b = system(7, 6), system(8, None)
    ra, rb, sa = reporter_of(a), reporter_of(b), submitter_of(a)
    step(a, ra), step(b, rb)
    node.request("evm_setAutomine", [False])
    try:
        assert step(a, sa) is Outcome.SUBMITTED
        assert step(a, sa) is Outcome.IN_FLIGHT  # the Oracle has not moved; the journal has it
        assert step(a, sa) is Outcome.IN_FLIGHT
        assert len(a.txm.intents()) == 1
    finally:
        node.request("evm_setAutomine", [True])
        node.request("evm_mine", [])
    settle(a)
    assert read_oracle(a.oracle, ASSET).price == START_PRICE
    assert step(a, sa) is Outcome.NOTHING


@pytest.mark.parametrize(
    ("setup", "line"),
    [
        (lambda cb, kr: cb.prices.update({"ETH-USD": "3160.00"}), "no report (disagreement)"),
        (lambda cb, kr: setattr(cb, "data_time", 1_000_000), "no report (too_few_fresh)"),
        (lambda cb, kr: setattr(cb, "next", rate_limited("30")), "no report (too_few_fresh)"),
    ],
    ids=["disagree", "stale", "rate-limited"],
)
def test_sources_that_disagree_are_stale_or_rate_limit_give_no_report(
    node, system, coinbase, kraken, caplog, setup, line
):
    (cb, cb_url), (kr, kr_url) = coinbase, kraken
    setup(cb, kr)
    rt = system(
        7, None, SOURCES=f"coinbase:ETH/USD@{cb_url},kraken:ETH/USD@{kr_url}", MIN_SOURCES="2"
    )
    with caplog.at_level("INFO"):
        assert step(rt, reporter_of(rt)) is Outcome.REFUSED
    assert line in caplog.text
    assert rt.board.spot_reports(ASSET, 0) == []
