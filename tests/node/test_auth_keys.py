"""Tests of sscjak.node.flower.auth_keys: the centre's Flower node-authentication key."""

from __future__ import annotations

import stat

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sscjak.node.flower.auth_keys import ensure_flower_auth_key, load_flower_auth_key


def test_key_is_created_once_private_and_readable_by_flower(tmp_path):
    key = ensure_flower_auth_key(tmp_path / "state")
    assert stat.S_IMODE(key.private_key_path.stat().st_mode) == 0o600
    private = serialization.load_ssh_private_key(key.private_key_path.read_bytes(), None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    public = serialization.load_ssh_public_key(key.public_key_openssh_path.read_bytes())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert public.curve.name in {"secp256r1", "secp384r1", "secp521r1"}  # NIST curves
    assert key.public_key_pem == key.public_key_pem_path.read_text()
    assert key.public_key_pem.startswith("-----BEGIN PUBLIC KEY-----")
    again = ensure_flower_auth_key(tmp_path / "state")
    assert again.public_key_pem == key.public_key_pem
    assert load_flower_auth_key(tmp_path / "state").public_key_pem == key.public_key_pem


def test_two_centres_get_different_keys(tmp_path):
    first = ensure_flower_auth_key(tmp_path / "a")
    second = ensure_flower_auth_key(tmp_path / "b")
    assert first.public_key_pem != second.public_key_pem
