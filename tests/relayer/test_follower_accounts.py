"""Which accounts' funds the follower re-reads for each event (`relayer.follower.accounts_of`)."""

from __future__ import annotations

import pytest

from relayer.chainview import Log
from relayer.follower import accounts_of

A, B = "0x" + "a" * 40, "0x" + "b" * 40


def entry(contract: str, name: str, **args: object) -> Log:
    return Log(contract, name, dict(args), block=1, tx_hash=b"\x00" * 32, log_index=0)


@pytest.mark.parametrize(
    ("log", "accounts"),
    [
        # a liquidator pays for the short it takes over and is paid the reward
        (entry("Clearinghouse", "MarginLiquidated", account=A, liquidator=B, amount=1), {A, B}),
        (entry("Clearinghouse", "InsuranceFunded", token=A, funder=B, amount=1), {B}),
        (entry("Clearinghouse", "ShortfallSettled", writer=A, series_id=1), {A}),
        (entry("Clearinghouse", "MarginUpdated", account=A, token=B), {A}),
        (entry("Ledger", "Deposit", account=A, token=B), {A}),
        # events that move no free collateral name nobody
        (entry("Clearinghouse", "MarginRetired", account=A, series_id=1), set()),
        (entry("Clearinghouse", "SeriesCreated", series_id=1), set()),
        (entry("Ledger", "MinNonceRaised", maker=A), set()),
    ],
)
def test_the_accounts_whose_funds_an_event_changes(log: Log, accounts: set[str]) -> None:
    assert accounts_of(log) == accounts
