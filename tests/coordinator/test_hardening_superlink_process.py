"""A real SuperLink process: big bodies on its Fleet address, and the modes of its files.

Starts ``python -m sscjak.coordinator.federation.superlink_process`` (TLS, node authentication,
``--database``) on 127.0.0.1 the way ``sscjak-coordinator serve`` does, then talks to
the centre-facing listener over raw TLS sockets without any node key, as an outsider
would:

* a request declaring a 256 MiB body is answered 413 straight after its headers, and
  the SuperLink's peak resident memory (``VmHWM`` in ``/proc/PID/status``) does not
  grow by anything near the body size;
* a chunked request that keeps streaming is cut with 413 once the cap is passed;
* a small request still reaches Flower (it is refused by Flower's own checks, not by
  the cap);
* the database (masked vectors, revealed seeds) is 0600 and FLWR_HOME 0700, whatever
  umask the coordinator was started with.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import ssl
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from superlink_settings import loopback_superlink_settings

from sscjak.coordinator.federation.deployment import start_superlink
from sscjak.coordinator.federation.superlink_process import FLEET_MAX_BODY_BYTES, SuperLinkSettings
from sscjak.shared.process_control import ProcessGroup

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
#: How much the SuperLink's peak RSS may grow while refusing a huge body.
RSS_GROWTH_ALLOWED = 48 * MiB


@pytest.fixture(scope="module")
def superlink(tmp_path_factory) -> Iterator[tuple[SuperLinkSettings, int]]:
    root = tmp_path_factory.mktemp("superlink")
    settings = loopback_superlink_settings(root)
    previous = os.umask(0o022)  # a permissive umask, as in a plain login shell
    try:
        with ProcessGroup(root / "logs") as processes:
            started = start_superlink(processes, settings)
            yield settings, started.pid
    finally:
        os.umask(previous)


def peak_rss(pid: int) -> int:
    """Peak resident set size of ``pid`` in bytes (``VmHWM``, Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM line")


def tls_socket(settings: SuperLinkSettings) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(settings.certificates.ca_certificate))
    raw = socket.create_connection(("127.0.0.1", settings.fleet_port), timeout=30)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def post_streaming(
    settings: SuperLinkSettings, head: dict[str, str], chunks: Iterator[bytes]
) -> tuple[int, int]:
    """POST a fleet path, sending ``chunks`` until the server answers; (status, bytes sent).

    Like a client that watches its socket: it stops sending as soon as response bytes
    arrive (or the server has closed its side).
    """
    sock = tls_socket(settings)
    lines = ["POST /v1/fleet/push-object HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in head.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    sent, first = 0, b""
    try:
        for chunk in chunks:
            first, closed = answer_so_far(sock)
            if first or closed:
                break
            try:
                sock.sendall(chunk)
            except OSError:
                break
            sent += len(chunk)
        return read_status(sock, first), sent
    finally:
        with contextlib.suppress(OSError):
            sock.close()


def answer_so_far(sock: ssl.SSLSocket) -> tuple[bytes, bool]:
    """Response bytes already readable (without waiting), and whether the peer closed.

    A readable TLS 1.3 socket may hold only session tickets: reading them without
    blocking yields ``SSLWantReadError`` and no application data.
    """
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable and not sock.pending():
        return b"", False
    sock.setblocking(False)
    try:
        data = sock.recv(65536)
        return data, data == b""
    except ssl.SSLWantReadError:
        return b"", False
    except OSError:
        return b"", True
    finally:
        sock.settimeout(60)


def read_status(sock: ssl.SSLSocket, first: bytes) -> int:
    """The status code of the response whose first bytes are ``first``."""
    data = first
    while b"\r\n" not in data:
        more = sock.recv(65536)
        if not more:
            break
        data += more
    return int(data.split(b" ", 2)[1])


def repeated(chunk: bytes, total: int) -> Iterator[bytes]:
    for _ in range(total // len(chunk)):
        yield chunk


def chunked(chunk: bytes, total: int) -> Iterator[bytes]:
    """HTTP/1.1 chunked transfer encoding of ``total`` bytes, then the last chunk."""
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    yield from repeated(framed, (total // len(chunk)) * len(framed))
    yield b"0\r\n\r\n"


def test_a_huge_declared_body_gets_413_and_superlink_memory_stays_bounded(superlink):
    settings, pid = superlink
    before = peak_rss(pid)
    started = time.monotonic()
    status, sent = post_streaming(
        settings,
        {"Content-Type": "application/protobuf", "Content-Length": str(256 * MiB)},
        repeated(b"\0" * (256 * 1024), 256 * MiB),
    )
    elapsed = time.monotonic() - started
    growth = peak_rss(pid) - before
    print(
        f"declared 256 MiB: {status} after {sent / MiB:.1f} MiB sent, {elapsed:.2f} s, "
        f"peak RSS +{growth / MiB:.1f} MiB"
    )
    assert status == 413
    assert sent < FLEET_MAX_BODY_BYTES, "refused on the header, before the body"
    assert growth < RSS_GROWTH_ALLOWED


def test_a_chunked_body_past_the_cap_is_cut_with_413(superlink):
    settings, pid = superlink
    before = peak_rss(pid)
    status, sent = post_streaming(
        settings,
        {"Content-Type": "application/protobuf", "Transfer-Encoding": "chunked"},
        chunked(b"\1" * (256 * 1024), 256 * MiB),
    )
    growth = peak_rss(pid) - before
    print(
        f"chunked 256 MiB: {status} after {sent / MiB:.1f} MiB sent, "
        f"peak RSS +{growth / MiB:.1f} MiB"
    )
    assert status == 413
    assert sent < 4 * FLEET_MAX_BODY_BYTES, "cut soon after the cap, not at the end"
    assert growth < RSS_GROWTH_ALLOWED


def test_a_small_unauthenticated_request_still_reaches_flower(superlink):
    settings, _ = superlink
    status, _ = post_streaming(
        settings, {"Content-Type": "application/protobuf", "Content-Length": "0"}, iter(())
    )
    assert status not in (404, 413, 503)
    assert 400 <= status < 500, "Flower refuses it: no node key"


def test_the_database_and_flwr_home_are_private(superlink):
    settings, _ = superlink
    deadline = time.monotonic() + 30
    while not settings.database.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stat.S_IMODE(settings.database.stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.flwr_home.stat().st_mode) == 0o700
    for path in settings.database.parent.glob(settings.database.name + "*"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    for path in settings.flwr_home.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
