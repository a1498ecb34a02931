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
  ``flwr`` CLI, Flower's SuperExec and the ServerApp on the coordinator's own host.

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
import json
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from sscjak.coordinator.certs import CoordinatorCertificates
from sscjak.shared.flower_environment import flower_environment

#: Name of the SuperLink connection written into ``FLWR_HOME/config.toml`` for the CLI.
CLI_CONNECTION_NAME = "sscjak-study"

#: Path prefixes the public (centre-facing) listener serves.
FLEET_PATH_PREFIXES: tuple[str, ...] = ("/v1/fleet/",)


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


def superlink_command(settings: SuperLinkSettings) -> list[str]:
    """The command line that starts the SuperLink of ``settings`` (this module as a script)."""
    command = [sys.executable, "-m", "sscjak.coordinator.superlink_process"]
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
    """Write ``FLWR_HOME/config.toml`` so the ``flwr`` CLI reaches the loopback Control API."""
    settings.flwr_home.mkdir(parents=True, exist_ok=True)
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
    return path


def _flwr_cli(settings: SuperLinkSettings, arguments: list[str], timeout: float) -> dict:
    """Run ``flwr ARGUMENTS --format json`` against the study connection; its JSON answer."""
    completed = subprocess.run(
        ["flwr", *arguments, "--format", "json"],
        env=flower_environment(settings.flwr_home),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    answer: dict = {}
    for line in reversed(completed.stdout.strip().splitlines()):
        with contextlib.suppress(json.JSONDecodeError):
            answer = json.loads(line)
            break
    if not answer:
        with contextlib.suppress(json.JSONDecodeError):
            answer = json.loads(completed.stdout)
    if completed.returncode != 0 or not answer.get("success", False):
        detail = (completed.stdout + completed.stderr).strip()[-800:]
        raise RuntimeError(f"flwr {' '.join(arguments[:2])} failed: {detail}")
    return answer


def register_supernode(
    settings: SuperLinkSettings, public_key_openssh: Path, name: str, timeout: float = 60.0
) -> int:
    """Register a centre's node-authentication public key; return its Flower node id."""
    answer = _flwr_cli(
        settings,
        ["supernode", "register", str(public_key_openssh), CLI_CONNECTION_NAME, "--name", name],
        timeout,
    )
    return int(answer["node-id"])


def start_flower_run(
    settings: SuperLinkSettings,
    app_dir: Path,
    run_config: Mapping[str, str],
    timeout: float = 120.0,
) -> int:
    """Submit the app in ``app_dir`` as a run (``flwr run``); return the run id."""
    arguments = ["run", str(app_dir), CLI_CONNECTION_NAME]
    for key, value in run_config.items():
        arguments += ["--run-config", f"{key}={json.dumps(value)}"]
    answer = _flwr_cli(settings, arguments, timeout)
    return int(answer["run-id"])


class FleetOnlyListener:
    """ASGI wrapper: pass ``/v1/fleet/…`` requests to ``app``, answer 404 to anything else."""

    def __init__(self, app, prefixes: tuple[str, ...] = FLEET_PATH_PREFIXES) -> None:
        self.app = app
        self.prefixes = prefixes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            # The loopback listener owns the application's lifespan.
            message = await receive()
            while message["type"] != "lifespan.shutdown":
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                message = await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "http":
            body = b'{"detail":"not served on the centre-facing address"}'
            await send(
                {
                    "type": "http.response.start",
                    "status": 404,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        # websockets etc.: refuse by closing
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})


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
    app = create_app(config, flwr_superlink_cli.SuperLinkLifespan)

    def server(asgi_app, host: str, port: int, lifespan: str) -> uvicorn.Server:
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
            )
        )
        instance.capture_signals = _no_uvicorn_signal_capture  # type: ignore[method-assign]
        return instance

    loopback = server(app, config.host, config.port, "on")
    public = server(FleetOnlyListener(app), fleet_host, fleet_port, "off")

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
