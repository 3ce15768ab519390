"""Contact identities without plain personal data: normalisation, blind index, encryption
under the subject's own data key, so that erasing the key erases the address everywhere.

Design: docs/developers/design/identities.md
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import re
import unicodedata
from collections.abc import Iterable
from typing import Final

import idna
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from schemas.events import IDENTIFIER_TYPES

EMAIL: Final = "email"
PHONE: Final = "phone"

_CIPHER_VERSION: Final = b"\x01"
_NONCE_BYTES: Final = 12
_LOCAL_RE: Final = re.compile(r"[^\s@<>()\[\]\\,;:\"]{1,64}")
_LABEL_RE: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_PHONE_DROP: Final = re.compile(r"[\s.\-/()]")
_PHONE_RE: Final = re.compile(r"\+[1-9][0-9]{7,14}")
#: longest phone number text taken, spaces and punctuation included
MAX_PHONE_TEXT: Final = 64


class IdentifierError(ValueError):
    """The value is not a usable identifier; the message says why without repeating it."""


def normalise_email(text: str) -> str:
    value = unicodedata.normalize("NFC", text.strip()).lower()
    if any(unicodedata.category(ch).startswith("C") for ch in value):
        raise IdentifierError("contains control or invisible format characters")
    if len(value) > 254 or value.count("@") != 1:
        raise IdentifierError("must be one e-mail address of at most 254 characters")
    local, domain = value.split("@")
    if not _LOCAL_RE.fullmatch(local) or local.startswith(".") or local.endswith("."):
        raise IdentifierError("the part before @ is not a valid mailbox name")
    ascii_domain = _ascii_domain(domain)
    if ascii_domain is None:
        raise IdentifierError("the domain is not a valid domain name")
    return f"{local}@{ascii_domain}"


@functools.lru_cache(maxsize=4096)
def _ascii_domain(domain: str) -> str | None:
    """The domain's IDNA ASCII form, or None; cached, as a mailing list repeats few domains."""
    try:
        # UTS 46 / IDNA 2008, non-transitional: `faß.de` stays `xn--fa-hia.de`, as browsers
        # and mail servers resolve it, instead of IDNA 2003's `fass.de`, another domain
        ascii_domain = idna.encode(domain, uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_LABEL_RE.fullmatch(label) for label in labels):
        return None
    return ascii_domain


def normalise_phone(text: str) -> str:
    if len(text) > MAX_PHONE_TEXT:
        raise IdentifierError(f"must be a phone number of at most {MAX_PHONE_TEXT} characters")
    # `+49 (0)151 ...`: the bracketed 0 is the national trunk prefix, never dialled from abroad
    value = _PHONE_DROP.sub("", text.strip().replace("(0)", ""))
    if value.startswith("00"):
        value = "+" + value[2:]
    if not _PHONE_RE.fullmatch(value):
        raise IdentifierError("must be an international number: + and 8-15 digits (E.164)")
    return value


def normalise(identifier_type: str, text: str) -> str:
    if identifier_type == EMAIL:
        return normalise_email(text)
    if identifier_type == PHONE:
        return normalise_phone(text)
    raise IdentifierError(f"unknown identifier type; accepted: {', '.join(IDENTIFIER_TYPES)}")


def blind_index(key: bytes, identifier_type: str, normalised: str) -> bytes:
    """HMAC-SHA256 of the type and normalised value: equal values, equal index; 32 bytes."""
    return hmac.digest(key, f"{identifier_type}:{normalised}".encode(), "sha256")


def email_indexes(emails: Iterable[str], key: bytes) -> dict[str, bytes]:
    """Blind index of each distinct address as given; addresses that do not normalise are
    left out (a batch check answers them `invalid_address`)."""
    out: dict[str, bytes] = {}
    for email in dict.fromkeys(emails):
        try:
            out[email] = blind_index(key, EMAIL, normalise_email(email))
        except IdentifierError:
            continue
    return out


def derived_subject_id(key: bytes, identifier_type: str, normalised: str) -> str:
    """A stable pseudonymous subject id for an identifier seen for the first time (imports):
    re-running an import, or two running at once, can never invent a second subject."""
    mac = hmac.new(key, f"subject-id|{identifier_type}:{normalised}".encode(), hashlib.sha256)
    return "s-" + base64.b32encode(mac.digest()[:15]).decode("ascii").lower()


def _aad(subject_id: str, identifier_type: str) -> bytes:
    return f"ledger-identifier|{subject_id}|{identifier_type}".encode()


def encrypt_identifier(
    data_key: bytes, subject_id: str, identifier_type: str, normalised: str
) -> bytes:
    """Version byte, nonce, AES-GCM ciphertext; bound to the subject and type by the AAD."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(data_key).encrypt(nonce, normalised.encode(), _aad(subject_id, identifier_type))
    return _CIPHER_VERSION + nonce + sealed


def decrypt_identifier(
    data_key: bytes, subject_id: str, identifier_type: str, ciphertext: bytes
) -> str:
    if ciphertext[:1] != _CIPHER_VERSION:
        raise IdentifierError("unknown identifier ciphertext version")
    nonce, sealed = ciphertext[1 : 1 + _NONCE_BYTES], ciphertext[1 + _NONCE_BYTES :]
    try:
        plain = AESGCM(data_key).decrypt(nonce, sealed, _aad(subject_id, identifier_type))
    except InvalidTag:
        raise IdentifierError("the identifier cannot be decrypted with this key") from None
    return plain.decode()
