"""strikeline.chain: anvil's log, which errors quote, never shows its keys or mnemonic."""

from __future__ import annotations

import time

from eth_account import Account

from strikeline import chain
from strikeline.chain import start_anvil

Account.enable_unaudited_hdwallet_features()


def test_the_log_tail_blanks_keys_and_mnemonic_but_keeps_addresses():
    account, mnemonic = Account.create_with_mnemonic()  # not anvil's public test mnemonic
    with start_anvil(accounts=2, mnemonic=mnemonic) as node:
        deadline = time.monotonic() + 5
        while "Mnemonic:" not in node.log_tail(200) and time.monotonic() < deadline:
            time.sleep(0.05)
        tail = node.log_tail(200)
        raw = node.log_path.read_text()
    key = account.key.hex().removeprefix("0x")
    assert key in raw and mnemonic in raw  # the file itself has them (0600, deleted on stop)
    assert key.lower() not in tail.lower() and mnemonic not in tail
    assert mnemonic.split()[0] + " " + mnemonic.split()[1] not in tail
    assert "(0) <not shown>" in tail and "<not shown>" in tail.split("Mnemonic:")[1]
    assert account.address in tail  # the useful parts stay


def test_redact_log_leaves_other_hex_alone():
    tx = "0x" + "ab" * 32
    text = f"(0) 0x{'cd' * 32}\n    Transaction: {tx}\nMnemonic: a b c\n"
    assert (
        chain.redact_log(text) == f"(0) <not shown>\n    Transaction: {tx}\nMnemonic: <not shown>\n"
    )
