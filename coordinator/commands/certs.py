"""``sscjak-coordinator certs OUTDIR``: the study CA and the SuperLink's certificate, and renewal.

Create (once per study)::

    sscjak-coordinator certs OUTDIR --host HOST [--host …] [--ca-key-out PATH | --no-keep-ca-key]

writes ``ca.pem`` (hand it to every centre: ``sscjak-node serve --root-certificates``),
``server.pem`` and ``server.key`` (the SuperLink's) and the CA key: ``OUTDIR/ca.key`` by
default, ``PATH`` with ``--ca-key-out`` (e.g. removable media kept offline), nowhere with
``--no-keep-ca-key``. Each ``--host`` is a name or IP address centres use to reach the
coordinator.

Renew the server certificate (before it expires; ``ca.pem`` stays as it is)::

    sscjak-coordinator certs OUTDIR --ca-key PATH [--host HOST …]

See docs/certificates.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cryptography import x509

from sscjak.coordinator.federation.certs import (
    CA_VALIDITY_DAYS,
    SERVER_VALIDITY_DAYS,
    CoordinatorCertificates,
    renew_server_certificate,
    write_coordinator_certificates,
)
from sscjak.shared.cli_support import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "certs",
        help="create the study CA and the SuperLink's TLS certificate, or renew the latter",
        description=(
            "Create a private certificate authority for the study and a short-lived server "
            "certificate for the coordinator's SuperLink, signed by it; with --ca-key, "
            "issue a new server certificate under the existing CA (centres change nothing)."
        ),
    )
    parser.add_argument("out_dir", type=Path, metavar="OUTDIR", help="folder to write into")
    parser.add_argument(
        "--host",
        action="append",
        help="host name or IP address the centres connect to (repeatable; required when "
        "creating; when renewing, default: the names of the current server.pem)",
    )
    parser.add_argument(
        "--days",
        type=_positive_days,
        default=SERVER_VALIDITY_DAYS,
        metavar="DAYS",
        help="validity of the server certificate, in days",
    )
    parser.add_argument(
        "--ca-days",
        type=_positive_days,
        default=None,
        metavar="DAYS",
        help=f"validity of a new CA, in days (default: {CA_VALIDITY_DAYS})",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing CA (breaks centres' pins)"
    )
    ca_key = parser.add_mutually_exclusive_group()
    ca_key.add_argument(
        "--ca-key-out",
        type=Path,
        metavar="PATH",
        help="write the new CA key to PATH instead of OUTDIR/ca.key (keep it offline)",
    )
    ca_key.add_argument(
        "--no-keep-ca-key",
        action="store_true",
        help="do not keep the new CA key at all (renewal then needs a new CA)",
    )
    ca_key.add_argument(
        "--ca-key",
        type=Path,
        metavar="PATH",
        help="renew: issue a new server certificate with this existing CA key",
    )
    parser.set_defaults(func=run)


def _positive_days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if days < 1:
        raise argparse.ArgumentTypeError("the validity must be at least 1 day")
    return days


def run(args: argparse.Namespace) -> int:
    """Create or renew, according to ``--ca-key``."""
    if args.ca_key is not None:
        return _renew(args)
    if not args.host:
        raise UserError(
            "give the host name(s) the centres connect to with --host HOST "
            "(or --ca-key PATH to renew the server certificate of an existing CA)"
        )
    try:
        paths = write_coordinator_certificates(
            args.out_dir,
            args.host,
            validity_days=args.days,
            ca_validity_days=args.ca_days or CA_VALIDITY_DAYS,
            overwrite=args.overwrite,
            ca_key_out=args.ca_key_out,
            keep_ca_key=not args.no_keep_ca_key,
        )
    except (FileExistsError, ValueError) as error:
        raise UserError(str(error)) from None
    except OSError as error:
        raise UserError(f"cannot write {error.filename}: {error.strerror}") from None
    print(f"Study CA:           {paths.ca_certificate}  (give this file to every centre)")
    if paths.ca_private_key is None:
        print(
            "CA private key:     not kept (to renew the server certificate you will need a "
            "new CA, and every centre a new ca.pem)"
        )
    else:
        print(
            f"CA private key:     {paths.ca_private_key}  (keep offline; needed only to "
            "renew the server certificate)"
        )
    _print_server(paths)
    return 0


def _renew(args: argparse.Namespace) -> int:
    if args.overwrite or args.ca_days is not None:
        raise UserError("--overwrite and --ca-days create a new CA; renewal with --ca-key keeps it")
    try:
        paths = renew_server_certificate(
            args.out_dir, args.ca_key, args.host, validity_days=args.days
        )
    except ValueError as error:
        raise UserError(str(error)) from None
    except OSError as error:
        raise UserError(f"cannot write {error.filename}: {error.strerror}") from None
    print(f"Renewed the server certificate under the study CA {paths.ca_certificate}")
    print("  (the CA is unchanged: centres need to do nothing).")
    _print_server(paths)
    print("Restart the SuperLink (sscjak-coordinator serve) so that it uses the new certificate.")
    return 0


def _print_server(paths: CoordinatorCertificates) -> None:
    certificate = x509.load_pem_x509_certificate(paths.server_certificate.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    hosts = [str(name.value) for name in names]
    expiry = certificate.not_valid_after_utc
    print(f"Server certificate: {paths.server_certificate}  for {', '.join(hosts)}")
    print(f"Server private key: {paths.server_private_key}")
    print(f"The server certificate expires on {expiry:%Y-%m-%d}: renew it before then with")
    print(f"  sscjak-coordinator certs {paths.ca_certificate.parent} --ca-key CA_KEY")
