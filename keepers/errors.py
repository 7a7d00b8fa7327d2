"""The root of every error the keepers raise, so a daemon can catch its own in one place."""

from __future__ import annotations

from strikeline.errors import StrikelineError


class KeeperError(StrikelineError):
    """Base class of every keepers error."""
