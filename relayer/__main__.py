"""`python -m relayer` (console script `strikeline-relayer`): the whole relayer in one process.

`--help` lists every setting with its environment variable. A bad setting stops the boot with one
line naming it (exit status 2); SIGTERM drains and exits 0.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys

from relayer.settings import SettingError, load_settings
from strikeline.errors import StrikelineError


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        settings = load_settings(args)
    except SettingError as exc:
        print(f"strikeline-relayer: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "httpcore", "web3", "urllib3"):  # one line per RPC call otherwise
        logging.getLogger(noisy).setLevel(
            max(logging.WARNING, logging.getLevelName(settings.log_level))
        )
    from relayer.service import Relayer  # after the settings: --help stays fast

    relayer = Relayer(settings)
    rpc_log = logging.getLogger("strikeline.rpc")
    level = rpc_log.level
    rpc_log.setLevel(logging.ERROR)  # a node that is down at boot is the one error line below
    try:
        relayer.boot()
    except SettingError as exc:
        print(f"strikeline-relayer: {exc}", file=sys.stderr)
        relayer.close()
        return 2
    except StrikelineError as exc:
        # not a setting, but the operator's to fix (a node that fails mid-boot, contracts that
        # do not compile, a database that refuses): one line too; a bug still shows its traceback
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"strikeline-relayer: cannot start: {first}", file=sys.stderr)
        relayer.close()
        return 1
    finally:
        rpc_log.setLevel(level)
    # Everything the boot built (contracts, ABIs, the replayed book) lives as long as the process:
    # out of the collector's way, and collections rarer (intake allocates a few hundred objects
    # per order, almost none of them in cycles; each young collection walked them all).
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    try:  # uvloop (pinned in pyproject) halves the event loop's cost per request
        import uvloop
    except ImportError:
        asyncio.run(relayer.run())
    else:
        uvloop.run(relayer.run())
    if relayer.failed is not None:
        print(f"strikeline-relayer: stopped: {relayer.failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
