"""The study roster: canonical text, hash, strict parsing."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from sscjak.shared import roster as roster_module
from sscjak.shared.roster import (
    Roster,
    RosterError,
    RosterMember,
    load_roster,
    parse_roster,
    write_roster,
)

KEY_A = "11" * 32
KEY_B = "22" * 32


def test_canonical_text_round_trips_and_is_order_independent(tmp_path: Path) -> None:
    pem = (
        generate_private_key(SECP256R1())
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    a = RosterMember("centre-a", KEY_A, pem)
    b = RosterMember("centre-b", KEY_B)
    roster = Roster((b, a))
    assert roster.names == ["centre-a", "centre-b"]
    assert roster.sha256 == Roster((a, b)).sha256
    write_roster(roster, tmp_path / "roster.toml")
    again = load_roster(tmp_path / "roster.toml")
    assert again == roster and again.sha256 == roster.sha256
    assert again.member("centre-a").flower_auth_public_key == pem


def test_any_change_changes_the_hash() -> None:
    roster = Roster((RosterMember("centre-a", KEY_A), RosterMember("centre-b", KEY_B)))
    assert roster.with_member(RosterMember("centre-b", "33" * 32)).sha256 != roster.sha256
    assert roster.with_member(RosterMember("centre-c", "33" * 32)).sha256 != roster.sha256


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("schema = 1", "schema"),
        ('schema = "sscjak.roster/1"\nextra = 1', "unknown top-level"),
        ('schema = "sscjak.roster/1"\n[[node]]\nname = "a"', "missing 'x25519_public_key'"),
        (
            f'schema = "sscjak.roster/1"\n[[node]]\nname = "a b"\nx25519_public_key = "{KEY_A}"',
            "not valid",
        ),
        (
            'schema = "sscjak.roster/1"\n[[node]]\nname = "a"\nx25519_public_key = "zz"',
            "64 lower-case hex",
        ),
        (
            f'schema = "sscjak.roster/1"\n[[node]]\nname = "a"\nx25519_public_key = "{KEY_A}"\n'
            f'[[node]]\nname = "a"\nx25519_public_key = "{KEY_B}"',
            "more than once",
        ),
        (
            f'schema = "sscjak.roster/1"\n[[node]]\nname = "a"\nx25519_public_key = "{KEY_A}"\n'
            f'[[node]]\nname = "b"\nx25519_public_key = "{KEY_A}"',
            "same x25519",
        ),
        ("not = [toml", "not valid TOML"),
    ],
)
def test_bad_rosters_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(RosterError, match=message):
        parse_roster(text, "roster.toml")


# --- Small-order X25519 public keys (RFC 7748 §6.1) -----------------------------------

#: The small-order points of Curve25519 as libsodium lists them (crypto_scalarmult/
#: curve25519/ref10/x25519_ref10.c, ``has_small_order``): 0, 1, the two order-8 points,
#: p-1, p, p+1 — each also with the most significant bit set, which RFC 7748 §5 masks.
SMALL_ORDER_CANONICAL = [
    "00" * 32,
    "01" + "00" * 31,
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ec" + "ff" * 30 + "7f",
    "ed" + "ff" * 30 + "7f",
    "ee" + "ff" * 30 + "7f",
]
SMALL_ORDER_KEYS = SMALL_ORDER_CANONICAL + [
    key[:62] + f"{int(key[62:], 16) | 0x80:02x}" for key in SMALL_ORDER_CANONICAL
]


@pytest.mark.parametrize("key", SMALL_ORDER_KEYS)
def test_a_small_order_key_is_refused_when_a_member_is_built(key: str) -> None:
    with pytest.raises(RosterError, match=r"centre-z.*small-order"):
        RosterMember("centre-z", key)


@pytest.mark.parametrize("key", SMALL_ORDER_KEYS)
def test_a_small_order_key_is_refused_when_a_roster_is_parsed(key: str) -> None:
    text = (
        f'schema = "sscjak.roster/1"\n[[node]]\nname = "centre-a"\nx25519_public_key = "{KEY_A}"\n'
        f'[[node]]\nname = "centre-z"\nx25519_public_key = "{key}"\n'
    )
    with pytest.raises(RosterError, match=r"roster.toml: node entry 2: .*centre-z.*small-order"):
        parse_roster(text, "roster.toml")


@pytest.mark.parametrize("key", SMALL_ORDER_KEYS)
def test_each_small_order_detector_alone_catches_every_listed_key(key: str) -> None:
    # Two independent checks: the X25519 exchange with a fixed private key (OpenSSL
    # refuses an all-zero shared secret) and the published list (defence in depth).
    raw = bytes.fromhex(key)
    assert roster_module._exchange_yields_no_secret(raw)
    assert roster_module._is_listed_small_order_point(raw)


def test_an_ordinary_key_passes_both_detectors() -> None:
    raw = bytes.fromhex(KEY_A)
    assert not roster_module._exchange_yields_no_secret(raw)
    assert not roster_module._is_listed_small_order_point(raw)


def test_a_small_order_member_cannot_be_added_to_a_roster() -> None:
    roster = Roster((RosterMember("centre-a", KEY_A), RosterMember("centre-b", KEY_B)))
    with pytest.raises(RosterError, match="centre-z"):
        roster.with_member(RosterMember("centre-z", "00" * 32))


def test_the_same_key_in_another_encoding_is_a_duplicate() -> None:
    # RFC 7748 §5: the top bit is ignored, so both encodings are one public key.
    other_encoding = KEY_A[:62] + f"{int(KEY_A[62:], 16) | 0x80:02x}"
    assert other_encoding != KEY_A
    with pytest.raises(RosterError, match="same x25519"):
        Roster((RosterMember("centre-a", KEY_A), RosterMember("centre-b", other_encoding)))
