"""Block-hash checkpoints of an event index, so a reorg of any depth is followed.

Each index (the settlement keeper's series and accounts, the liquidation keeper's margined
accounts) re-reads the last `REORG_MARGIN` blocks on every sync, which covers a shallow
reorg. For deeper ones, the hash of every block the index's cursor reached is recorded (the
newest `KEEP` of them). Before a sync, the newest checkpoint is compared with the chain's hash
at that height: equal, the cursor stands; different, the checkpoints are walked back to the
newest one the chain still has (the fork point lies after it) and the index is re-read from
there; none left, from the index's first block. A hash is read before the logs of its range,
so a reorg racing a sync is caught by the next one.

Rows of the abandoned branch stay in the index: it only ever names accounts and series to
look at, and every position is read on chain before acting.
"""

from __future__ import annotations

import logging
from typing import Any

from strikeline import db as dbmod

log = logging.getLogger(__name__)

SCHEMA_NAME = "keeper_checkpoints"
SCHEMA_VERSION = 1
SCHEMA = [
    """CREATE TABLE IF NOT EXISTS keeper_checkpoint (
        chain_id {bigint} NOT NULL,
        name TEXT NOT NULL,
        block {bigint} NOT NULL,
        hash TEXT NOT NULL,
        PRIMARY KEY (chain_id, name, block))""",
]
#: checkpoints kept per index: at one sync every 5-15 s, hours of history
KEEP = 1_024


def block_hash(w3: Any, number: int) -> str | None:
    """The chain's hash at `number`, lowercase hex; None above the head."""
    try:
        header = w3.eth.get_block(number)
    except Exception:  # noqa: BLE001 - web3 raises BlockNotFound above the head
        return None
    return "0x" + bytes(header["hash"]).hex()


class Checkpoints:
    """The recorded (block, hash) pairs of one index."""

    def __init__(self, database: dbmod.Database, chain_id: int, name: str, w3: Any):
        self.db = database
        self.chain_id = chain_id
        self.name = name
        self.w3 = w3
        self.db.ensure_schema(SCHEMA_NAME, SCHEMA_VERSION, SCHEMA)

    def record(self, block: int, hash_: str) -> None:
        """Record the hash of the block the cursor reached (inside the cursor's transaction)."""
        self.db.execute(
            "INSERT INTO keeper_checkpoint (chain_id, name, block, hash) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (chain_id, name, block) DO UPDATE SET hash = excluded.hash",
            (self.chain_id, self.name, block, hash_.lower()),
        )
        self.db.execute(
            "DELETE FROM keeper_checkpoint WHERE chain_id = ? AND name = ? AND block < "
            "(SELECT block FROM keeper_checkpoint WHERE chain_id = ? AND name = ? "
            "ORDER BY block DESC LIMIT 1 OFFSET ?)",
            (self.chain_id, self.name, self.chain_id, self.name, KEEP),
        )

    def resume_after(self, cursor: int, floor: int) -> int:
        """The block the index may resume after: `cursor` if the chain still has the newest
        checkpoint, else the newest checkpoint it still has, else `floor`."""
        rows = self.db.fetchall(
            "SELECT block, hash FROM keeper_checkpoint WHERE chain_id = ? AND name = ? "
            "ORDER BY block DESC LIMIT ?",
            (self.chain_id, self.name, KEEP),
        )
        for i, (block, recorded) in enumerate(rows):
            if block_hash(self.w3, int(block)) == str(recorded):
                if i == 0:
                    return cursor
                log.warning(
                    "index %s: reorg below block %d (recorded hash gone); re-reading from block %d",
                    self.name,
                    int(rows[0][0]),
                    int(block) + 1,
                )
                self._forget_above(int(block))
                return int(block)
        if rows:
            log.warning(
                "index %s: reorg deeper than every checkpoint; re-reading from block %d",
                self.name,
                floor + 1,
            )
            self._forget_above(floor)
            return floor
        return cursor

    def _forget_above(self, block: int) -> None:
        self.db.execute(
            "DELETE FROM keeper_checkpoint WHERE chain_id = ? AND name = ? AND block > ?",
            (self.chain_id, self.name, block),
        )
