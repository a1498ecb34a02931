"""``sscjak-node serve``: run the centre's node behind its firewall (docs/commands.md).

Starts Flower's SuperNode, which connects *out* to the coordinator's SuperLink (TLS by
default, node-key authentication) and opens no port except its Runtime API on
127.0.0.1; then answers every analysis request in this process with the locally
installed sscjak ClientApp (:mod:`sscjak.node.flower.supernode_process`); the Runtime API
answers only the holder of a secret written afresh at every start. The SuperNode is
supervised: if it exits, ``serve`` exits too (non-zero); on Ctrl-C or SIGTERM it is
stopped by its PID.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from sscjak.node.flower.auth_keys import ensure_flower_auth_key
from sscjak.node.flower.client_app import answer_message, build_client_app
from sscjak.node.flower.supernode_process import (
    LocalClientAppRunner,
    SuperNodeSettings,
    supernode_command,
    wait_for_runtime_api,
    write_runtime_secret,
)
from sscjak.node.guard.node_context import NodeContext
from sscjak.node.guard.node_keys import check_node_private_keys
from sscjak.shared.cli_support import UserError
from sscjak.shared.flower_environment import flower_environment
from sscjak.shared.process_control import stop_with_grace

#: What a SuperNode exit code means for the centre's IT (flwr 1.42 ``ExitCode``).
SUPERNODE_EXIT_HINTS: dict[int, str] = {
    305: (
        " (SUPERNODE_CONNECTION_ERROR): it could not connect to or activate at the "
        "coordinator — check --superlink and the outbound rule; a node that stopped less "
        "than a minute ago is still listed as connected and is refused until then. Start "
        "it again (systemd's Restart=on-failure does this)."
    ),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="connect to the coordinator and answer approved analyses",
        description=(
            "Run this centre's node: a Flower SuperNode connects out to the coordinator "
            "(no inbound port), and every analysis request is answered by the installed "
            "sscjak code only, for approved plans only, with an audit-log line each."
        ),
    )
    parser.add_argument(
        "--state", type=Path, required=True, metavar="DIR", help="the node's state directory"
    )
    parser.add_argument(
        "--data", type=Path, required=True, metavar="DIR", help="the centre's data folder"
    )
    parser.add_argument(
        "--superlink",
        required=True,
        metavar="HOST:PORT",
        help="the coordinator's Fleet API address",
    )
    parser.add_argument(
        "--root-certificates",
        type=Path,
        metavar="CA.pem",
        help="the study CA certificate (required unless --insecure)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="connect without TLS and without node authentication (testing only)",
    )
    parser.add_argument(
        "--runtime-port",
        type=int,
        default=0,
        metavar="PORT",
        help="port of the SuperNode's Runtime API on 127.0.0.1 (default: 0, a free port)",
    )
    parser.set_defaults(func=run)


def _free_loopback_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(args: argparse.Namespace) -> int:
    if not args.data.is_dir():
        raise UserError(f"not a folder: {args.data}")
    node = NodeContext.from_state_dir(args.state, args.data)
    check_node_private_keys(args.state)
    if args.insecure:
        auth_key = None
        print("WARNING: --insecure: no TLS and no node authentication.", file=sys.stderr)
    else:
        if args.root_certificates is None or not args.root_certificates.is_file():
            raise UserError("give the study CA certificate with --root-certificates CA.pem")
        auth_key = ensure_flower_auth_key(args.state).private_key_path
    try:
        settings = SuperNodeSettings(
            superlink=args.superlink,
            runtime_port=args.runtime_port or _free_loopback_port(),
            root_certificates=None if args.insecure else args.root_certificates.resolve(),
            insecure=args.insecure,
            auth_private_key=auth_key,
        )
    except ValueError as error:
        raise UserError(str(error)) from None

    flwr_home = args.state / "flwr_home"
    flwr_home.mkdir(parents=True, exist_ok=True)
    # A fresh Runtime API secret for this start: only the SuperNode and the runner below
    # hold it, so no other local user can take or answer a task.
    settings = dataclasses.replace(settings, runtime_secret_file=write_runtime_secret(flwr_home))
    supernode = subprocess.Popen(
        supernode_command(settings),
        env=flower_environment(flwr_home),
        stdin=subprocess.DEVNULL,
        # Same process group as serve: whoever stops serve's group stops the SuperNode.
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    app = build_client_app(node)
    runner = LocalClientAppRunner(
        settings.runtime_api_address,
        lambda message, context: answer_message(app, node, message, context),
        on_task=lambda fab_hash, kind: print(
            f"{node.name}: {kind} message (offered bundle {fab_hash[:12]}… not used)", flush=True
        ),
        runtime_secret=settings.runtime_secret_file.read_bytes(),
    )
    exit_code = 0
    try:
        wait_for_runtime_api(settings.runtime_api_address)
        print(
            f"{node.name}: serving {args.data} via {args.superlink} "
            f"({'INSECURE' if args.insecure else 'TLS, node authentication'}); "
            f"SuperNode pid {supernode.pid}",
            flush=True,
        )
        watcher = threading.Thread(
            target=lambda: (supernode.wait(), stop.set()), name="supernode-watch", daemon=True
        )
        watcher.start()
        runner.run(stop)
        if supernode.poll() is not None:
            print(
                f"{node.name}: the SuperNode exited ({supernode.returncode})"
                + SUPERNODE_EXIT_HINTS.get(supernode.returncode, ""),
                file=sys.stderr,
            )
            exit_code = 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if supernode.poll() is None:
            stop_with_grace(supernode, lambda sig: os.kill(supernode.pid, sig), grace=10.0)
    return exit_code
