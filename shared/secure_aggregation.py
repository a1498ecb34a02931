"""Double masking of summary vectors, exact modulo 2**64.

The construction follows Bonawitz et al., "Practical Secure Aggregation for
Privacy-Preserving Machine Learning" (CCS 2017, §4): pairwise masks that cancel in the
sum, plus a self-mask that only its owner can remove. Long-term keys are pinned in the
study roster instead of being advertised per round, and the self-mask seed is revealed
in a second exchange instead of being Shamir-shared:

* every pair of participants {i, j} of the set S derives a shared secret
  ``X25519(sk_i, pk_j) = X25519(sk_j, pk_i)`` (RFC 7748);
* a round key ``k_ij = HKDF-SHA256(secret, salt = nonce, info = label ‖ plan hash ‖
  roster hash ‖ SHA-256(sorted S) ‖ sorted(i, j))`` (RFC 5869): every round (fresh
  nonce), every plan, every roster and every participant set gets independent masks,
  so one nonce can never serve two sets;
* the key drives ChaCha20 (RFC 8439; key ``k_ij``, zero counter and nonce — the key
  itself is never reused) whose keystream is read as little-endian uint64 words
  ``m_ij``;
* node i draws a fresh 32-byte self-mask seed ``b_i`` from the operating system's
  CSPRNG for every answer and commits to it (``SHA-256(label ‖ b_i)``, sent with the
  masked vector);
* node i sends ``y_i = x_i + PRG(b_i) + Σ_{j>i} m_ij − Σ_{j<i} m_ij  (mod 2**64)``,
  names ordered by code point.

Every ``m_ij`` is added once (by the smaller name) and subtracted once (by the
larger), so ``Σ_i y_i = Σ_i x_i + Σ_i PRG(b_i) (mod 2**64)``: the pooled summary
appears only once every participant has revealed ``b_i``. Read back as two's-complement
int64 this is the exact integer sum whenever the true sum fits in int64. See
docs/secure-aggregation.md for the threat model.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

#: Domain-separation label of the pairwise mask (part of the HKDF info).
PAIRWISE_MASK_LABEL = b"sscjak.pairwise-mask/2"
#: Domain-separation label of the commitment to a self-mask seed.
SELF_MASK_COMMITMENT_LABEL = b"sscjak.self-mask-commitment/1"
#: Bytes of a ChaCha20 key.
_KEY_BYTES = 32
#: ChaCha20's 16-byte counter ‖ nonce block in ``cryptography``: all zero, since every
#: round key is used for exactly one keystream.
_ZERO_COUNTER_NONCE = bytes(16)


class MaskingError(ValueError):
    """The masking inputs are inconsistent (unknown peer, bad nonce, bad vector)."""


def participant_set_digest(participants: Iterable[str]) -> bytes:
    """SHA-256 of the sorted participant names, each length-prefixed: binds the set S."""
    names = sorted(participants)
    return hashlib.sha256(
        b"".join(len(n.encode("utf-8")).to_bytes(2, "big") + n.encode("utf-8") for n in names)
    ).digest()


def pairwise_mask_key(
    own_private_key: X25519PrivateKey,
    peer_public_key: X25519PublicKey,
    *,
    own_name: str,
    peer_name: str,
    plan_sha256: str,
    roster_sha256: str,
    participants: Iterable[str],
    nonce: bytes,
) -> bytes:
    """The 32-byte round key ``k_ij`` shared by ``own_name`` and ``peer_name``.

    ``HKDF-SHA256(X25519(sk_own, pk_peer), salt=nonce,
    info=label ‖ plan ‖ roster ‖ SHA-256(sorted S) ‖ i ‖ j)`` (RFC 7748, RFC 5869) with
    ``i < j`` the two names sorted; every part of ``info`` is length-prefixed so distinct
    inputs never give the same ``info``. Both members of a pair compute the same key
    only when they were told the same plan, roster and participant set. Raises
    ``ValueError`` (from ``cryptography``) if the peer key is a low-order point giving an
    all-zero secret.
    """
    if own_name == peer_name:
        raise MaskingError("a node has no pairwise mask with itself")
    if len(nonce) < 16:
        raise MaskingError("the round nonce must be at least 16 bytes")
    shared_secret = own_private_key.exchange(peer_public_key)
    first, second = sorted((own_name, peer_name))
    info = PAIRWISE_MASK_LABEL + b"".join(
        len(part).to_bytes(2, "big") + part
        for part in (
            plan_sha256.encode("ascii"),
            roster_sha256.encode("ascii"),
            participant_set_digest(participants),
            first.encode("utf-8"),
            second.encode("utf-8"),
        )
    )
    return HKDF(algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=nonce, info=info).derive(
        shared_secret
    )


def mask_stream(key: bytes, length: int) -> np.ndarray:
    """``length`` pseudo-random uint64 words (read-only): the ChaCha20 keystream (RFC 8439)."""
    if length < 0:
        raise MaskingError("a mask cannot have a negative length")
    encryptor = Cipher(algorithms.ChaCha20(key, _ZERO_COUNTER_NONCE), mode=None).encryptor()
    keystream = encryptor.update(bytes(8 * length))
    # a read-only view, no copy: the words are little-endian on every platform
    return np.frombuffer(keystream, dtype="<u8")


def mask_summary(
    summary: np.ndarray,
    *,
    own_name: str,
    own_private_key: X25519PrivateKey,
    participant_keys: Mapping[str, X25519PublicKey],
    plan_sha256: str,
    roster_sha256: str,
    nonce: bytes,
    self_mask_seed: bytes,
) -> np.ndarray:
    """The node's masked summary ``y_i`` (uint64), to be sent instead of ``summary``.

    ``participant_keys`` maps every member of the participant set S (this node
    included) to its pinned X25519 public key. The pairwise masks of all pairs cancel
    in :func:`sum_masked` over the whole of S; the self-mask ``PRG(b_i)`` is removed only
    with the seed, which the node reveals in the second exchange
    (docs/secure-aggregation.md).
    """
    vector = np.asarray(summary)
    if vector.ndim != 1 or vector.dtype != np.int64:
        raise MaskingError("the summary must be a one-dimensional int64 vector")
    if own_name not in participant_keys:
        raise MaskingError(f"{own_name!r} is not in the participant set")
    masked = vector.astype(np.int64).view(np.uint64).copy()
    for peer_name, peer_key in participant_keys.items():
        if peer_name == own_name:
            continue
        key = pairwise_mask_key(
            own_private_key,
            peer_key,
            own_name=own_name,
            peer_name=peer_name,
            plan_sha256=plan_sha256,
            roster_sha256=roster_sha256,
            participants=participant_keys,
            nonce=nonce,
        )
        stream = mask_stream(key, vector.size)
        # uint64 arithmetic in numpy wraps modulo 2**64, which is what we want here
        if own_name < peer_name:
            masked += stream
        else:
            masked -= stream
    masked += self_mask(self_mask_seed, vector.size)
    return masked


def new_self_mask_seed() -> bytes:
    """A fresh 32-byte self-mask seed ``b_i`` from the operating system's CSPRNG.

    Fresh for every answer, so two answers never share a self-mask (not even two
    answers to a replayed nonce); the node keeps it until it reveals it or forgets it.
    """
    return secrets.token_bytes(_KEY_BYTES)


def self_mask_commitment(seed: bytes) -> str:
    """``SHA-256(label ‖ b_i)`` in hex: sent with the masked vector, checked at the reveal.

    A node that reveals a seed other than the one it masked with is named by the
    coordinator instead of silently corrupting the pooled sum.
    """
    if len(seed) != _KEY_BYTES:
        raise MaskingError(f"a self-mask seed has {_KEY_BYTES} bytes, got {len(seed)}")
    return hashlib.sha256(SELF_MASK_COMMITMENT_LABEL + seed).hexdigest()


def self_mask(seed: bytes, length: int) -> np.ndarray:
    """``PRG(b_i)``: the ChaCha20 keystream of the seed as ``length`` uint64 words."""
    if len(seed) != _KEY_BYTES:
        raise MaskingError(f"a self-mask seed has {_KEY_BYTES} bytes, got {len(seed)}")
    return mask_stream(seed, length)


def remove_self_masks(pooled: np.ndarray, seeds: Iterable[bytes]) -> np.ndarray:
    """``Σ y_i − Σ PRG(b_i) mod 2**64`` as int64: the pooled summary once seeds are revealed."""
    total = np.asarray(pooled).view(np.uint64).copy()
    for seed in seeds:
        total -= self_mask(seed, total.size)
    return total.view(np.int64)


def masked_to_bytes(masked: np.ndarray) -> bytes:
    """Serialise a masked vector as unsigned 64-bit little-endian words."""
    return np.asarray(masked, dtype=np.uint64).astype("<u8").tobytes()


def masked_from_bytes(data: bytes, length: int) -> np.ndarray:
    """Read back a masked vector of exactly ``length`` words; raise on any other size."""
    if len(data) != 8 * length:
        raise MaskingError(f"expected {8 * length} bytes ({length} words), got {len(data)}")
    return np.frombuffer(data, dtype="<u8").astype(np.uint64)


def sum_masked(vectors: Iterable[np.ndarray]) -> np.ndarray:
    """``Σ y_i mod 2**64``, read as two's-complement int64 (still self-masked).

    The pairwise masks of a complete participant set cancel here; what remains is the
    exact integer sum of the summaries plus every node's self-mask, which
    :func:`remove_self_masks` takes off once the seeds are revealed.
    """
    total: np.ndarray | None = None
    for vector in vectors:
        words = np.asarray(vector)
        if words.dtype == np.int64:
            words = words.view(np.uint64)
        words = words.astype(np.uint64, copy=False)
        if total is None:
            total = words.copy()
        elif words.shape != total.shape:
            raise MaskingError(f"vectors of different lengths: {total.size} and {words.size}")
        else:
            total += words
    if total is None:
        raise MaskingError("nothing to sum")
    return total.view(np.int64)
