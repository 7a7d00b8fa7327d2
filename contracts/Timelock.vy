# pragma version ~=0.4.3
"""
@title Strikeline Timelock
@custom:contract-name Timelock
@license GNU Affero General Public License v3.0 only
@notice The admin of the Clearinghouse, Oracle and Exchange: every parameter
        change is scheduled by a proposer and executed after `get_minimum_delay`
        seconds (snekmate's TimelockController).
@custom:kill A proposer may `cancel` any pending operation. To freeze governance
        for good, the timelock's admin role holders renounce and the proposers
        are revoked; the guardian role on the governed contracts is separate.
"""

from snekmate.auth import access_control
from snekmate.governance import timelock_controller

# @dev The timelock's own roles (proposer, executor, canceller, admin).
initializes: access_control

# @dev The scheduling and execution logic.
initializes: timelock_controller[access_control := access_control]

exports: (
    timelock_controller.__interface__,
)


@deploy
def __init__(
    minimum_delay_: uint256,
    proposers_: DynArray[address, 255],
    executors_: DynArray[address, 255],
    admin_: address,
):
    """
    @dev See snekmate's `timelock_controller.__init__`.
    """
    access_control.__init__()
    timelock_controller.__init__(minimum_delay_, proposers_, executors_, admin_)
