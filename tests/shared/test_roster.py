"""The study roster: canonical text, hash, strict parsing."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

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
