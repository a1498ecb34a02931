"""Child processes, by PID: start them with their logs, wait for their ports, stop them.

Used by the coordinator (the SuperLink and, in a federation on one machine, every node)
and by the node (its SuperNode). A process is always stopped by the PID this code
started, first politely (SIGTERM), then, after a grace period, for good (SIGKILL); never
by name.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO


def stop_with_grace(
    process: subprocess.Popen,
    send: Callable[[int], None],
    grace: float,
    *,
    hard: bool = False,
) -> None:
    """Stop ``process``: ``send(SIGTERM)`` (SIGKILL at once when ``hard``), wait up to
    ``grace`` seconds, then ``send(SIGKILL)`` and wait again. ``send`` signals the process
    or its group; a process already gone is not an error."""

    def signal_it(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            send(sig)

    signal_it(signal.SIGKILL if hard else signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        signal_it(signal.SIGKILL)
        process.wait(timeout=grace)


#: Terminal control sequences (colours, cursor moves): Flower's logger colours its
#: level names whatever its output is, and a log file should hold plain text.
ANSI_ESCAPE = re.compile(rb"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def strip_ansi(data: bytes) -> bytes:
    """``data`` without terminal escape sequences (colours, cursor moves, titles)."""
    return ANSI_ESCAPE.sub(b"", data)


def copy_without_ansi(source: IO[bytes], log: IO[bytes]) -> None:
    """Copy ``source`` line by line into ``log`` without escape sequences, until EOF."""
    with contextlib.suppress(OSError, ValueError):
        for line in iter(source.readline, b""):
            log.write(strip_ansi(line))
            log.flush()
    with contextlib.suppress(OSError):
        source.close()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on ``host`` (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def wait_for_port(
    host: str, port: int, timeout: float, process: subprocess.Popen | None = None
) -> None:
    """Block until ``host:port`` accepts TCP connections; fail early if ``process`` died."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process {process.pid} exited with {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nothing listens on {host}:{port} after {timeout:.0f} s"
                ) from None
            time.sleep(0.1)


def descendant_pids(pid: int) -> list[int]:
    """PIDs of every living descendant of ``pid`` (Linux ``/proc``; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = entry.read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may contain spaces, so split after ')'
        fields = text[text.rfind(")") + 2 :].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry.parent.name))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


@dataclass
class StartedProcess:
    """A process we started: its name, Popen handle and log file.

    ``log_copier`` is the thread that copies the process's output into the log file
    (without terminal escape sequences).
    """

    name: str
    process: subprocess.Popen
    log_path: Path
    log_handle: IO[bytes]
    log_copier: threading.Thread | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, characters: int = 4000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-characters:]
        except OSError:
            return ""


class ProcessGroup:
    """Every process a command or test starts, each stopped by its own PID.

    Each child gets its own session (``start_new_session``) so that stopping it also
    reaches the helpers Flower starts under it (SuperExec, ServerApp): SIGTERM to the
    child's process group, then SIGKILL after ``grace`` seconds. Used as a context
    manager, it stops everything on exit, on errors and on Ctrl-C alike.

    A child's output (and that of the helpers it starts, which inherit it) goes through
    a pipe to ``LOG_DIR/NAME.log``, plain text: a thread strips terminal escape
    sequences (:func:`strip_ansi`) on the way, and ``NO_COLOR=1`` is set for every child.
    """

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.started: list[StartedProcess] = []

    def start(
        self, name: str, command: Sequence[str], env: Mapping[str, str] | None = None
    ) -> StartedProcess:
        log_path = self.log_dir / f"{name}.log"
        handle = log_path.open("ab")
        environment = dict(os.environ if env is None else env)
        environment["NO_COLOR"] = "1"
        process = subprocess.Popen(
            list(command),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=environment,
            start_new_session=True,
        )
        assert process.stdout is not None
        copier = threading.Thread(
            target=copy_without_ansi,
            args=(process.stdout, handle),
            name=f"log-{name}",
            daemon=True,
        )
        copier.start()
        started = StartedProcess(name, process, log_path, handle, copier)
        self.started.append(started)
        return started

    def stop(self, started: StartedProcess, grace: float = 5.0, hard: bool = False) -> None:
        """Stop one process (and its process group) by PID; ``hard`` = SIGKILL at once.

        Descendants that left the group (Flower detaches its SuperExec into a session of
        its own) are found through ``/proc`` before the stop and killed by PID after it.
        """
        process = started.process
        descendants = descendant_pids(process.pid)
        if process.poll() is None:

            def to_group(sig: int) -> None:
                os.killpg(process.pid, sig)

            stop_with_grace(process, to_group, grace, hard=hard)
        # Helpers left in the child's process group after it exited.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        for pid in descendants:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if started.log_copier is not None:
            # every writer is gone: the copier reaches the pipe's end and finishes
            started.log_copier.join(timeout=grace)
        if started.log_copier is None or not started.log_copier.is_alive():
            with contextlib.suppress(OSError):
                started.log_handle.close()

    def stop_all(self) -> None:
        for started in reversed(self.started):
            self.stop(started)

    def logs(self) -> str:
        """Every process's log tail, for error messages and failed tests."""
        return "\n".join(
            f"----- {s.name} (pid {s.pid}, exit {s.process.poll()}) -----\n{s.log_tail()}"
            for s in self.started
        )

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()
