"""Fixtures and helpers for the unit tests.

The shared `tests/conftest.py` deploys the system (`system` fixture) and names the actors;
this file adds what only unit tests need: tokens of any decimals, small stub contracts
compiled from inline source (a token that returns false, an ERC-1155 receiver, an oracle
stub), every actor by role name, and the `tools`
helpers (time, events, signed oracle reports, a revert-without-reason check, a solvency
check). An autouse fixture keeps titanoboa's storage-slot record in step with the per-test
anchor.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import boa
import pytest
from boa.contracts.base_evm_contract import BoaError

from strikeline.oracle_reports import ordered, sign_expiry, sign_spot

# A token that returns false (moving nothing) from transfer or transferFrom when told to.
FALSE_TOKEN_SOURCE = """
# pragma version ~=0.4.3
decimals: public(uint8)
balanceOf: public(HashMap[address, uint256])
fail_transfer: public(bool)
fail_transfer_from: public(bool)

@deploy
def __init__(decimals_: uint8):
    self.decimals = decimals_

@external
def mint(to: address, amount: uint256):
    self.balanceOf[to] += amount

@external
def set_failures(fail_transfer_: bool, fail_transfer_from_: bool):
    self.fail_transfer = fail_transfer_
    self.fail_transfer_from = fail_transfer_from_

@external
def transfer(to: address, amount: uint256) -> bool:
    if self.fail_transfer:
        return False
    self.balanceOf[msg.sender] -= amount
    self.balanceOf[to] += amount
    return True

@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    if self.fail_transfer_from:
        return False
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount
    return True
"""

# A contract that answers the ERC-1155 receiver hooks, accepting or refusing.
RECEIVER_SOURCE = """
# pragma version ~=0.4.3
accept: public(bool)

@deploy
def __init__(accept_: bool):
    self.accept = accept_

@external
def onERC1155Received(op: address, owner: address, id: uint256, amount: uint256,
                      data: Bytes[1024]) -> bytes4:
    if self.accept:
        return method_id(
            "onERC1155Received(address,address,uint256,uint256,bytes)", output_type=bytes4
        )
    return 0x00000000

@external
def onERC1155BatchReceived(op: address, owner: address, ids: DynArray[uint256, 128],
                           amounts: DynArray[uint256, 128], data: Bytes[1024]) -> bytes4:
    if self.accept:
        return method_id(
            "onERC1155BatchReceived(address,address,uint256[],uint256[],bytes)",
            output_type=bytes4,
        )
    return 0x00000000
"""

# An oracle whose expiry price is whatever the test sets.
ORACLE_STUB_SOURCE = """
# pragma version ~=0.4.3
price: public(uint256)
final: public(bool)

@external
def set(price_: uint256, final_: bool):
    self.price = price_
    self.final = final_

@external
@view
def spot_price(asset: address) -> uint256:
    return self.price

@external
@view
def expiry_price(asset: address, expiry: uint256) -> (uint256, bool):
    return self.price, self.final
"""


@pytest.fixture(autouse=True)
def _rewind_sstore_trace():
    """Rolls titanoboa's record of written storage slots back after each test.

    The per-test anchor reverts the chain, so later tests deploy other contracts at the
    same addresses; titanoboa's slot record is not reverted with it, and on a revert it
    decodes the stale slots with the new contract's layout and crashes while formatting
    the error. Keeping the record in step with the chain avoids that.
    """
    saved = {address: set(slots) for address, slots in boa.env.sstore_trace.items()}
    yield
    boa.env.sstore_trace.clear()
    boa.env.sstore_trace.update(saved)


@pytest.fixture(scope="session")
def stub_deployers():
    """Deployers of the inline stub contracts, compiled once per session."""
    return {
        "FalseToken": boa.loads_partial(FALSE_TOKEN_SOURCE, name="FalseToken"),
        "Receiver": boa.loads_partial(RECEIVER_SOURCE, name="Receiver"),
        "OracleStub": boa.loads_partial(ORACLE_STUB_SOURCE, name="OracleStub"),
    }


@pytest.fixture
def make_token(deployers):
    """Deploys a fresh MockERC20 with the given decimals."""

    def _make(decimals: int, symbol: str = "TKN"):
        return deployers["MockERC20"].deploy(f"Token {symbol}", symbol, decimals)

    return _make


@pytest.fixture
def extra_holders() -> list[str]:
    """Ten more holders, for batch tests."""
    return [boa.env.generate_address(f"holder{i}") for i in range(10)]


class Tools:
    """Small helpers shared by the unit tests, handed out by the `tools` fixture.

    (Test modules cannot import from a conftest reliably, hence a fixture.)
    """

    @staticmethod
    def now() -> int:
        """The timestamp of the block being built."""
        return boa.env.evm.patch.timestamp

    @staticmethod
    def warp_to(timestamp: int) -> None:
        """Moves the chain's time forward to exactly `timestamp`."""
        delta = timestamp - boa.env.evm.patch.timestamp
        assert delta >= 0, "cannot travel back in time"
        if delta:
            boa.env.time_travel(seconds=delta)

    @staticmethod
    def events(contract, name: str) -> list:
        """The decoded events called `name` of `contract`'s last call, child calls included.

        Call it right after the transaction: any later call, views included, replaces it.
        """
        return [e for e in contract.get_logs() if type(e).__name__ == name]

    @staticmethod
    @contextlib.contextmanager
    def reverts_without_reason() -> Iterator[None]:
        """Expects a revert whose data is empty (a reentrancy lock, a bare `raise`)."""
        with pytest.raises(BoaError) as info:
            yield
        assert info.value.stack_trace.last_frame.vm_error.args[0] == b""

    @staticmethod
    def assert_solvent(system, token, accounts: list[str], series_ids=()) -> None:
        """The Ledger holds exactly the free `token` of `accounts` plus what the series in
        `token` hold (writers' collateral and the holders' payout pool) plus the insurance
        fund.

        Pass every account that ever held `token` inside the Ledger and every series
        collateralised in it that still holds collateral.
        """
        ledger, ch = system.ledger, system.ch
        free = sum(ledger.free_collateral(a, token.address) for a in set(accounts))
        locked = ch.insurance(token.address)
        for sid in set(series_ids):
            state = ch.series_state(sid)
            locked += state.collateral + state.payout_pool
        assert token.balanceOf(ledger.address) == free + locked

    @staticmethod
    def spot_reports(system, asset, prices, timestamp=None, signers=None) -> list[tuple]:
        """Spot reports of `prices[i]` signed by `signers[i]` (default: the reporters).

        Returned as contract tuples in ascending signer order; `timestamp` defaults to now.
        """
        when = boa.env.evm.patch.timestamp if timestamp is None else timestamp
        keys = signers or system.reporters
        signed = [
            sign_spot(k.key, system.chain_id(), system.oracle.address, asset.address, p, when)
            for k, p in zip(keys, prices, strict=False)
        ]
        return ordered(signed)

    @staticmethod
    def expiry_reports(system, asset, expiry: int, prices, signers=None) -> list[tuple]:
        """Expiry reports of `prices[i]` signed by `signers[i]`, in ascending signer order."""
        keys = signers or system.reporters
        signed = [
            sign_expiry(k.key, system.chain_id(), system.oracle.address, asset.address, expiry, p)
            for k, p in zip(keys, prices, strict=False)
        ]
        return ordered(signed)


@pytest.fixture(scope="session")
def tools() -> Tools:
    """The unit-test helpers."""
    return Tools()


@pytest.fixture
def actors(admin, guardian, disputer, writer, holder, keeper, fee_recipient, stranger) -> dict:
    """Every named actor by role name, for tests parametrised over who calls.

    (Looking session fixtures up with `request.getfixturevalue` inside a test would break
    titanoboa's per-fixture state anchors, so they are all requested here up front.)
    """
    return {
        "admin": admin,
        "guardian": guardian,
        "disputer": disputer,
        "writer": writer,
        "holder": holder,
        "keeper": keeper,
        "fee_recipient": fee_recipient,
        "stranger": stranger,
    }
