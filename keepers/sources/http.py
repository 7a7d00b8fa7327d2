"""One JSON GET with the failure handling every exchange API needs.

Short timeouts, a whole-reply deadline (a server that trickles bytes defeats a per-read
timeout), a size cap, 429/418 turned into `RateLimited` with the `Retry-After` hint, 5xx into
`SourceUnavailable`, and numbers parsed exactly (`Decimal`, never `float`). Messages carry
no URL: operators put API keys in URLs.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from keepers.sources.errors import (
    InvalidReply,
    RateLimited,
    SourceUnavailable,
    UpstreamError,
)

# httpx logs every request's full URL at INFO, and URLs carry API keys: unless the operator
# configured the "httpx" logger, only its warnings get through.
if logging.getLogger("httpx").level == logging.NOTSET:
    logging.getLogger("httpx").setLevel(logging.WARNING)

USER_AGENT = "strikeline-keeper"
#: Ticker replies are a few hundred bytes; anything this large is not one.
MAX_REPLY_BYTES = 64 * 1024


@dataclass(frozen=True)
class JsonReply:
    """A parsed reply: status, JSON body (numbers exact) and the server's `Date` if any."""

    status: int
    body: Any
    date: int | None


class JsonGetter:
    """GETs JSON from one API for one source; raises `SourceError`s, never httpx errors.

    A reply takes at most about `timeout` to connect plus `timeout` for the first byte
    and the rest together (the deadline is checked as bytes arrive).
    """

    def __init__(
        self,
        source: str,
        base_url: str,
        timeout: float = 2.0,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ):
        self.source = source
        self.timeout = timeout
        self._clock = clock
        # trust_env=False: no proxy or netrc picked up from the environment by surprise
        self._client = httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            follow_redirects=False,
            trust_env=False,
            transport=transport,
        )

    def get(self, path: str, params: Mapping[str, str] | None = None) -> JsonReply:
        """GET `path` and parse the JSON body.

        Raises:
            RateLimited: HTTP 429 or 418, with the server's `Retry-After` as the hint.
            SourceUnavailable: connection failure, timeout, deadline, oversized reply, 5xx.
            UpstreamError: a 4xx without a JSON body.
            InvalidReply: a 2xx/3xx whose body is not JSON.
        """
        deadline = time.monotonic() + self.timeout
        try:
            with self._client.stream("GET", path, params=params) as response:
                self._check_status(response)
                data = self._read(response, deadline)
                status, headers = response.status_code, response.headers
        except httpx.TimeoutException:
            raise SourceUnavailable(self.source, f"no answer within {self.timeout} s") from None
        except httpx.HTTPError as exc:
            raise SourceUnavailable(
                self.source, f"connection failed ({type(exc).__name__})"
            ) from None
        try:
            body = json.loads(data, parse_float=Decimal)
        except (ValueError, RecursionError):
            if status >= 400:
                raise UpstreamError(self.source, f"HTTP {status} without a JSON body") from None
            raise InvalidReply(self.source, f"HTTP {status}: body is not JSON") from None
        return JsonReply(status, body, http_date(headers.get("Date")))

    def close(self) -> None:
        self._client.close()

    def _check_status(self, response: httpx.Response) -> None:
        status = response.status_code
        retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
        if status == 418:
            raise RateLimited(
                self.source, "HTTP 418: IP banned for ignoring rate limits", retry_after
            )
        if status == 429:
            raise RateLimited(self.source, "HTTP 429: rate limited", retry_after)
        if status >= 500:
            raise SourceUnavailable(self.source, f"HTTP {status}", retry_after)

    def _read(self, response: httpx.Response, deadline: float) -> bytes:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > MAX_REPLY_BYTES:
                raise SourceUnavailable(self.source, f"reply larger than {MAX_REPLY_BYTES} bytes")
            if time.monotonic() > deadline:
                raise SourceUnavailable(self.source, f"reply took longer than {self.timeout} s")
            chunks.append(chunk)
        return b"".join(chunks)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """`Retry-After` as seconds from `now`: either delay-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    when = http_date(value)
    return None if when is None else max(0.0, when - now)


def http_date(value: str | None) -> int | None:
    """An HTTP date (`Date`, `Retry-After`) as unix seconds; None if absent or malformed."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:  # RFC 9110 dates are GMT; a naive one is malformed
        return None
    return int(parsed.timestamp())
