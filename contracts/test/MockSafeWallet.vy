# pragma version ~=0.4.3
"""
@title MockSafeWallet
@custom:contract-name MockSafeWallet
@license GNU Affero General Public License v3.0 only
@notice A Safe-style contract wallet for tests: one owner EOA. EIP-1271
        `isValidSignature` accepts a 65-byte signature of the digest by the
        owner, unless the owner revoked signing. The owner makes the wallet
        call other contracts (`execute`), and the wallet accepts ERC-1155
        transfers so it can hold long options. For tests and devnets only.
@custom:kill Not for production.
"""

from snekmate.utils import ecdsa

# @dev `ecdsa` is stateless: only imported.

# @dev EIP-1271 magic value: bytes4(keccak256("isValidSignature(bytes32,bytes)")).
MAGIC_VALUE: constant(bytes4) = 0x1626BA7E

owner: public(address)
# @dev When set, the wallet rejects every signature.
revoked: public(bool)


@deploy
def __init__(owner_: address):
    """
    @dev Deploys the wallet for `owner_`.
    @param owner_ The EOA whose signatures the wallet accepts.
    """
    self.owner = owner_


@external
def set_revoked(revoked_: bool):
    """
    @dev Owner: stop (or resume) accepting signatures.
    @param revoked_ True to reject every signature.
    """
    assert msg.sender == self.owner, "wallet: only owner"
    self.revoked = revoked_


@external
def execute(target: address, data: Bytes[1_024]) -> Bytes[256]:
    """
    @dev Owner: the wallet calls `target` with `data` (approve, deposit...).
    @param target The contract to call.
    @param data The calldata.
    @return Bytes The call's return data.
    """
    assert msg.sender == self.owner, "wallet: only owner"
    return raw_call(target, data, max_outsize=256)


@external
@view
def isValidSignature(digest: bytes32, signature: Bytes[65]) -> bytes4:
    """
    @dev EIP-1271: the magic value when the owner signed `digest`, zero otherwise.
    @param digest The signed digest.
    @param signature The owner's 65-byte signature r || s || v.
    @return bytes4 0x1626ba7e when valid, 0x00000000 otherwise.
    """
    if self.revoked or len(signature) != 65:
        return empty(bytes4)
    if ecdsa._recover_sig(digest, signature) == self.owner:
        return MAGIC_VALUE
    return empty(bytes4)


@external
def onERC1155Received(operator: address, owner_: address, id: uint256, amount: uint256, data: Bytes[1_024]) -> bytes4:
    """
    @dev Accepts single ERC-1155 transfers.
    @return bytes4 The ERC-1155 acceptance value.
    """
    return method_id("onERC1155Received(address,address,uint256,uint256,bytes)", output_type=bytes4)


@external
def onERC1155BatchReceived(
    operator: address, owner_: address, ids: DynArray[uint256, 128], amounts: DynArray[uint256, 128], data: Bytes[1_024]
) -> bytes4:
    """
    @dev Accepts batch ERC-1155 transfers.
    @return bytes4 The ERC-1155 batch acceptance value.
    """
    return method_id("onERC1155BatchReceived(address,address,uint256[],uint256[],bytes)", output_type=bytes4)
