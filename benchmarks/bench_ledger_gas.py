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

Each figure is printed beside its goal, its **floor** and the anchors. The floor is what
any implementation of the same behaviour pays on Prague, counted as `bench_core_gas.py`
counts it (docs/gas.md): the intrinsic cost of the actual transaction input, the storage
slots the behaviour must touch in a tight layout (one position word per account and series,
one free balance per account and token, the fee recipient's balance; an order's replay
state shares its maker's free quote word, which the trade updates anyway, except for nonces
beyond the maker's window, one bitmap word per order), the relayer role and the config
word, ecrecover per signature, the EIP-712 digest's two KECCAK256, the buyer's
EXTCODESIZE for the ERC-1155 receiver check and the events as the interface defines them
(`Fill`, `TransferSingle`). Code overhead (ABI decoding, memory, jumps) is not in the floor.
`--explain` prints each floor's items.

The Ledger's own core actions (deposit, withdraw, write) are measured too, beside their
floors and their figures in docs/gas.md (which the contracts-v1 `bench_core_gas.py` measured).

Usage: python benchmarks/bench_ledger_gas.py [--explain] [--trace] [--ledger PATH]
  --explain      print every floor as its itemised sum
  --trace        trace the single match: execution gas by Ledger source line and by opcode
  --trace=KEY    the same for another measured transaction (deposit, pairs, maker, ...)
  --ledger PATH  bench another Ledger source (e.g. an older commit's, to compare); it is
                 compiled beside a copy of contracts/modules and contracts/interfaces
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

# docs/gas.md figures of the core actions (contracts v1, bench_core_gas.py)
CORE_DOC = {"deposit": 51_007, "withdraw": 45_462, "write": 70_468}

# Prague gas schedule (EIP-2028/2929/2200/3529), as in bench_core_gas.py
TX_BASE = 21_000
COLD = 2_100  # cold SLOAD
UPDATE = 5_000  # cold slot, nonzero -> nonzero
CREATE = 22_100  # cold slot, zero -> nonzero
WARM = 100  # warm SLOAD, warm account access
WARM_RW = 200  # warm read and write again of a slot already written
COLD_ACCOUNT = 2_600  # first CALL / EXTCODESIZE of an account
ECRECOVER = 3_100  # precompile 3,000 + warm STATICCALL
LOCK = 300  # reentrancy lock: TLOAD + 2 TSTORE
DIGEST = 144  # EIP-712: KECCAK256 of 11 words (96) and of 66 bytes (48)
CLEAR_REFUND = 19_900  # a slot set from zero and back to zero in one transaction


def log_cost(topics: int, words: int) -> int:
    """LOGn: 375 + 375 per topic (the signature counts) + 8 per data byte."""
    return 375 + 375 * topics + 8 * 32 * words


FILL_LOG = log_cost(4, 7)  # Fill: 3 indexed + signature, 7 data words (packed)
TRANSFER_LOG = log_cost(4, 2)  # TransferSingle: operator, from, to; id, value
ERC20_TRANSFER_LOG = log_cost(3, 1)


def intrinsic(data: bytes) -> tuple[int, str]:
    zeros = data.count(0)
    gas = TX_BASE + 4 * zeros + 16 * (len(data) - zeros)
    return gas, f"transaction base + calldata ({zeros} zero, {len(data) - zeros} nonzero bytes)"


def order_items(n: int, bitmap: bool = False) -> list[tuple[int, str]]:
    """Per order: its replay state is in its maker's free quote word (counted with the
    balances), or for a nonce beyond the maker's window in a bitmap word of its own."""
    replay = (
        (n * UPDATE, f"{n} bitmap word(s): the nonces beyond the window; nonzero->nonzero")
        if bitmap
        else (0, f"{n} replay state(s): in the maker's free quote word, updated anyway")
    )
    return [
        replay,
        (n * ECRECOVER, f"{n} ecrecover"),
        (n * DIGEST, f"{n} EIP-712 digest(s)"),
    ]


def floors(data: dict[str, bytes]) -> dict[str, list[tuple[int, str]]]:
    """Each action's floor as (gas, item) pairs; `data` holds each measured tx's input."""
    head = [(LOCK, "reentrancy lock"), (COLD, "config word: fees, fee recipient, pause")]
    relayer = [(COLD, "relayer role")]
    trade = [
        (COLD, "series terms: quote token, expiry"),
        (3 * UPDATE, "free quote balances: buyer, seller, fee recipient"),
        (2 * UPDATE, "positions: seller, buyer"),
        (FILL_LOG, "Fill LOG4, 7 data words"),
        (TRANSFER_LOG, "TransferSingle LOG4"),
    ]
    receiver = [(COLD_ACCOUNT, "buyer EXTCODESIZE (ERC-1155 receiver check)")]
    write = [
        (2 * COLD, "series product id and product word"),
        (UPDATE, "series book: open interest | collateral"),
    ]
    f: dict[str, list[tuple[int, str]]] = {}
    for key in ("single", "window"):
        if key in data:
            items = order_items(2, bitmap=key == "window")
            f[key] = [intrinsic(data[key]), *head, *relayer, *items, *trade, *receiver]
    f["fill"] = [
        intrinsic(data["fill"]),
        *head,
        *order_items(1),
        *trade,
        (WARM, "buyer (the caller) EXTCODESIZE, warm"),
    ]
    f["open"] = [
        intrinsic(data["open"]),
        *head,
        *relayer,
        *order_items(2),
        *trade[:1],
        (3 * UPDATE, "free quote balances: buyer, seller, fee recipient"),
        (WARM_RW, "seller's collateral (the quote token): warm"),
        (UPDATE + CREATE, "positions: buyer; seller's first (zero -> nonzero)"),
        *trade[3:],
        *receiver,
        *write,
    ]
    f["close"] = [
        intrinsic(data["close"]),
        *head,
        *relayer,
        *order_items(2),
        *trade,
        (WARM_RW, "buyer's released collateral (the quote token): warm"),
        *write,
    ]
    per_pair = [*order_items(2), (4 * UPDATE, "free buyer, seller; positions seller, buyer")]
    n = BATCH
    f["pairs"] = [
        intrinsic(data["pairs"]),
        *head,
        *relayer,
        (COLD + (n - 1) * WARM, "series terms, then warm"),
        *[(n * g, f"{n} x {what}") for g, what in per_pair],
        (UPDATE + (n - 1) * WARM_RW, "fee recipient, then warm"),
        (n * (COLD_ACCOUNT + FILL_LOG + TRANSFER_LOG), f"{n} x receiver, Fill, TransferSingle"),
    ]
    f["maker"] = [
        intrinsic(data["maker"]),
        *head,
        *relayer,
        (COLD + (n - 1) * WARM, "series terms, then warm"),
        *[(n * g, f"{n} x taker {what}") for g, what in order_items(1)],
        (n * 2 * UPDATE, f"{n} x taker free and position"),
        (ECRECOVER + n * DIGEST, "maker's order: one ecrecover, its replay state in its free word"),
        (CREATE + (n - 2) * WARM_RW + WARM - CLEAR_REFUND, "maker's partial fill: set ... cleared"),
        (3 * (UPDATE + (n - 1) * WARM_RW), "maker free, maker position, fee recipient"),
        (n * (COLD_ACCOUNT + FILL_LOG + TRANSFER_LOG), f"{n} x receiver, Fill, TransferSingle"),
    ]
    f["deposit"] = [
        intrinsic(data["deposit"]),
        (LOCK, "reentrancy lock"),
        (COLD, "token accepted (its unit)"),
        (COLD_ACCOUNT + COLD, "balanceOf before: token (cold account), ledger's balance"),
        (WARM + COLD + UPDATE + WARM_RW, "transferFrom: allowance (infinite), two balances"),
        (ERC20_TRANSFER_LOG, "ERC-20 Transfer LOG3"),
        (2 * WARM, "balanceOf after (warm)"),
        (UPDATE, "free balance nonzero->nonzero"),
        (log_cost(3, 2), "Deposit LOG3"),
    ]
    f["withdraw"] = [
        intrinsic(data["withdraw"]),
        (LOCK, "reentrancy lock"),
        (UPDATE, "free balance nonzero->nonzero"),
        (log_cost(3, 2), "Withdraw LOG3"),
        (COLD_ACCOUNT + 2 * UPDATE, "transfer: token (cold account), two balances"),
        (ERC20_TRANSFER_LOG, "ERC-20 Transfer LOG3"),
    ]
    f["write"] = [
        intrinsic(data["write"]),
        *head,
        (COLD, "series terms"),
        *write,
        (UPDATE, "writer's free collateral"),
        (2 * UPDATE, "positions: writer (short), recipient (longs)"),
        (COLD_ACCOUNT, "recipient EXTCODESIZE (receiver check)"),
        (log_cost(3, 3), "Written LOG3"),
        (TRANSFER_LOG, "TransferSingle LOG4"),
    ]
    return f


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


def as_words(order: dict[str, Any]) -> tuple[int, ...]:
    """`order` as the Ledger's `OrderWords` (`match_orders`): every field a uint256 word."""
    return tuple(int(v, 16) if isinstance(v, str) else int(v) for v in as_tuple(order))


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


def source_lines(path: Path) -> dict[int, int]:
    """The Ledger's runtime pc -> source line map (the compiler's `pc_pos_map`)."""
    import json

    out = subprocess.run(
        [vyper_executable(), "-f", "source_map_runtime", str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT / "contracts",
    ).stdout
    return {int(pc): pos[0] for pc, pos in json.loads(out)["pc_pos_map"].items()}


def trace_opcodes(
    w3: Web3, tx_hash: Any, lines: dict[int, int] | None = None, memory: bool = True
) -> None:
    """Print the gas of one transaction by opcode (anvil's struct logger), largest first,
    and, given the Ledger's pc map, by source line of the Ledger (the line of the nearest
    mapped pc at or before each step; calls to the token or precompiles count at the call)."""
    trace = w3.provider.make_request(
        "debug_traceTransaction",
        # a batch's memory at every step is too large to send: peak memory for one match only
        [tx_hash.to_0x_hex(), {"enableMemory": memory, "disableStack": True}],
    )["result"]
    if lines:
        mapped = sorted(lines)
        import bisect

        by_line: dict[int, int] = {}
        for step in trace["structLogs"]:
            if step["depth"] != 1:
                continue
            i = bisect.bisect_right(mapped, step["pc"]) - 1
            line = lines[mapped[i]] if i >= 0 else 0
            cost = 0 if step["op"] in ("CALL", "STATICCALL") else step["gasCost"]
            by_line[line] = by_line.get(line, 0) + cost
        source = (ROOT / "contracts" / "Ledger.vy").read_text().splitlines()
        print("execution gas by Ledger source line (top 40):")
        for line, gas in sorted(by_line.items(), key=lambda kv: -kv[1])[:40]:
            text = source[line - 1].strip()[:70] if 0 < line <= len(source) else "?"
            print(f"  {line:>5} {gas:>7,}  {text}")
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


def ledger_source() -> Path:
    """contracts/Ledger.vy, or with `--ledger PATH` a copy of PATH beside copies of the
    modules and interfaces it imports (so an older commit's Ledger compiles as it did)."""
    if "--ledger" not in sys.argv:
        return ROOT / "contracts" / "Ledger.vy"
    import shutil
    import tempfile

    source = Path(sys.argv[sys.argv.index("--ledger") + 1]).resolve()
    scratch = Path(tempfile.mkdtemp(prefix="bench_ledger_"))
    for sub in ("modules", "interfaces"):
        shutil.copytree(ROOT / "contracts" / sub, scratch / sub)
    shutil.copy(source, scratch / "Ledger.vy")
    return scratch / "Ledger.vy"


def main() -> int:
    # --trace traces the single match; --trace=KEY another measured transaction
    # (deposit, pairs, ...)
    traced = next(
        (a.partition("=")[2] or "single" for a in sys.argv if a.startswith("--trace")), ""
    )
    tracing = ["--steps-tracing"] if traced else []
    source = ledger_source()
    anvil = start_anvil(extra_args=["--hardfork", "prague", *tracing])
    try:
        w3 = Web3(HTTPProvider(anvil.url))
        bench = Bench(w3)
        token_abi, token_code = compile_contract(ROOT / "contracts" / "test" / "MockERC20.vy")
        ledger_abi, ledger_code = compile_contract(source)
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

        # each maker numbers its orders upward from its minimum (zero), as the SDK's
        # makers do: they stay in the window of the maker's replay word
        nonces: dict[str, int] = {}

        def order(
            maker: LocalAccount,
            is_buy: bool,
            amount: int = UNIT,
            price: int = PRICE,
            number: int | None = None,
        ) -> dict[str, Any]:
            nonces[maker.address] = nonces.get(maker.address, 0) + 1
            return {
                "maker": maker.address,
                "taker": "0x" + "00" * 20,
                "sender": bench.relayer.address,
                "seriesId": series,
                "isBuy": is_buy,
                "amount": amount,
                "limitPrice": price,
                "maxFee": 10**12,
                "nonce": nonces[maker.address] if number is None else number,
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
                as_words(buy),
                as_words(sell),
                sign(ledger, bench.chain_id, buyer, buy),
                sign(ledger, bench.chain_id, seller, sell),
                amount,  # the sell rests: bit 255 clear
                PRICE,
            )

        inputs: dict[str, bytes] = {}

        def measure(key: str, account: LocalAccount, fn: Any) -> int:
            receipt = bench.call(account, fn)
            hashes[key] = receipt["transactionHash"]
            inputs[key] = bytes(w3.eth.get_transaction(receipt["transactionHash"])["input"])
            return receipt["gasUsed"]

        def relay(matches: list[tuple[Any, ...]], key: str = "") -> int:
            return measure(key, bench.relayer, ledger.functions.match_orders(matches))

        hashes: dict[str, Any] = {}

        # one earlier trade for everyone: bitmap words and fee balance become nonzero
        for i in range(0, len(parties) - 1, 2):
            relay([match(parties[i], parties[i + 1])])
            relay([match(parties[i + 1], parties[i])])

        a, b = parties[0], parties[1]
        figures: dict[str, int] = {}
        figures["single"] = relay([match(a, b)], "single")
        # the same with nonces far above the makers' minimum (their bits in the bitmap, whose
        # words an earlier trade made nonzero)
        far = 1_000
        relay([match(a, b, order(a, True, number=far), order(b, False, number=far))])
        figures["window"] = relay(
            [match(a, b, order(a, True, number=far + 1), order(b, False, number=far + 1))],
            "window",
        )
        direct = order(b, False)
        direct["sender"] = "0x" + "00" * 20
        sig = sign(ledger, bench.chain_id, b, direct)
        figures["fill"] = measure(
            "fill",
            a,
            ledger.functions.fill(
                as_tuple(direct), sig[0] + sig[1] + bytes([sig[2]]), UNIT, 10**12
            ),
        )
        # sell to open: a seller with no longs writes; buy to close: a buyer with a short nets it
        opener, closer = parties[-2], parties[-1]
        held = ledger.functions.balanceOf(opener.address, series).call()
        bench.call(
            opener,
            ledger.functions.safeTransferFrom(
                opener.address, parties[2].address, series, held, b""
            ),
        )
        figures["open"] = relay([match(parties[3], opener)], "open")
        held = ledger.functions.balanceOf(closer.address, series).call()
        bench.call(
            closer,
            ledger.functions.safeTransferFrom(
                closer.address, parties[2].address, series, held, b""
            ),
        )
        figures["close"] = relay([match(closer, parties[4])], "close")
        pairs = [match(parties[2 * i], parties[2 * i + 1]) for i in range(BATCH)]
        figures["pairs"] = relay(pairs, "pairs")
        maker_sell = order(parties[0], False, amount=BATCH * UNIT)
        maker_matches = [match(parties[1 + i], parties[0], sell=maker_sell) for i in range(BATCH)]
        figures["maker"] = relay(maker_matches, "maker")
        # the ledger's own core actions: repeat deposit, partial withdraw, repeat write
        p = parties[5]
        figures["deposit"] = measure(
            "deposit", p, ledger.functions.deposit(usdc.address, 10**6, p.address)
        )
        figures["withdraw"] = measure(
            "withdraw", p, ledger.functions.withdraw(usdc.address, 10**6, p.address)
        )
        figures["write"] = measure(
            "write", writer, ledger.functions.write(series, UNIT, parties[6].address)
        )
        if traced:
            trace_opcodes(w3, hashes[traced], source_lines(source), memory=traced == "single")
    finally:
        anvil.stop()

    floor = {key: sum(g for g, _ in items) for key, items in floors(inputs).items()}
    for key in ("pairs", "maker"):
        figures[key] //= BATCH
        floor[key] //= BATCH

    anchors = f"0x RFQ {ANCHOR_0X_RFQ:,}; 1inch {ANCHOR_1INCH:,}"
    cow = f"CoW < {ANCHOR_COW:,}"
    rows = [
        ("single match, seller delivers held longs", "single", GOAL_SINGLE, anchors),
        ("  the same, nonces beyond the makers' window", "window", GOAL_SINGLE, anchors),
        ("direct fill by the taker", "fill", None, anchors),
        ("sell to open (seller writes)", "open", None, ""),
        ("buy to close (buyer's short nets)", "close", None, ""),
        ("batch of 8 distinct pairs, per match", "pairs", GOAL_BATCH, cow),
        ("batch of 8, one maker vs 8 takers, per match", "maker", GOAL_BATCH, cow),
    ]
    head = f"{'gasUsed':>9}{'floor':>9}{'ratio':>7}"
    print(f"{'Ledger action':<46}{head}{'goal':>9}{'v1':>9}  anchors")
    for label, key, goal, anchor in rows:
        used, low = figures[key], floor[key]
        met = "" if goal is None else ("  (goal met)" if used <= goal else "  (goal missed)")
        goal_text = "" if goal is None else f"{goal:,}"
        v1 = f"{V1[key]:,}" if key in V1 else ""
        print(
            f"{label:<46}{used:>9,}{low:>9,}{used / low:>6.2f}x{goal_text:>9}{v1:>9}  {anchor}{met}"
        )
    print()
    print(f"{'core action (goal: <= 1.30x floor, <= docs)':<46}{head}{'docs':>9}")
    for label, key in (
        ("deposit (repeat)", "deposit"),
        ("withdraw (partial)", "withdraw"),
        ("write (repeat; recipient holds longs)", "write"),
    ):
        used, low = figures[key], floor[key]
        ok = "ok" if used <= 1.30 * low and used <= CORE_DOC[key] else "over"
        print(f"{label:<46}{used:>9,}{low:>9,}{used / low:>6.2f}x{CORE_DOC[key]:>9,}  {ok}")
    if "--explain" in sys.argv:
        for key, items in floors(inputs).items():
            print(f"\nfloor of {key}{' (whole batch)' if key in ('pairs', 'maker') else ''}:")
            for gas, what in items:
                print(f"  {gas:>9,}  {what}")
            print(f"  {sum(g for g, _ in items):>9,}  = floor")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
