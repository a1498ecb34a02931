"""The node's long-term identity: its name and X25519 key, kept in its state directory.

``sscjak-node keys --state DIR --name NAME`` creates them once. The private key is a
PKCS#8 PEM file readable by its owner only (mode 0600); it never leaves the node.
The public key goes into the study roster (RFC 7748 raw encoding, 64 hex digits).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from sscjak.node.flower.auth_keys import AuthKeyError, load_flower_auth_key
from sscjak.shared import private_files
from sscjak.shared.errors import SscjakError
from sscjak.shared.private_files import write_private_file
from sscjak.shared.protocol import NODE_NAME_PATTERN
from sscjak.shared.roster import Roster, RosterMember

#: File names inside the node's state directory.
PRIVATE_KEY_FILE = "node_x25519_key.pem"
IDENTITY_FILE = "node_identity.toml"
#: Optional Flower node-auth public key placed in the state directory by ``serve`` setup.
FLOWER_AUTH_PUBLIC_KEY_FILE = "flower_auth_public_key.pem"


class NodeKeyError(SscjakError, ValueError):
    """The node's key or identity is missing, unreadable or not protected."""


def create_node_identity(state_dir: Path, name: str) -> X25519PrivateKey:
    """Create the node's name file and private key (0600); refuse to overwrite either.

    The key is generated with the operating system's CSPRNG (``cryptography``).
    """
    if NODE_NAME_PATTERN.fullmatch(name) is None:
        raise NodeKeyError(f"{name!r} is not a node name (1-64 letters, digits, '.', '_', '-')")
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_path = state_dir / PRIVATE_KEY_FILE
    identity_path = state_dir / IDENTITY_FILE
    if key_path.exists() or identity_path.exists():
        raise NodeKeyError(f"{state_dir} already holds a node key; it is never overwritten")
    private_key = X25519PrivateKey.generate()
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private_file(key_path, pem)  # never clobbers a key created concurrently
    identity_path.write_text(f'name = "{name}"\n', encoding="utf-8")
    return private_key


def load_node_name(state_dir: Path) -> str:
    """The node's name as recorded by ``sscjak-node keys``."""
    path = Path(state_dir) / IDENTITY_FILE
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise NodeKeyError(
            f"{state_dir} has no node identity: run 'sscjak-node keys --state {state_dir}"
            " --name NAME' first"
        ) from error
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise NodeKeyError(f"cannot read {path}: {error}") from error
    name = document.get("name")
    if not isinstance(name, str) or NODE_NAME_PATTERN.fullmatch(name) is None:
        raise NodeKeyError(f"{path}: 'name' is missing or not a valid node name")
    return name


def load_private_key(state_dir: Path) -> X25519PrivateKey:
    """The node's private key; refused if another user could read or replace the file.

    The file check is :func:`sscjak.shared.private_files.read_private_file`, the same
    one the Flower node-authentication key goes through (``sscjak.node.flower.auth_keys``).
    """
    path = Path(state_dir) / PRIVATE_KEY_FILE
    try:
        content = private_files.read_private_file(path)
    except FileNotFoundError as error:
        raise NodeKeyError(
            f"{state_dir} has no node key: run 'sscjak-node keys --state {state_dir}"
            " --name NAME' first"
        ) from error
    except private_files.PrivateFileError as error:
        raise NodeKeyError(str(error)) from None
    try:
        key = serialization.load_pem_private_key(content, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise NodeKeyError(f"{path} is not a PEM private key ({error})") from None
    if not isinstance(key, X25519PrivateKey):
        raise NodeKeyError(f"{path} does not hold an X25519 private key")
    return key


def check_node_private_keys(state_dir: Path) -> None:
    """Refuse to start unless both private keys of ``state_dir`` are private to this user.

    Checks the X25519 masking key and, when present, the Flower node-authentication key
    (``sscjak.node.flower.auth_keys``), with the one check of
    :func:`sscjak.shared.private_files.read_private_file`. Meant for ``sscjak-node serve``
    before it starts the SuperNode: a key exposed to other users of the host is reported
    at start-up (``chmod 600 PATH``), not at the first analysis.
    """
    load_private_key(state_dir)
    try:
        load_flower_auth_key(Path(state_dir))
    except FileNotFoundError:
        return  # no node authentication configured (``serve --insecure``)
    except AuthKeyError as error:
        raise NodeKeyError(str(error)) from None


def public_key_hex(private_key: X25519PrivateKey) -> str:
    """The raw 32-byte public key as 64 hex digits (the roster's encoding)."""
    raw = private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return raw.hex()


def roster_entry(state_dir: Path) -> RosterMember:
    """This node's roster entry (name, X25519 public key, Flower auth key if present)."""
    state_dir = Path(state_dir)
    auth_path = state_dir / FLOWER_AUTH_PUBLIC_KEY_FILE
    auth_pem = auth_path.read_text(encoding="ascii") if auth_path.exists() else None
    return RosterMember(
        name=load_node_name(state_dir),
        x25519_public_key=public_key_hex(load_private_key(state_dir)),
        flower_auth_public_key=auth_pem,
    )


def roster_entry_toml(member: RosterMember) -> str:
    """The ``[[node]]`` table of one member, to paste or send to the coordinator."""
    text = Roster((member,)).canonical_toml
    return text.split("\n", 2)[2]  # drop the schema line and the blank line after it
