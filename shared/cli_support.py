"""Command-line plumbing shared by ``sscjak-node`` and ``sscjak-coordinator``.

Each sub-command lives in its own module exposing ``register(subparsers)``, which adds
its parser and sets ``func`` (a callable taking the parsed arguments and returning an
exit code). A program lists its sub-commands as ``{name: module}``; ``run_cli`` imports
only the module of the sub-command given on the command line (all of them for the
program's own ``--help`` or a name it does not know), so that a light command such as
``sscjak-node keys`` starts without loading pandas, matplotlib or Flower. ``run_cli``
turns every anticipated failure (any :class:`~sscjak.shared.errors.SscjakError`,
:class:`UserError` included) into a one-line message on stderr and a non-zero exit,
never a traceback.

Every parser, sub-commands' included, shows each option's default in its help
(:class:`DefaultsHelpFormatter`): an option whose help text does not already say
"default" gets "(default: VALUE)" appended, except options without a value to show
(no default, or a flag that is off unless given).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Mapping, Sequence

from sscjak.shared.errors import SscjakError


def exit_code_of(error: SscjakError) -> int:
    """The exit code of an anticipated failure: a command's own, else 1."""
    return error.exit_code if isinstance(error, UserError) else 1


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``1 node``, ``3 nodes``: the count with the noun in the right number."""
    return f"{count} {noun if count == 1 else (plural or noun + 's')}"


class UserError(SscjakError):
    """A command's own problem with its arguments; printed without a traceback, exit code
    ``exit_code``. Libraries raise their own :class:`~sscjak.shared.errors.SscjakError`
    subclasses instead."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Help text with "(default: VALUE)" after every option that has a default to show."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            action.option_strings
            and default is not None
            and default is not False
            and default is not argparse.SUPPRESS
            and "default" not in text
        ):
            shown = f"{default:g}" if isinstance(default, float) else "%(default)s"
            text += f" (default: {shown})"
        return text


class CommandParser(argparse.ArgumentParser):
    """An argument parser that formats its help with :class:`DefaultsHelpFormatter`.

    Sub-command parsers are made of the same class (``add_subparsers`` uses the class
    of the parser it is called on), so every level of both CLIs shows its defaults.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


def chosen_command(command_modules: Mapping[str, str], argv: Sequence[str]) -> str | None:
    """The sub-command named by ``argv`` (its first word; the programs have no option
    before the sub-command but ``--help``), or None if that is not one of theirs."""
    first = next(iter(argv), None)
    return first if first in command_modules else None


def build_parser(
    prog: str,
    description: str,
    command_modules: Mapping[str, str],
    argv: Sequence[str] | None = None,
) -> argparse.ArgumentParser:
    """The command-line parser: one sub-command per module of ``command_modules``; only
    the one ``argv`` names, if it names one (:func:`chosen_command`)."""
    parser = CommandParser(prog=prog, description=description)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = chosen_command(command_modules, argv or ())
    for name, module_name in command_modules.items():
        if chosen in (None, name):
            importlib.import_module(module_name).register(subparsers)
            if name not in subparsers.choices:
                raise RuntimeError(f"{module_name} does not register the command {name!r}")
    return parser


def run_cli(
    prog: str,
    description: str,
    command_modules: Mapping[str, str],
    argv: Sequence[str] | None,
) -> int:
    """Build the parser from ``command_modules`` and run the chosen sub-command."""
    words = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(prog, description, command_modules, words).parse_args(words)
    try:
        return int(args.func(args) or 0)
    except SscjakError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return exit_code_of(error)
    except BrokenPipeError:
        # the reader of our output went away (``… | head``): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
