"""The shared cache as the commands use it: pull only when the local cache misses, fetch and verify,
push what was built or published, and keep working offline with a warning.

A no-op build never gets here: when every artifact is in the local cache, neither boto3 nor the
network is touched. The first miss pulls the shared index (once per command), and an artifact it
knows is downloaded and checked against its recorded sha256 instead of being rebuilt.

Trust (`SharedCacheTrust`, docs/shared-cache.md): with `cache_signing_key` this machine signs what it
pushes (one KMS Sign per push); with `cache_trust = "signed"` it takes only rows that key (or the
pinned `cache_public_key`) signed; with `cache_push = false`, or when S3 or KMS denies it, it only reads.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Callable

from cache import (
    ArtifactRecord,
    S3ObjectStore,
    SharedArtifactMismatch,
    SharedCache,
    SharedCacheError,
    SharedCacheReadOnly,
    SharedIndexCorrupt,
    parse_uri,
)
from cache.remote import DEFAULT_MAX_INDEX_BYTES, SharedIndexTooLarge
from cache.rows import RowRules, is_input_hash
from packager.errors import ConfigError
from packager.model import BuildStatus, Kind
from packager.units import format_size

Warn = Callable[[str], None]

CACHE_URI_ENV = "PKG_CACHE_URI"
CACHE_PUSH_ENV = "PKG_CACHE_PUSH"  # CI sets 1 where the configuration says cache_push = false for laptops
FETCH_THREADS = 8  # S3 GETs are latency-bound: a fresh CI runner fetches a hundred artifacts at once


# Where pkg keeps each kind of artifact in a cache folder (packager/builders): a shared row naming
# anything else is refused, so no row can choose a local path.
_STORE = "store/{hh}/{hash}"
ARTIFACT_LAYOUTS: dict[str, tuple[str, ...]] = {
    Kind.LAMBDA_FUNCTION: (f"{_STORE}.zip",),
    Kind.LAMBDA_LAYER: (f"{_STORE}.zip",),
    Kind.LAMBDA_DEPS_INSTALL: ("deps/{hash}/manifest.json",),
    Kind.GLUE_PYTHON_SHELL_JOB: (f"{_STORE}.py",),
    Kind.GLUE_SPARK_JOB: (f"{_STORE}.py",),
    Kind.EMR_JOB: (f"{_STORE}.py",),
    Kind.PYTHON_WHEEL: (f"{_STORE}.whl",),
    Kind.PY_FILES_ZIP: (f"{_STORE}.zip",),
    Kind.WHEELHOUSE: (f"{_STORE}.zip",),
    Kind.PYTHON_ARCHIVE: (f"{_STORE}.zip", f"{_STORE}.tar.gz"),
}


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _deps_install_meta(meta: dict) -> bool:
    """An installed dependency set's row: its chunks (by input hash) and distributions, as the builder reads them."""
    chunks, distributions = meta.get("chunks"), meta.get("distributions")
    if not isinstance(chunks, list) or not isinstance(distributions, list):
        return False
    if not all(
        isinstance(c, dict) and is_input_hash(c.get("input_hash")) and _is_count(c.get("zip_cost")) for c in chunks
    ):
        return False
    if not all(
        isinstance(d, list) and len(d) == 4 and isinstance(d[0], str) and all(_is_count(n) for n in d[2:])
        for d in distributions
    ):
        return False
    warnings = meta.get("warnings", [])
    return isinstance(warnings, list) and all(isinstance(w, str) for w in warnings)


def _meta_ok(kind: str, meta: dict) -> bool:
    return _deps_install_meta(meta) if kind == Kind.LAMBDA_DEPS_INSTALL else True


ROW_RULES = RowRules(ARTIFACT_LAYOUTS, check_meta=_meta_ok)


def max_index_bytes(config) -> int:
    """`[tool.pkg] cache_max_index_bytes`: the largest shared index downloaded (default 256 MiB)."""
    value = config.raw.get("cache_max_index_bytes", DEFAULT_MAX_INDEX_BYTES)
    if value <= 0:
        raise ConfigError(
            f"cache_max_index_bytes must be > 0, got {value}",
            hint=f"leave it out for the default ({format_size(DEFAULT_MAX_INDEX_BYTES)})",
        )
    return value


def cache_uri(config, stage: str | None = None) -> str | None:
    """The shared cache's URI: `PKG_CACHE_URI`, else the stage's `cache_uri`, else `[tool.pkg] cache_uri`."""
    uri = os.environ.get(CACHE_URI_ENV)
    if not uri and stage:
        uri = config.stage(stage).get("cache_uri")
    uri = uri or config.raw.get("cache_uri")
    if uri:
        try:
            parse_uri(uri)
        except ValueError as error:
            raise ConfigError(str(error), hint='set cache_uri = "s3://bucket/prefix" in [tool.pkg]') from None
    return uri or None


TRUST_MODES = ("any", "signed")


@dataclass(frozen=True)
class SharedCacheTrust:
    """Who this machine believes and whether it writes: `cache_trust`, `cache_signing_key`,
    `cache_public_key`, `cache_push` (a stage's value wins over [tool.pkg]'s)."""

    trust: str = "any"  # "any": every checked row; "signed": only rows the trusted key signed
    signing_key: str | None = None  # KMS key ARN, id or alias: signs pushes, and is the trusted key
    public_key: str | None = None  # pinned PEM / base64 DER: the trusted key, no KMS call to read
    push: bool = True

    @property
    def signed(self) -> bool:
        return self.trust == "signed"


def cache_trust(config, stage: str | None = None) -> SharedCacheTrust:
    """The shared cache trust settings of `stage` (or of [tool.pkg]); a ConfigError when they can't work."""
    table = config.stage(stage) if stage else {}

    def setting(name: str, default=None):
        return table.get(name, config.raw.get(name, default))

    push = setting("cache_push", True)
    forced = os.environ.get(CACHE_PUSH_ENV, "").strip().lower()
    if forced:
        if forced not in ("1", "true", "0", "false"):
            message = f"{CACHE_PUSH_ENV} must be 1, true, 0 or false, got {forced!r}"
            raise ConfigError(message, hint="CI that writes the shared cache sets it to 1")
        push = forced in ("1", "true")
    trust = SharedCacheTrust(
        trust=setting("cache_trust", "any"),
        signing_key=setting("cache_signing_key") or None,
        public_key=setting("cache_public_key") or None,
        push=push,
    )
    if trust.trust not in TRUST_MODES:
        raise ConfigError(
            f"cache_trust must be one of {', '.join(TRUST_MODES)}, got {trust.trust!r}",
            hint='"signed" takes only rows signed by cache_signing_key; leave it out to take every checked row',
        )
    if trust.signed and not (trust.signing_key or trust.public_key):
        raise ConfigError(
            'cache_trust = "signed" needs the key to trust',
            hint='set cache_signing_key = "alias/..." (its public key is fetched once) or pin cache_public_key',
        )
    return trust


def _pinned_key(text: str):
    """The PublicKey pinned in the configuration, or a ConfigError."""
    from cache.signing import PublicKey, PublicKeyError

    try:
        return PublicKey.from_text(text, "cache_public_key")
    except PublicKeyError as error:
        raise ConfigError(
            f"cache_public_key: {error}",
            hint="paste the key as PEM (-----BEGIN PUBLIC KEY-----) or base64 DER, e.g. from `aws kms get-public-key`",
        ) from None


class SharedCacheSession:
    """One command's use of the shared cache: lazy pull, verified fetches, a final push."""

    def __init__(
        self,
        store,
        uri: str,
        warn: Warn,
        region: str | None = None,
        profile: str | None = None,
        max_index_bytes: int = DEFAULT_MAX_INDEX_BYTES,
        trust: SharedCacheTrust = SharedCacheTrust(),
    ):
        self.store = store
        self.trust = trust
        self.read_only = not trust.push  # also once S3 or KMS denied a write
        self.max_index_bytes = max_index_bytes
        self.uri = uri
        self.warn = warn
        self.region = region
        self.profile = profile
        self._cache: SharedCache | None = None
        self.pulled = False
        self.offline = False
        self.fetched: list[str] = []
        self.rejected: list[str] = []

    @property
    def cache(self) -> SharedCache:
        if self._cache is None:
            objects = S3ObjectStore.connect(self.region, self.profile)
            signer, trusted_key = self._keys(objects.session)
            self._cache = SharedCache(
                self.uri,
                objects,
                self.store,
                ROW_RULES,
                self.max_index_bytes,
                on_pull_warning=self.warn,
                signer=signer,
                trusted_key=trusted_key,
                read_only=not self.trust.push,
                trust_label=self.trust.public_key or self.trust.signing_key or "",
            )
        return self._cache

    def _keys(self, session=None):
        """(the signer of pushes, the trusted key's getter) as the trust settings ask; None where unused."""
        kms_key = None
        if self.trust.signing_key:
            from cache.kms import KmsKey

            kms_key = KmsKey(self.trust.signing_key, self.store.cache_dir, self.region, self.profile, session)
        trusted_key = None
        if self.trust.signed:
            if self.trust.public_key:
                pinned = _pinned_key(self.trust.public_key)
                trusted_key = lambda: pinned  # noqa: E731
            elif kms_key is not None:
                trusted_key = kms_key.public_key
        return (kms_key if self.trust.push else None), trusted_key

    def _go_offline(self, error: Exception) -> None:
        self.offline = True
        if isinstance(error, SharedIndexTooLarge):
            self.warn(
                f"the shared index at {self.uri} is larger than cache_max_index_bytes ({format_size(error.limit)}):"
                " the shared cache is not used by this command (raise the setting if the index is honest)"
            )
            return
        self.warn(f"{error}; going on with the local cache only")

    def pull(self, again: bool = False) -> bool:
        """Merge the shared index into the local one (once, or `again`: a conditional GET); False when offline.

        `again` is for a publish that waited for the stage's lock: what the holder published is shared now.
        """
        if self.offline:
            return False
        if again or not self.pulled:
            try:
                self.cache.pull()  # refused rows: one warning, through on_pull_warning
            except SharedIndexCorrupt as error:
                self.warn(f"{error}; ignoring it (the next push replaces it)")
            except SharedCacheError as error:
                self._go_offline(error)
                return False
            self.pulled = True
        return True

    def records(self, input_hashes) -> dict[str, ArtifactRecord]:
        """The artifacts among `input_hashes` that the shared cache holds (pulling first if needed)."""
        if not self.pull():
            return {}
        return self.store.index.remote_artifacts(self.uri, input_hashes)

    def records_of_bytes(self, digests) -> list[ArtifactRecord]:
        """Every artifact the shared cache holds whose file's sha256 is among `digests` (pulling first if needed)."""
        if not self.pull():
            return []
        return self.store.index.remote_artifacts_of_bytes(self.uri, digests)

    def fetch(self, record: ArtifactRecord) -> bool:
        """Download and verify one artifact into the local store; False (with a warning) if it can't be used."""
        return record.input_hash in self.fetch_many([record])

    def fetch_planned(self, planned) -> int:
        """Turn planned builds into verified downloads where the shared cache has the artifact."""
        # What --force or --refresh-deps asks to make anew is not taken from anyone's cache either.
        todo = [item for item in planned if item.to_build and not item.forced]
        if not todo:
            return 0
        remote = self.records(item.spec.input_hash for item in todo)
        wanted = [(item, remote[item.spec.input_hash]) for item in todo if item.spec.input_hash in remote]
        fetched = self.fetch_many([record for _item, record in wanted])
        for item, record in wanted:
            if record.input_hash in fetched:
                item.status, item.reason, item.record = BuildStatus.CACHED, "fetched from the shared cache", record
        return len(fetched)

    def fetch_many(self, records: list[ArtifactRecord]) -> set[str]:
        """Download and verify artifacts in parallel, record them; returns the input hashes now local."""
        if not records or self.offline:
            return set()
        from concurrent.futures import ThreadPoolExecutor

        cache = self.cache

        def download(record: ArtifactRecord) -> Exception | None:
            try:
                cache.download(record)
            except (SharedArtifactMismatch, SharedCacheError) as error:
                return error
            return None

        with ThreadPoolExecutor(max_workers=FETCH_THREADS) as pool:
            errors = list(pool.map(download, records))
        done = []
        for record, error in zip(records, errors, strict=True):
            if isinstance(error, SharedArtifactMismatch):
                self.rejected.append(record.input_hash)
                self.warn(str(error))
            elif isinstance(error, SharedCacheError):
                if not self.offline:
                    self._go_offline(error)
            else:
                done.append(record)
        # Rows after files, in this thread (sqlite connections stay put); they describe the files now here.
        self.store.index.add_artifacts(done, replace=True)
        self.fetched += [record.input_hash for record in done]
        return {record.input_hash for record in done}

    def push(self) -> None:
        """Share what this machine built or published; a failure is a warning, never an error.

        A read-only member (`cache_push = false`) does not push; one whose write S3 or KMS denies is
        told once and goes on as read-only: the command succeeds, the local cache keeps everything.
        """
        if self.read_only:
            return
        if self.offline:
            self.warn(f"not pushed to {self.uri} (offline); run `pkg cache push` later")
            return
        try:
            report = self.cache.push()
        except SharedCacheReadOnly as error:
            self.read_only = True
            self.warn(str(error))
            return
        except SharedCacheError as error:
            self.warn(f"{error}; run `pkg cache push` later")
            return
        for warning in report.warnings:
            self.warn(warning)


def open_shared_cache(
    ws, enabled: bool, warn: Warn, stage: str | None = None, region: str | None = None
) -> SharedCacheSession | None:
    """The shared cache session of a command, or None when none is configured or `--no-shared-cache`."""
    if not enabled:
        return None
    uri = cache_uri(ws.config, stage)
    if uri is None:
        return None
    profile = ws.config.stage(stage).get("profile") if stage else None
    limit = max_index_bytes(ws.config)
    trust = cache_trust(ws.config, stage)
    return SharedCacheSession(
        ws.store, uri, warn, region=region, profile=profile, max_index_bytes=limit, trust=trust
    )


def shared_in_use(needed: set[str], artifacts: list[ArtifactRecord], published: list[dict]) -> set[str]:
    """The input hashes `pkg gc --shared` keeps: what the current tree needs (`needed`), what any
    stage's publish record in the shared index names (but a layer version or object gc deleted),
    and a dependency install together with its chunks when either is kept (a fetch needs them all)."""
    from packager.deploy.records import describes_nothing_live

    used = set(needed)
    for row in published:
        try:
            details = json.loads(row["details"])
        except (TypeError, ValueError):
            continue
        if isinstance(details, dict) and describes_nothing_live(details):
            continue  # deleted by `pkg gc`, a removal or `pkg destroy`: no stage runs it
        if row["input_hash"]:
            used.add(row["input_hash"])
    for record in artifacts:
        if record.kind == Kind.LAMBDA_DEPS_INSTALL:
            chunks = {chunk["input_hash"] for chunk in record.meta["chunks"]}  # checked by _deps_install_meta
            if record.input_hash in used or chunks & used:
                used |= chunks | {record.input_hash}
    return used

