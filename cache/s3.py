"""The shared cache's object store on Amazon S3 (or any endpoint that speaks its API): with cache/kms.py
(the signing key) the only module of cache/ that imports boto3, and only when a shared cache is first used.

S3's errors become the ObjectStore errors of cache/remote.py, keeping S3's own message.
"""

from __future__ import annotations

from typing import Any, Iterator

from cache.remote import (
    ObjectAccessDenied,
    ObjectNotFound,
    ObjectNotModified,
    ObjectStoreError,
    ObjectTooLarge,
    PreconditionFailed,
    StoredObject,
    WriteConflict,
)

__all__ = ["S3ObjectStore"]


def _error_code(error: Exception) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))


class S3ObjectStore:
    """An `ObjectStore` and `ObjectLister` (cache/remote.py) over a boto3 S3 client."""

    def __init__(self, client: Any, session: Any = None):
        self.client = client
        self.session = session  # the boto3 session it was made from: other clients of the same command reuse it

    @classmethod
    def connect(cls, region: str | None = None, profile: str | None = None) -> S3ObjectStore:
        """S3 through a boto3 client that fails fast when S3 is unreachable (the build then goes on offline)."""
        import boto3
        from botocore.config import Config

        session = boto3.Session(profile_name=profile) if profile else boto3.Session()
        config = Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"})
        client = session.client("s3", region_name=region or session.region_name or "us-east-1", config=config)
        return cls(client, session)

    def get(
        self, bucket: str, key: str, path: str, if_none_match: str | None = None, max_bytes: int | None = None
    ) -> str:
        """GetObject into the file `path` (with If-None-Match when given); returns the ETag.

        With `max_bytes`, a larger object is refused from its Content-Length before its body is read
        (and the count is kept while streaming, should the header lie).
        """
        extra = {"IfNoneMatch": if_none_match} if if_none_match else {}
        try:
            response = self.client.get_object(Bucket=bucket, Key=key, **extra)
            length = response.get("ContentLength") or 0
            if max_bytes is not None and length > max_bytes:
                response["Body"].close()
                raise ObjectTooLarge(f"{key}: {length} bytes, more than {max_bytes}")
            written = 0
            with open(path, "wb") as stream:
                for chunk in response["Body"].iter_chunks(1 << 20):
                    written += len(chunk)
                    if max_bytes is not None and written > max_bytes:
                        raise ObjectTooLarge(f"{key}: more than {max_bytes} bytes")
                    stream.write(chunk)
        except ObjectTooLarge:
            raise
        except Exception as error:  # botocore's errors and the network's: all mean "not now"
            code = _error_code(error)
            if code in ("NoSuchKey", "404"):
                raise ObjectNotFound(str(error)) from None
            if code == "304":
                raise ObjectNotModified(str(error)) from None
            raise ObjectStoreError(str(error)) from None
        return response["ETag"]

    def put(
        self, bucket: str, key: str, path: str, if_match: str | None = None, if_none_match: str | None = None
    ) -> str:
        """PutObject from the file `path`, with If-Match / If-None-Match when given; returns the new ETag."""
        extra = {"IfMatch": if_match} if if_match else {}
        if if_none_match:
            extra["IfNoneMatch"] = if_none_match
        try:
            with open(path, "rb") as body:
                response = self.client.put_object(Bucket=bucket, Key=key, Body=body, **extra)
        except Exception as error:
            code = _error_code(error)
            if code in ("PreconditionFailed", "412"):
                raise PreconditionFailed(str(error)) from None
            if code in ("ConditionalRequestConflict", "409"):
                raise WriteConflict(str(error)) from None
            if code in ("AccessDenied", "403"):
                raise ObjectAccessDenied(str(error)) from None
            raise ObjectStoreError(str(error)) from None
        return response["ETag"]

    def list(self, bucket: str, prefix: str) -> Iterator[StoredObject]:
        """ListObjectsV2, page by page: every object whose key starts with `prefix`."""
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    modified = item["LastModified"].timestamp()
                    yield StoredObject(str(item["Key"]), int(item.get("Size", 0)), modified, item.get("ETag", ""))
        except Exception as error:
            raise ObjectStoreError(str(error)) from None

    def delete(self, bucket: str, key: str) -> None:
        """DeleteObject (S3 answers 204 for a key that is already gone)."""
        try:
            self.client.delete_object(Bucket=bucket, Key=key)
        except Exception as error:
            raise ObjectStoreError(str(error)) from None

