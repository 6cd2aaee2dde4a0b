"""Container health check for newsmon: exit 0 healthy, 1 not (Docker HEALTHCHECK, Kubernetes exec probe).

It looks at the container's main process (PID 1 by default) and decides by its subcommand:

- `newsmon api` and `newsmon run` (with the API enabled) serve HTTP: GET /healthz on the `api.listen` address
  read from the same `--config` file and NEWSMON_* environment the process uses; healthy on 200.
- `newsmon poller|classifier|alerter`: the process must exist and be neither a zombie nor stopped; when
  `[metrics] listen` is set, GET /healthz on that port must also answer 200. That endpoint answers from a thread
  of its own and says 503 when the event loop or a consume loop with messages in hand has stalled, or a service
  died (see deploy/README.md). Without a metrics port only a dead or frozen process is caught.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request
from pathlib import Path

HTTP_COMMANDS = {"api", "run"}
WORKER_COMMANDS = {"poller", "classifier", "alerter"}


def read_argv(pid: int) -> list[str]:
    """The command line of a process, from /proc."""
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def process_state(pid: int) -> str:
    """The one-letter state of a process (R, S, D, Z, T, ...), from /proc."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name is in parentheses and may itself contain spaces or parentheses.
    return stat.rsplit(")", 1)[1].split()[0]


def newsmon_command(argv: list[str]) -> tuple[str | None, str | None]:
    """(subcommand, --config value) of a `newsmon ...` command line; (None, None) if it is not one."""
    for i, arg in enumerate(argv):
        if Path(arg).name == "newsmon" or (arg == "newsmon" and i > 0 and argv[i - 1] == "-m"):
            rest = argv[i + 1 :]
            break
    else:
        return None, None
    command = next((a for a in rest if not a.startswith("-")), None)
    config = None
    for j, arg in enumerate(rest):
        if arg in ("--config", "-c") and j + 1 < len(rest):
            config = rest[j + 1]
        elif arg.startswith("--config="):
            config = arg.split("=", 1)[1]
    return command, config


def healthz_url(config: str | None, command: str) -> str | None:
    """The /healthz URL to probe for `command` configured by `config` + environment, or None when there is none:
    the API's for `api` and `run` (None when the API is disabled), the metrics port's for the workers (None when
    `[metrics] listen` is empty)."""
    from newsmon.settings import load_settings  # heavy import only on the HTTP path

    settings = load_settings(config)
    if command in HTTP_COMMANDS:
        listen = settings.api.listen if settings.api.enabled else ""
    else:
        listen = settings.metrics.listen
    if not listen:
        return None
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if host in ("0.0.0.0", "", "*"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/healthz"


def probe(url: str, timeout: float) -> bool:
    """True when GET url answers 200 within timeout."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError as exc:  # the body says why (the metrics port lists the stalled loops)
        reason = exc.read(400).decode("utf-8", "replace").strip()
        print(f"unhealthy: GET {url}: {exc.code} {reason}", file=sys.stderr)
        return False
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: GET {url}: {exc}", file=sys.stderr)
        return False


def check(pid: int, timeout: float) -> int:
    """Exit status of the health check for process `pid`."""
    try:
        argv = read_argv(pid)
        state = process_state(pid)
    except OSError as exc:
        print(f"unhealthy: process {pid}: {exc}", file=sys.stderr)
        return 1
    if state in ("Z", "X", "T", "t"):
        print(f"unhealthy: process {pid} is in state {state}", file=sys.stderr)
        return 1
    command, config = newsmon_command(argv)
    if command is None:
        print(f"unhealthy: process {pid} is not newsmon: {' '.join(argv)}", file=sys.stderr)
        return 1
    if command in HTTP_COMMANDS or command in WORKER_COMMANDS:
        url = healthz_url(config, command)
        if url is not None and not probe(url, timeout):
            return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse options and run the check."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pid", type=int, default=1, help="the newsmon process to check (default: 1)")
    parser.add_argument("--timeout", type=float, default=3.0, help="HTTP timeout in seconds")
    args = parser.parse_args(argv)
    try:
        return check(args.pid, args.timeout)
    except Exception as exc:  # a health check must answer, never crash with a traceback
        print(f"unhealthy: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
