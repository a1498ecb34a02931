"""``sscjak-coordinator roster add|show``: maintain the study roster file.

``add`` takes the entry a centre printed with ``sscjak-node keys`` (a ``[[node]]``
TOML table) and adds it to the roster, or replaces the entry of the same name;
``show`` lists the members and the roster hash that every centre pins at approval.
Any change to the roster changes its hash: centres must approve again under it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sscjak.shared.cli_support import UserError
from sscjak.shared.roster import (
    ROSTER_SCHEMA,
    Roster,
    RosterError,
    load_roster,
    parse_roster,
    write_roster,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "roster",
        help="add a centre to the study roster, or show the roster",
        description="Maintain the study roster (node names and public keys).",
    )
    actions = parser.add_subparsers(dest="roster_action", metavar="ACTION", required=True)
    add = actions.add_parser(
        "add",
        help="add or replace a centre's entry",
        description=(
            "Add a centre's roster entry (the file 'sscjak-node keys --out' wrote) to the "
            "roster, or replace the entry of the same name. The roster hash changes: "
            "centres approve the plan again under the new roster."
        ),
    )
    add.add_argument(
        "--roster", type=Path, required=True, metavar="FILE", help="roster TOML (created if absent)"
    )
    add.add_argument(
        "--entry",
        type=Path,
        required=True,
        metavar="FILE",
        help="the centre's entry file written by 'sscjak-node keys --out'",
    )
    add.set_defaults(func=run_add)
    show = actions.add_parser(
        "show",
        help="list members and the roster hash",
        description="List the roster's members and its hash (which every centre pins).",
    )
    show.add_argument("--roster", type=Path, required=True, metavar="FILE", help="roster TOML")
    show.set_defaults(func=run_show)


def run_add(args: argparse.Namespace) -> int:
    roster = load_roster(args.roster) if args.roster.exists() else Roster(())
    try:
        text = args.entry.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read {args.entry}: {error}") from None
    if not text.lstrip().startswith("schema"):
        text = f'schema = "{ROSTER_SCHEMA}"\n\n{text}'
    entries = parse_roster(text, str(args.entry))
    if len(entries) != 1:
        raise RosterError(
            f"{args.entry}: expected exactly one [[node]] entry, found {len(entries)}"
        )
    (member,) = entries.members
    replaced = member.name in roster
    others = [m for m in roster.members if m.name != member.name]
    if any(m.same_x25519_key(member) for m in others):
        raise RosterError(f"{member.name}: this public key is already in the roster")
    roster = roster.with_member(member)
    write_roster(roster, args.roster)
    print(
        f"{'Replaced' if replaced else 'Added'} {member.name}; the roster has {len(roster)} "
        f"centres, sha256 {roster.sha256}."
    )
    print("Centres approve plans under this roster hash (sscjak-node approve).")
    return 0


def run_show(args: argparse.Namespace) -> int:
    roster = load_roster(args.roster)
    print(f"Study roster {args.roster}: {len(roster)} centres, sha256 {roster.sha256}")
    for member in roster.members:
        auth = "with" if member.flower_auth_public_key else "without"
        print(f"  {member.name:<24} x25519 {member.x25519_public_key}  ({auth} Flower auth key)")
    return 0
