"""`python -m keepers oracle` as an operator runs it, on anvil (one block a second):

- three reporter processes, quorum two, one of them down: prices reach the Oracle, again
  and again (heartbeat), each relay mined once;
- `kill -9` of a keeper and a restart: it resumes, prices keep coming, no nonce gap;
- `--once` for cron: exit 0 with nothing to do or done;
- a wrong passphrase or a bad setting: one line on stderr, exit 2, no secret;
- SIGTERM finishes the job in flight, then exits 0;
- /healthz and /metrics on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from eth_account import Account
from fake_exchanges import FakeCoinbase, FakeServer
from oracle_system import ASSET, GAS, deploy_oracle, keeper_env

from keepers.board import read_oracle
from strikeline import db as dbmod
from strikeline.chain import free_port, repo_root, start_anvil
from strikeline.txmanager import Status

PASSPHRASE = "pass phrase that must never be printed 7f3a"


@pytest.fixture(scope="module")
def node():
    with start_anvil(accounts=12, extra_args=["--block-time", "1"]) as anvil:
        yield anvil


@pytest.fixture
def system(node, tmp_path):
    oracle, deployment = deploy_oracle(node, tmp_path)
    return oracle, deployment, f"sqlite:///{tmp_path / 'keepers.db'}"


class Keeper:
    """A keeper process started the way an operator would (environment, `python -m`)."""

    def __init__(self, env: dict[str, str], log: Path, *args: str, role: str = "oracle"):
        base = {k: v for k, v in os.environ.items() if not k.startswith("STRIKELINE_KEEPER_")}
        base["STRIKELINE_KEEPER_SECRETS_DIR"] = str(log.parent / "no-secrets")
        (log.parent / "no-secrets").mkdir(exist_ok=True)
        self.log_path = log
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "keepers", role, *args],
            cwd=log.parent,  # no stray .env
            env={**base, "PYTHONPATH": str(repo_root()), **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log_path.read_text()  # the child writes to the file itself

    def finish(self, timeout: float = 60) -> int:
        """Wait for a `--once` run to exit by itself."""
        code = self.proc.wait(timeout)
        self.log.close()
        return code

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self.log.close()
        return code


def updates(oracle) -> list[dict]:
    return [
        dict(e["args"])
        for e in oracle.contract.events.SpotUpdated().get_logs(from_block=0)
        if e["args"]["asset"] == ASSET
    ]


def wait_for(condition, timeout: float, what: str, keepers=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    logs = "\n".join(k.output()[-3000:] for k in keepers)
    raise AssertionError(f"timed out waiting for {what}\n{logs}")


def journal_is_gapless(database_url: str, oracle) -> None:
    """Every journaled intent confirmed or on its way, each signer's nonces contiguous, and the
    chain's transaction count equal to the journal's next nonce."""
    database = dbmod.connect(database_url)
    try:
        rows = database.fetchall("SELECT signer, nonce, status FROM txm_intent ORDER BY nonce")
        by_signer: dict[str, list[int]] = {}
        for signer, nonce, status in rows:
            by_signer.setdefault(signer, []).append(int(nonce))
            assert status in (Status.CONFIRMED, Status.MINED, Status.SENT), status
        for signer, nonces in by_signer.items():
            # the module's chain is shared: a key's journal starts where earlier tests left it
            first = min(nonces)
            chain_count = oracle.w3.eth.get_transaction_count(signer)
            assert sorted(nonces) == list(range(first, first + len(nonces)))  # no gap, no twice
            assert chain_count in (first + len(nonces), first + len(nonces) - 1)  # last in flight
    finally:
        database.close()


def test_three_reporters_quorum_two_one_down_prices_reach_the_oracle(node, system, tmp_path):
    oracle, deployment, url = system
    # reporters 7 and 8 run; reporter 9's keeper is down from the start
    keepers = [
        Keeper(
            keeper_env(node, deployment, url, REPORTER_KEY=f"anvil:{r}", GAS_KEY=f"anvil:{g}"),
            tmp_path / f"keeper-{r}.log",
        )
        for r, g in ((7, GAS[0]), (8, GAS[1]))
    ]
    try:
        # heartbeat 5 s: several updates within 30 s of chain time
        seen = wait_for(
            lambda: len(updates(oracle)) >= 3 and updates(oracle), 60, "3 updates", keepers
        )
        assert all(u["reporters"] == 2 for u in seen)  # the median of the two live reporters
        assert oracle.spot_price(ASSET) > 0
        view = read_oracle(oracle, ASSET)
        assert view.now - view.timestamp < 30

        # kill -9 one keeper mid-flight and restart it: it resumes, prices keep coming
        keepers[0].proc.kill()
        keepers[0].proc.wait(10)
        before = len(updates(oracle))
        keepers[0] = Keeper(
            keeper_env(node, deployment, url, REPORTER_KEY="anvil:7", GAS_KEY=f"anvil:{GAS[0]}"),
            tmp_path / "keeper-7-restarted.log",
        )
        wait_for(lambda: len(updates(oracle)) >= before + 2, 60, "updates after restart", keepers)
    finally:
        codes = [k.stop() for k in keepers]
    assert codes == [0, 0], [k.output()[-2000:] for k in keepers]
    for keeper in keepers:
        out = keeper.output()
        assert "signal SIGTERM" in out and out.rstrip().endswith("stopped")
        assert "Traceback" not in out
    journal_is_gapless(url, oracle)
    # rounds open on the heartbeat (5 s), not on every block: no co-signing ping-pong
    seen = updates(oracle)
    span = read_oracle(oracle, ASSET).now - seen[0]["timestamp"]
    assert len(seen) <= span / 5 + 4, (len(seen), span)
    # every relay carried distinct reports: no report relayed twice
    database = dbmod.connect(url)
    keys = [k for (k,) in database.fetchall("SELECT key FROM txm_intent")]
    database.close()
    assert len(keys) == len(set(k.rsplit(":", 1)[0] for k in keys))


def test_once_runs_one_pass_for_cron(node, system, tmp_path, keeper_db_url):
    oracle, deployment, _ = system
    url = keeper_db_url
    env7 = keeper_env(node, deployment, url, REPORTER_KEY="anvil:7", GAS_KEY=f"anvil:{GAS[0]}")
    env8 = keeper_env(node, deployment, url, REPORTER_KEY="anvil:8", GAS_KEY=f"anvil:{GAS[1]}")
    first = Keeper(env7, tmp_path / "once-7.log", "--once")
    assert first.proc.wait(60) == 0, first.output()  # signed; one report waits for a quorum
    assert updates(oracle) == []
    second = Keeper(env8, tmp_path / "once-8.log", "--once")
    assert second.proc.wait(60) == 0, second.output()  # co-signed, relayed, confirmed
    [update] = updates(oracle)
    assert update["reporters"] == 2
    again = Keeper(env8, tmp_path / "once-8b.log", "--once")
    assert again.proc.wait(60) == 0  # nothing to do: its report is stored
    assert len(updates(oracle)) == 1
    for keeper in (first, second, again):
        keeper.finish()


def keystore(path: Path) -> Path:
    key = bytes([0x77]) * 32
    path.write_text(json.dumps(Account.encrypt(key, PASSPHRASE, kdf="pbkdf2", iterations=1000)))
    return path


def test_a_wrong_passphrase_is_one_line_and_exit_2_without_secrets(node, system, tmp_path):
    _, deployment, url = system
    path = keystore(tmp_path / "reporter.json")
    env = keeper_env(
        node,
        deployment,
        url,
        REPORTER_KEY=str(path),
        REPORTER_PASSPHRASE="wrong " + PASSPHRASE,
        GAS_KEY=f"anvil:{GAS[2]}",
    )
    keeper = Keeper(env, tmp_path / "wrong.log", "--once")
    assert keeper.finish() == 2
    out = keeper.output()
    assert out.count("\n") == 1, out
    assert out == (
        "strikeline-keeper: reporter key: keystore reporter.json: "
        "wrong passphrase or corrupt file\n"
    )
    assert PASSPHRASE not in out and "77" * 8 not in out

    # the right passphrase from a secrets file boots (and runs a pass)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "STRIKELINE_KEEPER_REPORTER_PASSPHRASE").write_text(PASSPHRASE)
    env.pop("STRIKELINE_KEEPER_REPORTER_PASSPHRASE")
    keeper = Keeper(
        {**env, "STRIKELINE_KEEPER_SECRETS_DIR": str(secrets)}, tmp_path / "ok.log", "--once"
    )
    code = keeper.finish()
    # the key is not a registered reporter: its report is signed but never relayed
    assert code == 0, keeper.output()
    assert PASSPHRASE not in keeper.output()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"STRIKELINE_KEEPER_CHAIN_ID": "1"}, "anvil test keys are public, refused on chain 1"),
        ({"STRIKELINE_KEEPER_RPC_URLS": "ftp://" + PASSPHRASE}, "must start with http://"),
        ({"STRIKELINE_KEEPER_GAS_KEY": "anvil:7"}, "never pays gas"),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_2(node, system, tmp_path, extra, expected):
    _, deployment, url = system
    env = keeper_env(node, deployment, url, REPORTER_KEY="anvil:7", GAS_KEY="anvil:6")
    keeper = Keeper({**env, **extra}, tmp_path / "bad.log", "--once")
    assert keeper.finish() == 2
    out = keeper.output()
    assert out.count("\n") == 1 and expected in out and PASSPHRASE not in out, out


def test_the_wrong_chain_is_refused_at_boot(node, system, tmp_path):
    _, deployment, url = system
    data = json.loads(deployment.read_text())
    env = keeper_env(node, deployment, url, REPORTER_KEY="anvil:7", CHAIN_ID="1337")
    keeper = Keeper(env, tmp_path / "chain.log", "--once")
    assert keeper.finish() == 2
    assert keeper.output() == (
        f"strikeline-keeper: RPC: the nodes serve chain {data['chain_id']}, the settings say 1337\n"
    )


class SlowCoinbase(FakeCoinbase):
    """Answers after `delay` seconds; `asked` is set when a request arrives."""

    def __init__(self, prices, delay: float):
        super().__init__(prices)
        self.delay = delay
        self.asked = threading.Event()

    def answer(self, path, query):
        self.asked.set()
        time.sleep(self.delay)
        return super().answer(path, query)


def test_sigterm_finishes_the_job_in_flight(node, system, tmp_path):
    oracle, deployment, url = system
    fake = SlowCoinbase({"ETH-USD": "3001.5"}, delay=1.5)
    server = FakeServer(fake).start()
    try:
        env = keeper_env(
            node,
            deployment,
            url,
            REPORTER_KEY="anvil:7",
            SOURCES=f"coinbase:ETH/USD@{server.url}",
            ORACLE_INTERVAL="30",
        )
        keeper = Keeper(env, tmp_path / "term.log")
        assert fake.asked.wait(30), keeper.output()
        time.sleep(0.3)  # inside the job, waiting on the slow source
        assert keeper.stop(signal.SIGTERM) == 0
    finally:
        server.stop()
    out = keeper.output()
    term, signed, stopped = (
        out.index(s) for s in ("signal SIGTERM", "signed 300150000000", "stopped")
    )
    assert term < signed < stopped, out  # the report was signed after the signal, then it stopped
    database = dbmod.connect(url)
    assert database.fetchval("SELECT COUNT(*) FROM keeper_report") == 1
    database.close()


def test_healthz_and_metrics_on_localhost(node, system, tmp_path):
    oracle, deployment, url = system
    port = free_port()
    env = keeper_env(
        node,
        deployment,
        url,
        REPORTER_KEY="anvil:7",
        GAS_KEY=f"anvil:{GAS[2]}",
        METRICS_PORT=str(port),
        DATABASE_URL=url,
    )
    keeper = Keeper(env, tmp_path / "health.log")
    try:

        def healthy():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    body = json.loads(r.read())
                return body if body["jobs"]["oracle"]["last_success"] else None
            except OSError:
                return None

        body = wait_for(healthy, 30, "/healthz", [keeper])
        assert body["status"] == "ok" and set(body["jobs"]) == {"oracle", "transactions"}
        wait_for(lambda: b"gas_balance_wei" in metrics(port), 10, "metrics", [keeper])
        text = metrics(port).decode()
        for name in (
            'strikeline_keeper_job_last_success_timestamp_seconds{job="oracle"}',
            "strikeline_keeper_chain_lag_seconds",
            "strikeline_keeper_pending_tx_age_seconds",
            "strikeline_keeper_gas_balance_wei",
            f'strikeline_keeper_price_age_seconds{{asset="{ASSET}"}}',
            f'strikeline_keeper_price_deviation_bps{{asset="{ASSET}"}}',
        ):
            assert name in text
        assert "anvil" not in text and node.url not in text
    finally:
        assert keeper.stop() == 0


def metrics(port: int) -> bytes:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            return bytes(r.read())
    except OSError:
        return b""


def test_a_standby_instance_takes_over_after_kill_9(node, system, tmp_path, postgres_database):
    oracle, deployment, url = system
    same = {"REPORTER_KEY": "anvil:7", "GAS_KEY": f"anvil:{GAS[0]}"}
    ha = {**same, "LEADER_URL": postgres_database, "LEADER_LEASE": "2"}
    active = Keeper(keeper_env(node, deployment, url, **ha), tmp_path / "active.log")
    wait_for(lambda: "now the leader" in active.output(), 30, "a leader", [active])
    standby = Keeper(keeper_env(node, deployment, url, **ha), tmp_path / "standby.log")
    other = Keeper(
        keeper_env(node, deployment, url, REPORTER_KEY="anvil:8", GAS_KEY=f"anvil:{GAS[1]}"),
        tmp_path / "other.log",
    )
    keepers = [active, standby, other]
    try:
        wait_for(lambda: len(updates(oracle)) >= 2, 60, "2 updates", keepers)
        time.sleep(1)
        assert "signed" not in standby.output() and "journaled" not in standby.output()
        active.proc.kill()
        active.proc.wait(10)
        killed_at = time.monotonic()
        wait_for(lambda: "now the leader" in standby.output(), 30, "takeover", keepers)
        takeover = time.monotonic() - killed_at
        before = len(updates(oracle))
        wait_for(lambda: len(updates(oracle)) >= before + 2, 60, "updates after takeover", keepers)
        assert "signed" in standby.output()
    finally:
        codes = [k.stop() for k in (standby, other)]
    assert codes == [0, 0]
    assert takeover < 5, takeover  # the lock passes when the killed session's socket closes
    journal_is_gapless(url, oracle)


def test_flaky_rpc_and_a_stale_primary_every_due_update_within_3_blocks(node, system, tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "txm_faults", repo_root() / "tests" / "txmanager" / "faults.py"
    )
    faults = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(faults)
    oracle, deployment, url = system
    with start_anvil() as stale:  # the primary: a node far behind (a fresh chain, same id)
        flaky = faults.FlakyProxy(node.url, failure_rate=0.3, hang=2.0, seed=3)
        urls = ",".join([stale.url, flaky.url, node.url])
        keepers = [
            Keeper(
                keeper_env(
                    node,
                    deployment,
                    url,
                    RPC_URLS=urls,
                    RPC_TIMEOUT="0.3",
                    REPORTER_KEY=f"anvil:{r}",
                    GAS_KEY=f"anvil:{g}",
                ),
                tmp_path / f"flaky-{r}.log",
            )
            for r, g in ((7, GAS[0]), (8, GAS[1]))
        ]
        try:
            wait_for(lambda: len(updates(oracle)) >= 6, 90, "6 updates", keepers)
        finally:
            codes = [k.stop() for k in keepers]
            flaky.stop()
        assert codes == [0, 0]
        blocks = [
            oracle.w3.eth.get_block(e["blockNumber"])["timestamp"]
            for e in oracle.contract.events.SpotUpdated().get_logs(from_block=0)
        ]
        gaps = [b - a for a, b in zip(blocks, blocks[1:], strict=False)]
        # heartbeat 5 s; one block a second: each update within 3 blocks of its due time
        assert max(gaps) <= 5 + 3, gaps
        faulted = sum(n for kind, n in flaky.counts.items() if kind != "forwarded")
        assert faulted >= 10, flaky.counts
        for g in GAS[:2]:
            from oracle_system import anvil_address

            assert stale.request("eth_getTransactionCount", [anvil_address(g), "latest"]) == "0x0"
    journal_is_gapless(url, oracle)


def test_secrets_never_reach_logs_health_or_metrics(node, system, tmp_path, postgres_url):
    oracle, deployment, _ = system
    reporter_key, gas_key = bytes([0x61]) * 32, bytes([0x62]) * 32
    secrets = {
        "reporter passphrase": "rp-" + PASSPHRASE,
        "gas passphrase": "gp-" + PASSPHRASE,
        "reporter key": reporter_key.hex(),
        "gas key": gas_key.hex(),
        "database password": "dbpw-5ec7e7",
        "rpc api key": "apikey-9c1d0f",
    }
    for name, key in (("reporter", reporter_key), ("gas", gas_key)):
        passphrase = secrets[f"{name} passphrase"]
        (tmp_path / f"{name}.json").write_text(
            json.dumps(Account.encrypt(key, passphrase, kdf="pbkdf2", iterations=1000))
        )
    secret_dir = tmp_path / "secrets"
    secret_dir.mkdir()
    (secret_dir / "STRIKELINE_KEEPER_REPORTER_PASSPHRASE").write_text(
        secrets["reporter passphrase"]
    )
    (secret_dir / "STRIKELINE_KEEPER_GAS_PASSPHRASE").write_text(secrets["gas passphrase"])
    gas_address = Account.from_key(gas_key).address
    node.request("anvil_setBalance", [gas_address, hex(10**20)])
    oracle.grant_reporter(Account.from_key(reporter_key).address)
    database = postgres_url.replace("postgres@", f"postgres:{secrets['database password']}@")
    port = free_port()
    env = keeper_env(
        node,
        deployment,
        database,
        RPC_URLS=f"{node.url}/?key={secrets['rpc api key']}",
        REPORTER_KEY=str(tmp_path / "reporter.json"),
        GAS_KEY=str(tmp_path / "gas.json"),
        SECRETS_DIR=str(secret_dir),
        METRICS_PORT=str(port),
        RELAY_WAIT="0",  # relay its lone report at once (quorum 2: stored, no price yet)
        SOURCES=f"simulated:42:300000000000:1,coinbase:ETH/USD@http://127.0.0.1:{free_port()}",
    )
    keeper = Keeper(env, tmp_path / "secrets.log", "--log-level", "DEBUG")
    try:
        accepted = oracle.contract.events.SpotReportAccepted()
        wait_for(lambda: accepted.get_logs(from_block=0), 60, "the report relayed", [keeper])
        health = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read()
        scraped = metrics(port)
    finally:
        assert keeper.stop() == 0
    out = keeper.output()
    assert "price source coinbase:ETH-USD failed" in out  # a failing source's line, URL-free
    for name, secret in secrets.items():
        for where, text in (("log", out), ("/healthz", health), ("/metrics", scraped)):
            blob = text if isinstance(text, str) else text.decode()
            assert secret not in blob, f"the {name} appears in the {where}"
    assert "***" in out  # the database URL is logged with its password redacted
