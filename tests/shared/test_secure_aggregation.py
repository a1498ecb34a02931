"""Double masking: exact cancellation once the self-masks are removed, freshness per round,
uniform-looking masked vectors, keys bound to plan, roster and participant set, and the
self-mask seed's commitment."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sscjak.shared.secure_aggregation import (
    SELF_MASK_COMMITMENT_LABEL,
    MaskingError,
    mask_stream,
    mask_summary,
    masked_from_bytes,
    masked_to_bytes,
    new_self_mask_seed,
    pairwise_mask_key,
    participant_set_digest,
    remove_self_masks,
    self_mask,
    self_mask_commitment,
    sum_masked,
)

PLAN = hashlib.sha256(b"a plan").hexdigest()
ROSTER = hashlib.sha256(b"a roster").hexdigest()
OTHER_ROSTER = hashlib.sha256(b"another roster").hexdigest()


def _keys(count: int, seed: int) -> dict[str, X25519PrivateKey]:
    """Deterministic node keys (seeded) so that statistical tests never flake."""
    rng = np.random.default_rng(seed)
    return {
        f"centre-{i:02d}": X25519PrivateKey.from_private_bytes(rng.bytes(32)) for i in range(count)
    }


def _seeds(names: Iterable[str], seed: int) -> dict[str, bytes]:
    """Deterministic self-mask seeds (seeded) so that statistical tests never flake."""
    rng = np.random.default_rng(seed)
    return {name: rng.bytes(32) for name in names}


def _mask_all(
    vectors: dict[str, np.ndarray],
    keys: dict[str, X25519PrivateKey],
    nonce: bytes,
    seeds: dict[str, bytes],
    *,
    roster_sha256: str = ROSTER,
) -> dict[str, np.ndarray]:
    """Every node of ``vectors`` masks its vector for the participant set ``keys``."""
    public = {name: key.public_key() for name, key in keys.items()}
    return {
        name: mask_summary(
            vector,
            own_name=name,
            own_private_key=keys[name],
            participant_keys=public,
            plan_sha256=PLAN,
            roster_sha256=roster_sha256,
            nonce=nonce,
            self_mask_seed=seeds[name],
        )
        for name, vector in vectors.items()
    }


def _plain_sum(vectors: Iterable[np.ndarray]) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.sum(np.stack(list(vectors)), axis=0, dtype=np.int64)


@settings(max_examples=25, deadline=None)
@given(
    nodes=st.integers(min_value=3, max_value=12),
    length=st.integers(min_value=1, max_value=300),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_masks_cancel_exactly_once_every_self_mask_is_removed(
    nodes: int, length: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    keys = _keys(nodes, seed)
    # the full int64 range: the sum must be exact modulo 2**64 even when it wraps
    vectors = {
        name: rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, length, np.int64)
        for name in keys
    }
    seeds = {name: new_self_mask_seed() for name in keys}
    masked = _mask_all(vectors, keys, rng.bytes(32), seeds)
    pooled = remove_self_masks(sum_masked(masked.values()), seeds.values())
    plain = _plain_sum(vectors.values())
    assert pooled.dtype == np.int64
    np.testing.assert_array_equal(pooled, plain)
    # the pairwise masks alone cancel: the masked sum is the plain sum plus the self-masks
    with np.errstate(over="ignore"):
        self_masks = sum_masked(self_mask(seeds[name], length) for name in keys)
        np.testing.assert_array_equal(sum_masked(masked.values()), plain + self_masks)
    # and no single masked vector equals its plain vector
    for name in keys:
        assert not np.array_equal(masked[name].view(np.int64), vectors[name])


def test_pairwise_masks_do_not_cancel_without_every_participant() -> None:
    keys = _keys(4, 7)
    seeds = _seeds(keys, 7)
    vectors = {name: np.arange(50, dtype=np.int64) for name in keys}
    masked = _mask_all(vectors, keys, b"\x01" * 32, seeds)
    present = [name for name in keys if name != "centre-02"]
    # even with the self-masks of the three present nodes removed
    partial = remove_self_masks(
        sum_masked(masked[name] for name in present), (seeds[name] for name in present)
    )
    assert not np.array_equal(partial, 3 * np.arange(50, dtype=np.int64))
    # equal words would be a 2**-64 accident per word
    assert np.count_nonzero(partial == 3 * np.arange(50, dtype=np.int64)) == 0


def test_self_masks_hide_the_sum_until_every_seed_is_revealed() -> None:
    keys = _keys(4, 21)
    nonce = b"\x05" * 32
    vectors = {name: np.arange(200, dtype=np.int64) * (i + 1) for i, name in enumerate(keys)}
    seeds = {name: new_self_mask_seed() for name in keys}
    masked = _mask_all(vectors, keys, nonce, seeds)
    plain = sum(vectors.values())
    pooled = sum_masked(masked.values())
    assert np.count_nonzero(pooled == plain) == 0
    all_but_one = remove_self_masks(pooled, list(seeds.values())[:-1])
    assert np.count_nonzero(all_but_one == plain) == 0
    # a seed other than the one masked with (its commitment would not match) is no use
    wrong = [*list(seeds.values())[:-1], new_self_mask_seed()]
    assert np.count_nonzero(remove_self_masks(pooled, wrong) == plain) == 0
    np.testing.assert_array_equal(remove_self_masks(pooled, seeds.values()), plain)


def test_masked_vectors_differ_between_rounds_for_the_same_data() -> None:
    keys = _keys(3, 11)
    vectors = {name: np.full(1000, 5, dtype=np.int64) for name in keys}
    # the same self-mask seeds in both rounds: the fresh nonce alone changes every word
    seeds = _seeds(keys, 11)
    first = _mask_all(vectors, keys, b"\x01" * 32, seeds)
    second = _mask_all(vectors, keys, b"\x02" * 32, seeds)
    for name in keys:
        # equal words would be a 2**-64 accident per word
        assert np.count_nonzero(first[name] == second[name]) == 0


def test_masked_vectors_differ_between_answers_to_one_nonce() -> None:
    """A replayed nonce gets a different answer: every answer draws a fresh self-mask seed."""
    keys = _keys(3, 12)
    vectors = {name: np.full(1000, 5, dtype=np.int64) for name in keys}
    nonce = b"\x03" * 32
    first = _mask_all(vectors, keys, nonce, {name: new_self_mask_seed() for name in keys})
    second = _mask_all(vectors, keys, nonce, {name: new_self_mask_seed() for name in keys})
    for name in keys:
        assert np.count_nonzero(first[name] == second[name]) == 0


def _top_byte_chi_square_p(words: np.ndarray) -> float:
    top_bytes = (words.astype(np.uint64) >> np.uint64(56)).astype(np.int64)
    observed = np.bincount(top_bytes, minlength=256)
    return float(stats.chisquare(observed).pvalue)


def _assert_looks_uniform(words: np.ndarray, length: int) -> None:
    # chi-square on the top byte: 256 equally likely values for a uniform word
    assert _top_byte_chi_square_p(words) > 1e-4
    # every one of the 64 bit positions is set about half of the time (±5 SD)
    bits = np.unpackbits(words.astype("<u8").view(np.uint8)).reshape(length, 64)
    frequencies = bits.mean(axis=0)
    bound = 5 * 0.5 / np.sqrt(length)
    assert np.all(np.abs(frequencies - 0.5) < bound)


def test_masked_summary_looks_uniform_and_plain_summary_does_not() -> None:
    # a summary-like vector: mostly zeros and small counts, like the real layout
    rng = np.random.default_rng(3)
    length = 40_000
    summary = np.where(rng.random(length) < 0.9, 0, rng.integers(0, 50, length)).astype(np.int64)
    keys = _keys(5, 5)
    seeds = _seeds(keys, 5)
    vectors = {name: summary.copy() for name in keys}
    masked = _mask_all(vectors, keys, rng.bytes(32), seeds)["centre-02"]

    _assert_looks_uniform(masked, length)
    # each mask hides the summary on its own: the pairwise masks without the self-mask …
    _assert_looks_uniform(masked - self_mask(seeds["centre-02"], length), length)
    # … and the self-mask without the pairwise masks
    _assert_looks_uniform(summary.view(np.uint64) + self_mask(seeds["centre-02"], length), length)

    assert _top_byte_chi_square_p(summary.view(np.uint64)) < 1e-100
    plain_bits = np.unpackbits(summary.astype("<u8").view(np.uint8)).reshape(length, 64)
    assert np.any(np.abs(plain_bits.mean(axis=0) - 0.5) >= 5 * 0.5 / np.sqrt(length))


def test_pairwise_key_is_shared_and_bound_to_plan_roster_set_nonce_and_pair() -> None:
    keys = _keys(4, 1)
    a, b, c, d = keys
    nonce = b"\x09" * 32
    three = (a, b, c)

    def key(
        own: str,
        peer: str,
        plan: str = PLAN,
        roster: str = ROSTER,
        participants: Iterable[str] = three,
        round_nonce: bytes = nonce,
    ) -> bytes:
        return pairwise_mask_key(
            keys[own],
            keys[peer].public_key(),
            own_name=own,
            peer_name=peer,
            plan_sha256=plan,
            roster_sha256=roster,
            participants=participants,
            nonce=round_nonce,
        )

    assert key(a, b) == key(b, a)
    assert len(key(a, b)) == 32
    assert key(a, b) != key(a, c)
    assert key(a, b) != key(a, b, plan=hashlib.sha256(b"other plan").hexdigest())
    assert key(a, b) != key(a, b, round_nonce=b"\x0a" * 32)
    # same nonce, same pair: another roster or another participant set is another key
    assert key(a, b) != key(a, b, roster=OTHER_ROSTER)
    assert key(a, b) != key(a, b, participants=(a, b, c, d))
    assert key(a, b) != key(a, b, participants=(a, b, d))
    # the set is a set: its order (or being a mapping's keys) does not matter
    assert key(a, b) == key(b, a, participants=(c, a, b))
    assert key(a, b) == key(a, b, participants={name: None for name in reversed(three)})
    with pytest.raises(MaskingError):
        key(a, a)


def test_participant_set_digest_binds_the_set_and_nothing_else() -> None:
    assert participant_set_digest(["a", "b", "c"]) == participant_set_digest(["c", "a", "b"])
    assert len(participant_set_digest(["a", "b", "c"])) == 32
    assert participant_set_digest(["a", "b", "c"]) != participant_set_digest(["a", "b"])
    assert participant_set_digest(["a", "b", "c"]) != participant_set_digest(["a", "b", "d"])
    # names are length-prefixed: no two sets share one concatenation
    assert participant_set_digest(["ab", "c"]) != participant_set_digest(["a", "bc"])
    assert participant_set_digest(["abc"]) != participant_set_digest(["a", "b", "c"])


def test_masks_for_two_participant_sets_under_one_nonce_do_not_cancel() -> None:
    """A coordinator telling nodes different sets under one nonce gets noise.

    Under one nonce, a is told {a, b, c}, d is told {b, c, d}, and b and c are told
    {a, b, c, d}: every pair is masked by both of its members or by neither, so were
    the keys not bound to the set the four vectors would add up to the plain sum.
    """
    keys = _keys(4, 31)
    a, b, c, d = keys
    nonce = b"\x07" * 32
    length = 500
    rng = np.random.default_rng(31)
    vectors = {name: rng.integers(0, 1000, length, dtype=np.int64) for name in keys}
    seeds = _seeds(keys, 31)
    public = {name: key.public_key() for name, key in keys.items()}
    told = {a: (a, b, c), b: (a, b, c, d), c: (a, b, c, d), d: (b, c, d)}

    def masked(name: str) -> np.ndarray:
        return mask_summary(
            vectors[name],
            own_name=name,
            own_private_key=keys[name],
            participant_keys={n: public[n] for n in told[name]},
            plan_sha256=PLAN,
            roster_sha256=ROSTER,
            nonce=nonce,
            self_mask_seed=seeds[name],
        )

    def by_hand(name: str, bound_to: tuple[str, ...]) -> np.ndarray:
        """``masked(name)``'s construction, its pair keys bound to the set ``bound_to``."""
        words = vectors[name].view(np.uint64) + self_mask(seeds[name], length)
        for peer in told[name]:
            if peer == name:
                continue
            key = pairwise_mask_key(
                keys[name],
                public[peer],
                own_name=name,
                peer_name=peer,
                plan_sha256=PLAN,
                roster_sha256=ROSTER,
                participants=bound_to,
                nonce=nonce,
            )
            if name < peer:
                words += mask_stream(key, length)
            else:
                words -= mask_stream(key, length)
        return words

    plain = _plain_sum(vectors.values())
    pooled = remove_self_masks(sum_masked(masked(name) for name in keys), seeds.values())
    assert np.count_nonzero(pooled == plain) == 0

    # the control: built by hand with the set each node was told, the vectors are the
    # ones above; built with every key bound to one set, they cancel — so the binding
    # of the key to the set is what keeps the mixed sum masked
    for name in keys:
        np.testing.assert_array_equal(by_hand(name, told[name]), masked(name))
    one_set = (a, b, c, d)
    unbound = sum_masked(by_hand(name, one_set) for name in keys)
    np.testing.assert_array_equal(remove_self_masks(unbound, seeds.values()), plain)


def test_masks_under_two_rosters_do_not_cancel() -> None:
    keys = _keys(3, 41)
    vectors = {name: np.arange(100, dtype=np.int64) for name in keys}
    seeds = _seeds(keys, 41)
    nonce = b"\x08" * 32
    under_one = _mask_all(vectors, keys, nonce, seeds)
    under_other = _mask_all(vectors, keys, nonce, seeds, roster_sha256=OTHER_ROSTER)
    plain = _plain_sum(vectors.values())
    mixed = [under_one["centre-00"], under_other["centre-01"], under_other["centre-02"]]
    assert np.count_nonzero(remove_self_masks(sum_masked(mixed), seeds.values()) == plain) == 0
    for masked in (under_one, under_other):
        pooled = remove_self_masks(sum_masked(masked.values()), seeds.values())
        np.testing.assert_array_equal(pooled, plain)


def test_self_mask_commitment_matches_its_seed_and_no_other() -> None:
    seed = bytes(range(32))
    commitment = self_mask_commitment(seed)
    assert commitment == hashlib.sha256(SELF_MASK_COMMITMENT_LABEL + seed).hexdigest()
    assert len(commitment) == 64 and commitment == commitment.lower()
    int(commitment, 16)
    assert self_mask_commitment(bytes(seed)) == commitment  # deterministic
    # one flipped bit, another seed: another commitment
    assert self_mask_commitment(bytes([seed[0] ^ 1]) + seed[1:]) != commitment
    assert self_mask_commitment(new_self_mask_seed()) != commitment
    # domain-separated: not the bare hash of the seed
    assert commitment != hashlib.sha256(seed).hexdigest()
    for size in (0, 31, 33):
        with pytest.raises(MaskingError):
            self_mask_commitment(bytes(size))


def test_new_self_mask_seeds_are_32_random_bytes_and_distinct() -> None:
    seeds = [new_self_mask_seed() for _ in range(1000)]
    assert all(isinstance(seed, bytes) and len(seed) == 32 for seed in seeds)
    assert len(set(seeds)) == len(seeds)
    assert len({self_mask_commitment(seed) for seed in seeds}) == len(seeds)
    # the bits of 1000 seeds are set about half of the time (±5 SD)
    bits = np.unpackbits(np.frombuffer(b"".join(seeds), dtype=np.uint8))
    assert abs(bits.mean() - 0.5) < 5 * 0.5 / np.sqrt(bits.size)


def test_self_mask_is_the_seeds_keystream_and_checks_the_seed_length() -> None:
    seed = bytes(range(32))
    np.testing.assert_array_equal(self_mask(seed, 50), mask_stream(seed, 50))
    with pytest.raises(MaskingError):
        self_mask(bytes(31), 5)


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


def test_mask_summary_rejects_a_non_int64_vector_an_absent_node_and_a_bad_seed() -> None:
    keys = _keys(3, 2)
    public = {name: key.public_key() for name, key in keys.items()}

    def mask(summary: np.ndarray, own_name: str, seed: bytes = bytes(32)) -> np.ndarray:
        return mask_summary(
            summary,
            own_name=own_name,
            own_private_key=keys["centre-00"],
            participant_keys=public,
            plan_sha256=PLAN,
            roster_sha256=ROSTER,
            nonce=bytes(32),
            self_mask_seed=seed,
        )

    with pytest.raises(MaskingError):
        mask(np.zeros(3, dtype=np.float64), "centre-00")
    with pytest.raises(MaskingError):
        mask(np.zeros(3, dtype=np.int64), "centre-99")
    with pytest.raises(MaskingError):
        mask(np.zeros(3, dtype=np.int64), "centre-00", seed=bytes(31))


def test_sum_masked_rejects_mismatched_lengths_and_nothing() -> None:
    with pytest.raises(MaskingError):
        sum_masked([np.zeros(3, np.uint64), np.zeros(4, np.uint64)])
    with pytest.raises(MaskingError):
        sum_masked([])
