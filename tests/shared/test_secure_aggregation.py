"""Pairwise masks: exact cancellation, freshness per round, uniform-looking masked vectors."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sscjak.shared.secure_aggregation import (
    MaskingError,
    mask_stream,
    mask_summary,
    masked_from_bytes,
    masked_to_bytes,
    pairwise_mask_key,
    sum_masked,
)

PLAN = hashlib.sha256(b"a plan").hexdigest()


def _keys(count: int, seed: int) -> dict[str, X25519PrivateKey]:
    """Deterministic node keys (seeded) so that statistical tests never flake."""
    rng = np.random.default_rng(seed)
    return {
        f"centre-{i:02d}": X25519PrivateKey.from_private_bytes(rng.bytes(32)) for i in range(count)
    }


def _mask_all(
    vectors: dict[str, np.ndarray], keys: dict[str, X25519PrivateKey], nonce: bytes
) -> dict[str, np.ndarray]:
    public = {name: key.public_key() for name, key in keys.items()}
    return {
        name: mask_summary(
            vector,
            own_name=name,
            own_private_key=keys[name],
            participant_keys=public,
            plan_sha256=PLAN,
            nonce=nonce,
        )
        for name, vector in vectors.items()
    }


@settings(max_examples=25, deadline=None)
@given(
    nodes=st.integers(min_value=3, max_value=12),
    length=st.integers(min_value=1, max_value=300),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_masks_cancel_exactly(nodes: int, length: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    keys = _keys(nodes, seed)
    # the full int64 range: the sum must be exact modulo 2**64 even when it wraps
    vectors = {
        name: rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, length, np.int64)
        for name in keys
    }
    masked = _mask_all(vectors, keys, rng.bytes(32))
    pooled = sum_masked(masked.values())
    with np.errstate(over="ignore"):
        plain = np.sum(np.stack(list(vectors.values())), axis=0, dtype=np.int64)
    assert pooled.dtype == np.int64
    np.testing.assert_array_equal(pooled, plain)
    # and no single masked vector equals its plain vector
    for name in keys:
        assert not np.array_equal(masked[name].view(np.int64), vectors[name])


def test_masks_do_not_cancel_without_every_participant() -> None:
    keys = _keys(4, 7)
    vectors = {name: np.arange(50, dtype=np.int64) for name in keys}
    masked = _mask_all(vectors, keys, b"\x01" * 32)
    partial = sum_masked(v for name, v in masked.items() if name != "centre-02")
    assert not np.array_equal(partial, 3 * np.arange(50, dtype=np.int64))


def test_masked_vectors_differ_between_rounds_for_the_same_data() -> None:
    keys = _keys(3, 11)
    vectors = {name: np.full(1000, 5, dtype=np.int64) for name in keys}
    first = _mask_all(vectors, keys, b"\x01" * 32)
    second = _mask_all(vectors, keys, b"\x02" * 32)
    for name in keys:
        # equal words would be a 2**-64 accident per word
        assert np.count_nonzero(first[name] == second[name]) == 0


def _top_byte_chi_square_p(words: np.ndarray) -> float:
    top_bytes = (words.astype(np.uint64) >> np.uint64(56)).astype(np.int64)
    observed = np.bincount(top_bytes, minlength=256)
    return float(stats.chisquare(observed).pvalue)


def test_masked_summary_looks_uniform_and_plain_summary_does_not() -> None:
    # a summary-like vector: mostly zeros and small counts, like the real layout
    rng = np.random.default_rng(3)
    length = 40_000
    summary = np.where(rng.random(length) < 0.9, 0, rng.integers(0, 50, length)).astype(np.int64)
    keys = _keys(5, 5)
    vectors = {name: summary.copy() for name in keys}
    masked = _mask_all(vectors, keys, rng.bytes(32))["centre-02"]

    # chi-square on the top byte: 256 equally likely values for a uniform word
    assert _top_byte_chi_square_p(masked) > 1e-4
    assert _top_byte_chi_square_p(summary.view(np.uint64)) < 1e-100

    # every one of the 64 bit positions is set about half of the time (±5 SD)
    bits = np.unpackbits(masked.astype("<u8").view(np.uint8)).reshape(length, 64)
    frequencies = bits.mean(axis=0)
    bound = 5 * 0.5 / np.sqrt(length)
    assert np.all(np.abs(frequencies - 0.5) < bound)
    plain_bits = np.unpackbits(summary.astype("<u8").view(np.uint8)).reshape(length, 64)
    assert np.any(np.abs(plain_bits.mean(axis=0) - 0.5) >= bound)


def test_pairwise_key_is_shared_and_bound_to_plan_nonce_and_pair() -> None:
    keys = _keys(3, 1)
    a, b, c = keys
    nonce = b"\x09" * 32

    def key(own: str, peer: str, plan: str = PLAN, round_nonce: bytes = nonce) -> bytes:
        return pairwise_mask_key(
            keys[own],
            keys[peer].public_key(),
            own_name=own,
            peer_name=peer,
            plan_sha256=plan,
            nonce=round_nonce,
        )

    assert key(a, b) == key(b, a)
    assert key(a, b) != key(a, c)
    assert key(a, b) != key(a, b, plan=hashlib.sha256(b"other plan").hexdigest())
    assert key(a, b) != key(a, b, round_nonce=b"\x0a" * 32)
    with pytest.raises(MaskingError):
        key(a, a)


def test_mask_stream_is_the_chacha20_keystream_and_deterministic() -> None:
    key = bytes(range(32))
    first = mask_stream(key, 100)
    assert first.dtype == np.uint64 and first.shape == (100,)
    np.testing.assert_array_equal(first, mask_stream(key, 100))
    # a prefix of a longer stream is the shorter stream
    np.testing.assert_array_equal(mask_stream(key, 10), first[:10])


def test_bytes_round_trip_and_length_check() -> None:
    words = np.array([0, 1, 2**64 - 1, 2**63], dtype=np.uint64)
    data = masked_to_bytes(words)
    assert len(data) == 32
    assert data[:8] == bytes(8) and data[8:16] == b"\x01" + bytes(7)  # little-endian
    np.testing.assert_array_equal(masked_from_bytes(data, 4), words)
    with pytest.raises(MaskingError):
        masked_from_bytes(data, 3)


def test_mask_summary_rejects_a_non_int64_vector_and_an_absent_node() -> None:
    keys = _keys(3, 2)
    public = {name: key.public_key() for name, key in keys.items()}
    with pytest.raises(MaskingError):
        mask_summary(
            np.zeros(3, dtype=np.float64),
            own_name="centre-00",
            own_private_key=keys["centre-00"],
            participant_keys=public,
            plan_sha256=PLAN,
            nonce=bytes(32),
        )
    with pytest.raises(MaskingError):
        mask_summary(
            np.zeros(3, dtype=np.int64),
            own_name="centre-99",
            own_private_key=keys["centre-00"],
            participant_keys=public,
            plan_sha256=PLAN,
            nonce=bytes(32),
        )


def test_sum_masked_rejects_mismatched_lengths_and_nothing() -> None:
    with pytest.raises(MaskingError):
        sum_masked([np.zeros(3, np.uint64), np.zeros(4, np.uint64)])
    with pytest.raises(MaskingError):
        sum_masked([])


def test_self_masks_hide_the_sum_until_every_seed_is_revealed() -> None:
    from sscjak.shared.secure_aggregation import remove_self_masks, self_mask_seed

    keys = _keys(4, 21)
    public = {name: key.public_key() for name, key in keys.items()}
    nonce = b"\x05" * 32
    vectors = {name: np.arange(200, dtype=np.int64) * (i + 1) for i, name in enumerate(keys)}
    seeds = {name: self_mask_seed(keys[name], plan_sha256=PLAN, nonce=nonce) for name in keys}
    masked = [
        mask_summary(
            vectors[name],
            own_name=name,
            own_private_key=keys[name],
            participant_keys=public,
            plan_sha256=PLAN,
            nonce=nonce,
            self_mask_seed=seeds[name],
        )
        for name in keys
    ]
    plain = sum(vectors.values())
    pooled = sum_masked(masked)
    assert not np.array_equal(pooled, plain)
    all_but_one = remove_self_masks(pooled, list(seeds.values())[:-1])
    assert not np.array_equal(all_but_one, plain)
    np.testing.assert_array_equal(remove_self_masks(pooled, seeds.values()), plain)
    # seeds are fresh per nonce and per plan
    assert (
        self_mask_seed(keys["centre-00"], plan_sha256=PLAN, nonce=b"\x06" * 32)
        != seeds["centre-00"]
    )
