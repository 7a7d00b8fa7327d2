# pragma version ~=0.4.3
"""
@title MockERC20FeeOnTransfer
@custom:contract-name MockERC20FeeOnTransfer
@notice Test token that burns `fee_bps` of every transfer.
@custom:kill Not for production.
"""

decimals: public(uint8)
fee_bps: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])


@deploy
def __init__(decimals_: uint8, fee_bps_: uint256):
    self.decimals = decimals_
    self.fee_bps = fee_bps_


@external
def mint(to: address, amount: uint256):
    self.balanceOf[to] += amount


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    return True


@external
def transfer(to: address, amount: uint256) -> bool:
    self._transfer(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    assert self.allowance[owner][msg.sender] >= amount, "erc20: insufficient allowance"
    self.allowance[owner][msg.sender] -= amount
    self._transfer(owner, to, amount)
    return True


@internal
def _transfer(owner: address, to: address, amount: uint256):
    assert self.balanceOf[owner] >= amount, "erc20: insufficient balance"
    fee: uint256 = amount * self.fee_bps // 10_000
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount - fee
