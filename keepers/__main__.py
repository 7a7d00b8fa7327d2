"""`python -m keepers ROLE [--once]` (console script `strikeline-keeper`).

ROLE is `oracle`, `settlement`, `liquidation` or `all`. Settings come from
`STRIKELINE_KEEPER_*` variables, `.env` and the secrets directory (`keepers.settings`).
`--once` runs one pass and exits (0: nothing to do or done; 1: a job failed; 75: a
transaction is still unconfirmed; 2: bad settings or boot failure). Without it the jobs run on
APScheduler until SIGTERM. Any startup failure prints one line on stderr, never a traceback,
so no passphrase, key or URL can leak through one.
"""

from __future__ import annotations

import argparse
import logging
import sys

from keepers.daemon import ROLES, build_jobs, gate, leader_name, run_daemon, run_once
from keepers.errors import KeeperError
from keepers.health import Metrics
from keepers.runtime import boot
from keepers.settings import load_settings
from keepers.sources.errors import one_line
from strikeline.leader import LeaderElection

log = logging.getLogger("keepers")

EXIT_BAD_SETUP = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="strikeline-keeper", description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=ROLES)
    parser.add_argument("--once", action="store_true", help="run one pass and exit (for cron)")
    parser.add_argument(
        "--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR")
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.log_level != "DEBUG":  # a line per job run would drown the keeper's own lines
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
    try:
        settings = load_settings()
        rt = boot(settings)
    except KeeperError as exc:
        print(f"strikeline-keeper: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_BAD_SETUP
    except Exception as exc:  # noqa: BLE001 - never a traceback at startup (it may quote secrets)
        print(f"strikeline-keeper: startup failed ({type(exc).__name__})", file=sys.stderr)
        return EXIT_BAD_SETUP
    server = election = None
    try:
        metrics = Metrics(args.role)
        jobs = build_jobs(args.role, rt, metrics)
        if settings.leader_url is not None:
            election = LeaderElection(
                settings.leader_url.get_secret_value(),
                leader_name(args.role, rt),
                lease=settings.leader_lease,
            ).start()
            if args.once and not election.wait_for_leadership(2 * settings.leader_lease):
                log.info("standby: another instance of this keeper leads; nothing to do")
                return 0
            jobs = gate(jobs, election)
        if args.once:
            return run_once(rt, jobs, metrics)
        if settings.metrics_port:
            server = metrics.serve(settings.metrics_port)
            log.info("health and metrics on 127.0.0.1:%d", server.port)
        return run_daemon(rt, jobs, metrics)
    except KeeperError as exc:
        print(f"strikeline-keeper: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_BAD_SETUP
    finally:
        if server is not None:
            server.close()
        if election is not None:
            election.stop()
        rt.close()


if __name__ == "__main__":
    sys.exit(main())
