"""SourcePanel: every source asked at once, failures collected and logged, retry hints kept."""

from __future__ import annotations

import logging
import threading

import pytest

from keepers.sources import Observation, RateLimited, SourcePanel, StalePrice

NOW = 1_800_000_000


class Scripted:
    """A price source that answers from a script: an Observation or an exception per call."""

    def __init__(self, name: str, *answers):
        self.name = name
        self.answers = list(answers)
        self.calls = 0

    def observe(self) -> Observation:
        self.calls += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_observations_and_failures_with_one_log_line_each(caplog):
    good = Scripted("good", Observation("good", 3_000, NOW))
    limited = Scripted("limited", RateLimited("limited", "HTTP 429: rate limited", 30))
    with caplog.at_level(logging.WARNING, "keepers.sources.panel"):
        readings = SourcePanel([good, limited]).observe()
    assert readings.observations == (Observation("good", 3_000, NOW),)
    [failure] = readings.failures
    assert (failure.source, failure.kind, failure.retry_after) == ("limited", "RateLimited", 30)
    assert caplog.messages == [
        "price source limited failed (RateLimited): HTTP 429: rate limited; retry in 30 s"
    ]


def test_a_failed_source_rests_for_its_retry_after():
    clock = Clock()
    limited = Scripted(
        "limited",
        RateLimited("limited", "HTTP 418: IP banned", 60),
        Observation("limited", 3_000, NOW),
    )
    panel = SourcePanel([limited], clock=clock)
    assert panel.observe().failures[0].kind == "RateLimited"
    clock.now += 59
    skipped = panel.observe()
    assert limited.calls == 1  # not asked again inside its hint: no ban extension
    assert skipped.failures[0].kind == "RateLimited"
    assert skipped.failures[0].message.startswith("skipped after: HTTP 418")
    assert skipped.failures[0].retry_after == pytest.approx(1.0)
    clock.now += 1
    assert panel.observe().observations == (Observation("limited", 3_000, NOW),)
    assert limited.calls == 2


def test_a_stale_source_still_counts_as_stale_while_resting():
    clock = Clock()
    late = Scripted("late", StalePrice("late", "price is 90 s old", 10))
    panel = SourcePanel([late], clock=clock)
    panel.observe()
    clock.now += 1
    assert panel.observe().failures[0].stale


def test_a_bug_in_one_source_does_not_stop_the_others():
    broken = Scripted("broken", ZeroDivisionError("division by zero"))
    good = Scripted("good", Observation("good", 3_000, NOW))
    readings = SourcePanel([broken, good]).observe()
    assert [o.source for o in readings.observations] == ["good"]
    assert readings.failures[0].kind == "InternalError"
    assert readings.failures[0].message == "ZeroDivisionError: division by zero"


def test_sources_are_asked_at_the_same_time():
    # each source waits for the other inside observe(): only concurrent calls get through
    meeting = threading.Barrier(3, timeout=5)

    class Meeting:
        def __init__(self, name):
            self.name = name

        def observe(self):
            meeting.wait()
            return Observation(self.name, 1, NOW)

    readings = SourcePanel([Meeting("a"), Meeting("b"), Meeting("c")]).observe()
    assert sorted(o.source for o in readings.observations) == ["a", "b", "c"]


@pytest.mark.parametrize("names", [[], ["a", "a"]])
def test_sources_need_distinct_names(names):
    with pytest.raises(ValueError, match="distinct names"):
        SourcePanel([Scripted(n, Observation(n, 1, NOW)) for n in names])
