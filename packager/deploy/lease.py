"""A stage-wide lease lock in S3: one publisher (or gc) per stage across machines.

The model of Terraform's S3 native state locking: the lock is one object, created with a
conditional write (`If-None-Match: *`), so of two writers exactly one succeeds. It holds who
took it and until when its lease runs; the holder renews the lease (`If-Match` on its own
ETag) while it runs and deletes the object at the end, again only if the ETag is still its own.
A lease that ran out (its holder died) is taken over with `If-Match` on the dead holder's ETag.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator

from packager.deploy.aws import AwsSession, explain_error
from packager.errors import PkgError, StageLockedError

LOCK_TIMEOUT_SECONDS = 300  # how long a second publisher waits by default (--lock-timeout)
LEASE_SECONDS = 120  # how long a lock outlives a holder that died without releasing it
RENEW_SECONDS = 30  # well inside the lease: a renewal may be slow or retried and still be in time
POLL_SECONDS = 2.0  # how often a waiting publisher looks at the lock again (after quicker first looks)
FIRST_POLL_SECONDS = 0.25
LOCK_AGAIN = "run the command again"
_TAKEN = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")
_GONE = ("NoSuchKey", "404", "NotFound")


@dataclass(frozen=True)
class LockHolder:
    """Who holds a stage lock, as stored in the lock object (JSON)."""

    holder: str  # user@host
    pid: int
    command: str
    started: datetime
    expires: datetime

    def to_json(self) -> dict:
        """The lock object's document."""
        return {
            "holder": self.holder,
            "pid": self.pid,
            "command": self.command,
            "started": self.started.isoformat(),
            "expires": self.expires.isoformat(),
        }

    @classmethod
    def parse(cls, body: bytes) -> LockHolder | None:
        """The holder in a lock object's bytes, or None if they are not a lock pkg wrote (read from S3: untrusted)."""
        try:
            document = json.loads(body.decode("utf-8"))
            started = datetime.fromisoformat(document["started"])
            expires = datetime.fromisoformat(document["expires"])
            holder, pid, command = document["holder"], document["pid"], document["command"]
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        if not (isinstance(holder, str) and isinstance(pid, int) and isinstance(command, str)):
            return None
        if started.tzinfo is None or expires.tzinfo is None:
            return None
        return cls(holder[:200], pid, command[:200], started, expires)

    def expired(self, now: datetime) -> bool:
        """Whether the lease ran out: the holder stopped renewing it."""
        return self.expires <= now

    def gone_from_here(self) -> bool:
        """Whether the holder ran on this machine (same user@host) and its process is gone (killed, crashed)."""
        if self.holder != me(self.command).holder:
            return False
        try:
            os.kill(self.pid, 0)  # signal 0: only asks whether the process exists
        except ProcessLookupError:
            return True
        except (PermissionError, OverflowError, ValueError):
            return False
        return False

    def stale(self, now: datetime) -> bool:
        """Whether the lock may be taken over: its lease ran out, or its holder died on this machine."""
        return self.expired(now) or self.gone_from_here()

    def describe(self) -> str:
        """`ci@runner-7 (pid 42, pkg publish) since 12:03:10 UTC`."""
        since = self.started.astimezone(timezone.utc).strftime("%H:%M:%S UTC")
        return f"{self.holder} (pid {self.pid}, {self.command}) since {since}"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry or LOGNAME
        return f"uid{os.getuid()}"


def me(command: str, started: datetime | None = None) -> LockHolder:
    """This process as a lock holder, its lease starting now."""
    started = started or _now()
    return LockHolder(
        f"{_user()}@{socket.gethostname()}",
        os.getpid(),
        command,
        started,
        _now() + timedelta(seconds=LEASE_SECONDS),
    )


@dataclass
class UnlockReport:
    """What `pkg unlock` found at the stage's lock, and whether it removed it."""

    stage: str
    location: str  # s3://bucket/key
    holder: str | None  # None: the stage was not locked
    removed: bool

    def to_json(self) -> dict:
        """`pkg unlock --json`."""
        return {"stage": self.stage, "lock": self.location, "holder": self.holder, "removed": self.removed}


@dataclass
class HeldLock:
    """What a lock object holds right now: its holder (None if unreadable) and its ETag."""

    holder: LockHolder | None
    etag: str

    def describe(self) -> str:
        """The holder, or a word that the object is not a lock pkg wrote."""
        return self.holder.describe() if self.holder else "an unreadable lock object"


def read_lock(aws: AwsSession, bucket: str, key: str) -> HeldLock | None:
    """The lock object at s3://bucket/key, or None when there is none."""
    import botocore.exceptions

    try:
        answer = aws.client("s3").get_object(Bucket=bucket, Key=key)
        body = answer["Body"].read(64 * 1024)  # a lock is a few hundred bytes: read no more than that
    except botocore.exceptions.ClientError as error:
        if _code(error) in _GONE:
            return None
        raise explain_error(error, "GetObject", f"s3://{bucket}/{key}", LOCK_AGAIN) from None
    except botocore.exceptions.BotoCoreError as error:
        raise explain_error(error, "GetObject", f"s3://{bucket}/{key}", LOCK_AGAIN) from None
    return HeldLock(LockHolder.parse(body), answer["ETag"])


def delete_lock(aws: AwsSession, bucket: str, key: str, etag: str | None = None) -> bool:
    """Delete the lock object (only if its ETag is still `etag`, when given); False if it was not there or not ours."""
    import botocore.exceptions

    params = {"Bucket": bucket, "Key": key, **({"IfMatch": etag} if etag else {})}
    try:
        aws.client("s3").delete_object(**params)
    except botocore.exceptions.ClientError as error:
        if _code(error) in _TAKEN + _GONE:
            return False
        raise explain_error(error, "DeleteObject", f"s3://{bucket}/{key}", LOCK_AGAIN) from None
    except botocore.exceptions.BotoCoreError as error:
        raise explain_error(error, "DeleteObject", f"s3://{bucket}/{key}", LOCK_AGAIN) from None
    return True


class StageLease:
    """One holding of a stage's lock: taken, renewed in a background thread, released."""

    def __init__(self, aws: AwsSession, bucket: str, key: str, stage: str, command: str):
        self.aws, self.bucket, self.key, self.stage, self.command = aws, bucket, key, stage, command
        self.etag: str | None = None
        self.lost = False  # someone deleted or took over the lock while this ran
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._started = _now()

    def _put(self, condition: dict) -> str | None:
        """Write this holder's lock document under `condition`; its ETag, or None when the condition failed."""
        import botocore.exceptions

        body = json.dumps(me(self.command, self._started).to_json()).encode()
        try:
            answer = self.aws.client("s3").put_object(
                Bucket=self.bucket, Key=self.key, Body=body, ContentType="application/json", **condition
            )
        except botocore.exceptions.ClientError as error:
            if _code(error) in _TAKEN + _GONE:
                return None
            raise explain_error(error, "PutObject", f"s3://{self.bucket}/{self.key}", LOCK_AGAIN) from None
        except botocore.exceptions.BotoCoreError as error:
            raise explain_error(error, "PutObject", f"s3://{self.bucket}/{self.key}", LOCK_AGAIN) from None
        return answer["ETag"]

    def acquire(self, timeout: float, on_wait: Callable[[str], None], poll: float = POLL_SECONDS) -> None:
        """Take the lock, waiting up to `timeout` seconds for its holder; StageLockedError after that."""
        deadline = time.monotonic() + timeout
        told = False
        delay = min(FIRST_POLL_SECONDS, poll)  # a publish ends soon as often as not: look again soon, then every poll
        while True:
            self.etag = self._put({"IfNoneMatch": "*"})
            if self.etag:
                break
            held = read_lock(self.aws, self.bucket, self.key)
            if held is None and time.monotonic() < deadline:
                continue  # released between the write and the read: try again at once
            if held is not None and held.holder is not None and held.holder.stale(_now()):
                self.etag = self._put({"IfMatch": held.etag})
                if self.etag:
                    on_wait(f"took over the {self.stage} lock of {held.describe()}: its lease ran out or it is gone")
                    break
                continue
            left = deadline - time.monotonic()
            holder = held.describe() if held else "someone"
            if not told and timeout > 0:  # said once, even when a slow first attempt used the whole timeout
                on_wait(f"waiting for the {self.stage} lock held by {holder} (up to {timeout:g} s)")
                told = True
            if left <= 0:
                raise StageLockedError(self.stage, holder, timeout)
            self._stop.wait(min(delay, left))
            delay = min(delay * 2, poll)
        self._renewer = threading.Thread(target=self._renew, name=f"pkg-lease-{self.stage}", daemon=True)
        self._renewer.start()

    def _renew(self) -> None:
        """Extend the lease every RENEW_SECONDS until released; stop (and remember) if the lock is no longer ours."""
        while not self._stop.wait(RENEW_SECONDS):
            try:
                etag = self._put({"IfMatch": self.etag}) if self.etag else None
            except Exception:  # a failed renewal is retried at the next tick: the lease has room for it
                continue
            if etag is None:
                self.lost = True
                return
            self.etag = etag

    def release(self) -> None:
        """Stop renewing and delete the lock object if it is still ours."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        if self.etag and not self.lost:
            self.lost = not delete_lock(self.aws, self.bucket, self.key, self.etag)


@contextmanager
def stage_lease(
    aws: AwsSession,
    bucket: str,
    key: str,
    stage: str,
    command: str,
    timeout: float,
    on_wait: Callable[[str], None],
    poll: float = POLL_SECONDS,
) -> Iterator[StageLease]:
    """Hold the stage's lock for the body (released on failure and Ctrl-C too)."""
    lease = StageLease(aws, bucket, key, stage, command)
    lease.acquire(timeout, on_wait, poll)
    try:
        yield lease
    finally:
        try:
            lease.release()
        except PkgError as failure:  # the body's own error, if any, is the one to report
            on_wait(f"could not release the {stage} lock ({failure}); its lease ends in {LEASE_SECONDS} s")
        if lease.lost:
            on_wait(f"the {stage} lock was broken (pkg unlock) or taken over while {command} ran")
