"""Hypothesis profiles: the only place example counts come from.

`HYPOTHESIS_PROFILE` picks one (default `ci`): `dev` for quick local runs, `ci` for every
push, `nightly` for the long run. Tests never set `max_examples` themselves; a test whose
examples are slow takes a fixed share of the active profile with `scaled`, so a nightly run
still runs it ten times longer than ci does.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]


def register() -> None:
    """Register the profiles and load the one `HYPOTHESIS_PROFILE` names (default `ci`)."""
    settings.register_profile(
        "ci",
        max_examples=200,
        stateful_step_count=50,
        deadline=None,
        suppress_health_check=_SLOW_OK,
    )
    settings.register_profile(
        "nightly",
        max_examples=2000,
        stateful_step_count=50,
        deadline=None,
        suppress_health_check=_SLOW_OK,
    )
    settings.register_profile("dev", max_examples=20, stateful_step_count=20, deadline=None)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def scaled(fraction: float, floor: int = 10) -> int:
    """`fraction` of the active profile's example count, at least `floor` (never more than
    the profile itself): `@settings(max_examples=scaled(1 / 4))` for a slow test."""
    profile = settings.default.max_examples
    return min(profile, max(floor, int(profile * fraction)))
