"""``sscjak-node``: the commands a centre's data steward and IT run (docs/commands.md)."""

from __future__ import annotations

from collections.abc import Sequence

from sscjak.shared.cli_support import run_cli

#: Each sub-command's module; it defines ``register(subparsers)``.
COMMAND_MODULES: dict[str, str] = {
    "validate": "sscjak.node.commands.validate",
    "keys": "sscjak.node.commands.keys",
    "approve": "sscjak.node.commands.approve",
    "policy": "sscjak.node.commands.policy",
    "preview": "sscjak.node.commands.preview",
    "history": "sscjak.node.commands.history",
    "serve": "sscjak.node.commands.serve",
    "flower-key": "sscjak.node.commands.flower_key",
}


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(
        "sscjak-node",
        "Run a centre's sscjak node: validate local files, approve plans, serve analyses.",
        COMMAND_MODULES,
        argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
