"""``sscjak-coordinator``: the commands the study statistician runs (docs/commands.md)."""

from __future__ import annotations

from collections.abc import Sequence

from sscjak.shared.cli_support import run_cli

#: One module per sub-command; each defines ``register(subparsers)``.
COMMAND_MODULES: list[str] = [
    "sscjak.coordinator.simulate_command",
    "sscjak.coordinator.report.report_command",
    "sscjak.coordinator.plan_command",
    "sscjak.coordinator.roster_command",
    "sscjak.coordinator.synthesize_command",
    "sscjak.coordinator.certs_command",
    "sscjak.coordinator.serve_command",
    "sscjak.coordinator.run_command",
    "sscjak.coordinator.demo_command",
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
