"""Tests of sscjak.coordinator.federation.certs: the study CA and the SuperLink's server
certificate.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import stat

import pytest
from cryptography import x509

from sscjak.coordinator.cli import main as coordinator_main
from sscjak.coordinator.federation.certs import (
    CA_VALIDITY_DAYS,
    SERVER_VALIDITY_DAYS,
    CertificateError,
    renew_server_certificate,
    server_certificate_expiry_warning,
    write_coordinator_certificates,
)


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
    # The coordinator's own commands and ServerApp reach the SuperLink on 127.0.0.1.
    paths = write_coordinator_certificates(tmp_path, ["coordinator.example.org"])
    server = x509.load_pem_x509_certificate(paths.server_certificate.read_bytes())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["coordinator.example.org"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]


# --- Offline CA, short-lived server certificates, renewal -----------------------------


def _certificate(path):
    return x509.load_pem_x509_certificate(path.read_bytes())


def _lifetime_days(certificate) -> float:
    span = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    return span / dt.timedelta(days=1)


def _server_chain_is_valid(directory) -> None:
    ca = _certificate(directory / "ca.pem")
    _certificate(directory / "server.pem").verify_directly_issued_by(ca)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "server.pem", directory / "server.key")


def test_server_certificate_is_short_lived_and_the_ca_outlives_it(tmp_path):
    paths = write_coordinator_certificates(tmp_path, ["coordinator.example.org"])
    server_days = _lifetime_days(_certificate(paths.server_certificate))
    ca_days = _lifetime_days(_certificate(paths.ca_certificate))
    assert SERVER_VALIDITY_DAYS <= 90
    assert server_days <= SERVER_VALIDITY_DAYS + 1
    assert ca_days >= CA_VALIDITY_DAYS - 1 > 5 * 365


def test_ca_key_can_be_written_outside_the_coordinator_folder(tmp_path):
    offline = tmp_path / "usb" / "study-ca.key"
    offline.parent.mkdir()
    paths = write_coordinator_certificates(tmp_path / "certs", ["127.0.0.1"], ca_key_out=offline)
    assert paths.ca_private_key == offline
    assert not (tmp_path / "certs" / "ca.key").exists()
    assert sorted(p.name for p in (tmp_path / "certs").iterdir()) == [
        "ca.pem",
        "server.key",
        "server.pem",
    ]
    assert stat.S_IMODE(offline.stat().st_mode) == 0o600
    _server_chain_is_valid(tmp_path / "certs")


def test_an_existing_offline_ca_key_is_never_clobbered(tmp_path):
    offline = tmp_path / "study-ca.key"
    offline.write_bytes(b"the CA key of another study")
    with pytest.raises(FileExistsError, match=r"study-ca\.key"):
        write_coordinator_certificates(tmp_path / "certs", ["127.0.0.1"], ca_key_out=offline)
    assert offline.read_bytes() == b"the CA key of another study"
    assert not (tmp_path / "certs" / "ca.pem").exists()


def test_ca_key_can_be_discarded_after_issuing(tmp_path):
    paths = write_coordinator_certificates(tmp_path, ["127.0.0.1"], keep_ca_key=False)
    assert paths.ca_private_key is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.pem", "server.key", "server.pem"]
    _server_chain_is_valid(tmp_path)


def test_renewal_issues_a_new_server_certificate_under_the_pinned_ca(tmp_path):
    offline = tmp_path / "ca.key"
    certs = tmp_path / "certs"
    write_coordinator_certificates(certs, ["coordinator.example.org"], ca_key_out=offline)
    pinned = (certs / "ca.pem").read_bytes()
    old_server = (certs / "server.pem").read_bytes()
    old_key = (certs / "server.key").read_bytes()

    renewed = renew_server_certificate(certs, offline)

    assert (certs / "ca.pem").read_bytes() == pinned  # what every centre pinned
    assert (certs / "server.pem").read_bytes() != old_server
    assert (certs / "server.key").read_bytes() != old_key  # a fresh key, not a re-signature
    assert renewed.server_certificate == certs / "server.pem"
    assert stat.S_IMODE((certs / "server.key").stat().st_mode) == 0o600
    _server_chain_is_valid(certs)
    server = _certificate(certs / "server.pem")
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["coordinator.example.org"]
    assert _lifetime_days(server) <= SERVER_VALIDITY_DAYS + 1
    assert sorted(p.name for p in certs.iterdir()) == ["ca.pem", "server.key", "server.pem"]


def test_renewal_never_outlives_the_ca(tmp_path):
    offline = tmp_path / "ca.key"
    write_coordinator_certificates(tmp_path / "certs", ["127.0.0.1"], ca_key_out=offline)
    renew_server_certificate(tmp_path / "certs", offline, validity_days=100_000)
    ca = _certificate(tmp_path / "certs" / "ca.pem")
    server = _certificate(tmp_path / "certs" / "server.pem")
    assert server.not_valid_after_utc <= ca.not_valid_after_utc


def test_renewal_with_another_ca_key_is_refused_and_changes_nothing(tmp_path):
    write_coordinator_certificates(tmp_path / "study", ["127.0.0.1"])
    write_coordinator_certificates(tmp_path / "other", ["127.0.0.1"])
    before = {p.name: p.read_bytes() for p in (tmp_path / "study").iterdir()}
    with pytest.raises(CertificateError, match=r"other/ca.key.*does not belong to.*ca.pem"):
        renew_server_certificate(tmp_path / "study", tmp_path / "other" / "ca.key")
    assert {p.name: p.read_bytes() for p in (tmp_path / "study").iterdir()} == before


def test_renewal_needs_the_pinned_ca_certificate(tmp_path):
    write_coordinator_certificates(tmp_path / "study", ["127.0.0.1"])
    (tmp_path / "fresh").mkdir()
    with pytest.raises(CertificateError, match=r"fresh/ca.pem"):
        renew_server_certificate(tmp_path / "fresh", tmp_path / "study" / "ca.key")


def test_certs_command_keeps_the_ca_key_offline_and_renews(tmp_path, capsys):
    certs, offline = tmp_path / "certs", tmp_path / "usb" / "ca.key"
    offline.parent.mkdir()
    command = ["certs", str(certs), "--host", "coordinator.example.org"]
    assert coordinator_main([*command, "--ca-key-out", str(offline)]) == 0
    out = capsys.readouterr().out
    assert str(offline) in out and not (certs / "ca.key").exists()
    pinned = (certs / "ca.pem").read_bytes()
    old_server = (certs / "server.pem").read_bytes()

    # renewal: the host names are taken from the current server certificate
    assert coordinator_main(["certs", str(certs), "--ca-key", str(offline)]) == 0
    out = capsys.readouterr().out
    assert "renewed" in out.lower() and "restart" in out.lower()
    assert (certs / "ca.pem").read_bytes() == pinned
    assert (certs / "server.pem").read_bytes() != old_server
    _server_chain_is_valid(certs)


def test_certs_command_can_discard_the_ca_key(tmp_path, capsys):
    assert coordinator_main(["certs", str(tmp_path), "--host", "h", "--no-keep-ca-key"]) == 0
    assert "not kept" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.pem", "server.key", "server.pem"]


def test_certs_command_errors_are_one_line_and_non_zero(tmp_path, capsys):
    write_coordinator_certificates(tmp_path / "study", ["127.0.0.1"])
    write_coordinator_certificates(tmp_path / "other", ["127.0.0.1"])
    foreign = tmp_path / "other" / "ca.key"
    assert coordinator_main(["certs", str(tmp_path / "study"), "--ca-key", str(foreign)]) == 1
    err = capsys.readouterr().err
    assert "does not belong to" in err and "Traceback" not in err
    missing = tmp_path / "nowhere.key"
    assert coordinator_main(["certs", str(tmp_path / "study"), "--ca-key", str(missing)]) == 1
    assert "nowhere.key" in capsys.readouterr().err
    both = ["--ca-key", str(foreign), "--no-keep-ca-key"]
    with pytest.raises(SystemExit) as usage_error:  # argparse: mutually exclusive options
        coordinator_main(["certs", str(tmp_path / "study"), *both])
    assert usage_error.value.code == 2
    capsys.readouterr()
    assert coordinator_main(["certs", str(tmp_path / "new")]) != 0  # no --host, no CA key
    assert "--host" in capsys.readouterr().err


def test_private_keys_are_0600_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        paths = write_coordinator_certificates(tmp_path / "certs", ["127.0.0.1"])
        renew_server_certificate(tmp_path / "certs", paths.ca_private_key)
    finally:
        os.umask(old)
    for key in (paths.ca_private_key, paths.server_private_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_expiry_warning_names_the_file_and_the_renewal_command(tmp_path):
    paths = write_coordinator_certificates(tmp_path, ["127.0.0.1"], validity_days=30)
    expiry = _certificate(paths.server_certificate).not_valid_after_utc
    assert server_certificate_expiry_warning(paths, now=expiry - dt.timedelta(days=20)) is None
    soon = server_certificate_expiry_warning(paths, now=expiry - dt.timedelta(days=3))
    assert soon is not None and "in 3 days" in soon and "--ca-key" in soon
    assert str(paths.server_certificate) in soon
    late = server_certificate_expiry_warning(paths, now=expiry + dt.timedelta(days=1))
    assert late is not None and "expired" in late
