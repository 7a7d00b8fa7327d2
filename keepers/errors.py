"""The root of every error the keepers raise, so a daemon can catch its own in one place."""

from __future__ import annotations


class KeeperError(Exception):
    """Base class of every keepers error."""
