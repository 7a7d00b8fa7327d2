"""End-to-end helpers: the v2 system deployed on a real anvil through `strikeline.bindings`, the
address file the relayer reads, funded makers, signed orders in the API's JSON shape, and the
relayer itself run as an operator runs it (`python -m relayer` with environment settings)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
from eth_account import Account
from web3 import HTTPProvider, Web3

from strikeline import ids
from strikeline.bindings import (
    ClearinghouseBinding,
    ContractBinding,
    ERC20Binding,
)
from strikeline.chain import DEFAULT_MNEMONIC, Anvil, free_port
from strikeline.orders import Order, SignedOrder, sign_cancel

ROOT = Path(__file__).resolve().parents[2]
ONE = 10**8
STRIKE = 3_000 * ONE
PRICE = 150 * 10**6  # 150 USDC per contract
RELAYER_INDEX = 3


def deploy(node: Anvil, workdir: Path) -> SimpleNamespace:
    """Deploy Oracle, Ledger + Clearinghouse, tokens, a WETH call product and a series a week
    out; register anvil account 3 as the relayer; write the address file."""
    Account.enable_unaudited_hdwallet_features()
    keys = [
        Account.from_mnemonic(DEFAULT_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
        for i in range(10)
    ]
    admin, guardian, fee_recipient, relayer = (k.address for k in keys[:4])
    w3 = Web3(HTTPProvider(node.url, exception_retry_configuration=None))
    start_block = w3.eth.block_number
    oracle = ContractBinding.deploy(
        w3, admin, 2, 3_600, 5_000, 300, 3_600, sender=admin, name="Oracle"
    )
    ledger, ch = ClearinghouseBinding.deploy_with_ledger(
        w3, oracle.address, admin, guardian, fee_recipient, 10, 30, sender=admin
    )
    ledger.grant_relayer(relayer, sender=admin)
    usdc = ERC20Binding.deploy(w3, "USD Coin", "USDC", 6, sender=admin)
    weth = ERC20Binding.deploy(w3, "Wrapped Ether", "WETH", 18, sender=admin)
    product = ch.set_product(weth.address, usdc.address, weth.address, False, sender=admin)
    now = w3.eth.get_block("latest")["timestamp"]
    expiry = ids.next_expiry(now, 7)
    series = ch.create_series(product, STRIKE, expiry, sender=admin)
    addresses = {
        "chain_id": w3.eth.chain_id,
        "block_number": start_block,
        "deployer": admin,
        "contracts": {
            "Ledger": ledger.address,
            "Clearinghouse": ch.address,
            "Oracle": oracle.address,
        },
        "tokens": {"USDC": usdc.address, "WETH": weth.address},
    }
    path = workdir / "deployment.json"
    path.write_text(json.dumps(addresses, indent=2))
    c = SimpleNamespace(
        w3=w3,
        node=node,
        ledger=ledger,
        ch=ch,
        oracle=oracle,
        usdc=usdc,
        weth=weth,
        product=product,
        series=series,
        expiry=expiry,
        admin=admin,
        relayer=relayer,
        keys=keys,
        deployment=path,
        domain=ledger.domain(),
    )
    return c


def fund(c: SimpleNamespace, who: Any, token: ERC20Binding, amount: int) -> None:
    token.mint(who.address, amount, sender=c.admin)
    token.approve(c.ledger.address, amount, sender=who)
    c.ledger.deposit(token.address, amount, sender=who)


def new_maker(c: SimpleNamespace) -> Any:
    account = Account.create()
    c.w3.provider.make_request("anvil_setBalance", [account.address, hex(10**20)])
    return account


def signed(
    c: SimpleNamespace, maker: Any, is_buy: bool, nonce: int, amount: int = ONE, **fields: Any
) -> SignedOrder:
    values = {
        "limit_price": PRICE,
        "max_fee": 10**9,
        "deadline": 2**40,
        "sender": c.relayer,
        "series_id": c.series,
        **fields,
    }
    order = Order(maker=maker.address, is_buy=is_buy, amount=amount, nonce=nonce, **values)
    return order.sign(maker, c.domain)


def body(s: SignedOrder, tif: str = "GTC", client_order_id: str | None = None) -> dict[str, Any]:
    """The POST /v1/orders body: amounts as decimal strings, 0x hex."""
    o = s.order
    out: dict[str, Any] = {
        "order": {
            "maker": o.maker,
            "taker": o.taker,
            "sender": o.sender,
            "seriesId": str(o.series_id),
            "isBuy": o.is_buy,
            "amount": str(o.amount),
            "limitPrice": str(o.limit_price),
            "maxFee": str(o.max_fee),
            "nonce": str(o.nonce),
            "deadline": str(o.deadline),
        },
        "signature": "0x" + s.signature.hex(),
        "timeInForce": tif,
    }
    if client_order_id is not None:
        out["clientOrderId"] = client_order_id
    return out


def cancel_body(c: SimpleNamespace, maker: Any, order_hash: bytes) -> dict[str, Any]:
    return {"signature": "0x" + sign_cancel(maker, order_hash, c.domain).hex()}


class RelayerProcess:
    """`python -m relayer` in a subprocess with settings in its environment."""

    def __init__(self, c: SimpleNamespace, database_url: str, workdir: Path, **settings: Any):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"relayer-{self.port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("STRIKELINE_RELAYER_")}
        env.update(
            {
                "STRIKELINE_RELAYER_RPC_URLS": c.node.url,
                "STRIKELINE_RELAYER_CHAIN_ID": str(c.w3.eth.chain_id),
                "STRIKELINE_RELAYER_DEPLOYMENT": str(c.deployment),
                "STRIKELINE_RELAYER_ANVIL_ACCOUNT": str(RELAYER_INDEX),
                "STRIKELINE_RELAYER_DATABASE_URL": database_url,
                "STRIKELINE_RELAYER_PORT": str(self.port),
                "STRIKELINE_RELAYER_POLL_INTERVAL": "0.2",
                "STRIKELINE_RELAYER_BATCH_WAIT_MS": "50",
                "STRIKELINE_RELAYER_CONFIRMATIONS": "2",
                "STRIKELINE_RELAYER_MIN_DEADLINE_S": "0",
                "PYTHONPATH": str(ROOT),
            }
        )
        env.update({f"STRIKELINE_RELAYER_{k.upper()}": str(v) for k, v in settings.items()})
        self.env = env
        self.domain = c.domain
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.python_args: list[str] = []  # e.g. ["-m", "cProfile", "-o", path] for benchmarks

    def start(self, wait: bool = True, timeout: float = 60) -> RelayerProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child writes it
        self.process = subprocess.Popen(
            [sys.executable, *self.python_args, "-m", "relayer"],
            cwd=self.workdir,
            env=self.env,
            stdout=log,
            stderr=log,
        )
        if wait:
            self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"relayer exited {self.process.returncode}:\n{self.logs()}")
            try:
                if httpx.get(self.url + "/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"relayer not healthy in {timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        return self.log_path.read_text()[-6_000:] if self.log_path.exists() else ""

    def kill9(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def client(self, signer: Any = None) -> Any:
        """A `strikeline.client.Client` of this relayer (signing with `signer`)."""
        from strikeline.client import Client

        return Client(self.url, signer=signer, domain=self.domain)

    def post(self, path: str, json_body: Any) -> httpx.Response:
        return httpx.post(self.url + path, json=json_body, timeout=30)

    def delete(self, path: str, json_body: Any) -> httpx.Response:
        return httpx.request("DELETE", self.url + path, json=json_body, timeout=30)

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30)


def wait_for(predicate: Any, timeout: float = 60, interval: float = 0.2, what: str = "") -> Any:
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what or predicate}: last {last!r}")


# ------------------------------------------------------------- blocks mined by the test
# (with the `manual_mining` fixture: no automine, no interval mining)


def rpc(c: SimpleNamespace, method: str, *params: Any) -> Any:
    out = c.w3.provider.make_request(method, list(params))
    assert "error" not in out, out
    return out.get("result")


def mine(c: SimpleNamespace, blocks: int = 1) -> None:
    for _ in range(blocks):
        rpc(c, "evm_mine")


@contextmanager
def automined(c: SimpleNamespace) -> Iterator[None]:
    """Transactions sent inside are mined at once (for a test that otherwise mines by hand)."""
    rpc(c, "evm_setAutomine", True)
    try:
        yield
    finally:
        rpc(c, "evm_setAutomine", False)


def fund_manually(c: SimpleNamespace, who: Any, token: Any, amount: int) -> None:
    with automined(c):
        fund(c, who, token, amount)


def fills_of(c: SimpleNamespace, order_hash: bytes, from_block: int) -> list[Any]:
    logs = c.ledger.contract.events.Fill().get_logs(from_block=from_block)
    return [
        f
        for f in logs
        if order_hash in (bytes(f["args"]["taker_order"]), bytes(f["args"]["maker_order"]))
    ]


def settle_until(c: SimpleNamespace, predicate: Any, timeout: float, what: str) -> Any:
    """Mine a block every 0.3 s until `predicate()` holds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = predicate()
        if got:
            return got
        mine(c)
        time.sleep(0.3)
    raise AssertionError(f"timed out: {what}")


def match_mined(c: SimpleNamespace, client: Any, buy: Any) -> dict[str, Any]:
    """Wait for the batch to reach the pool, mine it; its receipt."""
    tx = wait_for(
        lambda: (f := client.order(buy.hash).fills) and f[0].tx_hash, 30, 0.1, "batch sent"
    )
    wait_for(lambda: c.w3.eth.get_transaction(tx) is not None, 10, 0.1, "in the pool")
    mine(c)
    return dict(c.w3.eth.get_transaction_receipt(tx))


@contextmanager
def one_trade_mined(
    c: SimpleNamespace, database_url: str, workdir: Path, confirmations: int
) -> Iterator[SimpleNamespace]:
    """A relayer on `database_url`, a funded seller and buyer whose orders cross (one contract at
    `PRICE`), and the batch that settles them mined in one block. Yields the relayer (`proc`), its
    `client`, the `seller`, `buyer`, their signed orders `sell`, `buy` and the batch's `receipt`;
    stops the relayer after."""
    proc = RelayerProcess(c, database_url, workdir, confirmations=confirmations, poll_interval=0.1)
    seller, buyer = new_maker(c), new_maker(c)
    fund_manually(c, seller, c.weth, 10**18)
    fund_manually(c, buyer, c.usdc, 1_000 * 10**6)
    try:
        proc.start()
        with proc.client() as client:
            sell, buy = signed(c, seller, False, 1, ONE), signed(c, buyer, True, 1, ONE)
            client.place(sell)
            client.place(buy)
            receipt = match_mined(c, client, buy)
            assert receipt["status"] == 1
            yield SimpleNamespace(
                proc=proc,
                client=client,
                seller=seller,
                buyer=buyer,
                sell=sell,
                buy=buy,
                receipt=receipt,
            )
    finally:
        proc.stop()
