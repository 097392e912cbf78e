"""API key material: generation, hashing and parsing. No database access here."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from django.conf import settings

# Random part after the prefix: 32 bytes of entropy, URL-safe.
_SECRET_BYTES = 32
_PREFIX_RANDOM_CHARS = 8


@dataclass(frozen=True)
class GeneratedKey:
    plaintext: str
    prefix: str
    secret_hash: str


def hash_secret(plaintext: str) -> str:
    # A key carries 256 bits of entropy, so a fast hash is safe here (as for session
    # tokens); a slow password hash would put a KDF on every API request.
    return hashlib.sha256(plaintext.encode()).hexdigest()


def generate_key() -> GeneratedKey:
    head = settings.PARLA_API_KEY_PREFIX
    visible = secrets.token_urlsafe(_PREFIX_RANDOM_CHARS)[:_PREFIX_RANDOM_CHARS].replace("_", "x")
    prefix = f"{head}{visible}"
    plaintext = f"{prefix}_{secrets.token_urlsafe(_SECRET_BYTES)}"
    return GeneratedKey(plaintext=plaintext, prefix=prefix, secret_hash=hash_secret(plaintext))


def split_prefix(plaintext: str) -> str | None:
    """The visible prefix of a presented key, or None if it is not shaped like one of ours."""
    head = settings.PARLA_API_KEY_PREFIX
    if not plaintext.startswith(head) or len(plaintext) > 200:
        return None
    prefix, sep, secret = plaintext[len(head) :].partition("_")
    if not sep or not secret or len(prefix) != _PREFIX_RANDOM_CHARS:
        return None
    return f"{head}{prefix}"


def secret_matches(plaintext: str, secret_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(plaintext), secret_hash)
