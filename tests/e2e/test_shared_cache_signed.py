"""Signed rows and read-only members of the shared cache (issue 11, items 3 and 5), against the local
S3 endpoint and KMS (moto server: real keys, Sign/Verify/GetPublicKey as AWS documents them).

CI signs what it pushes with one KMS Sign per push; a member with `cache_trust = "signed"` takes only
rows that key signed (an attacker who can write the prefix but not sign is built around); a member
without kms:Sign or s3:PutObject reads and never writes, and its commands succeed.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import boto3
from conftest import ARTIFACT_BUCKET, AWS_REGION, Repo
from test_shared_cache import PREFIX, clone, shared_repo, statuses
from test_shared_cache_attacks import EVIL, INDEX_KEY, built_hashes, plant, publish_repo, tamper_index, tree

from cache.index import ArtifactRecord
from cache.kms import KmsKey
from cache.signing import artifact_digest, sign_rows

KEY_ALIAS = "alias/datamart-cache"
CHANGED = "def handler(event, context):\n    return 'changed'\n"


def kms():
    return boto3.client("kms", region_name=AWS_REGION)


def make_key(alias: str = KEY_ALIAS) -> str:
    """An asymmetric KMS signing key (ECC_NIST_P256) under `alias`; its key id."""
    key_id = kms().create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]["KeyId"]
    kms().create_alias(AliasName=alias, TargetKeyId=key_id)
    return key_id


def configure(repo: Repo, **settings: object) -> Repo:
    """Add shared cache settings to [tool.pkg] (TOML values: strings quoted, booleans lower-case)."""
    lines = "".join(f"{name} = {json.dumps(value)}\n" for name, value in settings.items())
    text = (repo.root / "pyproject.toml").read_text()
    repo.write("pyproject.toml", text.replace('project = "datamart"\n', f'project = "datamart"\n{lines}', 1))
    return repo


def operations(aws) -> collections.Counter:
    return collections.Counter(call["operation"] for call in aws.calls())


def cache_puts(aws) -> list[str]:
    return [c["path"] for c in aws.calls() if c["operation"] == "PutObject" and f"/{PREFIX}/" in c["path"]]


SIGNED_CI = {"cache_signing_key": KEY_ALIAS, "cache_trust": "signed"}
SIGNED_READER = {**SIGNED_CI, "cache_push": False}


def test_ci_signs_each_push_once_and_read_only_members_verify_offline(tmp_path, aws):
    make_key()
    ci = configure(shared_repo(tmp_path, name="ci"), **SIGNED_CI)
    built = ci.pkg_json("build")
    assert built["summary"] == {"built": 3, "cached": 0}
    assert operations(aws)["Sign"] == 1 and operations(aws)["GetPublicKey"] == 1  # the key is kept locally
    ci.write("src/lambda/ingest.py", CHANGED)
    aws.reset_calls()
    ci.pkg_json("build")
    assert operations(aws)["Sign"] == 1 and operations(aws)["GetPublicKey"] == 0

    developer = configure(clone(ci, tmp_path, "developer"), cache_push=False)
    developer.write("src/lambda/report.py", CHANGED)
    aws.reset_calls()
    report = developer.pkg_json("build")
    assert statuses(report) == {
        "lambda/internal_libs": "cached",
        "lambda/function/ingest": "cached",
        "lambda/function/report": "built",
    }
    ops = operations(aws)
    assert ops["Sign"] == 0 and ops["GetPublicKey"] == 1 and cache_puts(aws) == []  # pulls, verifies, never pushes

    # A pinned public key: verification needs no KMS call at all.
    der = kms().get_public_key(KeyId=KEY_ALIAS)["PublicKey"]
    pem = "-----BEGIN PUBLIC KEY-----\n" + base64.encodebytes(der).decode() + "-----END PUBLIC KEY-----"
    pinned = clone(ci, tmp_path, "pinned")
    text = (pinned.root / "pyproject.toml").read_text()
    pinned_key = f'cache_public_key = """{pem}"""'
    pinned.write("pyproject.toml", text.replace(f'cache_signing_key = "{KEY_ALIAS}"', pinned_key))
    aws.reset_calls()
    assert pinned.pkg_json("build")["summary"] == {"built": 0, "cached": 3}
    assert not {"Sign", "GetPublicKey", "Verify"} & set(operations(aws))


def test_a_tampered_object_with_or_without_a_rewritten_row_is_built_and_published_from_source(tmp_path, aws):
    make_key()
    first = configure(publish_repo(tmp_path, "first"), **SIGNED_CI)
    hashes = built_hashes(first.pkg_json("publish", "--stage", "dev"))
    report_hash = hashes["lambda/function/report"]
    digest = plant(f"store/{report_hash[:2]}/{report_hash}.zip")  # the object only: its row keeps the honest sha256

    plain = configure(clone(first, tmp_path, "plain"), cache_push=False)
    result = plain.pkg("build", "--json")
    assert result.exit_code == 0, result.stderr
    assert statuses(result.json)["lambda/function/report"] == "built"
    assert "does not match its index row" in result.stderr

    tamper_index(
        tmp_path,
        "UPDATE artifacts SET sha256 = ?, size = ? WHERE input_hash = ?",
        params=(digest, len(EVIL), report_hash),
    )
    runner = clone(first, tmp_path, "ci-runner")
    before = tree(tmp_path, runner.cache_dir)
    published = runner.pkg("publish", "--stage", "dev", "--json")
    assert published.exit_code == 0, published.stderr
    assert "1 row(s) not signed by the trusted key ignored" in published.stderr
    assert statuses(published.json)["lambda/function/report"] == "built"
    assert tree(tmp_path, runner.cache_dir) == before
    local = Path({a["id"]: a for a in published.json["artifacts"]}["lambda/function/report"]["path"]).read_bytes()
    assert local != EVIL
    code = boto3.client("lambda", region_name=AWS_REGION).get_function(FunctionName="datamart-dev-report")
    assert code["Configuration"]["CodeSha256"] == base64.b64encode(hashlib.sha256(local).digest()).decode()
    # The runner signs: its verified rebuild replaced the bad object and its row is signed; readers fetch it.
    assert configure(clone(first, tmp_path, "later"), cache_push=False).pkg_json("build")["summary"]["built"] == 0


def test_rows_re_signed_with_another_key_are_ignored(tmp_path, aws):
    make_key()
    make_key("alias/intruder")
    ci = configure(shared_repo(tmp_path, name="ci"), **SIGNED_CI)
    report_hash = built_hashes(ci.pkg_json("build"))["lambda/function/report"]
    path = f"store/{report_hash[:2]}/{report_hash}.zip"
    digest = plant(path)
    copy = tmp_path / "copy.sqlite"
    boto3.client("s3", region_name=AWS_REGION).download_file(ARTIFACT_BUCKET, INDEX_KEY, str(copy))
    with sqlite3.connect(copy) as conn:
        row = conn.execute("SELECT * FROM artifacts WHERE input_hash = ?", (report_hash,)).fetchone()
    forged = ArtifactRecord.from_row((*row[:3], digest, len(EVIL), *row[5:]))
    signature = sign_rows(KmsKey("alias/intruder", str(tmp_path / "intruder-keys")), [artifact_digest(forged)])
    tamper_index(
        tmp_path,
        "UPDATE artifacts SET sha256 = ?, size = ? WHERE input_hash = ?",
        params=(digest, len(EVIL), report_hash),
    )
    tamper_index(tmp_path, "INSERT INTO signatures VALUES (?, ?, ?, ?)", params=signature.values())

    reader = configure(clone(ci, tmp_path, "reader"), cache_push=False)
    result = reader.pkg("build", "--json")
    assert result.exit_code == 0, result.stderr
    assert "1 signature(s) that do not verify ignored" in result.stderr
    assert statuses(result.json)["lambda/function/report"] == "built"
    assert (reader.cache_dir / path).read_bytes() != EVIL


def test_unsigned_rows_are_built_locally_once_then_ci_signs_its_own(tmp_path, aws):
    make_key()
    unsigned = shared_repo(tmp_path, name="laptop")  # writes the prefix, signs nothing
    unsigned.pkg_json("build")
    ci = configure(clone(unsigned, tmp_path, "ci"), **SIGNED_CI)
    result = ci.pkg("build", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json["summary"] == {"built": 3, "cached": 0}
    assert result.stderr.count("not signed by the trusted key") == 1 and "3 row(s)" in result.stderr
    reader = configure(clone(unsigned, tmp_path, "reader"), **SIGNED_READER)
    assert reader.pkg_json("build")["summary"] == {"built": 0, "cached": 3}  # CI's rows, signed
    assert unsigned.pkg_json("cache", "pull")["artifacts"] == 3  # the unsigned member still reads everything


def test_a_member_that_turns_signed_trust_on_takes_the_shared_index_anew(tmp_path, aws):
    """Rows taken while unsigned rows were trusted are not what a signed-only pull takes: the first
    pull under the trusted key reads the whole index again, even unchanged."""
    make_key()
    laptop = shared_repo(tmp_path, name="laptop")  # signs nothing
    laptop.pkg_json("build")
    reader = configure(clone(laptop, tmp_path, "reader"), cache_push=False)
    assert reader.pkg_json("build")["summary"] == {"built": 0, "cached": 3}  # unsigned rows, trusted
    configure(reader, **SIGNED_CI)  # cache_push = false already
    shutil.rmtree(reader.cache_dir / "store")
    assert reader.pkg("cache", "verify", "--repair").exit_code == 0  # the local rows go with their files
    result = reader.pkg("build", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json["summary"] == {"built": 3, "cached": 0}
    assert "3 row(s) not signed by the trusted key ignored" in result.stderr


def test_a_member_without_kms_sign_reads_and_its_push_is_skipped_with_one_warning(tmp_path, aws):
    make_key()
    ci = configure(shared_repo(tmp_path, name="ci"), **SIGNED_CI)
    ci.pkg_json("build")
    aws.inject("Sign", "denied", times=1000)
    member = clone(ci, tmp_path, "member")
    member.write("src/lambda/report.py", CHANGED)
    aws.reset_calls()
    result = member.pkg("build", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json["summary"] == {"built": 1, "cached": 2}
    assert result.stderr.count("warning:") == 1 and "KMS Sign with alias/datamart-cache denied" in result.stderr
    assert cache_puts(aws) == []


def test_put_object_denied_is_one_warning_and_the_command_succeeds(tmp_path, aws):
    repo = shared_repo(tmp_path)
    aws.inject("PutObject", "denied", times=1000, prefix=f"/{ARTIFACT_BUCKET}/{PREFIX}/")
    result = repo.pkg("build", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json["summary"] == {"built": 3, "cached": 0}
    assert result.stderr.count("PutObject denied") == 1
    assert repo.pkg_json("build")["summary"] == {"built": 0, "cached": 3}  # nothing lost locally
    assert repo.pkg("cache", "verify").exit_code == 0


def test_cache_push_false_never_puts(tmp_path, aws):
    first = shared_repo(tmp_path)
    first.pkg_json("build")
    member = configure(clone(first, tmp_path, "member"), cache_push=False)
    member.write("src/lambda/report.py", CHANGED)
    aws.reset_calls()
    result = member.pkg("build", "--json")
    assert result.exit_code == 0 and result.stderr == ""
    assert result.json["summary"] == {"built": 1, "cached": 2}
    assert [c for c in aws.calls() if c["operation"] == "PutObject"] == []


CRYPTO_PROBE = """
import sys
from packager.cli import cli
try:
    cli.main(args=sys.argv[1:], prog_name="pkg", standalone_mode=False)
except SystemExit:
    pass
print(sorted({"cryptography", "boto3"} & set(sys.modules)))
"""


def test_help_and_a_build_without_signing_import_neither_cryptography_nor_boto3(repo, monkeypatch):
    import subprocess
    import sys

    monkeypatch.setenv("PKG_CACHE_DIR", str(repo.cache_dir))
    configure(repo, cache_signing_key=KEY_ALIAS, cache_trust="signed")  # set, but a build without a shared cache
    for args in (["--help"], ["build"], ["build"]):
        result = subprocess.run(
            [sys.executable, "-c", CRYPTO_PROBE, *args], cwd=repo.root, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == "[]"


def test_gc_checks_shared_publish_records_as_publish_does(tmp_path, aws):
    """A forged function record (a foreign layer) is ignored with the publish's warning, and a record
    of another stage whose details pkg did not write names nothing: no traceback, nothing deleted for it."""
    first = publish_repo(tmp_path)
    first.pkg_json("publish", "--stage", "dev")
    ((details,),) = shared_index_details(tmp_path, "lambda/function/report")
    forged = json.loads(details)
    forged["layers"] = ["arn:aws:lambda:us-east-1:999999999999:layer:evil:1"]
    tamper_index(
        tmp_path,
        "UPDATE published SET details = ? WHERE resource_id = 'lambda/function/report'",
        params=(json.dumps(forged),),
    )
    tamper_index(
        tmp_path,
        "INSERT INTO published VALUES ('123456789012', 'us-east-1', 'prod', 'emr/job/x', '',"
        " '{\"spec\": 5, \"name\": []}', '2026-01-01T00:00:00+00:00')",
    )
    runner = clone(first, tmp_path, "ci-runner")
    result = runner.pkg("gc", "--stage", "dev", "--dry-run", "--json")
    assert result.exit_code == 0, result.stderr
    assert "lambda/function/report: recorded publish row ignored" in result.stderr and "999999999999" in result.stderr
    assert result.json["summary"]["to_delete"] == 0  # the live functions still use every layer version


def shared_index_details(tmp_path: Path, resource_id: str) -> list[tuple]:
    copy = tmp_path / "details.sqlite"
    boto3.client("s3", region_name=AWS_REGION).download_file(ARTIFACT_BUCKET, INDEX_KEY, str(copy))
    with sqlite3.connect(copy) as conn:
        rows = conn.execute("SELECT details FROM published WHERE resource_id = ?", (resource_id,)).fetchall()
    copy.unlink()
    return rows


def test_the_test_servers_kms_signs_as_aws_documents_and_cryptography_verifies_it(aws):
    """ECC_NIST_P256 / ECDSA_SHA_256 and RSA_2048 / RSASSA_PSS_SHA_256 (a digest-long salt), with
    MessageType DIGEST and RAW; a bad signature is KMSInvalidSignatureException, as AWS answers."""
    import pytest
    from botocore.exceptions import ClientError

    from cache.signing import PublicKey

    digest = hashlib.sha256(b"manifest").digest()
    for spec, algorithm in (("ECC_NIST_P256", "ECDSA_SHA_256"), ("RSA_2048", "RSASSA_PSS_SHA_256")):
        key_id = kms().create_key(KeyUsage="SIGN_VERIFY", KeySpec=spec)["KeyMetadata"]["KeyId"]
        answer = kms().get_public_key(KeyId=key_id)
        assert answer["KeySpec"] == spec and answer["KeyId"].startswith("arn:aws:kms:")
        public = PublicKey.from_der(answer["PublicKey"])
        signed = kms().sign(KeyId=key_id, Message=digest, MessageType="DIGEST", SigningAlgorithm=algorithm)
        raw = kms().sign(KeyId=key_id, Message=b"manifest", MessageType="RAW", SigningAlgorithm=algorithm)
        for signature in (signed["Signature"], raw["Signature"]):
            assert public.verify(digest, signature, algorithm)
            assert not public.verify(hashlib.sha256(b"other").digest(), signature, algorithm)
        with pytest.raises(ClientError, match="KMSInvalidSignatureException"):
            kms().verify(KeyId=key_id, Message=b"other", Signature=raw["Signature"], SigningAlgorithm=algorithm)
    assert {"Sign", "Verify"}.isdisjoint(aws.mutating_calls())


def test_a_trusted_key_that_cannot_be_fetched_is_one_error_line_and_nothing_unsigned_is_taken(tmp_path, aws):
    """The public key is fetched on a thread while the shared index downloads: its failure still reaches
    the command as one line, and the build goes on from source."""
    make_key()
    ci = configure(shared_repo(tmp_path, name="ci"), **SIGNED_CI)
    ci.pkg_json("build")
    reader = configure(clone(ci, tmp_path, "reader"), cache_push=False)
    text = (reader.root / "pyproject.toml").read_text()
    reader.write("pyproject.toml", text.replace(KEY_ALIAS, "alias/no-such-key"))
    result = reader.pkg("build", "--json")
    assert "can't verify signed rows" in result.stderr and "alias/no-such-key" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.exit_code == 0, result.stderr
    assert result.json["summary"] == {"built": 3, "cached": 0}
