"""The relayer's exceptions: one root, `RelayerError`, with a subclass per thing that went wrong."""

from __future__ import annotations

from strikeline.errors import StrikelineError


class RelayerError(StrikelineError):
    """Root of every error the relayer raises on purpose."""


class JournalError(RelayerError):
    """The journal cannot be opened, written or read; the message names the database only by its
    redacted URL."""


class WriterLockError(JournalError):
    """Another process already writes this journal (one writer per journal)."""


class EngineStopped(RelayerError):
    """A journal commit failed after the book changed in memory: the engine refuses every further
    call so that nothing unjournaled is ever acknowledged. Restart it; replay rebuilds the truth."""


class ClientOrderIdConflict(RelayerError):
    """A maker reused a `clientOrderId` for a different order (HTTP 409)."""

    def __init__(self, maker: str, client_order_id: str, existing: bytes):
        super().__init__(
            f"clientOrderId {client_order_id!r} of {maker} already names order 0x{existing.hex()}"
        )
        self.maker = maker
        self.client_order_id = client_order_id
        self.existing = existing


class UnknownInstrument(RelayerError):
    """No book trades this series."""


class UnknownOrder(RelayerError):
    """No order with this hash is known."""


class UnknownMatch(RelayerError):
    """No match with this id is known, or it is in a state that does not allow the transition."""


class NotOrderMaker(RelayerError):
    """Someone other than the maker asked to cancel an order."""
