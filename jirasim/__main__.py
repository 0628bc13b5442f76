"""``python -m jirasim --port 8101 --flavor cloud --project ENG:Engineering --user a@b.c:tok``."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from .options import parse_cli
from .server import JiraSim


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="jirasim", description="A stateful fake Jira site.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument(
        "--public-url", default=None, help="base URL for self links (default http://HOST:PORT)"
    )
    ap.add_argument("--port", type=int, default=8101)
    ap.add_argument("--flavor", choices=["cloud", "datacenter"], default="cloud")
    ap.add_argument("--project", action="append", default=[], metavar="KEY[:Name]")
    ap.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="EMAIL:TOKEN",
        help="the first user is the site admin (default admin@example.com:secret-token)",
    )
    ap.add_argument(
        "--state", default=None, metavar="FILE", help="load from / save to this JSON file"
    )
    ap.add_argument("--webhook-retry-base", type=float, default=1.0, metavar="SECONDS")
    ap.add_argument("--webhook-max-retries", type=int, default=5)
    ap.add_argument("--webhook-timeout", type=float, default=5.0, metavar="SECONDS")
    ap.add_argument("--webhook-workers", type=int, default=1)
    ap.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a realism option (jirasim/options.py), the value as JSON or text",
    )
    args = ap.parse_args(argv)
    sim = JiraSim(
        flavor=args.flavor,
        projects=args.project or None,
        users=args.user or None,
        host=args.host,
        public_url=args.public_url,
        state_file=args.state,
        webhook_retry_base=args.webhook_retry_base,
        webhook_max_retries=args.webhook_max_retries,
        webhook_timeout=args.webhook_timeout,
        webhook_workers=args.webhook_workers,
        options=parse_cli(args.option),
    )
    sim.start(args.port)

    def _stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    print(f"jirasim listening on {sim.base_url} (flavor={args.flavor})", flush=True)
    try:
        assert sim._thread is not None
        while sim._thread.is_alive():
            sim._thread.join(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
        sys.stdout.flush()
        # Webhook deliveries still in flight (a retry to a receiver that is gone) must not
        # hold the process: the state is saved, so leave now.
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
