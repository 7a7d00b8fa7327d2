"""The 128-bit packing bounds what one series can hold: 2**128 - 1 base units of its
collateral (`units.MAX_SERIES_COLLATERAL`), about 340 whole tokens at 36 decimals, the most the
Clearinghouse accepts. In v2 the Ledger holds the series book and enforces the bound;
docs/contracts.md states it and these tests show it."""

import boa
import pytest

from strikeline import units

UNIT = units.UNIT
WHOLE_36 = 10**36  # one whole token of a 36-decimal collateral


@pytest.fixture
def call_36(system, make_token):
    """A call series collateralised in a 36-decimal underlying, and that token."""
    underlying, quote = make_token(36, "UND"), make_token(6, "QTE")
    pid = system.whitelist(underlying, quote, is_put=False)
    return system.series(pid, 3_000 * UNIT), underlying


def test_the_bound_in_whole_tokens():
    assert units.MAX_SERIES_COLLATERAL == 2**128 - 1
    assert units.MAX_SERIES_COLLATERAL // WHOLE_36 == 340
    assert units.MAX_SERIES_COLLATERAL // 10**18 == 340_282_366_920_938_463_463


def test_a_36_decimal_series_takes_340_contracts(system, writer, call_36):
    sid, token = call_36
    need = units.full_collateral(False, WHOLE_36, 3_000 * UNIT, 340 * UNIT)
    assert need == 340 * WHOLE_36 <= units.MAX_SERIES_COLLATERAL
    system.fund(token, writer, need)
    with boa.env.prank(writer):
        system.ledger.write(sid, 340 * UNIT, writer)
    assert tuple(system.ch.series_state(sid))[:2] == (340 * UNIT, need)


def test_one_writer_past_the_bound_is_refused(system, writer, call_36):
    sid, token = call_36
    need = units.full_collateral(False, WHOLE_36, 3_000 * UNIT, 341 * UNIT)
    assert need > units.MAX_SERIES_COLLATERAL
    # a free balance has the same 128-bit bound (the high half of its word): the
    # collateral cannot even be deposited; what fits is, and the write still refuses
    with boa.reverts("ledger: amount too large"):
        system.fund(token, writer, need)
    system.fund(token, writer, units.MAX_SERIES_COLLATERAL)
    with boa.env.prank(writer), boa.reverts():
        system.ledger.write(sid, 341 * UNIT, writer)


def test_the_bound_is_per_series_across_writers(system, writer, holder, call_36):
    """Two writers, each well within the bound, cannot together lock more than it."""
    sid, token = call_36
    for who, contracts in ((writer, 200), (holder, 141)):
        system.fund(token, who, contracts * WHOLE_36)
    with boa.env.prank(writer):
        system.ledger.write(sid, 200 * UNIT, writer)
    with boa.env.prank(holder), boa.reverts("ledger: amount too large"):
        system.ledger.write(sid, 141 * UNIT, holder)
    with boa.env.prank(holder):  # what still fits does
        system.ledger.write(sid, 140 * UNIT, holder)
    assert tuple(system.ch.series_state(sid))[1] == 340 * WHOLE_36
