"""What can go wrong when reading a price source, one class per kind.

Every error names its source, carries a one-line message (never a URL, key or response
dump: RPC URLs often hold an API key) and a retry-after hint in seconds, so the caller can
leave a failing source alone for a while instead of hammering it (Binance bans an IP that
keeps calling after a 429).
"""

from __future__ import annotations

from typing import ClassVar

from keepers.errors import KeeperError

_MAX_MESSAGE = 200


def one_line(text: str) -> str:
    """`text` on one line (whitespace collapsed), at most 200 characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= _MAX_MESSAGE else flat[: _MAX_MESSAGE - 3] + "..."


class SourceError(KeeperError):
    """A price source gave no usable observation.

    Attributes:
        source: the source's name.
        detail: what went wrong, one line.
        retry_after: seconds to wait before asking this source again.
    """

    #: the hint when the source itself gave none
    DEFAULT_RETRY_AFTER: ClassVar[float] = 5.0

    def __init__(self, source: str, detail: str, retry_after: float | None = None):
        self.source = source
        self.detail = one_line(detail)
        hint = self.DEFAULT_RETRY_AFTER if retry_after is None else retry_after
        self.retry_after = max(0.0, float(hint))
        super().__init__(f"{source}: {self.detail}")

    @property
    def kind(self) -> str:
        """The error's class name, for log lines and metrics labels."""
        return type(self).__name__


class SourceUnavailable(SourceError):
    """No answer: connection refused or reset, timeout, a hung or oversized reply, a 5xx."""


class RateLimited(SourceError):
    """The source said slow down: HTTP 429, 418 (Binance's IP ban) or an in-body limit."""

    DEFAULT_RETRY_AFTER = 60.0


class UpstreamError(SourceError):
    """The source answered with an error of its own (Kraken's `error`, Binance's code/msg)."""

    DEFAULT_RETRY_AFTER = 30.0


class UnknownPair(SourceError):
    """The source does not know the pair, or answered for another one (renamed, delisted).

    Configuration must change; asking again soon will not help.
    """

    DEFAULT_RETRY_AFTER = 600.0


class StalePrice(SourceError):
    """The source's own timestamp is older than the allowed age (or its round is carried over)."""


class InvalidReply(SourceError):
    """An answer that is not a price: unparsable, missing fields, zero or negative, too large,
    an incomplete round, a timestamp in the future, no contract at the feed address."""

    DEFAULT_RETRY_AFTER = 30.0
