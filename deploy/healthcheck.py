#!/usr/bin/env python3
"""Container health check: GET /healthz on the bot's own port; exit 0 when healthy, 1 otherwise.

The port is read from the bot's configuration (server.port, default 8080), so a config that moves
the port does not break the check. Only the standard library is used (no curl in the image).

    python healthcheck.py [--config /etc/infodesk/config.toml] [--timeout 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
import urllib.error
import urllib.request


def main() -> int:
    parser = argparse.ArgumentParser(description="exit 0 when the bot's /healthz answers 200 with database ok")
    parser.add_argument("--config", default="/etc/infodesk/config.toml")
    parser.add_argument("--timeout", type=float, default=4.0)
    args = parser.parse_args()
    try:
        with open(args.config, "rb") as fh:
            server = tomllib.load(fh).get("server", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        print(f"unhealthy: cannot read {args.config}: {exc}", file=sys.stderr)
        return 1
    port = int(server.get("port", 8080))
    host = str(server.get("host", "127.0.0.1"))
    # The bot listens on 0.0.0.0 in a container; connect over loopback then.
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    url = f"http://[{host}]:{port}/healthz" if ":" in host else f"http://{host}:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as resp:
            body = json.load(resp)
    except urllib.error.HTTPError as exc:  # 503: the database is unreachable
        print(f"unhealthy: {url} answered {exc.code}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    if body.get("database") != "ok":
        print(f"unhealthy: {url}: database {body.get('database')!r}", file=sys.stderr)
        return 1
    print(f"healthy: {url} status {body.get('status')!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
