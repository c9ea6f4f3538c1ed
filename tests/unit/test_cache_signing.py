"""Signed rows of the shared cache (cache/signing.py): the digest and manifest format, verification
with real keys (EC P-256 and RSA-PSS, as KMS makes them), and the protocol over the in-memory object
store: one signing call per push, only signed rows taken by a reader that trusts a key, read-only members."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from test_cache_remote import INDEX_KEY, URI, Machine, MemoryObjectStore

from cache.index import ArtifactRecord
from cache.remote import COMPACT_SIGNATURES_AFTER, SharedCache, SharedCacheReadOnly
from cache.signing import (
    MANIFEST_FORMAT,
    PublicKey,
    PublicKeyError,
    SignatureRow,
    SigningDenied,
    artifact_digest,
    check_signature_row,
    make_manifest,
    published_digest,
    sign_rows,
    verify_signatures,
)

RECORD = ArtifactRecord("a" * 32, "code", f"store/aa/{'a' * 32}.zip", "b" * 64, 10, 20, "2026-01-01T00:00:00+00:00", {})


class LocalSigner:
    """A signing key held in this process, signing digests as KMS does (`MessageType=DIGEST`)."""

    def __init__(self, key_id: str = "alias/team-cache", rsa_key: bool = False):
        self.key_id = key_id
        self.private = rsa.generate_private_key(65537, 2048) if rsa_key else ec.generate_private_key(ec.SECP256R1())
        self.calls = 0
        self.denied = False

    def public_key(self) -> PublicKey:
        der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return PublicKey.from_der(der, self.key_id)

    def sign(self, digest: bytes, algorithm: str) -> bytes:
        self.calls += 1
        if self.denied:
            raise SigningDenied("AccessDeniedException: not authorized to perform kms:Sign")
        prehashed = utils.Prehashed(hashes.SHA256())
        if isinstance(self.private, rsa.RSAPrivateKey):
            assert algorithm == "RSASSA_PSS_SHA_256"
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
            return self.private.sign(digest, pss, prehashed)
        assert algorithm == "ECDSA_SHA_256"
        return self.private.sign(digest, ec.ECDSA(prehashed))


# -- the format -------------------------------------------------------------------------------------


def test_a_row_digest_covers_every_column_and_not_the_key_order_of_its_json():
    digest = artifact_digest(RECORD)
    assert digest == artifact_digest(ArtifactRecord(*[getattr(RECORD, f) for f in RECORD.__dataclass_fields__]))
    for change in ({"sha256": "c" * 64}, {"size": 11}, {"path": "store/aa/x.zip"}, {"created": "2026-01-02"}):
        assert artifact_digest(ArtifactRecord(**{**RECORD.__dict__, **change})) != digest
    one = {"account": "1", "region": "r", "stage": "dev", "resource_id": "x", "input_hash": "", "published": "t"}
    assert published_digest({**one, "details": '{"a": 1, "b": [2]}'}) == published_digest(
        {**one, "details": '{"b":[2],"a":1}'}
    )
    assert published_digest({**one, "details": '{"a": 1}'}) != published_digest({**one, "details": '{"a": 2}'})


def test_a_manifest_is_canonical_json_of_sorted_unique_digests():
    manifest = make_manifest("alias/k", ["f" * 64, "0" * 64, "f" * 64])
    expected = {"format": MANIFEST_FORMAT, "key": "alias/k", "rows": ["0" * 64, "f" * 64]}
    assert manifest == json.dumps(expected, sort_keys=True, separators=(",", ":")).encode()


@pytest.mark.parametrize("rsa_key", [False, True], ids=["ecc-p256", "rsa-2048-pss"])
def test_a_signed_manifest_verifies_and_nothing_else_does(rsa_key):
    signer = LocalSigner(rsa_key=rsa_key)
    row = sign_rows(signer, [artifact_digest(RECORD)])
    assert signer.calls == 1
    signed = verify_signatures([row], signer.public_key())
    assert signed.digests == {artifact_digest(RECORD)} and signed.invalid == 0
    # Another key, a changed manifest, a claimed algorithm the key can't make, a garbled signature.
    assert verify_signatures([row], LocalSigner(rsa_key=rsa_key).public_key()).digests == set()
    forged = make_manifest(signer.key_id, ["0" * 64])
    assert check_signature_row((row.digest, forged.decode(), row.signature, row.algorithm)) is None
    rehashed = SignatureRow(hashlib.sha256(forged).hexdigest(), forged.decode(), row.signature, row.algorithm)
    other_algorithm = "RSASSA_PKCS1_V1_5_SHA_256" if not rsa_key else "ECDSA_SHA_256"
    for bad in (rehashed, SignatureRow(row.digest, row.manifest, row.signature, other_algorithm),
                SignatureRow(row.digest, row.manifest, "not base64!", row.algorithm)):  # fmt: skip
        assert verify_signatures([bad], signer.public_key()).invalid == 1


def test_a_public_key_is_read_from_pem_or_base64_der_and_weak_keys_are_refused():
    key = LocalSigner().public_key()
    pem = "-----BEGIN PUBLIC KEY-----\n" + base64.encodebytes(key.der).decode() + "-----END PUBLIC KEY-----\n"
    assert PublicKey.from_text(pem).der == key.der
    assert PublicKey.from_text(base64.b64encode(key.der).decode()).algorithms == ("ECDSA_SHA_256",)
    with pytest.raises(PublicKeyError):
        PublicKey.from_text("not a key")
    weak = rsa.generate_private_key(65537, 1024).public_key()
    der = weak.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(PublicKeyError, match="2048"):
        PublicKey.from_der(der)


# -- the protocol -------------------------------------------------------------------------------------


@pytest.fixture
def objects() -> MemoryObjectStore:
    return MemoryObjectStore()


@pytest.fixture
def signer() -> LocalSigner:
    return LocalSigner()


def machine(tmp_path, objects, name: str, signer=None, trusted=None, read_only: bool = False) -> Machine:
    made = Machine(tmp_path / name, objects)
    made.shared = SharedCache(
        URI, objects, made.store, made.shared.rules, signer=signer, trusted_key=trusted, read_only=read_only
    )
    return made


def signature_rows(objects: MemoryObjectStore, tmp_path) -> list[tuple]:
    path = tmp_path / "shared-copy.sqlite"
    path.write_bytes(objects.objects[("team-bucket", INDEX_KEY)][0])
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT digest, manifest FROM signatures").fetchall()


def test_one_signing_call_per_push_and_a_reader_takes_the_signed_rows(tmp_path, objects, signer):
    ci = machine(tmp_path, objects, "ci", signer, signer.public_key)
    for name in ("ingest", "report", "layer"):
        ci.build(name, name.encode())
    ci.publish("lambda/function/ingest", ci.build("ingest", b"ingest"))
    report = ci.shared.push()
    assert signer.calls == 1 and report.signed == 4 and report.rows_added == 4
    assert len(signature_rows(objects, tmp_path)) == 1
    laptop = machine(tmp_path, objects, "laptop", None, signer.public_key)
    pulled = laptop.shared.pull()
    assert (pulled.artifacts, pulled.published, pulled.warnings) == (3, 1, [])
    assert laptop.deployed("lambda/function/ingest") == hashlib.md5(b"ingest").hexdigest()
    assert ci.shared.push().rows_added == 0 and signer.calls == 1  # nothing to add: no signing, no write


def test_a_push_that_loses_a_race_reuses_its_signature(tmp_path, objects, signer):
    ci = machine(tmp_path, objects, "ci", signer, signer.public_key)
    other = machine(tmp_path, objects, "other")
    ci.build("ingest", b"ingest")
    other.build("report", b"report")
    raced = []

    def before_put(key: str) -> None:
        if key == INDEX_KEY and not raced:
            raced.append(key)
            other.shared.push()  # another writer gets there first: a 412 for ci, which merges again

    objects.before_put = before_put
    report = ci.shared.push()
    assert report.attempts == 2 and signer.calls == 1
    laptop = machine(tmp_path, objects, "laptop", None, signer.public_key)
    pulled = laptop.shared.pull()
    assert pulled.artifacts == 1 and "1 row(s) not signed by the trusted key ignored" in pulled.warnings[0]


def test_unsigned_and_resigned_rows_are_ignored_and_a_signing_writer_heals_them(tmp_path, objects, signer):
    intruder = LocalSigner("alias/intruder")
    machine(tmp_path, objects, "unsigned").build("ingest", b"ingest")
    machine(tmp_path, objects, "unsigned").shared.push()
    forger = machine(tmp_path, objects, "forger", intruder)
    forger.build("report", b"report")
    forger.shared.push()
    laptop = machine(tmp_path, objects, "laptop", None, signer.public_key)
    pulled = laptop.shared.pull()
    assert pulled.artifacts == 0
    assert "2 row(s) not signed by the trusted key ignored" in pulled.warnings[0]
    assert "1 signature(s) that do not verify" in pulled.warnings[0]
    # CI (signing, trusting only signed rows) built the same input: its row replaces the unsigned one, signed.
    ci = machine(tmp_path, objects, "ci", signer, signer.public_key)
    record = ci.build("ingest", b"ingest")
    assert ci.shared.push().signed == 1
    assert objects.puts(f"team-cache/{record.path}") == 1  # the same bytes: uploaded once, by the first writer
    assert laptop.shared.pull().artifacts == 1
    assert len(signature_rows(objects, tmp_path)) == 2  # the intruder's stays for its own readers; it verifies nothing


def test_a_member_denied_signing_or_read_only_writes_nothing(tmp_path, objects, signer):
    signer.denied = True
    laptop = machine(tmp_path, objects, "laptop", signer, signer.public_key)
    laptop.build("ingest", b"ingest")
    with pytest.raises(SharedCacheReadOnly, match="kms:Sign"):
        laptop.shared.push()
    assert not [call for call in objects.calls if call[0] == "put"]
    read_only = machine(tmp_path, objects, "read-only", read_only=True)
    read_only.build("report", b"report")
    objects.calls.clear()
    report = read_only.shared.push()
    assert "read-only here (cache_push = false)" in report.warnings[0]
    assert objects.calls == []


def test_signatures_are_compacted_into_one_manifest_once_there_are_many(tmp_path, objects, signer):
    ci = machine(tmp_path, objects, "ci", signer, signer.public_key)
    for n in range(COMPACT_SIGNATURES_AFTER):
        ci.build(f"f{n}", f"code {n}".encode())
        ci.shared.push()
    assert len(signature_rows(objects, tmp_path)) == COMPACT_SIGNATURES_AFTER
    ci.build("last", b"last")
    ci.shared.push()
    ((_digest, manifest),) = signature_rows(objects, tmp_path)
    assert len(json.loads(manifest)["rows"]) == COMPACT_SIGNATURES_AFTER + 1
    laptop = machine(tmp_path, objects, "laptop", None, signer.public_key)
    assert laptop.shared.pull().artifacts == COMPACT_SIGNATURES_AFTER + 1


# -- memory -------------------------------------------------------------------------------------------


def shared_index_of(objects: MemoryObjectStore, tmp_path, rows: int) -> None:
    """A shared index of `rows` artifact rows (as a push writes it), put in the object store."""
    from cache.index import Index

    path = tmp_path / f"index-{rows}.sqlite"
    index = Index(str(path))
    hashes = (f"{n:032x}" for n in range(rows))
    records = (ArtifactRecord(h, "code", f"store/{h[:2]}/{h}.zip", "b" * 64, 1, 1, RECORD.created, {}) for h in hashes)
    index.add_artifacts(records)
    index.conn.execute("PRAGMA journal_mode = DELETE")
    index.conn.close()
    objects.objects[("team-bucket", INDEX_KEY)] = (path.read_bytes(), f'"{rows}"')


def test_a_pull_streams_artifact_rows_its_memory_does_not_grow_with_the_index(tmp_path, objects):
    import tracemalloc

    peaks = {}
    for rows in (2_000, 20_000):
        shared_index_of(objects, tmp_path, rows)
        laptop = machine(tmp_path, objects, f"laptop-{rows}")
        tracemalloc.start()
        assert laptop.shared.pull().artifacts == rows
        peaks[rows] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        laptop.store.close()
    # Ten times the rows, not ten times the memory (kept rows would cost ~10x; allocator noise ~2x).
    assert peaks[20_000] < 4 * peaks[2_000]
