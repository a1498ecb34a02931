"""The study roster: which centres take part, and their long-term public keys.

The roster is written by the coordinator (``sscjak-coordinator roster add``) from the
entries each centre prints with ``sscjak-node keys``, and is *pinned* at every node
when its data steward approves a plan (``sscjak-node approve PLAN --roster FILE``):
from then on that node masks only with the pinned keys and refuses a participant
outside the pinned roster or a request made under a roster with another hash.

File format (TOML, UTF-8)::

    schema = "sscjak.roster/1"

    [[node]]
    name = "centre-a"
    x25519_public_key = "<64 hex digits: the raw 32-byte X25519 public key>"
    flower_auth_public_key = \"\"\"-----BEGIN PUBLIC KEY-----
    ...
    -----END PUBLIC KEY-----
    \"\"\"                        # optional: the node's Flower node-auth key (PEM)

The canonical text (:attr:`Roster.canonical_toml`: members sorted by name, fixed
layout) is what is hashed into :attr:`Roster.sha256`.

A member whose X25519 public key is a small-order point is refused when the member is
built, so when a roster is parsed or an entry added: X25519 with such a point gives
the all-zero shared secret whatever the private key (RFC 7748 §6.1), so the pairwise
masks with that member would be known to anyone and the node would fail while
answering. Two encodings of one point (RFC 7748 §5 ignores the top bit; values ≥ p
are reduced) count as the same key.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from sscjak.shared.errors import SscjakError
from sscjak.shared.private_files import write_text_atomically
from sscjak.shared.protocol import NODE_NAME_PATTERN

ROSTER_SCHEMA = "sscjak.roster/1"
_PUBLIC_KEY_PATTERN = re.compile(r"[0-9a-f]{64}")
_PEM_PATTERN = re.compile(
    r"-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]+-----END PUBLIC KEY-----\n?"
)


#: The field prime of Curve25519, p = 2^255 - 19 (RFC 7748 §4.1).
_CURVE25519_P = 2**255 - 19

#: The small-order points of Curve25519 as u-coordinates: 0 and 1 (orders 4 and 1),
#: the two order-8 points and p - 1 (order 2). Their encodings p, p + 1 and the variants
#: with the top bit set reduce to these (RFC 7748 §5). Source: the list in libsodium's
#: ``has_small_order`` (crypto_scalarmult/curve25519/ref10/x25519_ref10.c) and
#: https://cr.yp.to/ecdh.html ("public keys that can't occur").
_SMALL_ORDER_U = frozenset(
    {
        0,
        1,
        325606250916557431795983626356110631294008115727848805560023387167927233504,
        39382357235489614581723060781553021112529911719440698176882885853963445705823,
        _CURVE25519_P - 1,
    }
)

#: A fixed private key for the exchange test of :func:`_exchange_yields_no_secret`;
#: any scalar works because X25519 clamps it to a multiple of the cofactor 8.
_PROBE_PRIVATE_KEY = X25519PrivateKey.from_private_bytes(
    hashlib.sha256(b"sscjak.roster/small-order-probe").digest()
)


class RosterError(SscjakError, ValueError):
    """A roster file or entry that is not valid; the message says where and why."""


def x25519_u_coordinate(raw: bytes) -> int:
    """The u-coordinate a 32-byte X25519 public key stands for (RFC 7748 §5).

    Little-endian, the most significant bit masked, reduced modulo p: every encoding of
    one point gives one number, so it is what "the same key" means.
    """
    return (int.from_bytes(raw, "little") & ((1 << 255) - 1)) % _CURVE25519_P


def _is_listed_small_order_point(raw: bytes) -> bool:
    """Whether ``raw`` encodes one of the published small-order points."""
    return x25519_u_coordinate(raw) in _SMALL_ORDER_U


def _exchange_yields_no_secret(raw: bytes) -> bool:
    """Whether X25519 with ``raw`` fails or gives the all-zero secret (RFC 7748 §6.1).

    ``cryptography`` (OpenSSL) raises on an all-zero result; the explicit zero test
    keeps the check independent of that library behaviour.
    """
    try:
        secret = _PROBE_PRIVATE_KEY.exchange(X25519PublicKey.from_public_bytes(raw))
    except ValueError:
        return True
    return not any(secret)


def is_small_order_x25519_key(raw: bytes) -> bool:
    """Whether a 32-byte X25519 public key is a small-order point (both checks)."""
    return _exchange_yields_no_secret(raw) or _is_listed_small_order_point(raw)


@dataclass(frozen=True)
class RosterMember:
    """One centre of the study: its node name and public keys."""

    name: str
    x25519_public_key: str
    flower_auth_public_key: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or NODE_NAME_PATTERN.fullmatch(self.name) is None:
            raise RosterError(
                f"node name {self.name!r} is not valid (1-64 letters, digits, '.', '_', '-')"
            )
        key = self.x25519_public_key
        if not isinstance(key, str) or _PUBLIC_KEY_PATTERN.fullmatch(key) is None:
            raise RosterError(
                f"node {self.name}: x25519_public_key must be 64 lower-case hex digits"
            )
        if is_small_order_x25519_key(bytes.fromhex(key)):
            raise RosterError(
                f"node {self.name}: x25519_public_key {key} is a small-order point of"
                " Curve25519, not a real public key (every shared secret with it is zero,"
                " RFC 7748 §6.1); ask this centre to send the entry 'sscjak-node keys' prints"
            )
        pem = self.flower_auth_public_key
        if pem is not None and (not isinstance(pem, str) or _PEM_PATTERN.fullmatch(pem) is None):
            raise RosterError(
                f"node {self.name}: flower_auth_public_key must be a PEM 'PUBLIC KEY' block"
            )

    def public_key(self) -> X25519PublicKey:
        """The member's X25519 public key object."""
        return X25519PublicKey.from_public_bytes(bytes.fromhex(self.x25519_public_key))

    def same_x25519_key(self, other: RosterMember) -> bool:
        """Whether both members hold the same X25519 point, whatever its encoding."""
        return x25519_u_coordinate(bytes.fromhex(self.x25519_public_key)) == (
            x25519_u_coordinate(bytes.fromhex(other.x25519_public_key))
        )


@dataclass(frozen=True)
class Roster:
    """The study roster: members with distinct names and distinct keys, sorted by name."""

    members: tuple[RosterMember, ...]

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.members, key=lambda m: m.name))
        object.__setattr__(self, "members", ordered)
        names = [m.name for m in ordered]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise RosterError(f"roster names a node more than once: {', '.join(duplicates)}")
        points = [x25519_u_coordinate(bytes.fromhex(m.x25519_public_key)) for m in ordered]
        if len(set(points)) != len(points):
            raise RosterError("two roster members share the same x25519_public_key")

    @property
    def names(self) -> list[str]:
        """Member names, sorted."""
        return [m.name for m in self.members]

    def __contains__(self, name: object) -> bool:
        return any(m.name == name for m in self.members)

    def __len__(self) -> int:
        return len(self.members)

    def member(self, name: str) -> RosterMember:
        """The member called ``name``; ``KeyError`` if none."""
        for candidate in self.members:
            if candidate.name == name:
                return candidate
        raise KeyError(name)

    def public_keys(self, names: list[str] | tuple[str, ...]) -> dict[str, X25519PublicKey]:
        """Name → X25519 public key for ``names`` (each must be a member)."""
        return {name: self.member(name).public_key() for name in names}

    def with_member(self, member: RosterMember) -> Roster:
        """A new roster with ``member`` added, or replacing the member of that name."""
        others = tuple(m for m in self.members if m.name != member.name)
        return Roster((*others, member))

    @property
    def canonical_toml(self) -> str:
        """The roster's canonical TOML text (sorted, fixed layout): what is hashed."""
        lines = [f'schema = "{ROSTER_SCHEMA}"']
        for m in self.members:
            lines += ["", "[[node]]", f'name = "{m.name}"']
            lines.append(f'x25519_public_key = "{m.x25519_public_key}"')
            if m.flower_auth_public_key is not None:
                pem = m.flower_auth_public_key.rstrip("\n") + "\n"
                lines.append(f'flower_auth_public_key = """\n{pem}"""')
        return "\n".join(lines) + "\n"

    @property
    def sha256(self) -> str:
        """SHA-256 (hex) of :attr:`canonical_toml`."""
        return hashlib.sha256(self.canonical_toml.encode("utf-8")).hexdigest()


def parse_roster(text: str, source: str) -> Roster:
    """Parse roster TOML text; ``source`` names it in error messages."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RosterError(f"{source}: not valid TOML: {error}") from error
    schema = document.get("schema")
    if schema != ROSTER_SCHEMA:
        raise RosterError(f"{source}: schema must be {ROSTER_SCHEMA!r}, found {schema!r}")
    unknown = sorted(set(document) - {"schema", "node"})
    if unknown:
        raise RosterError(f"{source}: unknown top-level keys {unknown}")
    entries = document.get("node", [])
    if not isinstance(entries, list):
        raise RosterError(f"{source}: 'node' must be an array of tables ([[node]])")
    members = []
    for position, entry in enumerate(entries, start=1):
        where = f"{source}: node entry {position}"
        if not isinstance(entry, dict):
            raise RosterError(f"{where}: must be a table")
        extra = sorted(set(entry) - {"name", "x25519_public_key", "flower_auth_public_key"})
        if extra:
            raise RosterError(f"{where}: unknown keys {extra}")
        for required in ("name", "x25519_public_key"):
            if required not in entry:
                raise RosterError(f"{where}: missing {required!r}")
        try:
            members.append(
                RosterMember(
                    name=entry["name"],
                    x25519_public_key=entry["x25519_public_key"],
                    flower_auth_public_key=entry.get("flower_auth_public_key"),
                )
            )
        except RosterError as error:
            raise RosterError(f"{where}: {error}") from error
    try:
        return Roster(tuple(members))
    except RosterError as error:
        raise RosterError(f"{source}: {error}") from error


def load_roster(path: Path) -> Roster:
    """Read a roster file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise RosterError(f"cannot read roster {path}: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise RosterError(f"roster {path} is not UTF-8 text") from error
    return parse_roster(text, str(path))


def write_roster(roster: Roster, path: Path) -> None:
    """Write the roster's canonical text to ``path`` atomically (temp file + rename)."""
    write_text_atomically(path, roster.canonical_toml)
