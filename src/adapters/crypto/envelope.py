"""AES-256-GCM: data keys wrapped by the master key, and values sealed by a data key.

A sealed value is `base64(nonce || ciphertext || tag)` of its JSON, bound to the customer
whose key sealed it (the associated data), so a value copied under another customer's key
never opens.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import os
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["DEV_MASTER_KEY", "DataKey", "MasterKey", "SealBroken"]

_NONCE = 12
_KEY = 32  # AES-256
DEV_MASTER_KEY = "chorus-dev-master-key"
"""The master key when none is set: for tests and a first try only (docs/erasure.md)."""

_encode = msgspec.json.encode
_decode = msgspec.json.decode


class _Nonces:
    """Random 96-bit nonces, drawn from the system's CSPRNG 4,096 at a time: a call of
    `os.urandom` costs more than the AES-GCM operation it is for. A forked child starts with
    none, so no two processes ever share one."""

    _BATCH = 4096 * _NONCE

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._pool, self._at = b"", 0

    def __call__(self) -> bytes:
        at = self._at
        if at >= len(self._pool):
            self._pool, at = os.urandom(self._BATCH), 0
        self._at = at + _NONCE
        return self._pool[at : at + _NONCE]


_nonce = _Nonces()


class SealBroken(ValueError):
    """A sealed value or wrapped key did not open: another key, or changed bytes."""


class MasterKey:
    """Wraps and unwraps data keys; from a setting, any text (stretched to 256 bits)."""

    def __init__(self, secret: str) -> None:
        if not secret:
            msg = "the master key is empty"
            raise ValueError(msg)
        self._aead = AESGCM(hashlib.sha256(secret.encode()).digest())
        self._digests = hashlib.sha256(b"chorus identity digests\x00" + secret.encode()).digest()

    def digest(self, text: str) -> bytes:
        """A keyed digest of `text` (an identity), to find its key by without storing it."""
        return hmac.digest(self._digests, text.encode(), "sha256")

    def new_wrapped(self, customer_id: UUID) -> bytes:
        """A fresh data key for a customer, wrapped."""
        return self.new_key(customer_id)[0]

    def new_key(self, customer_id: UUID) -> tuple[bytes, DataKey]:
        """A fresh data key for a customer: wrapped, to store, and ready to use."""
        return self.new_keys([customer_id])[0]

    def new_keys(self, customer_ids: Sequence[UUID]) -> list[tuple[bytes, DataKey]]:
        """`new_key` of each, their 256 bits drawn from the system's CSPRNG in one call: a
        batch registers many customers, and a call costs about as much as wrapping a key."""
        drawn = os.urandom(_KEY * len(customer_ids))
        made: list[tuple[bytes, DataKey]] = []
        for n, customer_id in enumerate(customer_ids):
            key = drawn[n * _KEY : (n + 1) * _KEY]
            nonce = _nonce()
            wrapped = nonce + self._aead.encrypt(nonce, key, customer_id.bytes)
            made.append((wrapped, DataKey(customer_id, key, wrapped)))
        return made

    def unwrap(self, customer_id: UUID, wrapped: bytes) -> DataKey:
        try:
            key = self._aead.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], customer_id.bytes)
        except InvalidTag:
            raise SealBroken(f"the key of customer {customer_id} does not open") from None
        return DataKey(customer_id, key, wrapped)


class DataKey:
    """One customer's key: seals and opens their personal values."""

    __slots__ = ("_aead", "_bound", "customer_id", "id_str", "id_text", "wrapped")

    def __init__(self, customer_id: UUID, key: bytes, wrapped: bytes = b"") -> None:
        self.customer_id = customer_id
        self.wrapped = wrapped  # as stored, to know it again without unwrapping it
        # The id as text, made once: a UUID's `str` costs as much as sealing a short value.
        self.id_str = str(customer_id)
        self.id_text = self.id_str.encode("ascii")
        self._aead = AESGCM(key)
        self._bound = customer_id.bytes

    def seal(self, value: Any) -> str:
        return self.seal_json(_encode(value))

    def seal_json(self, value: bytes) -> str:
        """`seal` of a value given as its JSON."""
        return self.seal_json_text(value).decode("ascii")

    def seal_json_text(self, value: bytes) -> bytes:
        """`seal_json`, its text as ASCII bytes: for a payload being put together as bytes."""
        nonce = _nonce()
        return binascii.b2a_base64(
            nonce + self._aead.encrypt(nonce, value, self._bound), newline=False
        )

    def seal_raw(self, value: bytes, bound: bytes) -> bytes:
        """`value` sealed as raw bytes (`nonce || ciphertext || tag`), bound to `bound` (the
        caller's header, which names this customer): no base64, for documents stored whole."""
        nonce = _nonce()
        return nonce + self._aead.encrypt(nonce, value, bound)

    def open_raw(self, sealed: bytes, bound: bytes) -> bytes:
        """The bytes `seal_raw` sealed with the same `bound`."""
        try:
            return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], bound)
        except (InvalidTag, ValueError):
            raise SealBroken(
                f"a value sealed for customer {self.customer_id} does not open"
            ) from None

    @property
    def bound_to(self) -> bytes:
        """The customer's id as bytes: what every sealed value is bound to, first."""
        return self._bound

    def open(self, sealed: Any) -> Any:
        return _decode(self.open_json(sealed))

    def open_json(self, sealed: Any) -> bytes:
        """The JSON of a sealed value, as it was sealed."""
        if not isinstance(sealed, str):
            raise SealBroken(f"a sealed value of customer {self.customer_id} is not text")
        try:
            # As `base64.b64decode(sealed, validate=True)`, without its check by a regular
            # expression: strict mode refuses any character out of the alphabet too.
            raw = binascii.a2b_base64(sealed, strict_mode=True)
            return self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], self._bound)
        except (InvalidTag, ValueError):
            raise SealBroken(
                f"a value sealed for customer {self.customer_id} does not open"
            ) from None
