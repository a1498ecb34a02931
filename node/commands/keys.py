"""``sscjak-node keys --state DIR [--name NAME]``: the node's long-term X25519 key.

The first call (with ``--name``) creates the node's identity and private key (mode
0600) in the state directory; every call prints the node's roster entry, which the
centre sends to the coordinator to be added to the study roster
(``sscjak-coordinator roster add``). The private key never leaves the state directory.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sscjak.node.flower.auth_keys import ensure_flower_auth_key
from sscjak.node.guard.node_keys import (
    IDENTITY_FILE,
    create_node_identity,
    roster_entry,
    roster_entry_toml,
)
from sscjak.shared.cli_support import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "keys",
        help="create the node's keys (once) and print its roster entry",
        description=(
            "Create this node's long-term X25519 masking key and name in the state "
            "directory (first time, with --name), and its Flower node-authentication key "
            "(EC, STATE/flower_auth_key) if it has none yet, then print the roster entry, "
            "with both public keys, to send to the study coordinator. An existing key is "
            "never overwritten."
        ),
    )
    parser.add_argument(
        "--state",
        type=Path,
        required=True,
        metavar="DIR",
        help="the node's state directory (keys, approvals, audit log)",
    )
    parser.add_argument(
        "--name", help="this centre's node name, e.g. centre-lyon (needed the first time only)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="also write the roster entry to FILE (default: print it only)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    state: Path = args.state
    if not (state / IDENTITY_FILE).exists():
        if not args.name:
            raise UserError(f"{state} has no node key yet: give --name NAME to create one")
        create_node_identity(state, args.name)
        print(f"Created the node key of {args.name} in {state} (private key readable by you only).")
    ensure_flower_auth_key(state)  # Flower node-authentication key, pinned in the roster
    entry = roster_entry(state)
    if args.name and args.name != entry.name:
        raise UserError(f"{state} already belongs to node {entry.name!r}, not {args.name!r}")
    text = roster_entry_toml(entry)
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
    print("Roster entry for the study coordinator (sscjak-coordinator roster add --entry FILE):")
    print()
    print(text, end="")
    return 0
