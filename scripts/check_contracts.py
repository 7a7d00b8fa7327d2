"""Static checks every deployable contract must pass, offline (run by `make lint`).

For each deployable (`contracts/*.vy`; modules, interfaces and test contracts are not
deployed):

1. the compiler prints no warning (warnings are errors);
2. the contract docstring says how to shut it down (`@custom:kill`);
3. every external function has NatSpec (`@dev` or `@notice`) in its docstring;
4. every external function that can change state either checks its caller (a role, the bound
   Clearinghouse, the maker itself) or is listed below as deliberately permissionless, with
   the reason. A new entry point is therefore never open to anyone by accident: adding one
   fails this check until someone decides who may call it.

Usage: python scripts/check_contracts.py   (exits 1 with one line per finding)
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = ROOT / "contracts"
VENV_VYPER = ROOT / ".venv" / "bin" / "vyper"

#: Caller checks recognised in a function body (directly or through a helper named here).
ACCESS_CHECKS = re.compile(
    r"_check_role\(|_check_clearinghouse\(|_check_caller\(|access_control\._check_role\(|"
    r"ownable\._check_owner\(|assert msg\.sender ==|"
    r"if not \(msg\.sender ==|timelock_controller\._check_role\("
)

#: External state-changing functions open to any caller, and why that is safe.
PERMISSIONLESS: dict[str, str] = {
    "deposit": "credits only what arrived from the caller's own tokens",
    "withdraw": "moves only the caller's own free balance",
    "write": "locks the caller's own collateral",
    "burn": "closes the caller's own position",
    "fill": "the caller trades its own balance against a signed order",
    "cancel": "voids only orders whose maker is the caller",
    "cancel_by_hash": "flags hashes only for the caller",
    "raise_min_nonce": "raises only the caller's own minimum nonce",
    "safeTransferFrom": "ERC-1155: the owner or an operator it approved",
    "safeBatchTransferFrom": "ERC-1155: the owner or an operator it approved",
    "setApprovalForAll": "ERC-1155: approves operators of the caller's own longs",
    "create_series": "series of whitelisted products only; creating one is harmless",
    "redeem": "auto-exercise: pays the holder, never the caller",
    "redeem_many": "auto-exercise in batches: pays the holders",
    "settle": "pays the writer what its collateral leaves, never the caller",
    "settle_many": "batched settle",
    "sweep_dust": "credits the fee recipient once a series is fully settled",
    "fund_insurance": "moves the caller's own free balance into the insurance fund",
    "report_spot": "stores reports signed by registered reporters; the spot is their median",
    "report_expiry": "stores reports signed by registered reporters; median once a quorum",
    "write_margined": "margin check on the caller's own account",
    "add_collateral": "adds the caller's own collateral",
    "remove_collateral": "margin check on the caller's own account",
    "release_reserve": "margin check on the caller's own account",
    "burn_margined": "closes the caller's own margined short",
    "start_liquidation": "only starts the auction clock of an account under maintenance",
    "liquidate": "only below maintenance; the liquidator takes the short over",
    "renounceRole": "a holder gives up its own role",
    # snekmate TimelockController: execute is open once the delay passed unless restricted
    "execute": "timelock: only operations scheduled by a proposer and past their delay",
    "execute_batch": "timelock: only operations scheduled by a proposer and past their delay",
    "onERC721Received": "token receiver hook: accepts, changes nothing",
    "onERC1155Received": "token receiver hook: accepts, changes nothing",
    "onERC1155BatchReceived": "token receiver hook: accepts, changes nothing",
}


def deployables() -> list[Path]:
    found = sorted(CONTRACTS.glob("*.vy"))
    return [p for p in found if p.stem[:1].isupper()]


def compiler_warnings(path: Path) -> list[str]:
    vyper = str(VENV_VYPER) if VENV_VYPER.exists() else "vyper"
    result = subprocess.run(
        [vyper, "-f", "bytecode", str(path)], capture_output=True, text=True, cwd=CONTRACTS
    )
    if result.returncode != 0:
        return [f"does not compile: {result.stderr.strip().splitlines()[-1]}"]
    return [line for line in result.stderr.splitlines() if "warn" in line.lower()]


def functions(source: str) -> list[tuple[str, list[str], str, str]]:
    """(name, decorators, docstring, body) of every top-level function."""
    out = []
    lines = source.splitlines()
    i = 0
    while i < len(lines):
        decorators: list[str] = []
        while i < len(lines) and lines[i].startswith("@"):
            decorators.append(lines[i][1:].split("(")[0].strip())
            i += 1
        if i < len(lines) and lines[i].startswith("def ") and decorators:
            name = lines[i][4:].split("(")[0]
            j = i + 1
            # a long signature closes with `):` or `) -> T:` at column 0
            while j < len(lines) and (
                lines[j].startswith((" ", "\t", ")")) or not lines[j].strip()
            ):
                j += 1
            body = "\n".join(lines[i:j])
            doc = ""
            match = re.search(r'"""(.*?)"""', body, re.S)
            if match:
                doc = match.group(1)
            out.append((name, decorators, doc, body))
            i = j
        else:
            i += 1
    return out


def check(path: Path) -> list[str]:
    source = path.read_text()
    name = path.relative_to(ROOT)
    findings = [f"{name}: compiler: {w}" for w in compiler_warnings(path)]
    module_doc = source.split('"""', 2)[1]
    if "@custom:kill" not in module_doc:
        findings.append(f"{name}: no @custom:kill in the contract docstring")
    for fn, decorators, doc, body in functions(source):
        if "external" not in decorators:
            continue
        if "@dev" not in doc and "@notice" not in doc:
            findings.append(f"{name}: {fn}: no NatSpec (@dev or @notice)")
        changes_state = not ({"view", "pure"} & set(decorators))
        if changes_state and not ACCESS_CHECKS.search(body) and fn not in PERMISSIONLESS:
            findings.append(
                f"{name}: {fn}: changes state with no caller check and is not listed as "
                "permissionless"
            )
    return findings


def main() -> int:
    findings = [f for path in deployables() for f in check(path)]
    for line in findings:
        print(line)
    print(f"check_contracts: {len(deployables())} contracts, {len(findings)} findings")
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
