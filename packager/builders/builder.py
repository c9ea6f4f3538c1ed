"""discover -> hash -> build: the artifacts of a repository, built only when their input hash is new.

`plan_build` says for each artifact whether it would be built and why; `build` does it. Both
start from `collect`, which discovers src/, checks handlers (cached by digest) and hashes inputs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from packager.shared import SharedCacheSession

from cache.hashing import FileDigests
from cache.index import ArtifactRecord
from cache.store import Store
from packager.builders.jobs import check_unique_glue_job_names, job_artifacts
from packager.builders.lambda_code import lambda_artifacts
from packager.builders.sources import ArtifactSpec, CollectRequest, ServiceArtifacts, explain
from packager.config import Config, check_member_overrides, load_config
from packager.discover import ServiceFolder, discover
from packager.errors import PkgError
from packager.model import JOB_DEPS_KINDS, ArtifactId, BuildStatus, Service
from packager.repo import cache_dir_of


@dataclass
class Workspace:
    """One pipelines repository: its root, its `[tool.pkg]` and its local cache."""

    root: str
    config: Config
    store: Store
    shared: SharedCacheSession | None = None  # the command's shared cache session, if any
    warnings: list[str] = field(default_factory=list)  # what collect() warned about

    def close(self) -> None:
        self.store.close()


def open_workspace(root: str) -> Workspace:
    """Load the configuration of the repo at `root` and open its cache (`PKG_CACHE_DIR` overrides)."""
    return Workspace(root, load_config(root), Store(cache_dir_of(root)))


# Each service folder's builder: what a new service adds (with its Service member and runtime row).
ServiceBuilder = Callable[[Workspace, ServiceFolder, FileDigests, CollectRequest], ServiceArtifacts]
SERVICE_BUILDERS: dict[Service, ServiceBuilder] = {
    Service.LAMBDA: lambda_artifacts,
    Service.GLUE_PYTHON_SHELL: job_artifacts,
    Service.GLUE_SPARK: job_artifacts,
    Service.EMR: job_artifacts,
}


@dataclass
class Collected:
    """The artifacts of a repo, hashed, with the warnings gathered on the way."""

    specs: list[ArtifactSpec]
    digests: FileDigests
    warnings: list[str] = field(default_factory=list)
    refresh: set[str] = field(default_factory=set)  # ids to build again whatever the cache holds


def select(specs: list[ArtifactSpec], names: list[str]) -> list[ArtifactSpec]:
    """The artifacts named (by function name or artifact id) and the layers they use."""
    by_id = {spec.id: spec for spec in specs}
    # Dependency chunks ("lambda/function_deps/x/0") go by id only; the rest by their id's last segment.
    by_name = {_last_segment(spec.artifact): spec for spec in specs if not spec.artifact.is_layer_chunk}
    wanted: dict[str, ArtifactSpec] = {}
    for name in names:
        spec = by_id.get(name) or by_name.get(name)
        if spec is None:
            known = ", ".join(sorted(by_name)) or "none"
            raise PkgError(f"no artifact or function named '{name}'", hint=f"known: {known}")
        wanted[spec.id] = spec
        for used in spec.uses:
            wanted[used] = by_id[used]
    return [spec for spec in specs if spec.id in wanted]


def _last_segment(artifact: ArtifactId) -> str:
    """What `pkg build NAME` matches: a function's or job's name, else the id's last segment ("deps")."""
    return artifact.name if artifact.name is not None else artifact.role.value


def collect(
    ws: Workspace,
    names: list[str] | None = None,
    refresh_deps: bool = False,
    progress: Callable[[str], None] | None = None,
    force: bool = False,
) -> Collected:
    """Discover src/, check every handler, and hash every artifact's inputs.

    Dependency sets the index doesn't know are installed here (their chunks' hashes come from the
    installed files), reporting through `progress`; `refresh_deps` re-resolves every set; `force`
    (a build that rewrites every artifact) reinstalls the sets whose installed files are not here.
    Raises DiscoveryError listing every problem; nothing is built while any remains.
    """
    digests = FileDigests(ws.store.index.file_states())
    folders = discover(ws.root, ws.store.index, digests, ws.config.lambda_handler)  # every source check, one pass
    check_unique_glue_job_names(folders)
    check_member_overrides(ws.config, {folder.name: [entry.name for entry in folder.entries] for folder in folders})
    request = CollectRequest(tuple(names or ()), refresh_deps, force, progress)
    specs: list[ArtifactSpec] = []
    warnings: list[str] = []
    for folder in folders:
        found = SERVICE_BUILDERS[folder.name](ws, folder, digests, request)
        specs += found.specs
        warnings += found.warnings
    ws.store.index.save_file_states(digests.fresh)
    digests.fresh = {}
    if names:
        specs = select(specs, names)
    # Job dependencies are resolved when written: re-resolving them means writing them again.
    refresh = {spec.id for spec in specs if spec.kind in JOB_DEPS_KINDS} if refresh_deps else set()
    return Collected(specs, digests, warnings, refresh)


@dataclass
class PlannedArtifact:
    """One artifact and what `pkg build` would do with it; `reason` is for people, never for control flow."""

    spec: ArtifactSpec
    status: BuildStatus
    reason: str
    record: ArtifactRecord | None = None  # the index row once it exists
    forced: bool = False  # --force or --refresh-deps: made anew, never taken from a cache
    up_to_date: bool = False  # cached, and the last build of this id had this very input

    @property
    def to_build(self) -> bool:
        return self.status is BuildStatus.BUILD


def plan_build(ws: Workspace, collected: Collected, force: bool = False) -> list[PlannedArtifact]:
    """Decide for each artifact whether to build it, and why; reads the index, writes nothing to it."""
    index = ws.store.index
    records = index.artifacts(spec.input_hash for spec in collected.specs)
    last_hashes = index.last_input_hashes()  # manifests are parsed only for what must be explained
    planned = []
    to_explain = []
    present: dict[str, bool] = {}  # artifact file -> on disk (functions sharing a set share chunk files)

    def _present(record: ArtifactRecord) -> bool:
        if record.path not in present:
            present[record.path] = ws.store.use(record)  # its mtime then says when it was last used
        return present[record.path]

    for spec in collected.specs:
        record = records.get(spec.input_hash)
        if force:
            planned.append(PlannedArtifact(spec, BuildStatus.BUILD, "--force", forced=True))
        elif spec.id in collected.refresh:
            planned.append(PlannedArtifact(spec, BuildStatus.BUILD, "--refresh-deps", forced=True))
        elif record is not None and _present(record):
            up_to_date = last_hashes.get(spec.id) == spec.input_hash
            reason = "up to date" if up_to_date else "built before (cached)"
            planned.append(PlannedArtifact(spec, BuildStatus.CACHED, reason, record, up_to_date=up_to_date))
        elif record is not None:
            planned.append(PlannedArtifact(spec, BuildStatus.BUILD, "artifact file missing from the cache"))
        else:
            planned.append(PlannedArtifact(spec, BuildStatus.BUILD, ""))
            to_explain.append(planned[-1])
    history = index.last_inputs(item.spec.id for item in to_explain) if to_explain else {}
    for item in to_explain:
        previous = history.get(item.spec.id)
        item.reason = explain(previous[1] if previous else None, item.spec.manifest)
    return planned


def rebuild_corrupt(ws: Workspace, planned: list[PlannedArtifact]) -> list[str]:
    """Before the files of `planned` are used: a cached one that is no longer the bytes built (sha256 of
    the index row) is deleted and marked to be built again. Returns one line per such file.

    `plan_build` checks only that a file is there with its size (the no-op path opens nothing at all):
    this reads just the files about to be used, which their use reads anyway.
    """
    found = []
    intact: dict[str, bool] = {}  # artifact file -> as built (artifacts of one input share a file)
    for item in planned:
        record = item.record
        if item.status is not BuildStatus.CACHED or record is None:
            continue
        if record.path not in intact:
            intact[record.path] = ws.store.intact(record)
            if not intact[record.path]:
                ws.store.discard(record)
                found.append(
                    f"{record.path} was corrupt (not the bytes the index records for {item.spec.id}): built again"
                )
        if not intact[record.path]:
            item.status, item.record, item.reason = BuildStatus.BUILD, None, "the store file was corrupt"
            item.up_to_date = False
    return found


ProgressCallback = Callable[[PlannedArtifact], None]


def build(
    ws: Workspace,
    planned: list[PlannedArtifact],
    on_built: ProgressCallback | None = None,
    jobs: int | None = None,
) -> list[PlannedArtifact]:
    """Build every planned artifact marked "build" (in parallel) and record it after its file is in place."""
    index = ws.store.index
    todo = [item for item in planned if item.to_build]
    if todo:
        from concurrent.futures import ThreadPoolExecutor, as_completed  # only when there is work

        # Artifacts with one input hash have the same bytes (e.g. the dependency chunks of functions
        # sharing a requirements set): each is written once and recorded under every id.
        same_input: dict[tuple[str, str], list[PlannedArtifact]] = {}
        for item in todo:
            same_input.setdefault((item.spec.input_hash, item.spec.suffix), []).append(item)
        workers = jobs or min(8, (os.cpu_count() or 1) + 1, len(same_input))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {}
            for items in same_input.values():
                first = items[0].spec
                future = pool.submit(ws.store.put, first.input_hash, first.kind, first.suffix, first.write, first.meta)
                futures[future] = items
            try:
                for future in as_completed(futures):
                    record = future.result()
                    for item in futures[future]:
                        item.record = record
                        index.record_artifact(record, item.spec.id, item.spec.manifest)
                        if on_built:
                            on_built(item)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)  # stop queued builds; finished ones stay recorded
                raise
    for item in planned:
        if item.status is BuildStatus.CACHED and not item.up_to_date:
            index.remember_inputs(item.spec.id, item.spec.input_hash, item.spec.manifest)
    return planned
