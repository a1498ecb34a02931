"""How a centre's node runs Flower's SuperNode, and answers with locally installed code only.

A centre runs two processes (``sscjak-node serve`` starts and supervises both):

1. ``flower-supernode`` (flwr 1.42, pinned): connects *out* to the coordinator's
   SuperLink Fleet API (HTTPS, server certificate checked against the study CA given
   by ``--root-certificates``; ``--insecure`` only when asked), authenticates with the
   centre's EC node key (``--auth-supernode-private-key``), and queues the messages it
   pulls. It is started with ``--isolation process``: it then launches *nothing* itself
   (no ``flower-superexec``, no ``flwr-clientapp``) and only exposes its Runtime API on
   ``127.0.0.1`` for an app executor of the centre's choosing.
2. this module's :class:`LocalClientAppRunner`, in the ``sscjak-node serve`` process:
   it polls that loopback Runtime API for ClientApp tasks and answers each with the
   **locally installed** ``sscjak.node.flower.client_app`` handler. The app bundle
   (FAB) the coordinator pushes with every run is pulled with the task (Flower's
   Runtime API hands it over) but is never unpacked, installed or imported; only its
   hash is logged. Flower's own executor (``flwr-clientapp``) would instead install the
   bundle and import whatever ClientApp it names — code chosen by whoever can reach the
   SuperLink's control API, which the open-source SuperLink does not authenticate.

The Runtime API listens on loopback, where any local user of the centre's host could
reach it. So every start of ``serve`` writes a fresh random secret into the node's
state (:func:`write_runtime_secret`, mode 0600) and hands the SuperNode the file's path
(``--superexec-auth-secret-file``, Flower's SuperExec authentication, marked
experimental in flwr 1.42): ``AcquireTask`` is then answered only when it carries an
HMAC of the request under that secret (``flwr.supercore.auth.superexec``), and every
other Runtime API call needs the task token that only ``AcquireTask`` hands out. The
runner signs with the secret (``flwr.supercore.interceptors.SuperExecAuthHttpInterceptor``).
The secret itself is never on a command line.

Flower internals touched (see docs/federation.md; re-check them when bumping flwr):
``flwr.proto.runtime_pb2.AcquireTaskRequest``, ``flwr.supercore.runtime.RuntimeHttpClient``,
``flwr.supercore.interceptors.RuntimeTokenHttpInterceptor`` and
``SuperExecAuthHttpInterceptor``, the SuperNode's ``--superexec-auth-secret-file``,
``flwr.supernode.runtime.run_clientapp.pull_task_input / push_message /
push_task_output`` and ``flwr.supercore.heartbeat``.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flwr.app import Context, Message

from sscjak.shared.private_files import write_private_file

#: The Runtime API task type a ClientApp executor asks for (``flwr.supercore.constant``).
CLIENT_APP_TASK_TYPE = "flwr-clientapp"

#: Seconds between two asks for a task on the SuperNode's loopback Runtime API while idle.
#: The SuperNode itself pulls from the SuperLink only every 3 s, so asking more often
#: than every half second gains little; every ask costs both processes CPU (at 0.1 s an
#: idle node and its SuperNode kept a tenth of a core busy). Flower's own SuperExec asks
#: every 1 s.
TASK_POLL_INTERVAL = 0.5

#: File (in the directory given to :func:`write_runtime_secret`) holding the secret of
#: the running SuperNode's Runtime API.
RUNTIME_SECRET_FILE = "runtime_api_secret"

#: Runtime API calls the SuperNode checks against the secret: the ones a SuperExec makes
#: (``flwr.supercore.superexec.run_superexec._SUPEREXEC_AUTH_METHODS`` in flwr 1.42).
RUNTIME_SECRET_METHODS: frozenset[str] = frozenset({"/flwr.proto.Runtime/AcquireTask"})

logger = logging.getLogger("sscjak.node.supernode")


@dataclass(frozen=True)
class SuperNodeSettings:
    """How the centre's SuperNode reaches the coordinator.

    ``superlink`` is ``host:port`` of the coordinator's Fleet API. TLS is on unless
    ``insecure``; then ``root_certificates`` (the study CA, PEM) is required.
    ``auth_private_key`` is the node's EC key in OpenSSH format
    (``sscjak.node.flower.auth_keys``); ``runtime_port`` is the loopback port of the
    SuperNode's Runtime API, which only the local runner uses; ``runtime_secret_file``
    the file with this start's Runtime API secret (:func:`write_runtime_secret`).
    """

    superlink: str
    runtime_port: int
    root_certificates: Path | None = None
    insecure: bool = False
    auth_private_key: Path | None = None
    max_wait_time: float | None = None
    runtime_secret_file: Path | None = None

    def __post_init__(self) -> None:
        if not self.insecure and self.root_certificates is None:
            raise ValueError(
                "TLS is on by default: give the study CA certificate (--root-certificates) "
                "or ask for --insecure explicitly"
            )
        if self.insecure and self.auth_private_key is not None:
            raise ValueError("node authentication needs TLS; it cannot be used with --insecure")

    @property
    def runtime_api_address(self) -> str:
        return f"127.0.0.1:{self.runtime_port}"


def supernode_command(settings: SuperNodeSettings) -> list[str]:
    """The ``flower-supernode`` command line for ``settings`` (see the module docstring)."""
    command = ["flower-supernode", "--superlink", settings.superlink]
    if settings.insecure:
        command.append("--insecure")
    else:
        command += ["--root-certificates", str(settings.root_certificates)]
    if settings.auth_private_key is not None:
        command += ["--auth-supernode-private-key", str(settings.auth_private_key)]
    if settings.max_wait_time is not None:
        command += ["--max-wait-time", str(settings.max_wait_time)]
    if settings.runtime_secret_file is not None:
        # The path only: the secret stays out of the process list.
        command += ["--superexec-auth-secret-file", str(settings.runtime_secret_file)]
    command += [
        # No Flower executor at all: the local runner below answers the tasks.
        "--isolation",
        "process",
        # The Runtime API (task queue and message store) only on loopback.
        "--host",
        "127.0.0.1",
        "--port",
        str(settings.runtime_port),
    ]
    return command


def write_runtime_secret(directory: Path) -> Path:
    """Write a fresh random Runtime API secret to ``directory/RUNTIME_SECRET_FILE`` (0600).

    Called at every start of ``serve``, so a secret read earlier (from a backup, say) is
    useless against the next SuperNode. 32 random bytes, written as 64 hex characters
    (Flower reads the file's bytes as they are).
    """
    path = directory / RUNTIME_SECRET_FILE
    # A new file, created 0600 (never the old file's mode, whatever it was).
    path.unlink(missing_ok=True)
    write_private_file(path, secrets.token_hex(32).encode("ascii"))
    return path


#: What the runner calls for every message and its Flower context: the reply to send.
MessageHandler = Callable[[Message, Context], Message]


class LocalClientAppRunner:
    """Answer the SuperNode's ClientApp tasks with the local handler, never a pushed bundle.

    ``handler`` receives the Flower ``Message`` the coordinator sent and its ``Context``
    and returns the reply ``Message`` (``sscjak.node.flower.client_app.answer_message``
    with the node's ClientApp). One task at a time, in this process;
    ``on_task(fab_hash, message_type)`` is told about each task (the bundle's hash is
    what the coordinator *offered* to run). ``runtime_secret`` is the content of the
    SuperNode's secret file; without it the runner can only talk to a SuperNode started
    without one.
    """

    def __init__(
        self,
        runtime_api_address: str,
        handler: MessageHandler,
        *,
        poll_interval: float = TASK_POLL_INTERVAL,
        on_task: Callable[[str, str], None] | None = None,
        runtime_secret: bytes | None = None,
    ) -> None:
        self.runtime_api_address = runtime_api_address
        self.runtime_secret = runtime_secret
        self.handler = handler
        self.poll_interval = poll_interval
        self.on_task = on_task
        self.tasks_answered = 0

    def task_queue_client(self):
        """A Runtime API client that asks for tasks (signing with the secret, if any)."""
        from flwr.supercore.interceptors import (
            RuntimeVersionHttpInterceptor,
            SuperExecAuthHttpInterceptor,
        )
        from flwr.supercore.retry import make_simple_http_retry_invoker
        from flwr.supercore.runtime import RuntimeHttpClient

        retry_invoker = make_simple_http_retry_invoker()
        # Flower's invoker alone retries forever; :meth:`run` retries itself and watches its
        # stop event, so a SuperNode that has exited ends ``serve`` instead of hanging it.
        retry_invoker.max_tries = 2
        interceptors: list = [RuntimeVersionHttpInterceptor(component_name="SuperExec")]
        if self.runtime_secret is not None:
            interceptors.append(
                SuperExecAuthHttpInterceptor(
                    master_secret=self.runtime_secret, protected_methods=RUNTIME_SECRET_METHODS
                )
            )
        return RuntimeHttpClient.from_server_address(
            server_address=self.runtime_api_address,
            insecure=True,  # loopback only; the SuperNode serves its Runtime API on 127.0.0.1
            root_certificates=None,
            interceptors=interceptors,
            retry_invoker=retry_invoker,
        )

    def run(self, stop: threading.Event) -> None:
        """Poll for tasks until ``stop`` is set."""
        from flwr.proto.runtime_pb2 import AcquireTaskRequest  # pylint: disable=E0611

        client = self.task_queue_client()
        try:
            while not stop.is_set():
                try:
                    response = client.AcquireTask(
                        AcquireTaskRequest(supported_task_types=[CLIENT_APP_TASK_TYPE])
                    )
                except Exception as error:  # the SuperNode is starting or restarting
                    logger.debug("runtime API not reachable yet: %s", error)
                    stop.wait(max(self.poll_interval, TASK_POLL_INTERVAL))
                    continue
                if response.HasField("task") and response.token:
                    self.serve_task(response.token)
                    continue
                stop.wait(self.poll_interval)
        finally:
            client.close()

    def serve_task(self, token: str) -> None:
        """Answer one task: pull its message, reply with the local handler, push the reply."""
        from flwr.common.constant import SubStatus
        from flwr.supercore.heartbeat import HeartbeatSender, make_task_heartbeat_fn_http
        from flwr.supercore.interceptors import (
            RuntimeTokenHttpInterceptor,
            RuntimeVersionHttpInterceptor,
        )
        from flwr.supercore.retry import make_simple_http_retry_invoker
        from flwr.supercore.runtime import RuntimeHttpClient
        from flwr.supernode.runtime.run_clientapp import (
            pull_task_input,
            push_message,
            push_task_output,
        )

        client = RuntimeHttpClient.from_server_address(
            server_address=self.runtime_api_address,
            insecure=True,
            root_certificates=None,
            interceptors=[
                RuntimeVersionHttpInterceptor(component_name="flwr-clientapp"),
                RuntimeTokenHttpInterceptor(token),
            ],
            retry_invoker=make_simple_http_retry_invoker(),
        )
        heartbeat = HeartbeatSender(make_task_heartbeat_fn_http(client))
        context = None
        status, details = SubStatus.FAILED, "sscjak node could not answer the task"
        try:
            heartbeat.start()
            # The bundle (fab) comes with the task; it is deliberately left untouched.
            message, context, _run, fab = pull_task_input(client)
            if self.on_task is not None:
                self.on_task(fab.hash_str, message.metadata.message_type)
            reply = self.handler(message, context)
            push_message(client, reply, context)
            status, details = SubStatus.COMPLETED, ""
            self.tasks_answered += 1
        except Exception:
            logger.exception("task failed")
        finally:
            try:
                push_task_output(client, context, status, details)
            finally:
                if heartbeat.is_running:
                    heartbeat.stop()
                client.close()


def wait_for_runtime_api(address: str, timeout: float = 30.0) -> None:
    """Block until the SuperNode's loopback Runtime API accepts TCP connections."""
    import socket

    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"SuperNode Runtime API {address} did not open") from None
            time.sleep(0.1)
