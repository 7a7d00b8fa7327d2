# pragma version ~=0.4.3
"""
@title Strikeline OptionToken
@custom:contract-name OptionToken
@license GNU Affero General Public License v3.0 only
@notice ERC-1155 token of long option positions. Each token id is one series, the
        id computed by the Clearinghouse (`series_id`). Wallets see their longs as
        ordinary ERC-1155 balances and can transfer them freely. Only the
        Clearinghouse, fixed at deployment, mints and burns: it mints when
        a writer locks collateral, burns when a position is closed or redeemed, and
        moves positions for the Exchange (sell to open, buy to close).
@custom:kill The token has no admin and no pause of its own. To shut down, pause the
        Clearinghouse (no new mints); existing longs stay transferable and redeemable
        through the Clearinghouse after expiry.
"""

from snekmate.auth import ownable
from snekmate.tokens import erc1155
from snekmate.tokens.interfaces import IERC1155

# @dev snekmate's ERC-1155 needs an `ownable` instance for its minter bookkeeping and
# URI setter; neither is exported, so the owner holds no power over balances.
initializes: ownable

# @dev We own the ERC-1155 storage (balances, approvals, supplies).
initializes: erc1155[ownable := ownable]

# @dev The standard ERC-1155 surface only; snekmate's `safe_mint`, `burn`,
# `set_minter`, `set_uri` and ownership functions are deliberately not exported:
# minting and burning go through the Clearinghouse-only functions below.
exports: (
    erc1155.safeTransferFrom,
    erc1155.safeBatchTransferFrom,
    erc1155.balanceOf,
    erc1155.balanceOfBatch,
    erc1155.setApprovalForAll,
    erc1155.isApprovedForAll,
    erc1155.supportsInterface,
    erc1155.uri,
    erc1155.total_supply,
    erc1155.exists,
)


# @dev The Clearinghouse, the only account that mints, burns and moves
# positions. An immutable, so checking the caller reads no storage. The two
# contracts name each other: the token is deployed first with the address the
# Clearinghouse will get (the deployer's next CREATE), and the Clearinghouse's
# constructor refuses a token bound to any other address.
clearinghouse: public(immutable(address))


@deploy
def __init__(base_uri_: String[80], clearinghouse_: address):
    """
    @dev Deploys the token with an ERC-1155 base URI, bound for good to the
         Clearinghouse at `clearinghouse_` (see `clearinghouse`).
    @param base_uri_ The base URI for token metadata.
    @param clearinghouse_ The Clearinghouse address (deployed next).
    """
    assert clearinghouse_ != empty(address), "option_token: zero clearinghouse"
    ownable.__init__()
    erc1155.__init__(base_uri_)
    clearinghouse = clearinghouse_


@external
def mint(to: address, id: uint256, amount: uint256):
    """
    @dev Mints `amount` longs of series `id` to `to` (a contract recipient must
         accept ERC-1155 tokens).
    @param to The recipient.
    @param id The series id.
    @param amount The amount, in option units (8 decimals).
    """
    self._check_clearinghouse()
    self._mint(to, id, amount)


@external
def burn_from(owner: address, id: uint256, amount: uint256):
    """
    @dev Burns `amount` longs of series `id` held by `owner`; no approval needed,
         the Clearinghouse only does so on the owner's behalf (close) or after
         expiry (redeem, which credits the owner).
    @param owner The holder.
    @param id The series id.
    @param amount The amount to burn.
    """
    self._check_clearinghouse()
    self._burn(owner, id, amount)


@external
def clearing_move(from_: address, to: address, id: uint256, debit: uint256, credit: uint256):
    """
    @dev Settles one trade's position change in one call: `from_` gives up
         `debit` longs, `to` receives `credit` longs. The overlap moves as a
         transfer; any excess debit is burned (the seller's delivered longs that
         close the buyer's short) and any excess credit is minted (longs written
         by the seller).
    @param from_ The seller.
    @param to The buyer.
    @param id The series id.
    @param debit The longs the seller delivers from its balance.
    @param credit The longs the buyer receives.
    """
    self._check_clearinghouse()
    moved: uint256 = min(debit, credit)
    if moved != 0:
        self._transfer(from_, to, id, moved)
    if debit > moved:
        self._burn(from_, id, debit - moved)
    if credit > moved:
        self._mint(to, id, credit - moved)


@internal
def _mint(to: address, id: uint256, amount: uint256):
    """
    @dev snekmate's `_safe_mint` without its generic batch hooks: the same
         checks, balances, supply and event, at a fraction of the gas.
    """
    assert to != empty(address), "erc1155: mint to the zero address"
    erc1155.total_supply[id] += amount
    # cannot overflow: the balance is bounded by the supply checked above
    erc1155.balanceOf[to][id] = unsafe_add(erc1155.balanceOf[to][id], amount)
    log IERC1155.TransferSingle(_operator=msg.sender, _from=empty(address), _to=to, _id=id, _value=amount)
    assert erc1155._check_on_erc1155_received(
        empty(address), to, id, amount, b""
    ), "erc1155: mint to non-IERC1155Receiver implementer"


@internal
def _transfer(owner: address, to: address, id: uint256, amount: uint256):
    """
    @dev snekmate's `_safe_transfer_from` without its generic batch hooks: the
         same checks, balances, event and receiver check.
    """
    assert to != empty(address), "erc1155: transfer to the zero address"
    balance: uint256 = erc1155.balanceOf[owner][id]
    assert balance >= amount, "erc1155: insufficient balance for transfer"
    erc1155.balanceOf[owner][id] = unsafe_sub(balance, amount)
    # cannot overflow: the balance is bounded by the supply
    erc1155.balanceOf[to][id] = unsafe_add(erc1155.balanceOf[to][id], amount)
    log IERC1155.TransferSingle(_operator=msg.sender, _from=owner, _to=to, _id=id, _value=amount)
    assert erc1155._check_on_erc1155_received(
        owner, to, id, amount, b""
    ), "erc1155: transfer to non-IERC1155Receiver implementer"


@internal
def _burn(owner: address, id: uint256, amount: uint256):
    """
    @dev snekmate's `_burn` without its generic batch hooks.
    """
    assert owner != empty(address), "erc1155: burn from the zero address"
    balance: uint256 = erc1155.balanceOf[owner][id]
    assert balance >= amount, "erc1155: burn amount exceeds balance"
    erc1155.balanceOf[owner][id] = unsafe_sub(balance, amount)
    # cannot underflow: the supply is at least any one holder's balance
    erc1155.total_supply[id] = unsafe_sub(erc1155.total_supply[id], amount)
    log IERC1155.TransferSingle(_operator=msg.sender, _from=owner, _to=empty(address), _id=id, _value=amount)


@internal
@view
def _check_clearinghouse():
    """
    @dev Reverts unless the caller is the bound Clearinghouse.
    """
    assert msg.sender == clearinghouse, "option_token: only clearinghouse"
