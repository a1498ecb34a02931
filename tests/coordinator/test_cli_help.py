"""Every sub-command's --help of both CLIs: defaults shown, units named, plain text."""

from __future__ import annotations

import argparse
import importlib
import re
import subprocess
import sys

import pytest

from sscjak.coordinator import cli as coordinator_cli
from sscjak.node import cli as node_cli
from sscjak.shared.cli_support import build_parser

CLIS = {
    "sscjak-coordinator": coordinator_cli.COMMAND_MODULES,
    "sscjak-node": node_cli.COMMAND_MODULES,
}

#: Words that name the unit of a numeric option (seconds, days, a port, a count …).
UNIT_WORDS = ("second", "day", "month", "byte", "port", "number", "seed")


def all_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """``parser`` and every sub-command parser under it, at any depth."""
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                found += all_parsers(sub)
    return found


def every_subcommand() -> list[tuple[str, argparse.ArgumentParser]]:
    cases = []
    for prog, modules in CLIS.items():
        for parser in all_parsers(build_parser(prog, "test", modules)):
            cases.append((parser.prog, parser))
    return cases


SUBCOMMANDS = every_subcommand()


def option_block(help_text: str, option: str) -> str:
    """The help lines of ``option`` (its line and the indented lines after it), one line."""
    lines = help_text.splitlines()
    for index, line in enumerate(lines):
        if re.match(rf"\s+(-\w, )?{re.escape(option)}\b", line):
            block = [line]
            for following in lines[index + 1 :]:
                if re.match(r"\s{2}-", following) or not following.startswith("    "):
                    break
                block.append(following)
            return " ".join(part.strip() for part in block)
    raise AssertionError(f"{option} not in the help:\n{help_text}")


def test_both_clis_have_the_expected_subcommands():
    progs = [prog for prog, _ in SUBCOMMANDS]
    for expected in (
        "sscjak-coordinator plan new",
        "sscjak-coordinator plan show",
        "sscjak-coordinator run",
        "sscjak-coordinator roster add",
        "sscjak-node keys",
        "sscjak-node flower-key",
    ):
        assert expected in progs


@pytest.mark.parametrize("prog, parser", SUBCOMMANDS, ids=[prog for prog, _ in SUBCOMMANDS])
def test_help_is_plain_text_with_every_default_shown(prog, parser):
    help_text = parser.format_help()
    assert "``" not in help_text, "raw reST in the help"
    assert ":mod:" not in help_text and ":func:" not in help_text
    assert "(s)" not in help_text, "write the plural out"
    if prog.count(" ") >= 1:  # every sub-command says what it does
        assert parser.description, f"{prog} has no description"
    for action in parser._actions:
        if not action.option_strings or action.default in (None, False, argparse.SUPPRESS):
            continue
        block = option_block(help_text, action.option_strings[-1])
        default = action.default
        shown = f"{default:g}" if isinstance(default, float) else str(default)
        assert shown in block, f"{prog} {action.option_strings}: default missing"
        if isinstance(action.default, int | float) and not isinstance(action.default, bool):
            assert any(word in block.lower() for word in UNIT_WORDS), (
                f"{prog} {action.option_strings}: no unit in {block!r}"
            )


def test_run_help_names_seconds_and_defaults():
    parser = dict(SUBCOMMANDS)["sscjak-coordinator run"]
    help_text = parser.format_help()
    assert "seconds to wait for the nodes' answers in each exchange (default: 60)" in " ".join(
        help_text.split()
    )
    assert "--wait-for-nodes SECONDS" in help_text


def test_node_keys_help_says_it_writes_the_flower_key_too():
    help_text = " ".join(dict(SUBCOMMANDS)["sscjak-node keys"].format_help().split())
    assert "Flower node-authentication key" in help_text


def test_flower_key_has_a_description():
    parser = dict(SUBCOMMANDS)["sscjak-node flower-key"]
    assert parser.description and "SuperNode" in parser.description


def test_serve_help_shows_its_ports():
    help_text = " ".join(dict(SUBCOMMANDS)["sscjak-coordinator serve"].format_help().split())
    assert "(default: 9093)" in help_text
    assert "(default: 0.0.0.0:9092)" in help_text


#: Libraries a light command must not load: they take seconds to import.
HEAVY_LIBRARIES = ("pandas", "matplotlib", "scipy", "flwr")


@pytest.mark.parametrize(
    ("cli_module", "argv"),
    [
        ("sscjak.node.cli", ["keys", "--help"]),
        ("sscjak.node.cli", ["policy", "--help"]),
        ("sscjak.coordinator.cli", ["roster", "add", "--help"]),
        ("sscjak.coordinator.cli", ["certs", "--help"]),
        ("sscjak.coordinator.cli", ["plan", "show", "--help"]),
    ],
)
def test_a_light_command_loads_only_its_own_module(cli_module, argv):
    """Only the named sub-command's module is imported, so none of the heavy libraries."""
    probe = (
        "import sys\n"
        f"from {cli_module} import COMMAND_MODULES, main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in COMMAND_MODULES.values() if m in sys.modules))\n"
        f"print(sorted(m for m in {HEAVY_LIBRARIES!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    *_, commands_loaded, heavy_loaded = done.stdout.strip().splitlines()
    modules = importlib.import_module(cli_module).COMMAND_MODULES
    assert commands_loaded == str([modules[argv[0]]])
    assert heavy_loaded == "[]"


def test_the_programs_own_help_lists_every_sub_command():
    for prog, modules in CLIS.items():
        (action,) = [
            a
            for a in build_parser(prog, "test", modules, ["--help"])._actions
            if isinstance(a, argparse._SubParsersAction)
        ]
        assert list(action.choices) == list(modules)


def test_a_module_registering_another_name_is_refused():
    with pytest.raises(RuntimeError, match="does not register the command 'keyz'"):
        build_parser("sscjak-node", "test", {"keyz": "sscjak.node.commands.keys"}, ["keyz"])
