"""Signed rows in the shared index (the Nix model): a writer signs a manifest of the rows it adds, with
one call to a signing service per push; readers verify offline with the public key.

- A *row digest* is the sha256 of a row's canonical encoding: its table and every column as pkg
  checks it (JSON columns re-encoded with sorted keys), so the same facts give the same digest on
  every machine, whichever writer stored them.
- A *manifest* is canonical JSON: `{"format": MANIFEST_FORMAT, "key": <signing key id>, "rows":
  [sorted row digests]}`. Its signature is over its sha256 (KMS `MessageType=DIGEST`: a manifest of
  thousands of rows is far above the 4 KB KMS signs raw).
- Signatures live in the shared index itself, table `signatures` (SIGNATURES_SQL): one row per
  signed push, uploaded with the same conditional write as the rows, so rows and their signatures
  never disagree between two objects.

A reader trusts one public key (`PublicKey`): a row is signed when a manifest that verifies under
that key lists its digest. Which algorithm a signature claims is only accepted if that key can make
it. `cryptography` is imported on first verification only: a command that never verifies doesn't pay.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Protocol, Sequence

from cache.index import ArtifactRecord

__all__ = [
    "MANIFEST_FORMAT",
    "MAX_MANIFEST_BYTES",
    "SIGNATURE_COLUMNS",
    "SIGNATURES_SQL",
    "SIGNATURES_TABLE",
    "PublicKey",
    "PublicKeyError",
    "SignatureRow",
    "Signer",
    "SigningDenied",
    "SigningError",
    "SignedRows",
    "artifact_digest",
    "check_signature_row",
    "make_manifest",
    "manifest_rows",
    "published_digest",
    "row_digest",
    "sign_rows",
    "verify_signatures",
]

MANIFEST_FORMAT = "pkg-shared-rows/1"
SIGNATURES_TABLE = "signatures"
SIGNATURES_SQL = (
    f"CREATE TABLE IF NOT EXISTS {SIGNATURES_TABLE} ("
    " digest TEXT PRIMARY KEY, manifest TEXT NOT NULL, signature TEXT NOT NULL, algorithm TEXT NOT NULL)"
)
SIGNATURE_COLUMNS = ("digest", "manifest", "signature", "algorithm")
# A manifest lists 65 bytes per row: this admits ~1.5M rows, and keeps a forged one from costing more.
MAX_MANIFEST_BYTES = 100 * 1024 * 1024

# What each kind of public key may sign with (KMS's SigningAlgorithmSpec names); the signer uses the first.
_EC_ALGORITHMS = {"secp256r1": "ECDSA_SHA_256", "secp384r1": "ECDSA_SHA_384", "secp521r1": "ECDSA_SHA_512"}
_RSA_ALGORITHMS = (
    "RSASSA_PSS_SHA_256",
    "RSASSA_PSS_SHA_384",
    "RSASSA_PSS_SHA_512",
    "RSASSA_PKCS1_V1_5_SHA_256",
    "RSASSA_PKCS1_V1_5_SHA_384",
    "RSASSA_PKCS1_V1_5_SHA_512",
)


class SigningError(Exception):
    """The signing service could not sign (unreachable, unknown key, …); the message is its own."""


class SigningDenied(SigningError):
    """This principal may not sign with the key (no `kms:Sign`): it reads the shared cache, never writes it."""


class PublicKeyError(ValueError):
    """A public key that can't be used: not PEM or base64 DER, or of a kind no KMS signing key has."""


# -- digests and manifests -------------------------------------------------------------------------


def row_digest(table: str, values: Sequence[object]) -> str:
    """The sha256 (hex) of one row: its table and its column values, as canonical JSON."""
    encoded = json.dumps([table, *values], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def artifact_digest(record: ArtifactRecord) -> str:
    """The digest of an `artifacts` row."""
    return row_digest(
        "artifacts",
        (
            record.input_hash,
            record.kind,
            record.path,
            record.sha256,
            record.size,
            record.unzipped_size,
            record.created,
            record.meta,
        ),
    )


def published_digest(row: dict) -> str:
    """The digest of a `published` row (a dict of PUBLISHED_COLUMNS, `details` as stored JSON text)."""
    return row_digest(
        "published",
        (
            row["account"],
            row["region"],
            row["stage"],
            row["resource_id"],
            row["input_hash"],
            json.loads(row["details"]),  # re-encoded with sorted keys: the writer's key order does not count
            row["published"],
        ),
    )


def make_manifest(key_id: str, digests: Iterable[str]) -> bytes:
    """The canonical manifest listing `digests`, to be signed with the key `key_id`."""
    document = {"format": MANIFEST_FORMAT, "key": key_id, "rows": sorted(set(digests))}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _manifest_rows(manifest: bytes) -> list[str] | None:
    """The row digests a manifest lists, or None when it is not a manifest pkg makes."""
    try:
        document = json.loads(manifest)
    except ValueError:
        return None
    if not isinstance(document, dict) or document.get("format") != MANIFEST_FORMAT:
        return None
    rows = document.get("rows")
    if not isinstance(rows, list) or not all(isinstance(row, str) and len(row) == 64 for row in rows):
        return None
    return rows


# -- keys ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicKey:
    """The public half of a signing key: DER SubjectPublicKeyInfo, and the algorithms it verifies."""

    der: bytes
    algorithms: tuple[str, ...]
    key_id: str = ""  # where it came from (a KMS key ARN or alias), for messages

    @classmethod
    def from_der(cls, der: bytes, key_id: str = "") -> PublicKey:
        """A public key from DER bytes; its algorithms follow from its type (an EC curve, or RSA)."""
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        from cryptography.hazmat.primitives.serialization import load_der_public_key

        try:
            key = load_der_public_key(der)
        except (ValueError, TypeError, UnsupportedAlgorithm) as error:
            raise PublicKeyError(f"not a DER public key ({error})") from None
        if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in _EC_ALGORITHMS:
            return cls(der, (_EC_ALGORITHMS[key.curve.name],), key_id)
        if isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048:
            return cls(der, _RSA_ALGORITHMS, key_id)
        raise PublicKeyError("the key is neither an RSA key of 2048 bits or more nor an EC key on a NIST curve")

    @classmethod
    def from_text(cls, text: str, key_id: str = "") -> PublicKey:
        """A public key pinned in the configuration: PEM (`-----BEGIN PUBLIC KEY-----`) or base64 DER."""
        text = text.strip()
        if text.startswith("-----BEGIN"):
            lines = [line for line in text.splitlines() if line and not line.startswith("-----")]
            text = "".join(lines)
        try:
            der = base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            raise PublicKeyError("not PEM nor base64") from None
        return cls.from_der(der, key_id)

    @property
    def fingerprint(self) -> str:
        """The sha256 of the DER key, shortened: how messages name a key."""
        return hashlib.sha256(self.der).hexdigest()[:16]

    def verify(self, digest: bytes, signature: bytes, algorithm: str) -> bool:
        """Whether `signature` is this key's signature of the sha256 `digest` under `algorithm`."""
        if algorithm not in self.algorithms:
            return False
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding, utils
        from cryptography.hazmat.primitives.serialization import load_der_public_key

        hash_algorithm = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[algorithm[-3:]]
        if len(digest) != hash_algorithm.digest_size:
            return False
        prehashed = utils.Prehashed(hash_algorithm)
        key: Any = load_der_public_key(self.der)
        try:
            if algorithm.startswith("ECDSA"):
                key.verify(signature, digest, ec.ECDSA(prehashed))
            elif algorithm.startswith("RSASSA_PSS"):
                # KMS: "PSS padding … along with a salt" as long as the digest.
                pss = padding.PSS(mgf=padding.MGF1(hash_algorithm), salt_length=hash_algorithm.digest_size)
                key.verify(signature, digest, pss, prehashed)
            else:
                key.verify(signature, digest, padding.PKCS1v15(), prehashed)
        except (InvalidSignature, ValueError):
            return False
        return True


class Signer(Protocol):
    """What signs a push: one call per manifest. Failures are SigningDenied or SigningError."""

    key_id: str

    def public_key(self) -> PublicKey:
        """The public half of the signing key (fetched once, then kept)."""
        ...

    def sign(self, digest: bytes, algorithm: str) -> bytes:
        """The signature of the sha256 `digest` (one call to the signing service)."""
        ...


# -- signature rows --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureRow:
    """One row of the shared index's `signatures` table: a manifest and its signature."""

    digest: str  # sha256 of the manifest (hex): the row's key
    manifest: str
    signature: str  # base64
    algorithm: str

    def values(self) -> tuple[str, str, str, str]:
        return (self.digest, self.manifest, self.signature, self.algorithm)


def sign_rows(signer: Signer, digests: Iterable[str]) -> SignatureRow:
    """Sign a manifest of `digests` with one call to the signer."""
    manifest = make_manifest(signer.key_id, digests)
    digest = hashlib.sha256(manifest).digest()
    algorithm = signer.public_key().algorithms[0]
    signature = signer.sign(digest, algorithm)
    return SignatureRow(digest.hex(), manifest.decode(), base64.b64encode(signature).decode(), algorithm)


@dataclass
class SignedRows:
    """What the signatures of a shared index vouch for under one trusted key."""

    digests: set[str] = field(default_factory=set)  # rows listed by a manifest whose signature verifies
    valid: list[SignatureRow] = field(default_factory=list)
    invalid: int = 0  # signature rows that are malformed or do not verify under the key


def check_signature_row(row: tuple[Any, ...]) -> SignatureRow | None:
    """A `signatures` row as read from an untrusted index, or None when it is not one pkg writes."""
    if len(row) != len(SIGNATURE_COLUMNS) or not all(isinstance(value, str) for value in row):
        return None
    digest, manifest, signature, algorithm = row
    if len(manifest) > MAX_MANIFEST_BYTES or len(signature) > 2048:
        return None
    if hashlib.sha256(manifest.encode()).hexdigest() != digest:
        return None
    return SignatureRow(digest, manifest, signature, algorithm)


def verify_signatures(rows: Iterable[SignatureRow], key: PublicKey) -> SignedRows:
    """Verify each signature row under `key`; the digests of the rows that verified manifests list."""
    signed = SignedRows()
    for row in rows:
        try:
            signature = base64.b64decode(row.signature, validate=True)
        except (binascii.Error, ValueError):
            signed.invalid += 1
            continue
        listed = _manifest_rows(row.manifest.encode())
        if listed is None or not key.verify(bytes.fromhex(row.digest), signature, row.algorithm):
            signed.invalid += 1
            continue
        signed.valid.append(row)
        signed.digests.update(listed)
    return signed


def manifest_rows(row: SignatureRow) -> list[str]:
    """The row digests a (checked) signature row's manifest lists; [] when it lists none pkg can read."""
    return _manifest_rows(row.manifest.encode()) or []
