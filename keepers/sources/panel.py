"""Ask every price source once, in parallel, honouring each one's retry-after hint.

`SourcePanel.observe()` never raises for a source's failure: it returns the observations
and a `SourceFailure` for every source that gave none, and logs one line for each. A source
that failed is left alone until its hint has passed (its last failure is reported again,
marked as skipped), so a rate-limited API is not called into a ban.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from keepers.sources.base import Observation, PriceSource, Readings, SourceFailure
from keepers.sources.errors import SourceError, one_line

log = logging.getLogger(__name__)


class SourcePanel:
    """The price sources of one asset, asked together."""

    def __init__(self, sources: Sequence[PriceSource], clock: Callable[[], float] = time.monotonic):
        names = [s.name for s in sources]
        if not sources or len(set(names)) != len(names):
            raise ValueError(f"sources need distinct names, got {names}")
        self.sources = tuple(sources)
        self._clock = clock
        self._resting: dict[str, tuple[float, SourceFailure]] = {}

    def observe(self) -> Readings:
        """One observation or one failure per source."""
        now = self._clock()
        due = [s for s in self.sources if self._resting.get(s.name, (0.0, None))[0] <= now]
        skipped = [
            self._skipped(name, until - now, failure)
            for name, (until, failure) in self._resting.items()
            if until > now
        ]
        with ThreadPoolExecutor(
            max_workers=len(due) or 1, thread_name_prefix="price-source"
        ) as pool:
            outcomes = list(pool.map(_ask, due))
        observations: list[Observation] = []
        failures = list(skipped)
        for source, outcome in zip(due, outcomes, strict=True):
            if isinstance(outcome, Observation):
                self._resting.pop(source.name, None)
                observations.append(outcome)
                continue
            self._resting[source.name] = (self._clock() + outcome.retry_after, outcome)
            log.warning(
                "price source %s failed (%s): %s; retry in %.0f s",
                outcome.source,
                outcome.kind,
                outcome.message,
                outcome.retry_after,
            )
            failures.append(outcome)
        return Readings(tuple(observations), tuple(failures))

    def _skipped(self, name: str, wait: float, failure: SourceFailure) -> SourceFailure:
        log.info("price source %s skipped for %.0f s more after %s", name, wait, failure.kind)
        return SourceFailure(name, failure.kind, f"skipped after: {failure.message}", wait)


def _ask(source: PriceSource) -> Observation | SourceFailure:
    """One source's observation, or its failure; a bug in a source is a failure too."""
    try:
        return source.observe()
    except SourceError as exc:
        return SourceFailure.from_error(exc)
    except Exception as exc:  # noqa: BLE001 - one broken source must not stop the others
        return SourceFailure(
            source.name, "InternalError", one_line(f"{type(exc).__name__}: {exc}"), 30.0
        )
