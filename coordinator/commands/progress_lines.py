"""The console lines a command prints while an analysis runs, one per progress event."""

from __future__ import annotations

from typing import Any

from sscjak.coordinator.federation.secure_round import EXCHANGE_WORDS, SUMMARIES


def format_progress(event: dict[str, Any]) -> str | None:
    """The console line of one progress event, or ``None`` for an event shown elsewhere.

    A ``failed`` event has no line:
    :func:`~sscjak.coordinator.federation.deployment.run_flower_analysis` raises its
    reason as the command's one error message.
    """
    kind = event["event"]
    if kind == "waiting":
        return (
            f"waiting for {', '.join(event['awaited'])} "
            f"(online: {', '.join(event['online']) or 'none'}), "
            f"{float(event['seconds_left']):.0f} s left"
        )
    if kind == "nodes":
        line = (
            f"nodes online: {len(event['online'])}/{len(event['roster'])} "
            f"({', '.join(event['online']) or 'none'})"
        )
        missing = event.get("missing") or []
        return line + (f"; not online: {', '.join(missing)}" if missing else "")
    if kind == "reply":
        what = EXCHANGE_WORDS.get(str(event.get("exchange")), EXCHANGE_WORDS[SUMMARIES])
        return f"{what} {event['answered']}/{event['expected']} ({event['node']})"
    if kind == "attempt":
        return str(event["summary"])
    return None


def print_progress(event: dict[str, Any]) -> None:
    """Console lines for the progress events of an analysis (:func:`format_progress`)."""
    line = format_progress(event)
    if line is not None:
        print(line, flush=True)
