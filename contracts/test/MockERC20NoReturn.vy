# pragma version ~=0.4.3
"""
@title MockERC20NoReturn
@custom:contract-name MockERC20NoReturn
@notice Test token whose transfer and transferFrom return nothing (USDT style).
@custom:kill Not for production.
"""

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256


decimals: public(uint8)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])


@deploy
def __init__(decimals_: uint8):
    self.decimals = decimals_


@external
def mint(to: address, amount: uint256):
    self.balanceOf[to] += amount


@external
def approve(spender: address, amount: uint256):
    self.allowance[msg.sender][spender] = amount


@external
def transfer(to: address, amount: uint256):
    self._transfer(msg.sender, to, amount)


@external
def transferFrom(owner: address, to: address, amount: uint256):
    assert self.allowance[owner][msg.sender] >= amount, "erc20: insufficient allowance"
    self.allowance[owner][msg.sender] -= amount
    self._transfer(owner, to, amount)


@internal
def _transfer(owner: address, to: address, amount: uint256):
    assert self.balanceOf[owner] >= amount, "erc20: insufficient balance"
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount
    log Transfer(sender=owner, receiver=to, value=amount)
