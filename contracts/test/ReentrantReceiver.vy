# pragma version ~=0.4.3
"""
@title ReentrantReceiver
@custom:contract-name ReentrantReceiver
@license GNU Affero General Public License v3.0 only
@notice A hostile ERC-1155 receiver for tests: when armed, its
        `onERC1155Received` (and batch) hook calls back into `target` with
        `payload` before accepting the longs. In `bubble` mode the call's
        revert propagates (so a guarded target fails the outer call); otherwise
        the receiver swallows it and records whether the re-entry succeeded.
        Like a Safe-style wallet, it has one owner EOA whose signatures it
        accepts (EIP-1271), so it can make signed orders, and which makes it
        call other contracts (`execute`).
@custom:kill Not for production.
"""

from snekmate.utils import ecdsa

# @dev EIP-1271 magic value: bytes4(keccak256("isValidSignature(bytes32,bytes)")).
MAGIC_VALUE: constant(bytes4) = 0x1626BA7E

owner: public(address)
target: public(address)
payload: public(Bytes[2_048])
bubble: public(bool)
# @dev How many times the hook called back, and whether the last call succeeded.
reentries: public(uint256)
last_succeeded: public(bool)


@deploy
def __init__(owner_: address):
    """
    @dev Deploys the receiver for `owner_`, disarmed.
    @param owner_ The EOA whose signatures the receiver accepts.
    """
    self.owner = owner_


@external
def arm(target_: address, payload_: Bytes[2_048], bubble_: bool):
    """
    @dev Owner: call `target_` with `payload_` from the next hooks (zero target disarms).
    """
    assert msg.sender == self.owner, "receiver: only owner"
    self.target = target_
    self.payload = payload_
    self.bubble = bubble_


@external
def execute(target_: address, data: Bytes[2_048]) -> Bytes[256]:
    """
    @dev Owner: the receiver calls `target_` with `data` (approve, deposit, fill...).
    """
    assert msg.sender == self.owner, "receiver: only owner"
    return raw_call(target_, data, max_outsize=256)


@external
@view
def isValidSignature(digest: bytes32, signature: Bytes[65]) -> bytes4:
    """
    @dev EIP-1271: the magic value when the owner signed `digest`.
    """
    if len(signature) == 65 and ecdsa._recover_sig(digest, signature) == self.owner:
        return MAGIC_VALUE
    return empty(bytes4)


@internal
def _call_back():
    if self.target == empty(address):
        return
    self.reentries += 1
    if self.bubble:
        raw_call(self.target, self.payload)
        self.last_succeeded = True
    else:
        self.last_succeeded = raw_call(self.target, self.payload, revert_on_failure=False)


@external
def onERC1155Received(operator: address, owner_: address, id: uint256, amount: uint256, data: Bytes[1_024]) -> bytes4:
    """
    @dev Calls back when armed, then accepts.
    """
    self._call_back()
    return method_id("onERC1155Received(address,address,uint256,uint256,bytes)", output_type=bytes4)


@external
def onERC1155BatchReceived(
    operator: address, owner_: address, ids: DynArray[uint256, 128], amounts: DynArray[uint256, 128], data: Bytes[1_024]
) -> bytes4:
    """
    @dev Calls back when armed, then accepts.
    """
    self._call_back()
    return method_id("onERC1155BatchReceived(address,address,uint256[],uint256[],bytes)", output_type=bytes4)
