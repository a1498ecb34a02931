"""Command-line plumbing shared by ``sscjak-node`` and ``sscjak-coordinator``.

Each sub-command lives in its own module exposing ``register(subparsers)``, which adds
its parser and sets ``func`` (a callable taking the parsed arguments and returning an
exit code). ``run_cli`` turns every anticipated failure (:class:`UserError`) into a
one-line message on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence


class UserError(Exception):
    """A problem the user can act on; printed without a traceback, exit code ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def run_cli(
    prog: str, description: str, command_modules: Sequence[str], argv: Sequence[str] | None
) -> int:
    """Build the parser from ``command_modules`` and run the chosen sub-command."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in command_modules:
        importlib.import_module(module_name).register(subparsers)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return error.exit_code
    except BrokenPipeError:
        # the reader of our output went away (``… | head``): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
