"""``sscjak-coordinator``: the commands the study statistician runs (docs/commands.md)."""

from __future__ import annotations

from collections.abc import Sequence

from sscjak.shared.cli_support import run_cli

#: One module per sub-command; each defines ``register(subparsers)``.
COMMAND_MODULES: list[str] = [
    "sscjak.coordinator.commands.simulate",
    "sscjak.coordinator.commands.report",
    "sscjak.coordinator.commands.plan",
    "sscjak.coordinator.commands.roster",
    "sscjak.coordinator.commands.synthesize",
    "sscjak.coordinator.commands.certs",
    "sscjak.coordinator.commands.serve",
    "sscjak.coordinator.commands.run",
    "sscjak.coordinator.commands.demo",
]


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(
        "sscjak-coordinator",
        "Coordinate pooled sscjak analyses across centres' nodes.",
        COMMAND_MODULES,
        argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
