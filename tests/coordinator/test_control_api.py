"""Tests of sscjak.coordinator.federation.control_api: the coordinator's Control API calls.

The refusals are checked without a SuperLink (bad key files, nobody listening, the error
payloads Flower sends); the calls themselves against a real SuperLink process (TLS, node
authentication), as ``sscjak-coordinator serve`` starts it.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from superlink_settings import loopback_superlink_settings

from sscjak.coordinator.federation.certs import write_coordinator_certificates
from sscjak.coordinator.federation.control_api import (
    ControlApiError,
    _refusal,
    register_supernode,
    start_flower_run,
)
from sscjak.coordinator.federation.deployment import start_superlink, write_app_project
from sscjak.coordinator.federation.superlink_process import SuperLinkSettings
from sscjak.shared.process_control import ProcessGroup


def pem_public_key(private_key) -> str:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def ec_key_pem() -> str:
    return pem_public_key(ec.generate_private_key(ec.SECP384R1()))


# -- refused before or without a SuperLink ---------------------------------------------------
def test_text_that_is_no_pem_key_is_refused_with_the_centre_name(tmp_path):
    settings = loopback_superlink_settings(tmp_path, insecure=True)
    broken = "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n"
    with pytest.raises(ControlApiError, match="the node key of centre-a is not a PEM public key"):
        register_supernode(settings, broken, "centre-a")


def test_an_rsa_key_is_refused_before_any_request(tmp_path):
    settings = loopback_superlink_settings(tmp_path, insecure=True)
    key = pem_public_key(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with pytest.raises(ControlApiError, match="centre-a is not an EC key on a NIST curve"):
        register_supernode(settings, key, "centre-a")


def test_no_superlink_listening_says_so(tmp_path):
    settings = loopback_superlink_settings(tmp_path)  # nobody listens on its ports
    key = ec_key_pem()
    expected = r"could not be reached.*is the SuperLink running"
    with pytest.raises(ControlApiError, match=expected) as info:
        register_supernode(settings, key, "centre-a")
    assert settings.control_address in str(info.value)


def test_an_unreadable_study_ca_is_named_not_a_traceback(tmp_path):
    settings = loopback_superlink_settings(tmp_path)
    settings.certificates.ca_certificate.write_text("not a certificate\n")
    key = ec_key_pem()
    with pytest.raises(ControlApiError, match="cannot use the study CA certificate"):
        register_supernode(settings, key, "centre-a")


def test_an_app_folder_without_a_project_file_is_not_submitted(tmp_path):
    settings = loopback_superlink_settings(tmp_path, insecure=True)
    (tmp_path / "app").mkdir()
    with pytest.raises(ControlApiError, match=r"could not bundle the app in .*pyproject\.toml"):
        start_flower_run(settings, tmp_path / "app")


@pytest.mark.parametrize(
    ("body", "message", "code"),
    [
        (b'{"code": 23, "detail": "Public key already in use"}', "Public key already in use", 23),
        (b'{"code": 16, "detail": "Run not found.", "extra": "run 7"}', "Run not found. run 7", 16),
        (b'{"detail": "Not Found"}', "Not Found", None),
        (b"<html>busy</html>", "HTTP 503", None),
    ],
)
def test_a_refusal_carries_what_the_superlink_said(body, message, code):
    response = httpx.Response(503, content=body)
    error = _refusal(response)
    assert str(error) == message
    assert error.code == code


class _Refusing(BaseHTTPRequestHandler):
    """Answers every request with the status and body the test sets on the server."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.server.seen.append((self.path, dict(self.headers)))
        status, body = self.server.answer
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def answering(tmp_path) -> Iterator[tuple[SuperLinkSettings, ThreadingHTTPServer]]:
    """A plain-HTTP stand-in for the Control API on 127.0.0.1, and settings pointing at it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    server.seen, server.answer = [], (500, b"")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings = loopback_superlink_settings(tmp_path, insecure=True)
    settings = dataclasses.replace(settings, control_port=server.server_address[1])
    try:
        yield settings, server
    finally:
        server.shutdown()
        server.server_close()


def test_a_key_already_in_use_is_known_and_other_refusals_are_errors(answering, tmp_path):
    settings, server = answering
    key = ec_key_pem()
    in_use = {"code": 23, "detail": "Public key already in use."}
    server.answer = (412, json.dumps(in_use).encode())
    assert register_supernode(settings, key, "centre-a") is None
    path_called, headers = server.seen[-1]
    assert path_called == "/v1/control/register-node"
    assert headers["x-flwr-client"] == "cli"  # what the flwr CLI sends
    assert any("version" in name.lower() for name in headers)
    server.answer = (412, json.dumps({"code": 22, "detail": "Public key not valid."}).encode())
    with pytest.raises(ControlApiError, match="Public key not valid") as info:
        register_supernode(settings, key, "centre-a")
    assert info.value.code == 22


def test_a_version_refusal_is_an_error_not_an_exit(answering, tmp_path):
    """Flower's own version interceptor would end the process; the coordinator reports it."""
    settings, server = answering
    refusal = {"code": 1001, "detail": "Incompatible Flower versions: SuperLink 1.43, CLI 1.42."}
    server.answer = (426, json.dumps(refusal).encode())
    with pytest.raises(ControlApiError, match="Incompatible Flower versions"):
        start_flower_run(settings, write_app_project(tmp_path / "app", {"mode": "ping"}))


def test_an_answer_that_is_not_protobuf_is_reported(answering, tmp_path):
    settings, server = answering
    server.answer = (200, b"\xff\xff\xff not protobuf")
    with pytest.raises(ControlApiError, match="malformed"):
        start_flower_run(settings, write_app_project(tmp_path / "app", {"mode": "ping"}))


# -- against a real SuperLink -----------------------------------------------------------------
@pytest.fixture(scope="module")
def superlink(tmp_path_factory) -> Iterator[SuperLinkSettings]:
    root = tmp_path_factory.mktemp("control")
    settings = loopback_superlink_settings(root)
    with ProcessGroup(root / "logs") as processes:
        start_superlink(processes, settings)
        yield settings


@pytest.mark.integration
def test_a_key_is_registered_once_and_known_afterwards(superlink):
    key = ec_key_pem()
    node_id = register_supernode(superlink, key, "centre-a")
    assert isinstance(node_id, int) and node_id > 0
    assert register_supernode(superlink, key, "centre-a") is None  # already known
    other = ec_key_pem()
    assert register_supernode(superlink, other, "centre-b") not in (None, node_id)


@pytest.mark.integration
def test_a_run_is_started_and_gets_its_own_id(superlink, tmp_path):
    first = start_flower_run(superlink, write_app_project(tmp_path / "one", {"mode": "ping"}))
    second = start_flower_run(superlink, write_app_project(tmp_path / "two", {"mode": "ping"}))
    assert first > 0 and second > 0 and first != second


@pytest.mark.integration
def test_a_client_without_the_study_ca_is_refused(superlink, tmp_path):
    """The Control API is TLS with the study CA: a CA of another study does not verify."""
    stranger = write_coordinator_certificates(tmp_path / "other", ["127.0.0.1"])
    settings = dataclasses.replace(superlink, certificates=stranger)
    key = ec_key_pem()
    with pytest.raises(ControlApiError, match=r"could not be reached.*CERTIFICATE_VERIFY_FAILED"):
        register_supernode(settings, key, "centre-c")
