"""TLS material for the coordinator's SuperLink: a private study CA and a server certificate.

The SuperLink serves its node-facing Fleet API over TLS; every centre's SuperNode verifies
the server certificate against the study CA handed to it out of band
(``sscjak-node serve --root-certificates ca.pem``). The CA never signs anything else, so
a centre that pins it trusts exactly this coordinator.

Two keys, two lives (docs/certificates.md). The server key sits on the internet-facing
coordinator host, so its certificate is short-lived (:data:`SERVER_VALIDITY_DAYS`) and
renewed from the CA key (:func:`renew_server_certificate`) without changing ``ca.pem``,
so centres re-pin nothing. The CA key is needed only for that renewal: it can be written
outside the coordinator's folder from the start (``ca_key_out``, e.g. removable media
kept offline) or not kept at all (``keep_ca_key=False``).

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

from sscjak.shared.errors import SscjakError
from sscjak.shared.private_files import (
    replace_private_file,
    write_private_file,
    write_text_atomically,
)

#: Validity of the server certificate, in days. Short because its key lives on the
#: internet-facing coordinator host and the centres' SuperNodes consult no revocation
#: list: expiry is the only revocation there is. 90 days as Let's Encrypt's certificates
#: (https://letsencrypt.org/2015/11/09/why-90-days/); renewal needs no centre to act.
SERVER_VALIDITY_DAYS = 90
#: Validity of the study CA, in days (10 years). Longer than a multi-year study, so the
#: centres never have to re-pin; its key is used only to renew the server certificate
#: and is kept offline.
CA_VALIDITY_DAYS = 3650
#: Kept for callers of the former single validity: the server certificate's validity.
DEFAULT_VALIDITY_DAYS = SERVER_VALIDITY_DAYS
#: File names inside the certificate folder (the SuperLink's ``--ssl-*`` files).
CA_CERTIFICATE_FILE = "ca.pem"
CA_PRIVATE_KEY_FILE = "ca.key"
SERVER_CERTIFICATE_FILE = "server.pem"
SERVER_PRIVATE_KEY_FILE = "server.key"
#: How long before expiry :func:`server_certificate_expiry_warning` starts warning.
RENEWAL_WARNING_DAYS = 14
#: Certificates start a little in the past so that a clock slightly behind still accepts them.
_CLOCK_SKEW = dt.timedelta(minutes=5)


class CertificateError(SscjakError, ValueError):
    """A certificate or key that cannot be used as asked; the message says which and why."""


@dataclass(frozen=True)
class CoordinatorCertificates:
    """Paths of the PEM files ``write_coordinator_certificates`` produced.

    ``ca_private_key`` is ``None`` when the CA key was not kept.
    """

    ca_certificate: Path
    ca_private_key: Path | None
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


def _with_loopback(hosts: list[str]) -> list[str]:
    """``hosts`` plus 127.0.0.1: the coordinator's own commands and ServerApp reach the
    SuperLink's loopback Control/Runtime API with the same certificate."""
    if not hosts:
        raise ValueError("at least one host name or IP address is needed for the certificate")
    return [*hosts, *(h for h in ("127.0.0.1",) if h not in hosts)]


def _private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _certificate_pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _ca_certificate(
    ca_key: ec.EllipticCurvePrivateKey, study_name: str, not_after: dt.datetime
) -> x509.Certificate:
    """A self-signed CA that may sign end-entity certificates only (path length 0)."""
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, study_name),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{study_name} coordinator CA"),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime.now(dt.UTC) - _CLOCK_SKEW)
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


def _server_certificate(
    server_key: ec.EllipticCurvePrivateKey,
    hosts: list[str],
    ca_certificate: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    validity_days: int,
) -> x509.Certificate:
    """A server certificate for ``hosts``, valid ``validity_days`` but never past the CA."""
    if validity_days < 1:
        raise ValueError("the server certificate must be valid for at least one day")
    now = dt.datetime.now(dt.UTC)
    not_after = min(now + dt.timedelta(days=validity_days), ca_certificate.not_valid_after_utc)
    organisation = ca_certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    subject = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, str(a.value)) for a in organisation]
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([*subject, x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_certificate.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(_subject_alternative_names(hosts)), False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )


def _refuse_existing(paths: list[Path], ca_key_out: Path | None, overwrite: bool) -> None:
    """Raise ``FileExistsError`` before anything is generated if a key would be replaced."""
    if ca_key_out is not None and ca_key_out.exists():
        raise FileExistsError(
            f"{ca_key_out} already exists; a CA key is never replaced (it may be the key"
            " of a study whose centres pinned its CA): choose another path"
        )
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{existing[0]} already exists; refusing to replace TLS keys the centres may "
            "have pinned (use a new folder, or overwrite explicitly; to renew only the "
            "server certificate, use the CA key: see docs/certificates.md)"
        )


def write_coordinator_certificates(
    out_dir: Path,
    hosts: list[str],
    *,
    study_name: str = "sscjak study",
    validity_days: int = SERVER_VALIDITY_DAYS,
    ca_validity_days: int = CA_VALIDITY_DAYS,
    overwrite: bool = False,
    ca_key_out: Path | None = None,
    keep_ca_key: bool = True,
) -> CoordinatorCertificates:
    """Create ``ca.pem``, ``server.pem`` and ``server.key`` in ``out_dir``, and the CA key.

    ``hosts`` are the names or IP addresses the centres use to reach the coordinator's
    Fleet API; each becomes a subjectAltName of the server certificate (the first is also
    its common name); 127.0.0.1 is always added. The CA key goes to ``out_dir/ca.key``
    by default, to ``ca_key_out`` if given (never replacing a file there), or nowhere with
    ``keep_ca_key=False`` (it then exists only in memory while signing, and the server
    certificate cannot be renewed under this CA). Raises ``FileExistsError`` rather than
    replacing existing keys unless ``overwrite`` is set, because replacing the CA breaks
    every centre's pin.
    """
    if ca_key_out is not None and not keep_ca_key:
        raise ValueError("give either a place for the CA key or keep_ca_key=False, not both")
    hosts = _with_loopback(hosts)
    out_dir = Path(out_dir)
    in_dir = {
        name: out_dir / name
        for name in (
            CA_CERTIFICATE_FILE,
            CA_PRIVATE_KEY_FILE,
            SERVER_CERTIFICATE_FILE,
            SERVER_PRIVATE_KEY_FILE,
        )
    }
    _refuse_existing(list(in_dir.values()), ca_key_out, overwrite)
    ca_key_path = (ca_key_out or in_dir[CA_PRIVATE_KEY_FILE]) if keep_ca_key else None

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_not_after = dt.datetime.now(dt.UTC) + dt.timedelta(days=ca_validity_days)
    ca_certificate = _ca_certificate(ca_key, study_name, ca_not_after)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_certificate = _server_certificate(
        server_key, hosts, ca_certificate, ca_key, validity_days
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    if ca_key_path is not None:
        write_private_file(ca_key_path, _private_key_pem(ca_key), replace=ca_key_out is None)
    if ca_key_path != in_dir[CA_PRIVATE_KEY_FILE]:
        in_dir[CA_PRIVATE_KEY_FILE].unlink(missing_ok=True)  # an old CA's key (overwrite)
    write_private_file(in_dir[SERVER_PRIVATE_KEY_FILE], _private_key_pem(server_key), replace=True)
    write_text_atomically(in_dir[CA_CERTIFICATE_FILE], _certificate_pem(ca_certificate))
    write_text_atomically(in_dir[SERVER_CERTIFICATE_FILE], _certificate_pem(server_certificate))
    return CoordinatorCertificates(
        ca_certificate=in_dir[CA_CERTIFICATE_FILE],
        ca_private_key=ca_key_path,
        server_certificate=in_dir[SERVER_CERTIFICATE_FILE],
        server_private_key=in_dir[SERVER_PRIVATE_KEY_FILE],
    )


def _load_certificate(path: Path, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError:
        raise CertificateError(f"{path} not found: {what}") from None
    except (OSError, ValueError) as error:
        raise CertificateError(f"cannot read {path} as a PEM certificate: {error}") from None


def _load_ca_key(
    ca_key_path: Path, ca_certificate: x509.Certificate, ca_path: Path
) -> ec.EllipticCurvePrivateKey:
    """The CA private key at ``ca_key_path``, which must be the key of ``ca_certificate``."""
    try:
        key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    except OSError as error:
        raise CertificateError(f"cannot read the CA key {ca_key_path}: {error.strerror}") from None
    except (ValueError, TypeError) as error:
        raise CertificateError(
            f"{ca_key_path} is not an unencrypted PEM private key: {error}"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != (
        ca_certificate.public_key()
    ):
        raise CertificateError(
            f"{ca_key_path} does not belong to {ca_path} (the study CA the centres pinned);"
            " use the CA key written when that ca.pem was created"
        )
    return key


def _hosts_of(server_certificate: x509.Certificate) -> list[str]:
    """The host names and IP addresses of a server certificate, common name first."""
    names = server_certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    hosts = [*names.get_values_for_type(x509.DNSName)]
    hosts += [str(a) for a in names.get_values_for_type(x509.IPAddress)]
    common = server_certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    first = str(common[0].value) if common else None
    return sorted(hosts, key=lambda host: host != first)


def renew_server_certificate(
    cert_dir: Path,
    ca_key_path: Path,
    hosts: list[str] | None = None,
    *,
    validity_days: int = SERVER_VALIDITY_DAYS,
) -> CoordinatorCertificates:
    """Issue a new server key and certificate in ``cert_dir`` under its existing ``ca.pem``.

    ``ca.pem`` is left byte for byte as it is, so every centre's pin still holds; the
    CA key must be the one of that ``ca.pem`` (checked, ``CertificateError`` otherwise,
    nothing written). ``hosts`` default to the names of the current ``server.pem``. The
    new certificate never outlives the CA. ``server.key`` and ``server.pem`` are each
    replaced atomically; the SuperLink reads them when it starts, so restart it after.
    """
    cert_dir = Path(cert_dir)
    ca_path = cert_dir / CA_CERTIFICATE_FILE
    ca_certificate = _load_certificate(
        ca_path,
        "renewal signs with the study CA the centres pinned; put that ca.pem there",
    )
    ca_key = _load_ca_key(Path(ca_key_path), ca_certificate, ca_path)
    if ca_certificate.not_valid_after_utc <= dt.datetime.now(dt.UTC) + dt.timedelta(days=1):
        raise CertificateError(
            f"the study CA {ca_path} expires on {ca_certificate.not_valid_after_utc:%Y-%m-%d}:"
            " create a new CA and send its ca.pem to every centre (docs/certificates.md)"
        )
    server_path = cert_dir / SERVER_CERTIFICATE_FILE
    if hosts is None:
        hosts = _hosts_of(_load_certificate(server_path, "give the host names to certify (--host)"))
    hosts = _with_loopback(hosts)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_certificate = _server_certificate(
        server_key, hosts, ca_certificate, ca_key, validity_days
    )
    key_path = cert_dir / SERVER_PRIVATE_KEY_FILE
    replace_private_file(key_path, _private_key_pem(server_key))
    write_text_atomically(server_path, _certificate_pem(server_certificate))
    return CoordinatorCertificates(
        ca_certificate=ca_path,
        ca_private_key=Path(ca_key_path),
        server_certificate=server_path,
        server_private_key=key_path,
    )


def server_certificate_expiry_warning(
    certificates: CoordinatorCertificates,
    *,
    now: dt.datetime | None = None,
    within_days: int = RENEWAL_WARNING_DAYS,
) -> str | None:
    """A one-line warning if the server certificate expires within ``within_days``, else None.

    Meant for ``sscjak-coordinator serve`` at start: once the certificate has expired the
    centres' nodes fail their TLS check and cannot connect, with no message at the
    coordinator.
    """
    path = certificates.server_certificate
    expiry = _load_certificate(path, "no server certificate").not_valid_after_utc
    left = expiry - (now or dt.datetime.now(dt.UTC))
    if left > dt.timedelta(days=within_days):
        return None
    renew = f"sscjak-coordinator certs {path.parent} --ca-key CA_KEY"
    if left <= dt.timedelta(0):
        return (
            f"the server certificate {path} expired on {expiry:%Y-%m-%d}: renew it with '{renew}'"
        )
    return (
        f"the server certificate {path} expires on {expiry:%Y-%m-%d} (in {left.days} days):"
        f" renew it with '{renew}', then restart the SuperLink"
    )
