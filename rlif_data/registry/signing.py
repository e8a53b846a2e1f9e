"""Optional ed25519 signatures of version manifests: who published a version, provably.

A signed manifest carries::

    "signature": {"algorithm": "ed25519", "public_key": "<64 hex>", "value": "<128 hex>"}

over the canonical JSON of every other key of the manifest (sorted keys,
no spaces), so the file list, its content digest, the publisher, host, code
version and lineage are all covered. `pull --trust KEY` accepts only a
manifest signed by one of the trusted keys; any edit of a remote manifest
breaks the signature.

Keys are the formats OpenSSL writes: a private key is a PEM PKCS#8 file
(``openssl genpkey -algorithm ed25519``, or `generate_keypair`), a public
key a PEM SubjectPublicKeyInfo file (``openssl pkey -pubout``) or the raw
key as 64 hex digits. `cryptography` (already installed with apache-beam and
google-auth) is imported only when a key is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any, Iterable

from rlif_data import errors

SIGNATURE = "signature"
ALGORITHM = "ed25519"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX128 = re.compile(r"^[0-9a-f]{128}$")


class SignatureError(errors.RlifDataError, ValueError):
    """A manifest is unsigned, wrongly signed or signed by a key that is not trusted."""


class KeyFileError(errors.RlifDataError, ValueError):
    """A key file cannot be read as an ed25519 key."""


def _crypto():
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:  # pragma: no cover - installed with apache-beam
        raise KeyFileError("signing needs the `cryptography` package: pip install cryptography"
                        ) from None
    return serialization, ed25519


def signed_bytes(manifest: dict[str, Any]) -> bytes:
    """The bytes a signature covers: canonical JSON of the manifest without its signature. Pure."""
    body = {k: v for k, v in manifest.items() if k != SIGNATURE}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def fingerprint(public_hex: str) -> str:
    """A short name for a public key: the first 16 hex digits of its SHA-256. Pure."""
    return hashlib.sha256(bytes.fromhex(public_hex)).hexdigest()[:16]


def load_private_key(path: str):
    """An ed25519 private key from a PEM PKCS#8 file.

    Raises:
      KeyFileError: unreadable, encrypted, or not ed25519.
    """
    serialization, ed25519 = _crypto()
    try:
        with open(path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not an unencrypted PEM private key ({exc}); make one with "
                        "`rlif-data keygen` or `openssl genpkey -algorithm ed25519`") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise KeyFileError(f"{path}: not an ed25519 key; make one with `rlif-data keygen`")
    return key


def public_hex_of(private_key) -> str:
    """The raw public key (64 hex digits) of a private key."""
    serialization, _ = _crypto()
    return private_key.public_key().public_bytes(serialization.Encoding.Raw,
                                                 serialization.PublicFormat.Raw).hex()


def load_public_key(spec: str) -> str:
    """A trusted public key as 64 hex digits, from a PEM file, a file holding the hex, or the hex.

    Raises:
      KeyFileError: none of those, or not ed25519.
    """
    text = spec.strip().lower()
    if _HEX64.match(text):
        return text
    try:
        with open(spec, "rb") as f:
            data = f.read(64 << 10)
    except OSError as exc:
        raise KeyFileError(f"--trust {spec}: neither 64 hex digits nor a readable key file "
                        f"({exc.strerror})") from None
    if _HEX64.match(data.strip().decode("ascii", "replace").lower()):
        return data.strip().decode().lower()
    serialization, ed25519 = _crypto()
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{spec}: not a PEM public key ({exc}); give the .pub file "
                        "`rlif-data keygen` wrote") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise KeyFileError(f"{spec}: not an ed25519 public key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def sign_manifest(manifest: dict[str, Any], private_key) -> dict[str, Any]:
    """`manifest` with a ``signature`` over everything else in it."""
    value = private_key.sign(signed_bytes(manifest)).hex()
    return {**manifest, SIGNATURE: {"algorithm": ALGORITHM, "public_key": public_hex_of(
        private_key), "value": value}}


def signer_of(manifest: dict[str, Any], where: str) -> str:
    """The public key (hex) whose valid signature the manifest carries.

    Raises:
      SignatureError: no signature, a malformed one, or one that does not
        verify (the manifest was changed after signing).
    """
    sig = manifest.get(SIGNATURE)
    if sig is None:
        raise SignatureError(f"{where} is not signed; only versions signed by a trusted key are "
                             "accepted (publish with --sign-key, or pull without --trust)")
    if not (isinstance(sig, dict) and sig.get("algorithm") == ALGORITHM
            and isinstance(sig.get("public_key"), str) and _HEX64.match(sig["public_key"])
            and isinstance(sig.get("value"), str) and _HEX128.match(sig["value"])):
        raise SignatureError(f"{where}: malformed signature {sig!r:.200}")
    _, ed25519 = _crypto()
    from cryptography.exceptions import InvalidSignature

    key = ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(sig["public_key"]))
    try:
        key.verify(bytes.fromhex(sig["value"]), signed_bytes(manifest))
    except InvalidSignature:
        raise SignatureError(f"{where}: the signature does not match the manifest; it was "
                             "changed after signing (tampered), do not use it") from None
    return sig["public_key"]


def check_trusted(manifest: dict[str, Any], trusted: Iterable[str], where: str) -> str:
    """Refuse a manifest that is not validly signed by one of `trusted` (hex keys).

    Returns:
      The signer's public key (hex).

    Raises:
      SignatureError: unsigned, tampered, or signed by another key.
    """
    trusted = set(trusted)
    signer = signer_of(manifest, where)
    if signer not in trusted:
        raise SignatureError(f"{where} is signed by key {fingerprint(signer)}, which is not "
                             "trusted (trusted: "
                             + ", ".join(sorted(fingerprint(k) for k in trusted)) + ")")
    return signer


def generate_keypair(private_path: str, public_path: str) -> str:
    """Write a new ed25519 key pair (private key 0600, never overwriting); returns its fingerprint.

    Raises:
      FileExistsError: either file exists.
    """
    serialization, ed25519 = _crypto()
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    if os.path.lexists(public_path):
        raise FileExistsError(f"{public_path} exists; not overwriting a key")
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private)
    with open(public_path, "xb") as f:
        f.write(public)
    return fingerprint(public_hex_of(key))
