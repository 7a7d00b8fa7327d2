"""strikeline.txmanager on a real anvil, with each storage backend: the intent lifecycle."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from eth_account import Account
from eth_account.typed_transactions import TypedTransaction
from hexbytes import HexBytes

from strikeline.chain import Anvil
from strikeline.rpc import RpcPool
from strikeline.txmanager import (
    IdempotencyConflict,
    NotLocalChain,
    Request,
    Signer,
    SimulationFailed,
    Status,
    TxConfig,
    TxError,
    TxManager,
    UnknownSigner,
    anvil_signer,
    bump_fees,
)

from .conftest import chain_transactions, drain
from .evm import STORER, deploy, reverter

OpenManager = Callable[..., TxManager]
GWEI = 10**9


def mine(node: Anvil, blocks: int = 1) -> None:
    node.request("anvil_mine", [hex(blocks)])


def nonce_of(raw: bytes) -> int:
    return int(TypedTransaction.from_bytes(HexBytes(raw)).as_dict()["nonce"])


def test_submit_journals_sends_mines_and_confirms(anvil: Anvil, open_manager: OpenManager) -> None:
    manager = open_manager(anvil, confirmations=3)
    keeper = manager._signer(anvil_signer(0, 31337).address).address
    intent = manager.submit("pay:1", keeper, "0x000000000000000000000000000000000000dEaD", b"hi", 5)
    assert intent.status == Status.SENT and intent.nonce == 0 and intent.attempts == 1
    drain(anvil)
    assert manager.tick()[0].status == Status.MINED  # anvil mined it at once
    mined = manager.intent("pay:1")
    assert mined is not None and mined.block_number is not None
    mine(anvil, 1)
    assert manager.tick() == []  # 2 blocks deep: not yet confirmed
    mine(anvil, 1)
    [confirmed] = manager.tick()
    assert confirmed.status == Status.CONFIRMED and confirmed.final
    [tx] = chain_transactions(anvil, keeper)
    assert tx["hash"] == confirmed.tx_hash and tx["input"] == "0x6869" and int(tx["value"], 16) == 5
    assert manager.next_nonce(keeper) == 1
    assert manager.oldest_open_age() == 0.0


def test_same_key_never_sends_twice(anvil: Anvil, open_manager: OpenManager, keeper) -> None:
    manager = open_manager(anvil, confirmations=1)
    first = manager.submit("settle:A", keeper.address, keeper.address, b"\x01")
    again = manager.submit("settle:A", keeper.address, keeper.address, b"\x01")
    assert again.key == first.key and again.nonce == first.nonce
    other = open_manager(anvil, confirmations=1)  # a second process on the same journal
    assert other.submit("settle:A", keeper.address, keeper.address, b"\x01").nonce == first.nonce
    with pytest.raises(IdempotencyConflict, match="settle:A"):
        manager.submit("settle:A", keeper.address, keeper.address, b"\x02")
    drain(anvil)
    manager.tick()
    other.tick()
    assert len(chain_transactions(anvil, keeper.address)) == 1
    assert manager.submit("settle:B", keeper.address, keeper.address, b"\x01").nonce == 1


def test_simulation_revert_is_one_line_and_records_nothing(
    anvil: Anvil, open_manager: OpenManager, keeper
) -> None:
    target = deploy(anvil, reverter("clearinghouse: series not expired\nyet"))
    manager = open_manager(anvil)
    with pytest.raises(SimulationFailed) as info:
        manager.submit("settle:early", keeper.address, target, b"")
    assert info.value.reason == "clearinghouse: series not expired yet"
    assert "\n" not in str(info.value)
    assert manager.intent("settle:early") is None  # the key stays free for a later try
    assert manager.next_nonce(keeper.address) == 0
    assert chain_transactions(anvil, keeper.address) == []


def test_reverted_on_chain_is_final_with_a_reason(
    anvil: Anvil, open_manager: OpenManager, keeper
) -> None:
    target = deploy(anvil, STORER)
    manager = open_manager(anvil, confirmations=1)
    # the simulation passes, but 30,000 gas cannot pay for the storage write: status 0
    intent = manager.submit("store", keeper.address, target, b"", gas_limit=30_000)
    assert intent.gas_limit == 30_000
    drain(anvil)
    [reverted] = manager.tick()
    assert reverted.status == Status.REVERTED
    assert reverted.error.startswith("reverted on chain")
    ok = manager.submit("store:2", keeper.address, target, b"")
    assert ok.gas_limit > 43_000  # the estimate plus its margin
    drain(anvil)
    assert manager.tick()[0].status == Status.CONFIRMED


def test_refusals_that_are_not_the_callers_fault(anvil: Anvil, open_manager: OpenManager) -> None:
    manager = open_manager(anvil)
    with pytest.raises(UnknownSigner):
        manager.submit("x", "0x000000000000000000000000000000000000dEaD", None, b"")
    with pytest.raises(NotLocalChain, match="chain 1"):
        anvil_signer(0, 1)
    with pytest.raises(TxError, match="expected 1"):
        TxManager(manager.rpc, manager.db, [], chain_id=1)
    with pytest.raises(TxError, match="at least 125"):
        TxConfig(bump_permille=100)


def test_anvil_keys_are_refused_on_a_chain_that_is_not_local(keeper) -> None:
    from strikeline import db
    from strikeline.chain import start_anvil
    from strikeline.rpc import RpcPool

    with start_anvil(extra_args=["--chain-id", "42161"]) as arbitrum_like:
        with db.connect("sqlite:///:memory:") as journal, RpcPool([arbitrum_like.url]) as pool:
            with pytest.raises(NotLocalChain, match="chain 42161"):
                TxManager(pool, journal, [keeper])
            own_key = Signer(Account.create())  # a real key is fine anywhere
            assert TxManager(pool, journal, [own_key]).chain_id == 42161


def test_bump_rule_arithmetic() -> None:
    # at least +12.5% on both fees, rounded up
    assert bump_fees(8, 8, 0, 0, 100) == (9, 9)
    assert bump_fees(1000, 100, 0, 0, 10_000) == (1125, 113)
    # the market wins when it is higher
    assert bump_fees(1000, 100, 2000, 200, 10_000) == (4200, 200)
    # the cap binds, and at the cap there is no bump at all
    assert bump_fees(1000, 100, 2000, 200, 1500) == (1500, 200)
    assert bump_fees(1000, 100, 0, 0, 1124) is None
    # a market tip above the capped max fee is cut down to it
    assert bump_fees(1000, 1000, 0, 5000, 1125) == (1125, 1125)


class LaggingFeeView(TxManager):
    """A node whose fee view froze when the intent was submitted: only the 12.5% rule moves
    the price up (the chain, anvil, enforces the real base fee)."""

    frozen: tuple[int, int] | None = None

    def _market(self) -> tuple[int, int]:
        if self.frozen is None:
            self.frozen = super()._market()
        return self.frozen


def test_underpriced_transaction_is_bumped_until_mined(
    manual_anvil: Anvil, db_url: str, keeper
) -> None:
    from strikeline import db
    from strikeline.rpc import RpcPool

    with db.connect(db_url) as database, RpcPool([manual_anvil.url]) as pool:
        manager = LaggingFeeView(
            pool, database, [keeper], TxConfig(bump_after_blocks=1, confirmations=1)
        )
        intent = manager.submit("liquidate:1", keeper.address, keeper.address, b"\x42")
        first_fee = intent.max_fee  # 2 * base + tip at submission
        assert first_fee > intent.priority_fee  # both fees are bumped, each by the rule
        target_base = first_fee * 3  # the chain now wants three times that
        for _ in range(40):
            manual_anvil.request("anvil_setNextBlockBaseFeePerGas", [hex(target_base)])
            manual_anvil.request("evm_mine", [])
            manager.tick()
            if manager.intent("liquidate:1").status != Status.SENT:  # type: ignore[union-attr]
                break
        mined = manager.intent("liquidate:1")
        attempts = manager.attempts("liquidate:1")
    assert mined is not None and mined.status == Status.CONFIRMED
    assert len(attempts) >= 9  # 1.125**9 > 2.8: several bumps were needed
    assert {nonce_of(a.raw) for a in attempts} == {mined.nonce}
    for before, after in zip(attempts, attempts[1:], strict=False):
        assert after.max_fee >= -(-before.max_fee * 1125 // 1000)
        assert after.priority_fee >= -(-before.priority_fee * 1125 // 1000)
    assert attempts[-1].max_fee >= target_base > attempts[-2].max_fee
    assert mined.tx_hash == attempts[-1].tx_hash
    [tx] = chain_transactions(manual_anvil, keeper.address)
    assert tx["hash"] == attempts[-1].tx_hash


def test_bumps_follow_the_market_and_stop_at_the_cap(
    manual_anvil: Anvil, open_manager: OpenManager, keeper
) -> None:
    manager = open_manager(manual_anvil, bump_after_blocks=1, confirmations=1, max_fee_cap=9 * GWEI)
    intent = manager.submit("oracle:push", keeper.address, keeper.address, b"")
    assert intent.max_fee < 4 * GWEI
    for _ in range(3):  # the base fee jumps to 20 gwei: above the cap
        manual_anvil.request("anvil_setNextBlockBaseFeePerGas", [hex(20 * GWEI)])
        manual_anvil.request("evm_mine", [])
        manager.tick()
    capped = manager.attempts("oracle:push")
    assert capped[-1].max_fee == 9 * GWEI  # went straight to the cap, never above
    assert len(capped) == 2  # and no more attempts at the cap
    assert manager.intent("oracle:push").status == Status.SENT  # type: ignore[union-attr]
    for _ in range(30):  # empty blocks: the base fee falls 12.5% a block until it fits
        manual_anvil.request("evm_mine", [])
        if manager.tick():
            break
    assert manager.intent("oracle:push").status == Status.CONFIRMED  # type: ignore[union-attr]
    assert len(chain_transactions(manual_anvil, keeper.address)) == 1


def test_reorg_rebroadcasts_the_dropped_transaction(
    anvil: Anvil, open_manager: OpenManager, keeper
) -> None:
    manager = open_manager(anvil, confirmations=3)
    manager.submit("match:7", keeper.address, keeper.address, b"\x07")
    drain(anvil)
    [mined] = manager.tick()
    assert mined.status == Status.MINED
    old_block_hash = mined.block_hash
    anvil.request("anvil_reorg", [1, []])  # the block is replaced; the transaction dropped
    assert anvil.request("eth_getTransactionReceipt", [mined.tx_hash]) is None
    [back] = manager.tick()
    assert back.status == Status.SENT and back.error.startswith("reorged out of block")
    drain(anvil)
    [again] = manager.tick()  # automine mined the re-broadcast
    assert again.status == Status.MINED and again.tx_hash == mined.tx_hash
    assert again.block_hash != old_block_hash
    mine(anvil, 2)
    assert manager.tick()[0].status == Status.CONFIRMED
    assert len(chain_transactions(anvil, keeper.address)) == 1


def test_reorg_after_confirmation_depth_is_left_alone(
    anvil: Anvil, open_manager: OpenManager, keeper
) -> None:
    manager = open_manager(anvil, confirmations=1)
    manager.submit("final", keeper.address, keeper.address, b"")
    drain(anvil)
    assert manager.tick()[0].status == Status.CONFIRMED
    anvil.request("anvil_reorg", [1, []])
    assert manager.tick() == []  # confirmed is final: deeper reorgs are out of scope


def test_nonce_used_outside_the_journal_marks_replaced_and_is_skipped(
    manual_anvil: Anvil, open_manager: OpenManager, keeper, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = open_manager(manual_anvil, confirmations=1)
    monkeypatch.setattr(TxManager, "_send_raw", lambda self, raw: None)  # nothing leaves
    manager.submit("k", keeper.address, keeper.address, b"\x01")
    monkeypatch.undo()
    # the same key sends another transaction on nonce 0 behind the journal's back
    raw, _ = keeper.sign(
        {"type": 2, "chainId": 31337, "nonce": 0, "to": keeper.address, "value": 0,
         "data": b"other", "gas": 30_000, "maxFeePerGas": 10 * GWEI,
         "maxPriorityFeePerGas": GWEI}
    )  # fmt: skip
    manual_anvil.request("eth_sendRawTransaction", ["0x" + raw.hex()])
    manual_anvil.request("evm_mine", [])
    manual_anvil.request("eth_sendRawTransaction", [
        "0x" + keeper.sign({"type": 2, "chainId": 31337, "nonce": 1, "to": keeper.address,
                            "value": 0, "data": b"", "gas": 21_000,
                            "maxFeePerGas": 10 * GWEI, "maxPriorityFeePerGas": GWEI})[0].hex()
    ])  # fmt: skip
    restarted = open_manager(manual_anvil, confirmations=1)
    assert restarted.next_nonce(keeper.address) == 2  # the pending nonce 1 is skipped too
    assert restarted.intent("k").status == Status.REPLACED  # type: ignore[union-attr]
    assert "did not sign" in restarted.intent("k").error  # type: ignore[union-attr]
    manual_anvil.request("evm_mine", [])
    assert restarted.submit("k2", keeper.address, keeper.address, b"").nonce == 2


def test_a_refused_first_send_fails_and_its_nonce_is_filled(
    anvil: Anvil, open_manager: OpenManager, keeper
) -> None:
    manager = open_manager(anvil, confirmations=1)
    failed = manager.submit("bad", keeper.address, keeper.address, b"", gas_limit=20_000)
    assert failed.status == Status.FAILED and failed.nonce is None
    assert "intrinsic gas too low" in failed.error.lower() and "\n" not in failed.error
    good = manager.submit("good", keeper.address, keeper.address, b"\x01")
    assert good.nonce == 1
    drain(anvil)
    manager.tick()
    manager.tick()
    statuses = {i.key: i.status for i in manager.intents()}
    assert statuses["good"] == Status.CONFIRMED
    fillers = [i for i in manager.intents() if i.key.startswith("filler:")]
    assert [(f.nonce, f.status, f.to) for f in fillers] == [(0, Status.CONFIRMED, keeper.address)]
    assert [int(t["nonce"], 16) for t in chain_transactions(anvil, keeper.address)] == [0, 1]


def test_a_lost_journal_row_is_filled_at_boot(
    manual_anvil: Anvil, open_manager: OpenManager, keeper, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = open_manager(manual_anvil, confirmations=1)
    monkeypatch.setattr(TxManager, "_send_raw", lambda self, raw: None)
    manager.submit("a", keeper.address, keeper.address, b"\x0a")
    manager.submit("b", keeper.address, keeper.address, b"\x0b")
    monkeypatch.undo()
    manager.db.execute("DELETE FROM txm_attempt WHERE intent_key = 'a'")  # an operator's slip
    manager.db.execute("DELETE FROM txm_intent WHERE key = 'a'")
    restarted = open_manager(manual_anvil, confirmations=1)
    manual_anvil.request("evm_mine", [])
    restarted.tick()
    nonces = [int(t["nonce"], 16) for t in chain_transactions(manual_anvil, keeper.address)]
    assert nonces == [0, 1]
    assert restarted.intent("b").status == Status.CONFIRMED  # type: ignore[union-attr]
    assert restarted.intent(f"filler:31337:{keeper.address}:0") is not None


def test_submit_call_takes_a_web3_contract_function(
    anvil: Anvil, open_manager: OpenManager, keeper
) -> None:
    manager = open_manager(anvil, confirmations=1)
    w3 = manager.rpc.web3()
    abi = [{"type": "function", "name": "store", "inputs": [], "outputs": [],
            "stateMutability": "nonpayable"}]  # fmt: skip
    contract = w3.eth.contract(address=deploy(anvil, STORER), abi=abi)
    intent = manager.submit_call("store", keeper.address, contract.functions.store())
    assert intent.to == contract.address and intent.data == bytes.fromhex("975057e7")
    drain(anvil)
    assert manager.tick()[0].status == Status.CONFIRMED


def test_two_instances_racing_on_the_same_keys_send_each_once(
    anvil: Anvil, open_manager: OpenManager, keeper
) -> None:
    import threading

    managers = [open_manager(anvil, confirmations=1), open_manager(anvil, confirmations=1)]
    keys = [f"settle:{i}" for i in range(15)]
    errors: list[BaseException] = []

    def run(manager: TxManager) -> None:
        try:
            for key in keys:
                manager.submit(key, keeper.address, keeper.address, key.encode())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(m,)) for m in managers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for manager in managers:
        drain(anvil)
        manager.tick()
    mined = chain_transactions(anvil, keeper.address)
    assert sorted(bytes.fromhex(t["input"][2:]).decode() for t in mined) == sorted(keys)
    assert managers[0].next_nonce(keeper.address) == len(keys)


def test_bindings_run_on_the_pool_and_their_calls_go_through_the_manager(
    anvil: Anvil, open_manager: OpenManager, keeper
) -> None:
    from strikeline.bindings import ERC20Binding
    from strikeline.chain import free_port
    from strikeline.rpc import RpcPool

    from .evm import DEPLOYER

    pool = RpcPool([f"http://127.0.0.1:{free_port()}", anvil.url], timeout=0.3)
    manager = open_manager(pool, confirmations=1)
    token = ERC20Binding.deploy(pool.web3(), "Quote", "USDQ", 6, sender=DEPLOYER)
    mint = token.contract.functions.mint(keeper.address, 1_000_000)
    manager.submit_call("mint:1", keeper.address, mint)
    drain(anvil)
    manager.tick()
    assert manager.intent("mint:1").status == Status.CONFIRMED  # type: ignore[union-attr]
    assert token.balance_of(keeper.address) == 1_000_000
    assert pool.nodes[0].failures >= 1  # the dead primary was tried and left out


class CountingPool(RpcPool):
    """A pool that counts the JSON-RPC methods it sends (batched ones included)."""

    def __init__(self, url: str):
        super().__init__([url])
        self.methods: list[str] = []

    def request_raw(self, method, params=()):  # type: ignore[no-untyped-def]
        self.methods.append(method)
        return super().request_raw(method, params)

    def request_batch(self, calls):  # type: ignore[no-untyped-def]
        self.methods += [m for m, _ in calls]
        return super().request_batch(calls)


def test_a_given_gas_estimate_is_not_simulated_again(anvil: Anvil, open_manager) -> None:
    pool = CountingPool(anvil.url)
    manager = open_manager(pool)
    keeper = anvil_signer(0, 31337).address
    target = deploy(anvil, STORER)
    estimate = int(anvil.request("eth_estimateGas", [{"from": keeper, "to": target}]), 16)
    pool.methods.clear()
    intent = manager.submit("store:1", keeper, target, gas_estimate=estimate)
    assert "eth_estimateGas" not in pool.methods  # simulated once, by the caller
    assert "eth_blockNumber" not in pool.methods  # the head came with the fee read
    assert intent.gas_limit == estimate + estimate * 20 // 100
    drain(anvil)
    manager.tick()
    assert manager.intent("store:1").status in (Status.MINED, Status.CONFIRMED)  # type: ignore[union-attr]
    pool.methods.clear()
    manager.submit("store:2", keeper, target)  # without it: simulated as before
    assert pool.methods.count("eth_estimateGas") == 1


def test_submit_many_journals_in_order_and_broadcasts_once(anvil: Anvil, open_manager) -> None:
    pool = CountingPool(anvil.url)
    manager = open_manager(pool, confirmations=1)
    keeper = anvil_signer(0, 31337).address
    target, bad = deploy(anvil, STORER), deploy(anvil, reverter("not now"))
    first = manager.submit("many:0", keeper, target)  # already journaled: returned as it is
    drain(anvil)
    pool.methods.clear()
    answers = manager.submit_many(
        [
            Request("many:0", keeper, target),
            Request("many:1", keeper, target, b"\x01"),
            Request("many:2", keeper, bad),  # reverts: its slot holds the error
            Request("many:3", keeper, target, b"\x03", gas_estimate=50_000),
            Request("many:4", "0x" + "12" * 20, target),  # not a signer of this manager
            Request("many:0", keeper, target, b"other"),  # its key holds another call
        ]
    )
    assert isinstance(answers[5], IdempotencyConflict)
    assert answers[0] == manager.intent("many:0") and answers[0].nonce == first.nonce  # type: ignore[union-attr]
    assert isinstance(answers[2], SimulationFailed) and answers[2].reason == "not now"
    assert isinstance(answers[4], UnknownSigner)
    sent = [answers[1], answers[3]]
    assert [i.nonce for i in sent] == [1, 2]  # type: ignore[union-attr]
    assert sent[1].gas_limit == 60_000  # type: ignore[union-attr]
    # one simulation (of the two without an estimate), one broadcast of both
    assert pool.methods.count("eth_estimateGas") == 2
    assert pool.methods.count("eth_sendRawTransaction") == 2
    assert manager.statuses("many:") == {f"many:{i}": Status.SENT for i in (1, 3)} | {
        "many:0": manager.intent("many:0").status  # type: ignore[union-attr]
    }
    drain(anvil)
    mine(anvil, 1)
    manager.tick()
    manager.tick()
    assert {i.key for i in manager.intents([Status.CONFIRMED])} == {"many:0", "many:1", "many:3"}
    assert len(chain_transactions(anvil, keeper)) == 3
    with pytest.raises(TxError, match="twice"):
        manager.submit_many([Request("dup", keeper, target), Request("dup", keeper, target)])


def test_a_reorg_resends_at_the_current_fee_market(
    manual_anvil: Anvil, open_manager: OpenManager, keeper
) -> None:
    """A dropped transaction is not re-sent with the fees of its first block when the market
    has risen since: it is re-signed on its nonce at the market's level, and at least 12.5%
    above the old attempt (a node may still hold it)."""
    manager = open_manager(manual_anvil, confirmations=5)
    intent = manager.submit("deep", keeper.address, keeper.address, b"\x0d")
    manual_anvil.request("evm_mine", [])
    [mined] = manager.tick()
    assert mined.status == Status.MINED
    mine(manual_anvil, 2)
    assert manager.tick() == []  # 3 blocks deep, not yet confirmed
    manual_anvil.request("anvil_reorg", [3, []])  # its block and the 2 above replaced
    high = intent.max_fee * 4  # meanwhile the base fee has risen far above its offer
    manual_anvil.request("anvil_setNextBlockBaseFeePerGas", [hex(high)])
    manual_anvil.request("evm_mine", [])
    assert manual_anvil.request("eth_getTransactionReceipt", [mined.tx_hash]) is None
    [back] = manager.tick()
    assert back.status == Status.SENT and back.error.startswith("reorged out of block")
    old, new = manager.attempts("deep")
    assert new.max_fee >= 2 * high and new.max_fee >= -(-old.max_fee * 1125 // 1000)
    assert new.priority_fee >= -(-old.priority_fee * 1125 // 1000)
    assert nonce_of(new.raw) == nonce_of(old.raw) == intent.nonce
    manual_anvil.request("evm_mine", [])
    [again] = manager.tick()
    assert again.status == Status.MINED and again.tx_hash == new.tx_hash
    mine(manual_anvil, 4)
    assert manager.tick()[0].status == Status.CONFIRMED
    [tx] = chain_transactions(manual_anvil, keeper.address)
    assert tx["hash"] == new.tx_hash


def test_a_reorg_resends_the_same_bytes_while_their_fees_clear_the_market(
    manual_anvil: Anvil, open_manager: OpenManager, keeper
) -> None:
    manager = open_manager(manual_anvil, confirmations=4)
    manager.submit("shallow", keeper.address, keeper.address, b"\x0e")
    manual_anvil.request("evm_mine", [])
    [mined] = manager.tick()
    manual_anvil.request("anvil_reorg", [1, []])
    manager.tick()
    [only] = manager.attempts("shallow")  # no re-pricing: the old offer still clears
    manual_anvil.request("evm_mine", [])
    [again] = manager.tick()
    assert again.status == Status.MINED and again.tx_hash == mined.tx_hash == only.tx_hash
