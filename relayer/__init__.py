"""Strikeline's relayer: the off-chain order book that matches EIP-712 signed orders and settles
the matches on chain (docs/relayer.md).

The book and matcher (`relayer.book`), the reservation of makers' funds across unconfirmed
matches (`relayer.reservations`), the durable journal on SQLite or PostgreSQL (`relayer.journal`,
`relayer.events`) and the engine that ties them together (`relayer.engine`); around it the HTTP
and WebSocket gateway (`relayer.gateway`), the submitter (`relayer.submitter`, through
`strikeline.txmanager`), the chain follower (`relayer.follower`), settings (`relayer.settings`)
and the process that runs them all (`relayer.service`, `python -m relayer`).
"""

from relayer.book import Book, MatchIds
from relayer.engine import Engine, PlaceResult
from relayer.errors import (
    ClientOrderIdConflict,
    EngineStopped,
    JournalError,
    RelayerError,
    WriterLockError,
)
from relayer.journal import Journal, PostgresJournal, SqliteJournal, open_journal
from relayer.model import (
    BookOrder,
    FeeSchedule,
    Instrument,
    MatchRecord,
    MatchState,
    OrderStatus,
    Reason,
    TimeInForce,
)
from relayer.reservations import Funds, Requirement, Reservations

__all__ = [
    "Book",
    "BookOrder",
    "ClientOrderIdConflict",
    "Engine",
    "EngineStopped",
    "FeeSchedule",
    "Funds",
    "Instrument",
    "Journal",
    "JournalError",
    "MatchIds",
    "MatchRecord",
    "MatchState",
    "OrderStatus",
    "PlaceResult",
    "PostgresJournal",
    "Reason",
    "RelayerError",
    "Requirement",
    "Reservations",
    "SqliteJournal",
    "TimeInForce",
    "WriterLockError",
    "open_journal",
]
