"""Off-chain order throughput of the SDK: what a relayer spends per incoming order.

Measures, per core (process CPU time, best of 5 repetitions over 4,000 distinct signed orders):

- `Order.hash`: the EIP-712 digest (struct hash + domain), as the Exchange computes it;
- `SignedOrder` construction + `is_valid()`: the digest plus a coincurve recovery compared
  with the maker, the check a relayer runs on every order it accepts;
- `recover` alone, the libsecp256k1 part of that.

Anchor: a relayer gateway (Starlette + msgspec on uvicorn) measured about 17,600 orders/s on
2 cores with signature checks and HTTP (docs/architecture.md), i.e. ~8,800 per core for
everything; the SDK's share should leave most of that budget to the server.

Usage: python benchmarks/bench_orders.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eth_account import Account  # noqa: E402

from strikeline.orders import Domain, Order, SignedOrder, recover_address  # noqa: E402

N = 4_000
REPEATS = 5
ANCHOR_PER_CORE = 17_600 / 2


def best_rate(work) -> float:
    """Items per CPU second, best of REPEATS runs of `work` (which returns its item count)."""
    best = float("inf")
    count = 0
    for _ in range(REPEATS):
        start = time.process_time()
        count = work()
        best = min(best, time.process_time() - start)
    return count / best


def main() -> int:
    domain = Domain(31337, "0x" + "5e" * 20)
    makers = [Account.from_key(bytes([i + 1]) * 32) for i in range(8)]
    signed = [
        Order(
            maker=makers[i % 8].address,
            series_id=2**255 + i,
            is_buy=bool(i % 2),
            amount=10**8 + i,
            limit_price=150 * 10**6 + i,
            max_fee=10**6,
            nonce=i,
            deadline=2**40,
        ).sign(makers[i % 8], domain)
        for i in range(N)
    ]
    pairs = [(s.order, s.signature) for s in signed]

    def hash_all() -> int:
        for order, _ in pairs:
            order.hash(domain)
        return N

    def accept_all() -> int:
        ok = 0
        for order, signature in pairs:
            ok += SignedOrder(order, signature, domain).is_valid()
        assert ok == N
        return N

    def recover_all() -> int:
        for s in signed:
            recover_address(s.hash, s.signature)
        return N

    # every row is one step of the relayer's intake, so each is set beside the whole intake
    anchor = f"anchor: relayer incl. HTTP ~{ANCHOR_PER_CORE:,.0f}/s/core (docs/architecture.md)"
    rows = [
        ("Order.hash (EIP-712 digest)", best_rate(hash_all), "orders/s/core", anchor),
        (
            "SignedOrder + is_valid (digest + recovery)",
            best_rate(accept_all),
            "orders/s/core",
            anchor,
        ),
        ("recover_address (coincurve)", best_rate(recover_all), "recoveries/s/core", anchor),
    ]
    print(f"strikeline.orders throughput: {N:,} orders, one core, best of {REPEATS} (CPU time)")
    for label, rate, unit, anchor in rows:
        print(f"{label:<44} {rate:>10,.0f} {unit:<18} {anchor}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
