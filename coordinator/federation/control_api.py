"""The coordinator's calls to its own SuperLink's Control API: register a node key, start a run.

The Control API listens on the coordinator's loopback interface only, over TLS checked
against the study CA (:mod:`~sscjak.coordinator.federation.superlink_process`). The
coordinator makes the two requests it needs from its own process, with Flower's
protobuf-over-HTTP client, as the ``flwr`` CLI would make them (``flwr supernode
register`` and ``flwr run``): the same request messages and the same headers (client
kind ``cli``, the runtime version). Starting a ``flwr`` process for each one instead
costs more than a second of CPU to import the CLI, once per analysis and once per node.

Flower internals touched (pinned flwr==1.42.0; see docs/federation.md):
``flwr.supercore.control.ControlHttpClient``, ``flwr.proto.control_pb2.RegisterNodeRequest``
and ``StartRunRequest``, ``flwr.cli.build.build_fab_from_disk``,
``flwr.cli.cli_client_interceptor.CliClientHttpInterceptor``,
``flwr.supercore.runtime_version_compatibility.RuntimeVersionMetadata``,
``flwr.supercore.primitives.asymmetric.public_key_to_bytes``, ``flwr.supercore.fab.Fab``,
``flwr.common.serde.fab_to_proto`` and ``user_config_to_proto``,
``flwr.supercore.error.FlowerError`` and ``ApiErrorCode``.
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sscjak.coordinator.federation.errors import FederationError

if TYPE_CHECKING:
    import httpx
    from flwr.supercore.control import ControlHttpClient
    from flwr.supercore.protobuf.client import ProtobufCall, ProtobufRequestContext

    from sscjak.coordinator.federation.superlink_process import SuperLinkSettings


class ControlApiError(FederationError):
    """The SuperLink's Control API refused a request or did not answer it; ``code`` is
    Flower's error code (``flwr.supercore.error.ApiErrorCode``) when the SuperLink gave one."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class _VersionHeaders:
    """Send this installation's Flower runtime version with each request, as the ``flwr``
    CLI does. Unlike Flower's ``RuntimeVersionHttpInterceptor`` it never ends the process
    on a mismatch: the SuperLink's refusal comes back as a :class:`ControlApiError`."""

    def __init__(self) -> None:
        from flwr.supercore.runtime_version_compatibility import RuntimeVersionMetadata

        self.headers = dict(RuntimeVersionMetadata.from_local_component("flwr CLI").as_metadata())

    def intercept(
        self, context: ProtobufRequestContext, call_next: ProtobufCall
    ) -> httpx.Response:
        context.request.headers.update(self.headers)
        return call_next(context)


@contextlib.contextmanager
def control_client(settings: SuperLinkSettings) -> Iterator[ControlHttpClient]:
    """A client of the SuperLink's loopback Control API, closed on exit (Flower's client
    allows each request 30 s).

    An unreadable study CA, a request that fails at the transport (nobody listening, a
    certificate the study CA did not sign) and an error status all raise
    :class:`ControlApiError` saying what happened.
    """
    import ssl

    import httpx
    from flwr.cli.cli_client_interceptor import CliClientHttpInterceptor
    from flwr.supercore.control import ControlHttpClient

    certificates = settings.certificates
    try:
        ca_certificate = None if certificates is None else certificates.ca_certificate.read_bytes()
        client = ControlHttpClient.from_server_address(
            server_address=settings.control_address,
            insecure=certificates is None,
            root_certificates=ca_certificate,
            interceptors=[CliClientHttpInterceptor(), _VersionHeaders()],
        )
    except (OSError, ssl.SSLError, ValueError) as error:
        raise ControlApiError(f"cannot use the study CA certificate: {error}") from None
    try:
        yield client
    except httpx.RequestError as error:
        raise ControlApiError(
            f"the SuperLink's Control API at {settings.control_address} could not be reached "
            f"({type(error).__name__}: {error}); is the SuperLink running, with a "
            "certificate of the study CA?"
        ) from None
    except httpx.HTTPStatusError as error:
        raise _refusal(error.response) from None
    except ValueError as error:  # Flower's client: the answer was not the expected protobuf
        raise ControlApiError(f"the Control API's answer was malformed: {error}") from None
    finally:
        client.close()


def _refusal(response: httpx.Response) -> ControlApiError:
    """What the SuperLink said when it refused a request (Flower's error payload if any)."""
    from flwr.supercore.error import FlowerError

    flower_error = FlowerError.from_json(response.text)
    if flower_error is not None:
        parts = (flower_error.message, flower_error.public_details)
        return ControlApiError(" ".join(p for p in parts if p), code=flower_error.code)
    with contextlib.suppress(ValueError):
        payload = response.json()
        if isinstance(payload, dict) and isinstance(payload.get("detail"), str):
            return ControlApiError(payload["detail"])
    return ControlApiError(f"HTTP {response.status_code}")


def register_supernode(settings: SuperLinkSettings, public_key_pem: str, name: str) -> int | None:
    """Register a centre's node-authentication public key (PEM, an EC key on a NIST curve)
    under ``name``, as ``flwr supernode register`` does; its Flower node id, or ``None``
    when the SuperLink already knows the key (a restarted SuperLink keeps its database)."""
    from flwr.proto.control_pb2 import RegisterNodeRequest  # pylint: disable=E0611
    from flwr.supercore.error import ApiErrorCode
    from flwr.supercore.primitives.asymmetric import public_key_to_bytes, uses_nist_ec_curve

    try:
        public_key = serialization.load_pem_public_key(public_key_pem.encode())
    except (ValueError, UnsupportedAlgorithm) as error:
        raise ControlApiError(f"the node key of {name} is not a PEM public key ({error})") from None
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not uses_nist_ec_curve(public_key):
        raise ControlApiError(f"the node key of {name} is not an EC key on a NIST curve")
    request = RegisterNodeRequest(public_key=public_key_to_bytes(public_key), name=name)
    try:
        with control_client(settings) as client:
            response = client.RegisterNode(request=request)
    except ControlApiError as error:
        if error.code == ApiErrorCode.PUBLIC_KEY_ALREADY_IN_USE:
            return None
        raise
    if not response.node_id:
        raise ControlApiError(f"the SuperLink did not register {name}")
    return int(response.node_id)


def start_flower_run(settings: SuperLinkSettings, app_dir: Path) -> int:
    """Bundle the Flower app project in ``app_dir`` (its ``pyproject.toml`` carries the run
    configuration) and start it as a run, as ``flwr run`` does; return the run id."""
    from flwr.cli.build import build_fab_from_disk
    from flwr.common.serde import fab_to_proto, user_config_to_proto
    from flwr.proto.control_pb2 import StartRunRequest  # pylint: disable=E0611
    from flwr.supercore.fab import Fab

    try:
        with warnings.catch_warnings():
            # pathspec (under Flower's bundler) warns that a pattern style it uses is
            # deprecated; nothing for the coordinator to act on
            warnings.simplefilter("ignore", DeprecationWarning)
            fab_bytes = build_fab_from_disk(Path(app_dir).resolve())
    except (OSError, ValueError) as error:
        raise ControlApiError(f"could not bundle the app in {app_dir}: {error}") from None
    fab = Fab(hashlib.sha256(fab_bytes).hexdigest(), fab_bytes, {})
    request = StartRunRequest(
        fab=fab_to_proto(fab), override_config=user_config_to_proto({}), federation=""
    )
    with control_client(settings) as client:
        response = client.StartRun(request)
    if not response.HasField("run_id"):
        raise ControlApiError("the SuperLink did not start the run")
    return int(response.run_id)
