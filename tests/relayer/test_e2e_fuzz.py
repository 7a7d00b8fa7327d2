"""API fuzzing of a running relayer (`python -m relayer` on anvil, SQLite): requests generated
from the OpenAPI document it serves (schemathesis, positive and negative modes), then mutated
bodies of the categories bad input comes in (bad JSON, negative and over-uint256 numbers, bad
hex, huge bodies, duplicate keys, truncations, wrong types) on every body-taking endpoint. Every
answer is below 500, and the relayer's resident memory stays bounded.

Request counts: `STRIKELINE_TEST_FUZZ_REQUESTS` (default 10,000 mutated requests) plus
`STRIKELINE_TEST_FUZZ_EXAMPLES` schemathesis examples per operation and mode (default 5: generating
from the document's 130-digit hex patterns costs about 0.2 s per example); `make soak` runs
100,000 and 100.
"""

from __future__ import annotations

import json
import os
import random
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from system import RelayerProcess, body, fund, new_maker, signed

REQUESTS = int(os.environ.get("STRIKELINE_TEST_FUZZ_REQUESTS", "10000"))
EXAMPLES = int(os.environ.get("STRIKELINE_TEST_FUZZ_EXAMPLES", "5"))
MAX_BODY = 64 * 1024
RSS_GROWTH_LIMIT_MB = 64  # what the relayer may grow by while answering the whole fuzz


@pytest.fixture(scope="module")
def target(
    system: SimpleNamespace, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RelayerProcess]:
    workdir = tmp_path_factory.mktemp("fuzz")
    proc = RelayerProcess(
        system,
        f"sqlite:///{workdir / 'relayer.db'}",
        workdir,
        max_body_bytes=MAX_BODY,
        rate_ip_burst=10**9,
        rate_ip_per_s=10**9,
    )
    try:
        yield proc.start()
    finally:
        proc.stop()


def rss_kb(proc: RelayerProcess) -> int:
    assert proc.process is not None
    with open(f"/proc/{proc.process.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_openapi_generated_requests_never_get_a_5xx(target: RelayerProcess) -> None:
    """Every operation of the served document, positive and negative examples."""
    schema = schemathesis.openapi.from_url(target.url + "/openapi.json")
    schema.config.update(base_url=target.url)
    operations = [r.ok() for r in schema.get_all_operations()]
    assert {"POST /v1/orders", "DELETE /v1/orders/{hash}", "GET /v1/orderbook/{instrument}"} <= {
        op.label for op in operations
    }
    statuses: Counter[int] = Counter()
    unsatisfiable: list[str] = []
    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            @given(op.as_strategy(generation_mode=mode))
            def call(case: Any) -> None:
                status = case.call(timeout=30).status_code
                statuses[status] += 1
                assert status < 500, (case.method, case.path, case.body)

            try:
                call()
            except Unsatisfiable:  # nothing to negate (an operation without parameters)
                assert mode is GenerationMode.NEGATIVE, op.label
                unsatisfiable.append(op.label)
    print(
        f"schemathesis: {sum(statuses.values())} requests, statuses {sorted(statuses.items())}; "
        f"no negative case for {unsatisfiable}"
    )
    assert sum(statuses.values()) >= 2 * len(operations) - len(unsatisfiable)  # each ran
    assert statuses[400] > 0 and any(s < 300 for s in statuses)  # refusals and successes


UINTS = ["-1", "-0", str(2**256), str(2**256 - 1), "1" + "0" * 78, "1e3", "0x10", " 1", "01"]
JUNK = [
    -1,
    2**256,
    -(2**300),
    1e400,
    "0x",
    "0xzz",
    "0x" + "g" * 130,
    "0x" + "0" * 131,
    None,
    [],
    {},
    True,
    "\u0000",
    "f" * 5000,
    "é",
]


def mutated(rng: random.Random, base: dict[str, Any]) -> bytes:
    """One bad body of a random category."""
    text = json.dumps(base)
    kind = rng.randrange(9)
    if kind == 0:  # bad JSON: truncated
        return text[: rng.randrange(len(text))].encode()
    if kind == 1:  # bad JSON: a byte flipped or random bytes
        if rng.random() < 0.5:
            pos = rng.randrange(len(text))
            return (text[:pos] + chr(rng.randrange(0, 256)) + text[pos + 1 :]).encode("utf-8")
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
    order = dict(base["order"])
    if kind == 2:  # negative and over-uint256 numbers as strings and as JSON numbers
        key = rng.choice(["amount", "limitPrice", "maxFee", "nonce", "deadline", "seriesId"])
        order[key] = rng.choice(UINTS) if rng.random() < 0.6 else rng.choice([-5, 2**256, 2**512])
        return json.dumps({**base, "order": order}).encode()
    if kind == 3:  # bad hex
        key = rng.choice(["maker", "taker", "sender"])
        order[key] = rng.choice(["0x1234", "0x" + "zz" * 20, "11" * 20, "0x" + "1" * 41])
        sig = rng.choice([base["signature"][:-2], "0x" + "q" * 130, base["signature"] + "00"])
        return json.dumps({**base, "order": order, "signature": sig}).encode()
    if kind == 4:  # huge bodies: over the limit, and just under it with a huge field
        if rng.random() < 0.5:
            return b'{"pad": "' + b"a" * (MAX_BODY + rng.randrange(1, 10_000)) + b'"}'
        return json.dumps({**base, "clientOrderId": "x" * (MAX_BODY - 1_000)}).encode()
    if kind == 5:  # duplicate keys, at the top and inside the order
        inner = json.dumps(order)[:-1] + f', "amount": {json.dumps(rng.choice(JUNK))}}}'
        return (
            f'{{"order": {inner}, "signature": "{base["signature"]}", '
            f'"signature": {json.dumps(rng.choice(JUNK))}}}'
        ).encode()
    if kind == 6:  # wrong types anywhere
        key = rng.choice([*order, "isBuy"])
        order[key] = rng.choice(JUNK)
        return json.dumps({**base, "order": order}).encode()
    if kind == 7:  # deep nesting
        depth = rng.choice([50, 1_000, 10_000])
        return ("[" * depth + "]" * depth).encode()
    return json.dumps(rng.choice(JUNK)).encode()  # not an object at all


def test_mutated_bodies_never_get_a_5xx_and_memory_stays_bounded(
    system: SimpleNamespace, target: RelayerProcess
) -> None:
    c = system
    rng = random.Random(20261206)
    maker = new_maker(c)
    fund(c, maker, c.weth, 10**18)
    base = body(signed(c, maker, False, 1))
    statuses: Counter[int] = Counter()
    with httpx.Client(base_url=target.url, timeout=30) as client:
        for _ in range(200):  # warm up: allocator and caches settle before the first reading
            client.post("/v1/orders", content=mutated(rng, base))
        before = rss_kb(target)
        for i in range(REQUESTS):
            payload = mutated(rng, base)
            route = i % 5
            if route == 0:
                resp = client.post("/v1/orders/batch", content=b'{"orders": [' + payload + b"]}")
            elif route == 1:
                resp = client.post("/v1/debug/order", content=payload)
            elif route == 2:
                resp = client.request(
                    "DELETE", "/v1/orders/0x" + "ab" * 32, content=payload[:5_000]
                )
            elif route == 3 and i % 50 == 3:
                segment = urllib.parse.quote(payload[:80].decode("latin-1"), safe="")
                resp = client.get(f"/v1/orders/{segment}")
            else:
                resp = client.post("/v1/orders", content=payload)
            statuses[resp.status_code] += 1
        after = rss_kb(target)
    growth_mb = (after - before) / 1024
    print(
        f"mutated: {sum(statuses.values())} requests, statuses {sorted(statuses.items())}; "
        f"relayer RSS {before / 1024:.1f} -> {after / 1024:.1f} MB ({growth_mb:+.1f} MB)"
    )
    assert sum(statuses.values()) == REQUESTS
    assert max(statuses) < 500, sorted(statuses.items())
    assert statuses[413] > 0 and statuses[400] > 0
    assert growth_mb < RSS_GROWTH_LIMIT_MB
    assert target.get("/v1/health").status_code == 200
