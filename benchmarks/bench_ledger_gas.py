"""Gas of the contracts-v2 Ledger's hot path on a real anvil node (hardfork Prague).

The Ledger (`contracts/Ledger.vy`) is the single hot-path contract of contracts v2:
free collateral, positions (long and short in one word), the ERC-1155 itself and EIP-712
order settlement in place. It is not wired into the deploy script yet; this bench deploys it
alone with an account standing in for the Clearinghouse (which only registers the product
and the series here), gives every party balances and positions and one earlier trade (so
balances, positions, nonce-bitmap words and the fee recipient's balance are nonzero, as for
anyone who trades), then reads `gasUsed` from the receipts of:

- a single relayer match of two fresh orders where the seller delivers longs it holds to a
  buyer who already holds some, beside its anchors (0x v4 RFQ fill 111,684; 1inch v4 limit
  order 99,228; goal 89,000) and the v1 figure (Exchange -> Clearinghouse -> OptionToken);
- the same trade as a direct fill by the taker;
- sell to open and buy to close;
- batches of 8 matches per match: 8 distinct pairs, one maker's 8 orders against 8 takers
  (goal 55,000; CoW under 60,000 per trade).

Orders are signed the way a wallet signs them (`eth_account`'s `sign_typed_data` with the
full EIP-712 message, the v2 type with `sender`), so the bench also shows that a
wallet-signed v2 order fills.

Usage: python benchmarks/bench_ledger_gas.py
Exits 0 once the figures are printed: a missed goal is a finding, not a failure.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import HTTPProvider, Web3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from strikeline import ids  # noqa: E402
from strikeline.bindings import vyper_executable  # noqa: E402
from strikeline.chain import start_anvil  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
UNIT = 10**8
STRIKE = 3_000 * UNIT
PRICE = 150 * 10**6
MAKER_BPS, TAKER_BPS = 10, 30
BATCH = 8
FAR = 2**40

ANCHOR_0X_RFQ = 111_684
ANCHOR_1INCH = 99_228
ANCHOR_COW = 60_000
GOAL_SINGLE = 89_000
GOAL_BATCH = 55_000
# v1 figures (docs/gas.md, benchmarks/bench_exchange_gas.py on the three-contract layout)
V1 = {
    "single": 120_246,
    "fill": 96_516,
    "open": 143_632,
    "close": 136_562,
    "pairs": 81_279,
    "maker": 66_932,
}

ORDER_TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "Order": [
        {"name": "maker", "type": "address"},
        {"name": "taker", "type": "address"},
        {"name": "sender", "type": "address"},
        {"name": "seriesId", "type": "uint256"},
        {"name": "isBuy", "type": "bool"},
        {"name": "amount", "type": "uint256"},
        {"name": "limitPrice", "type": "uint256"},
        {"name": "maxFee", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
}


def compile_contract(path: Path) -> tuple[list[Any], str]:
    out = (
        subprocess.run(
            [vyper_executable(), "-f", "abi,bytecode", str(path)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT / "contracts",
        )
        .stdout.strip()
        .splitlines()
    )
    import json

    return json.loads(out[0]), out[1]


class Bench:
    def __init__(self, w3: Web3) -> None:
        self.w3 = w3
        self.chain_id = w3.eth.chain_id
        self.nonces: dict[str, int] = {}
        self.deployer = self.fund(0xD0)
        self.relayer = self.fund(0xDE)
        self.clearing = self.fund(0xC1)
        self.fees = self.fund(0xFE)

    def fund(self, seed: int) -> LocalAccount:
        account = Account.from_key(bytes([seed]) * 32)
        self.w3.provider.make_request("anvil_setBalance", [account.address, hex(10**22)])
        return account

    def send(self, account: LocalAccount, tx: dict[str, Any]) -> dict[str, Any]:
        nonce = self.nonces.get(account.address)
        if nonce is None:
            nonce = self.w3.eth.get_transaction_count(account.address)
        tx = {
            **tx,
            "from": account.address,
            "nonce": nonce,
            "chainId": self.chain_id,
            "gas": 6_000_000,
            "maxFeePerGas": 10**11,
            "maxPriorityFeePerGas": 1,
        }
        signed = account.sign_transaction(tx)
        self.nonces[account.address] = nonce + 1
        receipt = self.w3.eth.wait_for_transaction_receipt(
            self.w3.eth.send_raw_transaction(signed.raw_transaction)
        )
        if receipt["status"] != 1:
            raise RuntimeError(f"transaction reverted: {receipt['transactionHash'].hex()}")
        return dict(receipt)

    def deploy(self, abi: list[Any], bytecode: str, *args: Any) -> Any:
        factory = self.w3.eth.contract(abi=abi, bytecode=bytecode)
        receipt = self.send(
            self.deployer,
            factory.constructor(*args).build_transaction({"from": self.deployer.address}),
        )
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=abi)

    def call(self, account: LocalAccount, fn: Any) -> dict[str, Any]:
        return self.send(account, fn.build_transaction({"from": account.address}))


def sign(ledger: Any, chain_id: int, key: LocalAccount, order: dict[str, Any]) -> tuple[Any, ...]:
    message = {
        "types": ORDER_TYPES,
        "primaryType": "Order",
        "domain": {
            "name": "Strikeline",
            "version": "1",
            "chainId": chain_id,
            "verifyingContract": ledger.address,
        },
        "message": order,
    }
    signed = Account.sign_message(
        __import__("eth_account").messages.encode_typed_data(full_message=message), key.key
    )
    return (signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big"), signed.v)


def as_tuple(order: dict[str, Any]) -> tuple[Any, ...]:
    return (
        order["maker"],
        order["taker"],
        order["sender"],
        order["seriesId"],
        order["isBuy"],
        order["amount"],
        order["limitPrice"],
        order["maxFee"],
        order["nonce"],
        order["deadline"],
    )


def trace_opcodes(w3: Web3, tx_hash: Any) -> None:
    """Print the gas of one transaction by opcode (anvil's struct logger), largest first."""
    trace = w3.provider.make_request(
        "debug_traceTransaction", [tx_hash.to_0x_hex(), {"enableMemory": True}]
    )["result"]
    by_op: dict[str, list[int]] = {}
    for step in trace["structLogs"]:
        entry = by_op.setdefault(step["op"], [0, 0])
        entry[0] += step["gasCost"] if step["op"] not in ("CALL", "STATICCALL") else 0
        entry[1] += 1
    total = sum(v[0] for v in by_op.values())
    mem = max((len(step.get("memory") or []) * 32 for step in trace["structLogs"]), default=0)
    print(f"peak memory: {mem:,} bytes; step keys: {sorted(trace['structLogs'][0])}")
    print(f"execution gas by opcode (total {total:,}, tx gasUsed includes intrinsic):")
    for op, (gas, count) in sorted(by_op.items(), key=lambda kv: -kv[1][0])[:25]:
        print(f"  {op:<14}{gas:>8,}  x{count}")


def main() -> int:
    tracing = ["--steps-tracing"] if "--trace" in sys.argv else []
    anvil = start_anvil(extra_args=["--hardfork", "prague", *tracing])
    try:
        w3 = Web3(HTTPProvider(anvil.url))
        bench = Bench(w3)
        token_abi, token_code = compile_contract(ROOT / "contracts" / "test" / "MockERC20.vy")
        ledger_abi, ledger_code = compile_contract(ROOT / "contracts" / "Ledger.vy")
        usdc = bench.deploy(token_abi, token_code, "USD Coin", "USDC", 6)
        weth = bench.deploy(token_abi, token_code, "Wrapped Ether", "WETH", 18)
        ledger = bench.deploy(
            ledger_abi,
            ledger_code,
            bench.clearing.address,
            bench.deployer.address,
            bench.fees.address,
            MAKER_BPS,
            TAKER_BPS,
        )
        bench.call(
            bench.deployer,
            ledger.functions.grantRole(
                ledger.functions.RELAYER_ROLE().call(), bench.relayer.address
            ),
        )
        # a WETH/USDC put collateralised in USDC; word: collateral | put | enabled | decimals
        product_id = ids.product_id(weth.address, usdc.address, usdc.address, True)
        word = int(usdc.address, 16) | (1 << 160) | (1 << 161) | (6 << 168)
        bench.call(
            bench.clearing,
            ledger.functions.clearing_set_product(
                product_id, word, weth.address, 10**18, usdc.address, 10**6
            ),
        )
        expiry = ids.next_expiry(w3.eth.get_block("latest")["timestamp"], 30)
        series = ids.series_id(product_id, STRIKE, expiry)
        terms = int(usdc.address, 16) | ((expiry // 86_400) << 160) | (STRIKE << 184)
        bench.call(bench.clearing, ledger.functions.clearing_set_series(series, product_id, terms))

        parties = [bench.fund(0x10 + i) for i in range(2 * BATCH + 4)]
        for p in parties + [bench.fees]:
            bench.call(bench.deployer, usdc.functions.mint(p.address, 10**15))
            bench.call(p, usdc.functions.approve(ledger.address, 2**256 - 1))
            bench.call(p, ledger.functions.deposit(usdc.address, 10**13, p.address))
        # everyone holds longs (sellers deliver) but no short, from one writer; the closer
        # (last party) wrote its own and keeps the short
        writer = parties[-1]
        bench.call(writer, ledger.functions.write(series, 50 * UNIT * len(parties), writer.address))
        for p in parties[:-1]:
            bench.call(
                writer,
                ledger.functions.safeTransferFrom(
                    writer.address, p.address, series, 50 * UNIT, b""
                ),
            )

        nonce = [1]

        def order(
            maker: LocalAccount, is_buy: bool, amount: int = UNIT, price: int = PRICE
        ) -> dict[str, Any]:
            nonce[0] += 1
            return {
                "maker": maker.address,
                "taker": "0x" + "00" * 20,
                "sender": bench.relayer.address,
                "seriesId": series,
                "isBuy": is_buy,
                "amount": amount,
                "limitPrice": price,
                "maxFee": 10**12,
                "nonce": nonce[0],
                "deadline": FAR,
            }

        def match(
            buyer: LocalAccount,
            seller: LocalAccount,
            buy: dict[str, Any] | None = None,
            sell: dict[str, Any] | None = None,
            amount: int = UNIT,
        ) -> tuple[Any, ...]:
            buy = buy or order(buyer, True)
            sell = sell or order(seller, False)
            return (
                as_tuple(buy),
                as_tuple(sell),
                sign(ledger, bench.chain_id, buyer, buy),
                sign(ledger, bench.chain_id, seller, sell),
                amount,
                PRICE,
                False,
            )

        def relay(matches: list[tuple[Any, ...]]) -> int:
            receipt = bench.call(bench.relayer, ledger.functions.match_orders(matches))
            hashes.append(receipt["transactionHash"])
            return receipt["gasUsed"]

        hashes: list[Any] = []

        # one earlier trade for everyone: bitmap words and fee balance become nonzero
        for i in range(0, len(parties) - 1, 2):
            relay([match(parties[i], parties[i + 1])])
            relay([match(parties[i + 1], parties[i])])

        a, b = parties[0], parties[1]
        figures: dict[str, int] = {}
        figures["single"] = relay([match(a, b)])
        if "--trace" in sys.argv:
            trace_opcodes(w3, hashes[-1])
        direct = order(b, False)
        direct["sender"] = "0x" + "00" * 20
        sig = sign(ledger, bench.chain_id, b, direct)
        figures["fill"] = bench.call(
            a,
            ledger.functions.fill(
                as_tuple(direct), sig[0] + sig[1] + bytes([sig[2]]), UNIT, 10**12
            ),
        )["gasUsed"]
        # sell to open: a seller with no longs writes; buy to close: a buyer with a short nets it
        opener, closer = parties[-2], parties[-1]
        held = ledger.functions.balanceOf(opener.address, series).call()
        bench.call(
            opener,
            ledger.functions.safeTransferFrom(
                opener.address, parties[2].address, series, held, b""
            ),
        )
        figures["open"] = relay([match(parties[3], opener)])
        held = ledger.functions.balanceOf(closer.address, series).call()
        bench.call(
            closer,
            ledger.functions.safeTransferFrom(
                closer.address, parties[2].address, series, held, b""
            ),
        )
        figures["close"] = relay([match(closer, parties[4])])
        pairs = [match(parties[2 * i], parties[2 * i + 1]) for i in range(BATCH)]
        figures["pairs"] = relay(pairs) // BATCH
        maker_sell = order(parties[0], False, amount=BATCH * UNIT)
        maker_matches = [match(parties[1 + i], parties[0], sell=maker_sell) for i in range(BATCH)]
        figures["maker"] = relay(maker_matches) // BATCH
    finally:
        anvil.stop()

    rows = [
        (
            "single match, seller delivers held longs",
            "single",
            f"goal {GOAL_SINGLE:,}; 0x RFQ {ANCHOR_0X_RFQ:,}; 1inch {ANCHOR_1INCH:,}",
        ),
        ("direct fill by the taker", "fill", f"0x RFQ {ANCHOR_0X_RFQ:,}"),
        ("sell to open", "open", ""),
        ("buy to close", "close", ""),
        (
            "batch of 8 distinct pairs, per match",
            "pairs",
            f"goal {GOAL_BATCH:,}; CoW < {ANCHOR_COW:,}",
        ),
        ("batch of 8, one maker's order vs 8 takers, per match", "maker", f"goal {GOAL_BATCH:,}"),
    ]
    print(f"{'Ledger (contracts v2) action':<56}{'gasUsed':>10}{'v1':>10}  anchor / goal")
    for label, key, anchor in rows:
        print(f"{label:<56}{figures[key]:>10,}{V1[key]:>10,}  {anchor}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
