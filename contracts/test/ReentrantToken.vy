# pragma version ~=0.4.3
"""
@title ReentrantToken
@custom:contract-name ReentrantToken
@notice Test token that, when armed, calls back into a target during
        transferFrom/transfer (a hostile ERC-777-style hook). The callback's
        revert bubbles up, so a guarded target makes the outer call fail.
@custom:kill Not for production.
"""

decimals: public(uint8)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
target: public(address)
payload: public(Bytes[256])


@deploy
def __init__(decimals_: uint8):
    self.decimals = decimals_


@external
def arm(target_: address, payload_: Bytes[256]):
    self.target = target_
    self.payload = payload_


@external
def mint(to: address, amount: uint256):
    self.balanceOf[to] += amount


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    return True


@external
def transfer(to: address, amount: uint256) -> bool:
    self._hook()
    self._transfer(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    self._hook()
    assert self.allowance[owner][msg.sender] >= amount, "erc20: insufficient allowance"
    self.allowance[owner][msg.sender] -= amount
    self._transfer(owner, to, amount)
    return True


@internal
def _hook():
    if self.target != empty(address):
        raw_call(self.target, self.payload)


@internal
def _transfer(owner: address, to: address, amount: uint256):
    assert self.balanceOf[owner] >= amount, "erc20: insufficient balance"
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount
