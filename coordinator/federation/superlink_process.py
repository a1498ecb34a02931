"""How the coordinator runs Flower's SuperLink: Fleet API for the centres, the rest on loopback.

In flwr 1.42 one SuperLink process serves three HTTP APIs from one FastAPI app on one
port: the *Fleet* API (``/v1/fleet/…``, what SuperNodes call), the *Control* API
(``/v1/control/…``: start runs, push app bundles, register nodes — the open-source
SuperLink has no user login on it) and the *Runtime* API (``/v1/runtime/…``, used by the
ServerApp process). Exposing that one port to the centres would let any of them start a
run or register a node. So this module launches the same Flower app behind **two
listeners in one process**, both TLS:

* the public listener (``--fleet-address host:port``) answers only ``/v1/fleet/…`` and
  returns 404 for every other path;
* the loopback listener (``127.0.0.1:control_port``) serves the whole app, for the
  coordinator's commands (:mod:`~sscjak.coordinator.federation.control_api`), Flower's
  SuperExec and the ServerApp on the coordinator's own host.

The public listener is reachable by anyone who can reach the Fleet address, before any
node key is checked: Flower's ``ProtobufTranslationMiddleware``
(``flwr.supercore.protobuf.translation``) reads and parses the whole request body before
node authentication runs. So the public listener also caps request bodies
(:data:`FLEET_MAX_BODY_BYTES`: 413 on a declared length above it, and a stream that
passes it is cut with 413) and bounds requests in flight
(:data:`FLEET_MAX_CONCURRENT_REQUESTS`: 503 beyond it; Flower's HTTP client retries 503,
``flwr.supercore.retry.http_retry``) and open connections (uvicorn's
``limit_concurrency``, :data:`FLEET_MAX_CONNECTIONS`).

The SuperLink database (masked vectors, revealed seeds) and ``FLWR_HOME`` are private
to the coordinator's user: this process sets umask 0077 before Flower creates
anything, and tightens an existing database (0600) and ``FLWR_HOME`` (0700).

Everything else is stock ``flower-superlink`` argument handling (its own parser builds
the configuration): ``--enable-supernode-auth`` (only registered EC node keys may
connect), ``--database`` (state survives a restart; without it SuperNodes exit when the
SuperLink restarts), ``--disable-runtime-dependency-installation`` (no ``uv sync`` of
pushed bundles), and the environment ``FLWR_HOME``, ``FLWR_TELEMETRY_ENABLED=0``,
``FLWR_DISABLE_UPDATE_CHECK=1``.

Flower internals touched (pinned flwr==1.42.0; see docs/federation.md):
``flwr.superlink.cli.flower_superlink._parse_superlink_lifespan_config`` and
``SuperLinkLifespan``, ``flwr.superlink.main.create_app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import signal
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sscjak.coordinator.federation.certs import CoordinatorCertificates
from sscjak.coordinator.federation.control_api import ControlApiError, register_supernode
from sscjak.coordinator.federation.errors import FederationError
from sscjak.shared.roster import Roster

#: Name of the SuperLink connection written into ``FLWR_HOME/config.toml`` for the CLI.
CLI_CONNECTION_NAME = "sscjak-study"

#: Path prefixes the public (centre-facing) listener serves.
FLEET_PATH_PREFIXES: tuple[str, ...] = ("/v1/fleet/",)

#: Largest request body (bytes) the public listener passes on to Flower. A node's
#: largest legitimate message is one masked summary vector (8 bytes per layout word,
#: about 0.3 MB under the default plan), and Flower pushes arrays as objects of at most
#: ``flwr.common.constant.FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE`` (5 MiB) each. Flower's own
#: limits are 2 GiB (``flwr.supercore.constant.MAX_PROTOBUF_STREAM_MESSAGE_LENGTH``,
#: ``flwr.supercore.grpc.GRPC_MAX_MESSAGE_LENGTH``), which is what an unauthenticated
#: sender could otherwise make the SuperLink read and parse. 8 MiB holds one full Flower
#: chunk plus framing.
FLEET_MAX_BODY_BYTES = 8 * 1024 * 1024

#: Requests the public listener hands to Flower at the same time; more get 503 at once
#: (Flower's HTTP client retries 503). Together with the body cap this bounds the
#: request bodies held in memory to 32 × 8 MiB. A node has one or two requests open at
#: a time (message pull or push, heartbeat), each short.
FLEET_MAX_CONCURRENT_REQUESTS = 32

#: Seconds a request may take to deliver its body once inside the listener; a slower one
#: is cut with 408 and frees its slot. 8 MiB in 30 s is 0.28 MB/s, and a node's real
#: messages are far smaller than the cap.
FLEET_BODY_TIMEOUT_SECONDS = 30.0

#: Open connections on the public listener (uvicorn's ``limit_concurrency``: new
#: requests on further connections are answered 503). Several per node, for a study of
#: dozens of centres.
FLEET_MAX_CONNECTIONS = 256

#: Mode bits the SuperLink process never grants to group or others (its umask).
PRIVATE_UMASK = 0o077


@dataclass(frozen=True)
class SuperLinkSettings:
    """Where and how the SuperLink listens.

    ``fleet_host``/``fleet_port``: the address centres connect to (may be a public
    interface); ``control_port``: the loopback port of the Control and Runtime APIs.
    ``certificates`` is ``None`` only for an explicitly insecure deployment, which also
    turns node authentication off (Flower requires TLS for it).
    """

    fleet_host: str
    fleet_port: int
    control_port: int
    database: Path
    flwr_home: Path
    certificates: CoordinatorCertificates | None
    node_authentication: bool = True

    def __post_init__(self) -> None:
        if self.certificates is None and self.node_authentication:
            raise ValueError("node authentication needs TLS certificates")
        if self.fleet_port == self.control_port and self.fleet_host in ("127.0.0.1", "::1"):
            raise ValueError("the Fleet API and the Control API need different ports")

    @property
    def control_address(self) -> str:
        return f"127.0.0.1:{self.control_port}"

    @property
    def fleet_address(self) -> str:
        host = f"[{self.fleet_host}]" if ":" in self.fleet_host else self.fleet_host
        return f"{host}:{self.fleet_port}"


def port_in_use(host: str, port: int) -> bool:
    """Whether ``host:port`` cannot be bound for listening because something holds it.

    Binds with ``SO_REUSEADDR``, as the SuperLink's listeners do, so a port whose last
    connections are only in TIME_WAIT counts as free. Other bind errors (an address
    not on this host, say) are left to the SuperLink to report.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.errno == errno.EADDRINUSE
    return False


def busy_ports(settings: SuperLinkSettings) -> list[tuple[int, str]]:
    """The SuperLink's ports already in use: (port, which listener and where)."""
    busy = []
    if port_in_use("127.0.0.1", settings.control_port):
        busy.append((settings.control_port, f"Control API on {settings.control_address}"))
    if port_in_use(settings.fleet_host, settings.fleet_port):
        busy.append((settings.fleet_port, f"Fleet API on {settings.fleet_address}"))
    return busy


def superlink_command(settings: SuperLinkSettings) -> list[str]:
    """The command line that starts the SuperLink of ``settings`` (this module as a script)."""
    command = [sys.executable, "-m", "sscjak.coordinator.federation.superlink_process"]
    command += ["--fleet-address", settings.fleet_address]
    if settings.certificates is None:
        command.append("--insecure")
    else:
        command += [
            "--ssl-certfile",
            str(settings.certificates.server_certificate),
            "--ssl-keyfile",
            str(settings.certificates.server_private_key),
            "--ssl-ca-certfile",
            str(settings.certificates.ca_certificate),
        ]
    if settings.node_authentication:
        command.append("--enable-supernode-auth")
    command += [
        "--host",
        "127.0.0.1",
        "--port",
        str(settings.control_port),
        "--database",
        str(settings.database),
        "--disable-runtime-dependency-installation",
    ]
    return command


def write_cli_connection(settings: SuperLinkSettings) -> Path:
    """Write ``FLWR_HOME/config.toml`` so an operator's ``flwr`` CLI (``flwr ls``, ``flwr log``)
    reaches the loopback Control API. sscjak itself calls the API directly
    (:mod:`~sscjak.coordinator.federation.control_api`).

    ``FLWR_HOME`` is made 0700 and the file 0600: Flower keeps the SuperExec's and the
    ServerApp's files there, and nothing in it is for other users of the host.
    """
    settings.flwr_home.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.flwr_home.chmod(0o700)
    lines = [
        "[superlink]",
        f'default = "{CLI_CONNECTION_NAME}"',
        "",
        f"[superlink.{CLI_CONNECTION_NAME}]",
        f'address = "{settings.control_address}"',
    ]
    if settings.certificates is None:
        lines.append("insecure = true")
    else:
        lines.append(f"root-certificates = {json.dumps(str(settings.certificates.ca_certificate))}")
    path = settings.flwr_home / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


class RequestCutError(Exception):
    """The public listener stopped reading a request body: above the cap, or too slow."""


def _declared_length(scope) -> int | None:
    """The request's Content-Length (``None`` if absent); ``ValueError`` if malformed.

    Several Content-Length headers must agree; only plain decimal digits are accepted.
    """
    values = {v.strip() for k, v in scope.get("headers", []) if k.lower() == b"content-length"}
    if not values:
        return None
    if len(values) != 1:
        raise ValueError("conflicting Content-Length headers")
    (value,) = values
    if not value.isdigit():
        raise ValueError("Content-Length is not a non-negative integer")
    return int(value)


async def _send_refusal(send, status: int, detail: str, *, close: bool = False) -> None:
    """Answer ``status`` with a small JSON body; ``close`` asks uvicorn to drop the connection
    afterwards (so an unread body is not read on)."""
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class FleetOnlyListener:
    """ASGI wrapper of the public listener: only ``/v1/fleet/…``, small bodies, bounded load.

    Paths outside ``prefixes`` get 404. A fleet request declaring more than
    ``max_body_bytes`` gets 413 without reaching ``app``; otherwise the body bytes ``app``
    receives are counted, and once they pass the cap ``app`` is stopped (its ``receive``
    raises :class:`RequestCutError`, whatever it sends afterwards is dropped) and the
    client gets 413 with ``Connection: close``; a body still incomplete ``body_timeout``
    seconds after the request reached ``app`` is cut the same way with 408, so a slow
    sender cannot hold one of the ``max_concurrent_requests`` slots for long. With that
    many requests inside ``app`` already, the next one gets 503 at once.
    """

    def __init__(
        self,
        app,
        prefixes: tuple[str, ...] = FLEET_PATH_PREFIXES,
        *,
        max_body_bytes: int = FLEET_MAX_BODY_BYTES,
        max_concurrent_requests: int = FLEET_MAX_CONCURRENT_REQUESTS,
        body_timeout: float = FLEET_BODY_TIMEOUT_SECONDS,
    ) -> None:
        self.app = app
        self.prefixes = prefixes
        self.max_body_bytes = max_body_bytes
        self.max_concurrent_requests = max_concurrent_requests
        self.body_timeout = body_timeout
        self.in_flight = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            if scope.get("path", "").startswith(self.prefixes):
                await self._serve_fleet(scope, receive, send)
            else:
                await _send_refusal(send, 404, "not served on the centre-facing address")
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})

    @staticmethod
    async def _lifespan(receive, send) -> None:
        """Acknowledge lifespan events: the loopback listener owns the app's lifespan."""
        message = await receive()
        while message["type"] != "lifespan.shutdown":
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            message = await receive()
        await send({"type": "lifespan.shutdown.complete"})

    async def _serve_fleet(self, scope, receive, send) -> None:
        """Refuse by declared size or load, else pass to ``app`` with the body counted."""
        try:
            declared = _declared_length(scope)
        except ValueError as error:
            await _send_refusal(send, 400, str(error), close=True)
            return
        if declared is not None and declared > self.max_body_bytes:
            await _send_refusal(send, 413, self._too_large, close=True)
            return
        if self.in_flight >= self.max_concurrent_requests:
            await _send_refusal(send, 503, "too many requests at once; retry")
            return
        # One event loop: this counter needs no lock.
        self.in_flight += 1
        try:
            await self._pass_capped(scope, receive, send)
        finally:
            self.in_flight -= 1

    @property
    def _too_large(self) -> str:
        return f"request body above {self.max_body_bytes} bytes"

    async def _pass_capped(self, scope, receive, send) -> None:
        """Run ``app`` on a ``receive`` that stops at the cap or the deadline; answer
        413 or 408 if it was hit (and nothing ``app`` tried to send)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout
        received = 0
        body_complete = False
        cut: tuple[int, str] | None = None
        response_started = False

        async def capped_receive():
            nonlocal received, body_complete, cut
            if cut is not None:
                raise RequestCutError(cut[1])
            if body_complete:  # e.g. waiting for a disconnect: no deadline, no counting
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0))
            except TimeoutError:
                cut = (408, f"request body not received within {self.body_timeout:g} s")
                raise RequestCutError(cut[1]) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    cut = (413, self._too_large)
                    raise RequestCutError(cut[1])
                body_complete = not message.get("more_body", False)
            return message

        async def guarded_send(message) -> None:
            nonlocal response_started
            if cut is not None:
                return  # the refusal below is the only answer
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, capped_receive, guarded_send)
        except Exception:
            if cut is None:
                raise
        if cut is not None and not response_started:
            await _send_refusal(send, cut[0], cut[1], close=True)


def _split_fleet_address(argv: list[str]) -> tuple[str, int, list[str]]:
    """Take ``--fleet-address HOST:PORT`` out of ``argv`` (the rest is flower-superlink's)."""
    if "--fleet-address" not in argv:
        raise SystemExit("--fleet-address HOST:PORT is required")
    index = argv.index("--fleet-address")
    address = argv[index + 1]
    rest = argv[:index] + argv[index + 2 :]
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port), rest


@contextlib.contextmanager
def _no_uvicorn_signal_capture() -> Iterator[None]:
    yield


def make_state_private(database: str, flwr_home: str | None) -> None:
    """Umask 0077 for this process and its children; tighten existing state files.

    Files Flower creates afterwards (the SQLite database and its ``-wal``/``-shm``/
    ``-journal`` companions, which SQLite creates with the database's mode; FLWR_HOME's
    content) get no group or other bits. A database or FLWR_HOME left by an earlier
    start with looser modes is tightened to 0600 / 0700.
    """
    os.umask(PRIVATE_UMASK)
    if flwr_home:
        home = Path(flwr_home)
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        home.chmod(0o700)
    if database and not database.startswith(":"):  # ":flwr-in-memory:" has no file
        path = Path(database)
        for companion in [path, *path.parent.glob(path.name + "-*")]:
            if companion.is_file():
                companion.chmod(0o600)


def main(argv: list[str] | None = None) -> None:
    """Run the SuperLink with the Fleet API on ``--fleet-address`` and the rest on loopback."""
    import importlib

    import uvicorn
    from flwr.superlink.main import create_app

    # The module, not the same-named function the package re-exports.
    flwr_superlink_cli = importlib.import_module("flwr.superlink.cli.flower_superlink")

    arguments = list(sys.argv[1:] if argv is None else argv)
    fleet_host, fleet_port, flower_arguments = _split_fleet_address(arguments)
    sys.argv = ["flower-superlink", *flower_arguments]
    config = flwr_superlink_cli._parse_superlink_lifespan_config()
    if config.host not in ("127.0.0.1", "::1", "localhost"):
        raise SystemExit("the Control and Runtime APIs must listen on loopback (--host 127.0.0.1)")
    make_state_private(config.database, os.environ.get("FLWR_HOME"))
    app = create_app(config, flwr_superlink_cli.SuperLinkLifespan)

    def server(
        asgi_app, host: str, port: int, lifespan: str, limit: int | None = None
    ) -> uvicorn.Server:
        instance = uvicorn.Server(
            uvicorn.Config(
                app=asgi_app,
                host=host,
                port=port,
                lifespan=lifespan,
                access_log=False,
                ssl_keyfile=config.ssl_keyfile,
                ssl_certfile=config.ssl_certfile,
                workers=1,
                log_level="warning",
                limit_concurrency=limit,
            )
        )
        instance.capture_signals = _no_uvicorn_signal_capture  # type: ignore[method-assign]
        return instance

    loopback = server(app, config.host, config.port, "on")
    public = server(FleetOnlyListener(app), fleet_host, fleet_port, "off", FLEET_MAX_CONNECTIONS)

    async def serve_both() -> None:
        loop = asyncio.get_running_loop()

        def stop() -> None:
            loopback.should_exit = True
            public.should_exit = True

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop)
        # Start loopback first: its lifespan starts the shared state and SuperExec.
        loopback_task = asyncio.create_task(loopback.serve())
        while not loopback.started and not loopback_task.done():
            await asyncio.sleep(0.05)
        public_task = asyncio.create_task(public.serve())
        print(
            f"sscjak SuperLink: Fleet API on {fleet_host}:{fleet_port}, "
            f"Control/Runtime API on {config.host}:{config.port}",
            flush=True,
        )
        done, _ = await asyncio.wait(
            {loopback_task, public_task}, return_when=asyncio.FIRST_COMPLETED
        )
        stop()
        await asyncio.gather(loopback_task, public_task, return_exceptions=True)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    asyncio.run(serve_both())


if __name__ == "__main__":
    main()


def register_roster_nodes(settings: SuperLinkSettings, roster: Roster) -> list[str]:
    """Register every roster member's Flower key with the SuperLink; the names registered.

    A key the SuperLink already knows is not an error (a restart re-registers the roster).
    """
    registered = []
    for member in roster.members:
        if member.flower_auth_public_key is None:
            continue
        try:
            register_supernode(settings, member.flower_auth_public_key, member.name)
        except ControlApiError as error:
            raise FederationError(f"could not register {member.name}: {error}") from None
        registered.append(member.name)
    return registered
