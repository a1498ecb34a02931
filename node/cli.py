"""``sscjak-node``: the commands a centre's data steward and IT run (docs/commands.md)."""

from __future__ import annotations

from collections.abc import Sequence

from sscjak.shared.cli_support import run_cli

#: One module per sub-command; each defines ``register(subparsers)``.
COMMAND_MODULES: list[str] = [
    "sscjak.node.commands.validate",
    "sscjak.node.commands.keys",
    "sscjak.node.commands.approve",
    "sscjak.node.commands.policy",
    "sscjak.node.commands.preview",
    "sscjak.node.commands.history",
    "sscjak.node.commands.serve",
    "sscjak.node.commands.flower_key",
]


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(
        "sscjak-node",
        "Run a centre's sscjak node: validate local files, approve plans, serve analyses.",
        COMMAND_MODULES,
        argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
