"""Tests of sscjak.coordinator.certs: the study CA and the SuperLink's server certificate."""

from __future__ import annotations

import ipaddress
import ssl
import stat

import pytest
from cryptography import x509

from sscjak.coordinator.certs import write_coordinator_certificates


def test_server_certificate_is_signed_by_the_ca_and_names_the_hosts(tmp_path):
    paths = write_coordinator_certificates(tmp_path, ["127.0.0.1", "coordinator.example.org"])
    ca = x509.load_pem_x509_certificate(paths.ca_certificate.read_bytes())
    server = x509.load_pem_x509_certificate(paths.server_certificate.read_bytes())
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert names.get_values_for_type(x509.DNSName) == ["coordinator.example.org"]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for key in (paths.ca_private_key, paths.server_private_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    # Python's TLS stack accepts the pair (what uvicorn loads) and trusts the CA.
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(paths.server_certificate, paths.server_private_key)
    ssl.create_default_context(cafile=str(paths.ca_certificate))


def test_existing_keys_are_never_replaced_silently(tmp_path):
    write_coordinator_certificates(tmp_path, ["127.0.0.1"])
    before = (tmp_path / "ca.pem").read_bytes()
    with pytest.raises(FileExistsError):
        write_coordinator_certificates(tmp_path, ["127.0.0.1"])
    assert (tmp_path / "ca.pem").read_bytes() == before
    write_coordinator_certificates(tmp_path, ["127.0.0.1"], overwrite=True)
    assert (tmp_path / "ca.pem").read_bytes() != before


def test_no_host_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="host"):
        write_coordinator_certificates(tmp_path, [])


def test_loopback_is_always_a_name_of_the_server_certificate(tmp_path) -> None:
    # The coordinator's own flwr CLI and ServerApp reach the SuperLink on 127.0.0.1.
    paths = write_coordinator_certificates(tmp_path, ["coordinator.example.org"])
    server = x509.load_pem_x509_certificate(paths.server_certificate.read_bytes())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["coordinator.example.org"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
