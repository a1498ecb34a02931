"""``sscjak-node``: the commands a centre's data steward and IT run (docs/commands.md)."""

from __future__ import annotations

from collections.abc import Sequence

from sscjak.shared.cli_support import run_cli

#: One module per sub-command; each defines ``register(subparsers)``.
COMMAND_MODULES: list[str] = [
    "sscjak.node.validate_command",
    "sscjak.node.keys_command",
    "sscjak.node.approve_command",
    "sscjak.node.policy_command",
    "sscjak.node.preview_command",
    "sscjak.node.history_command",
    "sscjak.node.serve_command",
    "sscjak.node.flower_key_command",
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
