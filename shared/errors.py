"""The failures a user can act on, as the libraries raise them.

Every anticipated failure of the toolkit (a bad input file, a plan a centre has not
approved, a key file others can read, a node that did not answer) is raised by the
library that finds it as a subclass of :class:`SscjakError`, defined beside that library
(``RosterError`` in the roster module, ``SecureRoundError`` in the round, …), and where
natural also a builtin (``ValueError`` for bad input). The libraries know nothing of the
command line; :func:`sscjak.shared.cli_support.run_cli` maps every :class:`SscjakError`
to its message on one line and a non-zero exit, never a traceback.
"""

from __future__ import annotations


class SscjakError(Exception):
    """A failure the user can act on; its message says what happened and what to do."""
