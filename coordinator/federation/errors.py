"""The one failure the federation's libraries raise: the SuperLink, a run or the nodes."""

from __future__ import annotations

from sscjak.shared.errors import SscjakError


class FederationError(SscjakError, RuntimeError):
    """The federation could not do what was asked (a process did not start, a run failed,
    no result in time); the message says which and where to look."""
