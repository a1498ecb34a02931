"""TCP ports for the test processes to listen on, never handed out twice in one test run.

``free_port`` of :mod:`sscjak.shared.process_control` asks the OS for a port and lets go
of it; whoever binds it next — the process the port is meant for, or any other process
that also asked the OS for a free port in the meantime — gets it. When several pytest
workers (pytest-xdist) start federations at once, two of them could be told the same
port. Here each worker draws from a block of ports of its own, below the kernel's
ephemeral range (``net.ipv4.ip_local_port_range``, 32768–60999 by default), so neither
another worker nor an outgoing connection can be handed the same port; a port that
cannot be bound right now (something else listens there) is skipped.
"""

from __future__ import annotations

import os
import random
import socket
import threading

#: Ports handed out by this module: [FIRST_PORT, LAST_PORT), one block per worker.
FIRST_PORT = 10_000
LAST_PORT = 32_000
BLOCK = 1_000
BLOCKS = (LAST_PORT - FIRST_PORT) // BLOCK

_lock = threading.Lock()
_next: int | None = None


def worker_index() -> int:
    """0 for ``gw0`` (and a run without xdist), 1 for ``gw1``, …"""
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    digits = name.removeprefix("gw")
    return int(digits) if digits.isdigit() else 0


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now on ``host``, from this worker's block, never the same twice
    in a row of ``BLOCK`` calls. The start within the block is random, so two pytest runs
    side by side on one machine are unlikely to pick the same ports either."""
    global _next
    start = FIRST_PORT + (worker_index() % BLOCKS) * BLOCK
    with _lock:
        if _next is None:
            _next = random.randrange(BLOCK)
        for _ in range(BLOCK):
            port = start + _next
            _next = (_next + 1) % BLOCK
            if _bindable(host, port):
                return port
    raise RuntimeError(f"no free port in {start}-{start + BLOCK - 1} on {host}")
