"""A transaction-manager process that kills itself with SIGKILL at a chosen point.

    python crash_child.py DB_URL RPC_URL KEY POINT

POINT is `after_journal` (the signed transaction is committed to the journal, no node has
seen it) or `after_broadcast` (a node has it; the journal does not know yet).
"""

from __future__ import annotations

import os
import signal
import sys

from strikeline import db
from strikeline.rpc import RpcPool
from strikeline.txmanager import TxConfig, TxManager, anvil_signer


def die(*args: object, **kwargs: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    db_url, rpc_url, key, point = sys.argv[1:5]
    if point == "after_journal":
        TxManager._send_raw = die  # type: ignore[method-assign]
    elif point == "after_broadcast":
        TxManager._mark_tried = die  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown point {point}")
    keeper = anvil_signer(0, 31337)
    manager = TxManager(RpcPool([rpc_url]), db.connect(db_url), [keeper], TxConfig(confirmations=1))
    manager.submit(key, keeper.address, keeper.address, key.encode())
    raise SystemExit("not killed")


if __name__ == "__main__":
    main()
