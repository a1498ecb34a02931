"""The centre's Flower node-authentication key (an EC key on a NIST curve).

Separate from the node's X25519 masking key (``sscjak.node.guard.node_keys``): this one only
proves to the coordinator's SuperLink that a connecting SuperNode is a registered centre
(Flower node authentication, ``flower-superlink --enable-supernode-auth``; the SuperLink
accepts only public keys registered over its Control API and, in flwr 1.42,
only EC keys on NIST curves). The private key stays in the node's state directory in
OpenSSH format, mode 0600, as ``flower-supernode --auth-supernode-private-key`` reads it;
the public key is what the centre sends to the coordinator (PEM SubjectPublicKeyInfo, as
the SuperLink stores it and the coordinator registers it, and an OpenSSH line, the form
Flower's own ``flwr supernode register`` takes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sscjak.shared import private_files
from sscjak.shared.errors import SscjakError
from sscjak.shared.private_files import write_private_file

#: File names inside the node's state directory.
FLOWER_AUTH_PRIVATE_KEY_FILE = "flower_auth_key"
FLOWER_AUTH_PUBLIC_KEY_FILE = "flower_auth_key.pub"
FLOWER_AUTH_PUBLIC_PEM_FILE = "flower_auth_public_key.pem"  # read by node_keys.roster_entry


class AuthKeyError(SscjakError, ValueError):
    """The node-authentication key file is exposed or not an EC private key."""


@dataclass(frozen=True)
class FlowerAuthKey:
    """Where the node-authentication key lives and its public half."""

    private_key_path: Path
    public_key_openssh_path: Path
    public_key_pem: str

    @property
    def public_key_pem_path(self) -> Path:
        return self.private_key_path.parent / FLOWER_AUTH_PUBLIC_PEM_FILE


def _public_pem(key: ec.EllipticCurvePublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def load_flower_auth_key(state_dir: Path) -> FlowerAuthKey:
    """Read the node-authentication key of ``state_dir``; ``FileNotFoundError`` if absent.

    Refused (:class:`AuthKeyError`, naming the file and ``chmod 600``) when another user
    could read or replace the file — the same check as the X25519 key
    (:func:`sscjak.shared.private_files.read_private_file`): whoever reads this key can
    connect to the coordinator as this centre.
    """
    private_path = state_dir / FLOWER_AUTH_PRIVATE_KEY_FILE
    try:
        content = private_files.read_private_file(private_path)
    except private_files.PrivateFileError as error:
        raise AuthKeyError(str(error)) from None
    try:
        key = serialization.load_ssh_private_key(content, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise AuthKeyError(
            f"{private_path} is not an OpenSSH private key ({error}); move it aside and run"
            f" 'sscjak-node keys --state {state_dir}' to create a new one (the coordinator"
            " must then register the new public key)"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise AuthKeyError(f"{private_path} is not an EC private key")
    return FlowerAuthKey(
        private_key_path=private_path,
        public_key_openssh_path=state_dir / FLOWER_AUTH_PUBLIC_KEY_FILE,
        public_key_pem=_public_pem(key.public_key()),
    )


def ensure_flower_auth_key(state_dir: Path) -> FlowerAuthKey:
    """Create the node-authentication key in ``state_dir`` unless it exists; return it.

    Idempotent: an existing key is never replaced (the coordinator registered its public
    half). ECDSA P-384 (NIST SP 800-186 curve, accepted by flwr's ``uses_nist_ec_curve``).
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    private_path = state_dir / FLOWER_AUTH_PRIVATE_KEY_FILE
    if private_path.exists():
        return load_flower_auth_key(state_dir)
    key = ec.generate_private_key(ec.SECP384R1())
    private_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    write_private_file(private_path, private_bytes)
    public = key.public_key()
    (state_dir / FLOWER_AUTH_PUBLIC_KEY_FILE).write_bytes(
        public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        + b"\n"
    )
    (state_dir / FLOWER_AUTH_PUBLIC_PEM_FILE).write_text(_public_pem(public), encoding="ascii")
    return load_flower_auth_key(state_dir)
