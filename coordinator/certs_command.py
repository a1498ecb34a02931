"""``sscjak-coordinator certs OUTDIR --host HOST [--host …]``: study CA and SuperLink certificate.

Writes ``ca.pem`` (hand it to every centre: ``sscjak-node serve --root-certificates``),
``ca.key`` (keep it offline), ``server.pem`` and ``server.key`` (the SuperLink's). Each
``--host`` is a name or IP address centres use to reach the coordinator.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sscjak.coordinator.certs import DEFAULT_VALIDITY_DAYS, write_coordinator_certificates
from sscjak.shared.cli_support import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "certs",
        help="create the study CA and the SuperLink's TLS certificate",
        description=(
            "Create a private certificate authority for the study and a server "
            "certificate for the coordinator's SuperLink, signed by it."
        ),
    )
    parser.add_argument("out_dir", type=Path, metavar="OUTDIR", help="folder to write into")
    parser.add_argument(
        "--host",
        action="append",
        required=True,
        help="host name or IP address the centres connect to (repeatable)",
    )
    parser.add_argument("--days", type=int, default=DEFAULT_VALIDITY_DAYS, help="validity")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace existing keys (breaks centres' pins)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        paths = write_coordinator_certificates(
            args.out_dir, args.host, validity_days=args.days, overwrite=args.overwrite
        )
    except (FileExistsError, ValueError) as error:
        raise UserError(str(error)) from None
    print(f"Study CA:           {paths.ca_certificate}  (give this file to every centre)")
    print(f"CA private key:     {paths.ca_private_key}  (keep offline)")
    print(f"Server certificate: {paths.server_certificate}  for {', '.join(args.host)}")
    print(f"Server private key: {paths.server_private_key}")
    return 0
