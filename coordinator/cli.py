"""``sscjak-coordinator``: the commands the study statistician runs (docs/commands.md)."""

from __future__ import annotations

from collections.abc import Sequence

from sscjak.shared.cli_support import run_cli

#: Each sub-command's module; it defines ``register(subparsers)``.
COMMAND_MODULES: dict[str, str] = {
    "simulate": "sscjak.coordinator.commands.simulate",
    "report": "sscjak.coordinator.commands.report",
    "plan": "sscjak.coordinator.commands.plan",
    "roster": "sscjak.coordinator.commands.roster",
    "synthesize": "sscjak.coordinator.commands.synthesize",
    "certs": "sscjak.coordinator.commands.certs",
    "serve": "sscjak.coordinator.commands.serve",
    "run": "sscjak.coordinator.commands.run",
    "demo": "sscjak.coordinator.commands.demo",
}


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(
        "sscjak-coordinator",
        "Coordinate pooled sscjak analyses across centres' nodes.",
        COMMAND_MODULES,
        argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
