"""The `Tools` helpers of the unit tests (the `tools` fixture hands them out) and the stub
contracts some tests deploy from inline source."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import boa
import pytest
from boa.contracts.base_evm_contract import BoaError

from strikeline.oracle_reports import ordered, sign_expiry, sign_spot

from . import chain

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


class Tools:
    """Small helpers shared by the unit tests, handed out by the `tools` fixture (test
    bodies use the fixture; new code may import these from `utils.tools` directly)."""

    now = staticmethod(chain.now)
    warp_to = staticmethod(chain.warp_to)

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


class V2Tools(Tools):
    """`Tools` with the solvency check of the whole v2 system (`System.custody`): the Ledger
    holds every token; free balances, margined collateral and reserves, the fee recipient's
    fees, insurance and each series' collateral and payout pool account for it."""

    @staticmethod
    def assert_solvent(system, token, accounts, series_ids=()) -> None:
        balance, held = system.custody(token, accounts, series_ids)
        assert balance == held


def stub_deployers() -> dict:
    """Deployers of the inline stub contracts (compile once: the fixture is session-scoped)."""
    return {
        "FalseToken": boa.loads_partial(FALSE_TOKEN_SOURCE, name="FalseToken"),
        "Receiver": boa.loads_partial(RECEIVER_SOURCE, name="Receiver"),
        "OracleStub": boa.loads_partial(ORACLE_STUB_SOURCE, name="OracleStub"),
    }
