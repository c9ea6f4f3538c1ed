"""Signing keys in AWS KMS (or any endpoint that speaks its API) for the shared cache's signed rows.

`KmsKey` signs a digest with one `Sign` call and fetches the public key with `GetPublicKey` once,
then keeps it in the cache folder by key id (`keys/<sha256 of the key id>.json`): a reader verifies
offline from then on. boto3 is imported only when a KMS call is made.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from typing import Any

from cache.signing import PublicKey, PublicKeyError, SigningDenied, SigningError
from cache.store import write_atomic

__all__ = ["KmsKey"]

_DENIED = ("AccessDeniedException", "AccessDenied", "KMSInvalidStateException", "DisabledException")


def _error_code(error: Exception) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))


def _key_region(key_id: str) -> str | None:
    """The region of a key ARN (`arn:aws:kms:eu-west-1:…`), or None for a bare id or alias."""
    parts = key_id.split(":")
    return parts[3] if key_id.startswith("arn:") and len(parts) > 5 and parts[3] else None


class KmsKey:
    """A KMS asymmetric signing key (`KeyUsage=SIGN_VERIFY`), named by ARN, id or alias (`alias/…`)."""

    def __init__(
        self, key_id: str, cache_dir: str, region: str | None = None, profile: str | None = None, session: Any = None
    ):
        self.key_id = key_id
        self.session = session  # a boto3 session to reuse (making one costs more than the KMS call)
        self.cache_dir = cache_dir
        self.region = _key_region(key_id) or region
        self.profile = profile
        self._client: Any = None
        self._public: PublicKey | None = None
        self._lock = threading.Lock()  # a pull's prefetch thread and a push may both want the client

    @property
    def client(self) -> Any:
        with self._lock:
            return self._client or self._make_client()

    def _make_client(self) -> Any:
        import boto3
        from botocore.config import Config

        session = self.session or (boto3.Session(profile_name=self.profile) if self.profile else boto3.Session())
        config = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"})
        region = self.region or session.region_name or "us-east-1"
        self._client = session.client("kms", region_name=region, config=config)
        return self._client

    def _kept_path(self) -> str:
        name = hashlib.sha256(self.key_id.encode()).hexdigest()[:32]
        return os.path.join(self.cache_dir, "keys", f"{name}.json")

    def public_key(self) -> PublicKey:
        """The key's public half: from the cache folder, else one `GetPublicKey` (then kept there)."""
        if self._public is not None:
            return self._public
        path = self._kept_path()
        try:
            with open(path, encoding="utf-8") as stream:
                kept = json.load(stream)
            if kept.get("key_id") == self.key_id:
                self._public = PublicKey.from_der(base64.b64decode(kept["public_key"]), self.key_id)
                return self._public
        except (OSError, ValueError, KeyError, TypeError, PublicKeyError):
            pass  # not kept yet (or unreadable): ask KMS
        try:
            answer = self.client.get_public_key(KeyId=self.key_id)
        except Exception as error:  # botocore's errors and the network's
            raise SigningError(f"KMS GetPublicKey {self.key_id}: {error}") from None
        try:
            self._public = PublicKey.from_der(answer["PublicKey"], self.key_id)
        except PublicKeyError as error:
            raise SigningError(f"KMS key {self.key_id}: {error}") from None
        der = base64.b64encode(self._public.der).decode()
        document = {"key_id": self.key_id, "key_arn": answer.get("KeyId", ""), "public_key": der}

        def write(tmp: str) -> None:
            with open(tmp, "w", encoding="utf-8") as stream:
                json.dump(document, stream)

        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_atomic(path, write)
        return self._public

    def sign(self, digest: bytes, algorithm: str) -> bytes:
        """One KMS `Sign` of a sha256 digest (`MessageType=DIGEST`)."""
        try:
            answer = self.client.sign(
                KeyId=self.key_id, Message=digest, MessageType="DIGEST", SigningAlgorithm=algorithm
            )
        except Exception as error:
            if _error_code(error) in _DENIED:
                raise SigningDenied(f"KMS Sign with {self.key_id} denied: {error}") from None
            raise SigningError(f"KMS Sign with {self.key_id}: {error}") from None
        return answer["Signature"]
