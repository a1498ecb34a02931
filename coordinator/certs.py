"""TLS material for the coordinator's SuperLink: a private study CA and a server certificate.

The SuperLink serves its node-facing Fleet API over TLS; every centre's SuperNode verifies
the server certificate against the study CA handed to it out of band
(``sscjak-node serve --root-certificates ca.pem``). The CA never signs anything else, so
a centre that pins it trusts exactly this coordinator.

Built with ``cryptography``'s X.509 builder (RFC 5280 profile: CA with
``BasicConstraints(ca=True, path_length=0)`` and ``keyCertSign``; server certificate with
``serverAuth`` and the host names/IP addresses as subjectAltName, which TLS clients check,
RFC 6125 §6.4). Keys are ECDSA P-256 (NIST SP 800-186), private keys written with file
mode 0600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sscjak.shared.private_files import write_private_file

#: Validity of the CA and of the server certificate, in days.
DEFAULT_VALIDITY_DAYS = 825


@dataclass(frozen=True)
class CoordinatorCertificates:
    """Paths of the PEM files ``write_coordinator_certificates`` produced."""

    ca_certificate: Path
    ca_private_key: Path
    server_certificate: Path
    server_private_key: Path


def _subject_alternative_names(hosts: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _write_private_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private_file(path, pem, replace=True)


def write_coordinator_certificates(
    out_dir: Path,
    hosts: list[str],
    *,
    study_name: str = "sscjak study",
    validity_days: int = DEFAULT_VALIDITY_DAYS,
    overwrite: bool = False,
) -> CoordinatorCertificates:
    """Create ``ca.pem``, ``ca.key``, ``server.pem`` and ``server.key`` in ``out_dir``.

    ``hosts`` are the names or IP addresses the centres use to reach the coordinator's
    Fleet API; each becomes a subjectAltName of the server certificate (the first is also
    its common name). 127.0.0.1 is always added: the coordinator's own ``flwr`` CLI and
    ServerApp reach the SuperLink's loopback Control/Runtime API with the same
    certificate. Raises ``FileExistsError`` rather than replacing existing keys
    unless ``overwrite`` is set, because replacing the CA breaks every centre's pin.
    """
    if not hosts:
        raise ValueError("at least one host name or IP address is needed for the certificate")
    hosts = [*hosts, *(h for h in ("127.0.0.1",) if h not in hosts)]
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = CoordinatorCertificates(
        ca_certificate=out_dir / "ca.pem",
        ca_private_key=out_dir / "ca.key",
        server_certificate=out_dir / "server.pem",
        server_private_key=out_dir / "server.key",
    )
    existing = [p for p in vars(paths).values() if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{existing[0]} already exists; refusing to replace TLS keys the centres may "
            "have pinned (use a new folder, or overwrite explicitly)"
        )

    now = dt.datetime.now(dt.UTC)
    not_before = now - dt.timedelta(minutes=5)
    not_after = now + dt.timedelta(days=validity_days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, study_name),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{study_name} coordinator CA"),
        ]
    )
    ca_certificate = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_certificate = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, study_name),
                    x509.NameAttribute(NameOID.COMMON_NAME, hosts[0]),
                ]
            )
        )
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(_subject_alternative_names(hosts)), False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )

    _write_private_key(ca_key, paths.ca_private_key)
    _write_private_key(server_key, paths.server_private_key)
    paths.ca_certificate.write_bytes(ca_certificate.public_bytes(serialization.Encoding.PEM))
    paths.server_certificate.write_bytes(
        server_certificate.public_bytes(serialization.Encoding.PEM)
    )
    return paths
