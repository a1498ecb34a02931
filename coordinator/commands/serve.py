"""``sscjak-coordinator serve``: run the study's SuperLink (docs/commands.md).

The Fleet API (the only thing centres reach) listens on ``--fleet-address``; the Control
and Runtime APIs only on ``127.0.0.1:--control-port``; TLS with the certificates of
``HOME/certs`` and node authentication are on unless ``--insecure``. Every roster member
with a Flower node-authentication key is registered, so only the study's centres can
connect. Runs until Ctrl-C / SIGTERM; state survives restarts (``--database``).

A port already in use (another SuperLink, say) is an error before anything starts:
"port 9093 (Control API, 127.0.0.1) is in use", exit 1.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from sscjak.coordinator.federation.certs import server_certificate_expiry_warning
from sscjak.coordinator.federation.deployment import CoordinatorHome, start_superlink
from sscjak.coordinator.federation.superlink_process import (
    SuperLinkSettings,
    busy_ports,
    register_roster_nodes,
)
from sscjak.shared.cli_support import UserError
from sscjak.shared.process_control import ProcessGroup
from sscjak.shared.roster import load_roster

DEFAULT_FLEET_ADDRESS = "0.0.0.0:9092"
DEFAULT_CONTROL_PORT = 9093


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the SuperLink the centres' nodes connect to",
        description=(
            "Run the coordinator's Flower SuperLink: centres reach only its Fleet API; the "
            "control side listens on 127.0.0.1 only."
        ),
    )
    parser.add_argument(
        "--home",
        type=Path,
        required=True,
        metavar="DIR",
        help="coordinator home (certs/, the SuperLink database, logs/)",
    )
    parser.add_argument(
        "--fleet-address",
        default=DEFAULT_FLEET_ADDRESS,
        metavar="HOST:PORT",
        help="address of the Fleet API, the one the centres connect to",
    )
    parser.add_argument(
        "--control-port",
        type=int,
        default=DEFAULT_CONTROL_PORT,
        metavar="PORT",
        help="port of the Control and Runtime APIs, on 127.0.0.1 only",
    )
    parser.add_argument(
        "--roster",
        type=Path,
        metavar="FILE",
        help="register the Flower node-authentication keys of this roster (default: none)",
    )
    parser.add_argument(
        "--insecure", action="store_true", help="no TLS, no node authentication (testing only)"
    )
    parser.set_defaults(func=run)


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (IPv6 in brackets) → (host, port)."""
    host, separator, port = address.rpartition(":")
    if not separator or not port.isdigit():
        raise UserError(f"{address!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def check_ports_free(settings: SuperLinkSettings) -> None:
    """Refuse to start when a port the SuperLink needs is held by another process."""
    busy = busy_ports(settings)
    if not busy:
        return
    ports = " and ".join(str(port) for port, _ in busy)
    where = "; ".join(what for _, what in busy)
    one = len(busy) == 1
    raise UserError(
        f"{'port' if one else 'ports'} {ports} {'is' if one else 'are'} in use ({where}): "
        "is another SuperLink (sscjak-coordinator serve) running? Stop it, or choose "
        f"{'another port' if one else 'other ports'} with --control-port or --fleet-address"
    )


def _exit_message(log_tail: str) -> str:
    """Why the SuperLink exited, in one line when its log says so."""
    if "address already in use" in log_tail.lower() or "errno 98" in log_tail.lower():
        return "the SuperLink exited: one of its ports is in use (another process took it)"
    return f"the SuperLink exited\n{log_tail}"


def run(args: argparse.Namespace) -> int:
    home = CoordinatorHome(args.home.resolve())
    home.root.mkdir(parents=True, exist_ok=True)
    fleet_host, fleet_port = parse_address(args.fleet_address)
    settings = SuperLinkSettings(
        fleet_host=fleet_host,
        fleet_port=fleet_port,
        control_port=args.control_port,
        database=home.database,
        flwr_home=home.flwr_home,
        certificates=None if args.insecure else home.certificates(),
        node_authentication=not args.insecure,
    )
    if settings.certificates is not None:
        expiry = server_certificate_expiry_warning(settings.certificates)
        if expiry is not None:
            print(f"WARNING: {expiry}", file=sys.stderr)
    roster = load_roster(args.roster) if args.roster else None
    check_ports_free(settings)
    stop_requested = {"flag": False}

    def request_stop(signum: int, frame: object) -> None:
        stop_requested["flag"] = True

    with ProcessGroup(home.root / "logs") as processes:
        superlink = start_superlink(processes, settings)
        home.save_settings(settings)
        previous = {s: signal.signal(s, request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            if roster is not None:
                names = register_roster_nodes(settings, roster)
                print(f"registered {len(names)} node key(s): {', '.join(names)}")
            print(
                f"SuperLink running (pid {superlink.pid}): centres connect to "
                f"{settings.fleet_address}; control on {settings.control_address}. Ctrl-C stops.",
                flush=True,
            )
            while not stop_requested["flag"] and superlink.process.poll() is None:
                time.sleep(0.5)
            if superlink.process.poll() is not None:
                raise UserError(_exit_message(superlink.log_tail()))
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            (home.root / "superlink.json").unlink(missing_ok=True)
    return 0
