"""``sscjak-node policy --state DIR [--write-default]``: the centre's disclosure policy.

Shows the policy in force (``STATE/policy.toml``, or the safe defaults when there is no
such file) in plain words. ``--write-default`` writes the defaults as a commented
``policy.toml`` (mode 0600) for the data steward to make stricter; an existing file is
never overwritten. See :mod:`sscjak.node.guard.disclosure_policy`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sscjak.node.guard.disclosure_policy import POLICY_FILE, load_policy, write_default_policy
from sscjak.shared.cli_support import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "policy",
        help="show this centre's disclosure policy (or write an editable default)",
        description=(
            "Show the disclosure policy in force for this node: the least a plan must "
            f"respect before it is approved or answered (STATE/{POLICY_FILE}, or the safe "
            "defaults). With --write-default, write the defaults as a commented file to edit."
        ),
    )
    parser.add_argument(
        "--state", type=Path, required=True, metavar="DIR", help="the node's state directory"
    )
    parser.add_argument(
        "--write-default",
        action="store_true",
        help=f"write the default policy to STATE/{POLICY_FILE} (never overwrites)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    state: Path = args.state
    if not state.is_dir():
        raise UserError(
            f"not a node state directory: {state} (create it with 'sscjak-node keys --state')"
        )
    path = state / POLICY_FILE
    if args.write_default:
        write_default_policy(state)
        print(f"Wrote the default disclosure policy to {path} (readable by you only).")
        print("Edit it to make it stricter; values below the floors are refused.")
    elif path.exists():
        print(f"Disclosure policy read from {path}.")
    else:
        print(
            f"No {path}: the safe defaults apply "
            "(write an editable copy with 'sscjak-node policy --state DIR --write-default')."
        )
    print(load_policy(state).describe())
    return 0
