"""``sscjak-node flower-key --state DIR``: the node's Flower node-authentication key.

Creates (once) the EC key the SuperNode proves itself with (:mod:`sscjak.node.flower.auth_keys`)
and prints its public half, which the coordinator registers; ``sscjak-node keys`` then
includes it in the node's roster entry.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sscjak.node.flower.auth_keys import ensure_flower_auth_key


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "flower-key",
        help="create the node's Flower authentication key (once) and print its public key",
        description=(
            "Create, if there is none yet, the EC key this node's SuperNode proves itself "
            "with to the coordinator's SuperLink (STATE/flower_auth_key, readable by you "
            "only), and print its public half. 'sscjak-node keys' creates it too and puts "
            "it in the roster entry, so this command is only needed to see the key again."
        ),
    )
    parser.add_argument(
        "--state", type=Path, required=True, metavar="DIR", help="the node's state directory"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    key = ensure_flower_auth_key(args.state)
    print(f"Flower node-authentication public key ({key.public_key_pem_path}):")
    print(key.public_key_pem, end="")
    return 0
