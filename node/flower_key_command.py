"""``sscjak-node flower-key --state DIR``: the node's Flower node-authentication key.

Creates (once) the EC key the SuperNode proves itself with (:mod:`sscjak.node.auth_keys`)
and prints its public half, which the coordinator registers; ``sscjak-node keys`` then
includes it in the node's roster entry.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sscjak.node.auth_keys import ensure_flower_auth_key


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "flower-key",
        help="create the node's Flower authentication key (once) and print its public key",
    )
    parser.add_argument("--state", type=Path, required=True, metavar="DIR", help="node state dir")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    key = ensure_flower_auth_key(args.state)
    print(f"Flower node-authentication public key ({key.public_key_pem_path}):")
    print(key.public_key_pem, end="")
    return 0
