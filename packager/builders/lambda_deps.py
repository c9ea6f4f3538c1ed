"""Lambda dependency layers: requirements -> one platform install per distinct set -> layer chunks.

Groups: the dependencies of internal_libs (one group per runtime/architecture the functions use,
shared by those functions) and each function's own `<name>.requirements.txt`. A group's *set hash*
covers its normalised requirements, the platform and the installer options; identical sets share
one install. The index row of an install records the chunks it produced, so a no-op build only
reads requirements files (once per distinct content) and looks rows up: nothing is installed,
unzipped or hashed again.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Callable

import xxhash

from cache.hashing import FileDigests, input_hash
from cache.index import ArtifactRecord, utc_now
from cache.rows import is_input_hash, is_plain_relpath
from cache.store import sha256_file
from packager import BUILD_FORMAT_VERSION
from packager.builders.installer import IndexOptions, Platform, index_options
from packager.builders.layer_chunks import DistributionSize, biggest
from packager.builders.requirements import Requirements, RequirementsReader
from packager.builders.sources import ArtifactSpec
from packager.builders.zips import ARCHIVE_OVERHEAD, STORED, PreparedEntry, write_prepared_zip
from packager.config import Config
from packager.deploy import limits as deploy_limits
from packager.discover import ServiceFolder
from packager.errors import DependencyError, LayerLimitError
from packager.model import Kind
from packager.runtimes import LAMBDA_LIMITS, LAMBDA_PROVIDED_DISTRIBUTIONS, LAMBDA_RUNTIMES
from packager.units import format_size

if TYPE_CHECKING:
    from packager.builders.installed import Distribution

# Installing (installed.py, installer subprocesses, tempfile) is imported where it happens: a no-op
# build never installs, and every import counts against its time budget.

# Bump when installing, leaning or chunking would give other layers for the same requirements.
DEPS_FORMAT = 2
INTERNAL_LIBS_DEPS = "lambda/internal_libs_deps"
DEPS_FOLDER = "deps"  # in the cache folder: one installed tree per set hash
STREAMS = "streams"  # beside an installed tree: each file deflated once, as the layer zips hold it

Progress = Callable[[str], None]


def function_deps_prefix(name: str) -> str:
    """The id prefix of a function's own dependency chunks."""
    return f"lambda/function_deps/{name}"


def skip_runtime_provided(config: Config) -> bool:
    """`[tool.pkg.dependencies].skip_runtime_provided`: leave out boto3 & co. unless pinned directly."""
    return config.raw.get("dependencies", {}).get("skip_runtime_provided", True)


@dataclass
class DependencySet:
    """One install: requirements for a platform, on top of a base set (a function's on internal_libs')."""

    platform: Platform
    requirements: Requirements
    options: IndexOptions
    skip_provided: bool
    base: InstalledSet | None

    @property
    def settings(self) -> dict:
        """Everything besides the requirement lines that shapes the install (part of its hash)."""
        return {
            "kind": "lambda-deps",
            "format": BUILD_FORMAT_VERSION,
            "deps_format": DEPS_FORMAT,
            "runtime": self.platform.runtime.name,
            "python": self.platform.runtime.python,
            "architecture": self.platform.architecture,
            "platform_tags": self.platform.tags,
            "index": self.options.hashed(),
            "skip_runtime_provided": self.skip_provided,
            "base": self.base.versions_hash if self.base else None,
        }

    @cached_property
    def set_hash(self) -> str:
        """The install's key in the index: identical sets, wherever they come from, share it."""
        lines = [(f"requirement {line}", "") for line in self.requirements.lines]
        lines += [(f"constraint {line}", "") for line in self.requirements.constraints]
        return input_hash(self.settings, lines)


@dataclass
class InstalledSet:
    """What an install produced, as its index row records it (enough for a no-op build)."""

    set_hash: str
    tree: str  # the installed python/ folder
    manifest_path: str
    chunks: list[dict]  # {"input_hash", "unzipped_size", "zip_cost", "parts": {name: version}, ...}
    distributions: list[list]  # [name, version, unzipped, zipped] of what the layers hold
    warnings: list[str] = field(default_factory=list)

    @property
    def versions(self) -> dict[str, str]:
        """name -> version of every distribution the layers hold."""
        return {name: version for name, version, *_ in self.distributions if version}

    @property
    def versions_hash(self) -> str:
        """What a function's set hash takes from this (internal_libs') set: the versions it holds."""
        text = "\n".join(f"{name}=={version}" for name, version in sorted(self.versions.items()))
        return xxhash.xxh3_128_hexdigest(text.encode())

    def sizes(self) -> list[DistributionSize]:
        """What the layers hold, by distribution, for messages about limits."""
        return [DistributionSize(*row) for row in self.distributions]


@dataclass
class LayerGroup:
    """The chunks of one group: internal_libs' dependencies for a platform, or one function's own."""

    prefix: str  # artifact id prefix; chunk k is f"{prefix}/{k}"
    source: str  # the requirements file, repo-relative
    dependency_set: DependencySet
    resolved: InstalledSet | None = None  # set by the resolver, before anything reads `installed`
    specs: list[ArtifactSpec] = field(default_factory=list)

    @property
    def installed(self) -> InstalledSet:
        """The install this group stands at."""
        if self.resolved is None:
            raise RuntimeError(f"{self.prefix}: read before its dependency set was resolved")
        return self.resolved


@dataclass
class DependencyLayers:
    """Every dependency layer chunk of src/lambda, and which of them each function uses, in order."""

    specs: list[ArtifactSpec]
    by_function: dict[str, list[str]]  # function name -> chunk ids: internal_libs deps, then its own
    groups: dict[str, LayerGroup]  # by prefix
    warnings: list[str]


def _set_from_record(record: ArtifactRecord, cache_dir: str) -> InstalledSet:
    folder = os.path.join(cache_dir, DEPS_FOLDER, record.input_hash)
    return InstalledSet(
        set_hash=record.input_hash,
        tree=os.path.join(folder, "python"),
        manifest_path=os.path.join(cache_dir, record.path),
        chunks=record.meta["chunks"],
        distributions=record.meta["distributions"],
        warnings=record.meta.get("warnings", []),
    )


class DependencyInstaller:
    """Installs dependency sets into the cache folder and records each in the index."""

    def __init__(self, ws, progress: Progress | None):
        self.ws = ws
        self.progress = progress or (lambda message: None)
        self.deps_dir = os.path.join(ws.store.cache_dir, DEPS_FOLDER)

    def _measured_before(self, prefix: str) -> dict[str, tuple[list[int], str]]:
        """digest -> ([size in the zip, level, crc], its stream) from this group's previous install."""
        from packager.builders.installed import stream_name

        previous = self.ws.store.index.last_input_hashes().get(prefix)
        if not previous:
            return {}
        folder = os.path.join(self.deps_dir, previous)
        try:
            with open(os.path.join(folder, "manifest.json"), encoding="utf-8") as stream:
                measured = json.load(stream).get("measured", {})
        except (OSError, ValueError):
            return {}
        streams = os.path.join(folder, STREAMS)
        return {
            digest: (row, os.path.join(streams, stream_name(digest, row[1])))
            for digest, row in measured.items()
            if is_input_hash(digest) and isinstance(row, list) and len(row) == 3 and isinstance(row[1], int)
        }

    def install(self, group: LayerGroup) -> InstalledSet:
        """Install the group's set for its platform, lean it, chunk it, and record the result."""
        import shutil
        import tempfile
        import time
        dep = group.dependency_set
        set_hash = dep.set_hash
        started = time.perf_counter()
        count = len(dep.requirements.lines)
        self.progress(
            f"installing {count} requirement{'s' * (count != 1)} of {group.source} for"
            f" {dep.platform.runtime.name} {dep.platform.architecture}..."
        )
        os.makedirs(self.deps_dir, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f".tmp-{set_hash[:12]}-", dir=self.deps_dir)
        try:
            result = self._install_into(tmp, group, set_hash)
            final = os.path.join(self.deps_dir, set_hash)
            try:
                os.rename(tmp, final)  # fails if `final` exists: a folder is never empty
            except OSError:
                if not os.path.isdir(final):
                    raise
                if os.path.isdir(os.path.join(final, "python")) and _same_bytes(
                    os.path.join(tmp, "manifest.json"), os.path.join(final, "manifest.json")
                ):
                    # A concurrent build installed the same: keep its folder, which it may be reading.
                    shutil.rmtree(tmp, ignore_errors=True)
                else:  # a refresh that resolved differently, or a folder without its tree: swap them
                    trash = tempfile.mkdtemp(prefix=f".old-{set_hash[:12]}-", dir=self.deps_dir)
                    os.replace(final, os.path.join(trash, "tree"))
                    os.replace(tmp, final)
                    shutil.rmtree(trash, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        relpath = f"{DEPS_FOLDER}/{set_hash}/manifest.json"
        manifest_path = os.path.join(self.ws.store.cache_dir, relpath)
        meta = {"chunks": result["chunks"], "distributions": result["distributions"], "warnings": result["warnings"]}
        record = ArtifactRecord(
            input_hash=set_hash,
            kind=Kind.LAMBDA_DEPS_INSTALL,
            path=relpath,
            sha256=sha256_file(manifest_path),
            size=os.path.getsize(manifest_path),
            unzipped_size=sum(row[2] for row in result["distributions"]),
            created=utc_now(),
            meta=meta,
        )
        self.ws.store.index.record_artifact(record, group.prefix, self._group_manifest(dep))
        installed = _set_from_record(record, self.ws.store.cache_dir)
        zipped = sum(chunk["zip_cost"] for chunk in installed.chunks)
        self.progress(
            f"installed {group.source} in {time.perf_counter() - started:.1f} s:"
            f" {len(installed.chunks)} layer chunk{'s' * (len(installed.chunks) != 1)}, {format_size(zipped)} zipped"
        )
        return installed

    @staticmethod
    def _group_manifest(dep: DependencySet) -> dict:
        return {"settings": dep.settings, "files": {line: "" for line in dep.requirements.lines}}

    def remember(self, group: LayerGroup) -> None:
        """Note that a group now stands at an install made for another group with the same set."""
        self.ws.store.index.remember_inputs(
            group.prefix, group.dependency_set.set_hash, self._group_manifest(group.dependency_set)
        )

    def _install_into(self, tmp: str, group: LayerGroup, set_hash: str) -> dict:
        from packager.builders.installed import check_tags, measure, scan_tree
        from packager.builders.installer import run_install
        from packager.builders.layer_chunks import assign_chunks

        dep = group.dependency_set
        label = group.source
        target = os.path.join(tmp, "python")
        requirements = os.path.join(tmp, "requirements.txt")
        with open(requirements, "w", encoding="utf-8") as stream:
            stream.write("".join(line + "\n" for line in dep.requirements.lines))
        pins = list(dep.requirements.constraints)
        if dep.base:  # a function's layers sit on internal_libs': keep the versions those already hold
            pins += [f"{name}=={version}" for name, version in sorted(dep.base.versions.items())]
        constraints = None
        if pins:
            constraints = os.path.join(tmp, "constraints.txt")
            with open(constraints, "w", encoding="utf-8") as stream:
                stream.write("".join(line + "\n" for line in pins))
        run_install(
            dep.platform, dep.options, self.ws.root, target, requirements, constraints, label, dep.requirements.sources
        )
        os.makedirs(target, exist_ok=True)
        dists = scan_tree(target)
        check_tags(dists, dep.platform, label)
        kept, warnings = self._lean(dists, dep, label)
        unzipped = sum(d.size for d in kept)
        if unzipped > LAMBDA_LIMITS.unzipped_total:
            raise LayerLimitError(
                f"{label}: the dependencies alone are {format_size(unzipped)} unzipped; Lambda allows"
                f" {LAMBDA_LIMITS.unzipped_total:,} bytes ({format_size(LAMBDA_LIMITS.unzipped_total)})"
                f" for a function's code and all its layers. Biggest: {biggest(kept, zipped=False)}",
                hint="drop or replace the biggest packages, or ship the function as a container image (10 GB)",
            )
        measure(
            target,
            kept,
            os.path.join(tmp, STREAMS),
            LAMBDA_LIMITS.layer_chunk_zip - ARCHIVE_OVERHEAD,
            self._measured_before(group.prefix),
        )
        chunks = assign_chunks(kept, label)
        settings = chunk_settings(dep.platform)
        chunk_rows, chunk_files = [], []
        for chunk in chunks:
            chunk_rows.append(
                {
                    "input_hash": input_hash(settings, ((f.hashed_name, f.digest) for f in chunk.files)),
                    "unzipped_size": chunk.unzipped_size,
                    "zip_cost": chunk.zip_cost,
                    "parts": chunk.parts,
                    "split": sorted(chunk.split),
                    "inputs": chunk.inputs(),
                }
            )
            chunk_files.append([[f.relpath, f.digest, f.size, f.zsize, f.crc, f.level] for f in chunk.files])
        with open(os.path.join(tmp, "manifest.json"), "w", encoding="utf-8") as stream:
            json.dump(
                {
                    "set_hash": set_hash,
                    "settings": dep.settings,
                    "requirements": list(dep.requirements.lines),
                    "chunks": chunk_files,
                    "measured": {f.digest: [f.zsize, f.level, f.crc] for d in kept for f in d.files},
                },
                stream,
                sort_keys=True,
            )
        return {
            "chunks": chunk_rows,
            "distributions": [[d.name, d.version, d.size, d.zip_cost] for d in kept],
            "warnings": warnings,
        }

    @staticmethod
    def _lean(dists: list[Distribution], dep: DependencySet, label: str) -> tuple[list[Distribution], list[str]]:
        """Leave out what the runtime ships (unless pinned directly) and what the base layers hold."""
        direct = dep.requirements.names
        base = dep.base.versions if dep.base else {}
        kept, warnings = [], []
        for dist in dists:
            if dep.skip_provided and dist.name in LAMBDA_PROVIDED_DISTRIBUTIONS and dist.name not in direct:
                continue
            if base.get(dist.name) == dist.version:
                continue
            if dist.name in base and dist.version:
                warnings.append(
                    f"{label}: {dist.label} differs from {dist.name}=={base[dist.name]} in the internal_libs"
                    " dependency layers; the function's layer wins at import time"
                )
            kept.append(dist)
        return kept, warnings


def _same_bytes(one: str, other: str) -> bool:
    try:
        with open(one, "rb") as a, open(other, "rb") as b:
            return a.read() == b.read()
    except OSError:
        return False


def chunk_settings(platform: Platform) -> dict:
    """What shapes a chunk besides its files (part of its input hash)."""
    return {
        "kind": Kind.LAMBDA_LAYER,
        "format": BUILD_FORMAT_VERSION,
        "deps_format": DEPS_FORMAT,
        "runtime": platform.runtime.name,
        "architecture": platform.architecture,
    }


def _chunk_writer(installed: InstalledSet, k: int, limit: int):
    def write(path: str) -> int:
        from packager.builders.installed import stream_name

        if not os.path.isdir(installed.tree):
            raise DependencyError(
                f"the installed dependencies {installed.tree} are gone", hint="run `pkg build --refresh-deps`"
            )
        with open(installed.manifest_path, encoding="utf-8") as stream:
            files = json.load(stream)["chunks"][k]
        streams = os.path.join(os.path.dirname(installed.tree), STREAMS)
        entries = []
        for relpath, digest, size, zsize, crc, level in files:
            # The manifest may have come from the shared cache: no entry may name a file outside the install.
            if not (is_plain_relpath(relpath) and is_input_hash(digest) and isinstance(level, int)):  # digest: xxh3
                raise DependencyError(
                    f"the dependency manifest {installed.manifest_path} names {str(relpath)[:120]!r}, not a file"
                    " of its install",
                    hint="run `pkg build --refresh-deps` (and `pkg cache verify --repair`)",
                )
            abspath = os.path.join(installed.tree, relpath)
            data = abspath if level == STORED else os.path.join(streams, stream_name(digest, level))
            entries.append(PreparedEntry(f"python/{relpath}", abspath, data, size, zsize, crc, level))
        unzipped = write_prepared_zip(path, entries)
        if os.path.getsize(path) > limit:
            raise LayerLimitError(f"layer chunk {k} of {installed.set_hash[:12]} came out over {format_size(limit)}")
        return unzipped

    return write


def _chunk_specs(group: LayerGroup, shapes: dict[str, list[tuple]]) -> list[ArtifactSpec]:
    """The group's chunks as artifacts; `shapes` shares what groups with one install have in common."""
    installed = group.installed
    platform = group.dependency_set.platform
    shared = shapes.get(installed.set_hash)
    if shared is None:
        settings = chunk_settings(platform)
        shared = shapes[installed.set_hash] = [
            (
                settings,
                _chunk_writer(installed, k, LAMBDA_LIMITS.layer_chunk_zip),
                {
                    "runtime": platform.runtime.name,
                    "architecture": platform.architecture,
                    "distributions": [f"{n}=={v}" if v else n for n, v in sorted(chunk["parts"].items())],
                },
                chunk,
            )
            for k, chunk in enumerate(installed.chunks)
        ]
    return [
        ArtifactSpec(
            id=f"{group.prefix}/{k}",
            kind=Kind.LAMBDA_LAYER,
            settings=settings,
            files=[],
            write=write,
            meta=meta,
            input_hash=chunk["input_hash"],
            inputs=chunk["inputs"],
            unzipped_size=chunk["unzipped_size"],
        )
        for k, (settings, write, meta, chunk) in enumerate(shared)
    ]


def _platform(settings: dict) -> Platform:
    return Platform(LAMBDA_RUNTIMES[settings["runtime"]], settings["architecture"])


def _base_prefix(platform: Platform, default: Platform) -> str:
    if platform == default:
        return INTERNAL_LIBS_DEPS
    return f"{INTERNAL_LIBS_DEPS}/{platform.runtime.name}-{platform.architecture}"


class _Resolver:
    """Finds each group's install in the index, installing the sets that have none (once per set)."""

    def __init__(self, ws, refresh: bool, progress: Progress | None, need_trees: bool = False):
        self.ws = ws
        self.refresh = refresh
        self.need_trees = need_trees
        self.installer = DependencyInstaller(ws, progress)
        self.by_hash: dict[str, InstalledSet] = {}
        self.installed_now: set[str] = set()
        self.shapes: dict[str, list[tuple]] = {}

    def resolve(self, groups: list[LayerGroup]) -> None:
        """Give every group its install and chunk artifacts, installing at most once per set."""
        hashes = {group.dependency_set.set_hash for group in groups}
        records = self.ws.store.index.artifacts(hashes - set(self.by_hash))
        for group in groups:
            set_hash = group.dependency_set.set_hash
            installed = self.by_hash.get(set_hash)
            if installed is None:
                record = records.get(set_hash)
                if record is not None and record.kind == Kind.LAMBDA_DEPS_INSTALL and not self.refresh:
                    candidate = _set_from_record(record, self.ws.store.cache_dir)
                    # The tree is what a chunk is written from: without it, install again,
                    # unless every chunk is already built (e.g. fetched from the shared cache).
                    if os.path.isfile(candidate.manifest_path) and (
                        os.path.isdir(candidate.tree) or (not self.need_trees and self._chunks_built(candidate))
                    ):
                        installed = candidate
                if installed is None and not self.refresh:
                    installed = self._from_shared_cache(set_hash)
                if installed is None:
                    installed = self.installer.install(group)
                    self.installed_now.add(set_hash)
                self.by_hash[set_hash] = installed
            elif set_hash in self.installed_now:
                self.installer.remember(group)
            group.resolved = installed
            group.specs = _chunk_specs(group, self.shapes)

    def _chunks_built(self, installed: InstalledSet) -> bool:
        hashes = [chunk["input_hash"] for chunk in installed.chunks]
        records = self.ws.store.index.artifacts(hashes)
        return all(h in records and self.ws.store.has_file(records[h]) for h in hashes)

    def _from_shared_cache(self, set_hash: str) -> InstalledSet | None:
        """The install of `set_hash` as the shared cache holds it: its record and every chunk, verified.

        A fresh CI runner thus reuses a teammate's layers without installing anything.
        """
        shared = getattr(self.ws, "shared", None)
        if shared is None:
            return None
        record = shared.records([set_hash]).get(set_hash)
        if record is None or record.kind != Kind.LAMBDA_DEPS_INSTALL:
            return None
        hashes = [chunk["input_hash"] for chunk in record.meta["chunks"]]
        local = self.ws.store.index.artifacts(hashes)
        missing = [h for h in hashes if h not in local or not self.ws.store.has_file(local[h])]
        remote = shared.records(missing)
        if len(remote) < len(missing) or not all(shared.fetch(remote[h]) for h in missing):
            return None
        if not shared.fetch(record):  # the install's manifest, last: its row says the set is complete
            return None
        return _set_from_record(record, self.ws.store.cache_dir)


def lambda_dependency_layers(
    ws,
    service: ServiceFolder,
    digests: FileDigests,
    refresh: bool = False,
    progress: Progress | None = None,
    functions: list[ArtifactSpec] | None = None,
    only: set[str] | None = None,
    need_trees: bool = False,
) -> DependencyLayers:
    """The dependency layer chunks of every Lambda group, installing the sets the index doesn't know.

    `refresh` re-resolves every set (unpinned requirements move only then, or when their text changes).
    `functions`: the functions' code artifacts, whose settings already hold each one's runtime and
    architecture (else they are resolved from the configuration again). `only`: the functions whose
    layers are wanted (`pkg build NAME`); the other groups are neither resolved nor installed.
    `need_trees`: every chunk may be rewritten (`--force`), so a set whose installed files are not
    in this cache (its chunks came from the shared cache) is installed again.
    """
    config = ws.config
    options, skip_provided = index_options(config), skip_runtime_provided(config)
    reader = RequirementsReader(ws.root, digests.digest)
    default = _platform(config.lambda_settings(""))
    if functions is not None:
        platforms = {str(spec.artifact.name): _platform(spec.settings) for spec in functions}
    else:
        platforms = {entry.name: _platform(config.lambda_settings(entry.name)) for entry in service.entries}
    resolver = _Resolver(ws, refresh, progress, need_trees)
    selected = platforms if only is None else {name: p for name, p in platforms.items() if name in only}

    base_groups: dict[Platform, LayerGroup] = {}
    libs = service.internal_libs
    if libs and libs.requirements and (only is None or selected):
        requirements = reader.read(libs.requirements)
        if requirements.lines:
            used = sorted(set(selected.values()) - {default}, key=lambda p: (p.runtime.name, p.architecture))
            wanted = [default] if only is None or default in selected.values() else []
            for platform in [*wanted, *used]:
                dep = DependencySet(platform, requirements, options, skip_provided, base=None)
                base_groups[platform] = LayerGroup(_base_prefix(platform, default), libs.requirements, dep)
            resolver.resolve(list(base_groups.values()))

    function_groups: dict[str, LayerGroup] = {}
    same_sets: dict[tuple, DependencySet] = {}  # one object per distinct set: its hash is computed once
    for entry in service.entries:
        if not entry.requirements or entry.name not in selected:
            continue
        requirements = reader.read(entry.requirements)
        if not requirements.lines:
            continue
        platform = platforms[entry.name]
        base = base_groups.get(platform)
        key = (platform, requirements.lines, requirements.constraints)
        same = same_sets.get(key)
        if same is None:
            same = same_sets[key] = DependencySet(
                platform, requirements, options, skip_provided, base=base.installed if base else None
            )
        function_groups[entry.name] = LayerGroup(function_deps_prefix(entry.name), entry.requirements, same)
    resolver.resolve(list(function_groups.values()))

    specs: list[ArtifactSpec] = []
    groups: dict[str, LayerGroup] = {}
    warnings: list[str] = []
    for group in [*base_groups.values(), *function_groups.values()]:
        specs.extend(group.specs)
        groups[group.prefix] = group
        warnings.extend(w for w in group.installed.warnings if w not in warnings)
    by_function = {}
    for name, platform in platforms.items():
        ids = [spec.id for spec in base_groups[platform].specs] if platform in base_groups else []
        if name in function_groups:
            ids += [spec.id for spec in function_groups[name].specs]
        by_function[name] = ids
    return DependencyLayers(specs, by_function, groups, warnings)


def _unzipped(spec: ArtifactSpec) -> int:
    if spec.unzipped_size is not None:
        return spec.unzipped_size
    return sum(os.path.getsize(f.abspath) for f in spec.files)


def check_function_limits(
    functions: list[ArtifactSpec], layers: dict[str, ArtifactSpec], deps: DependencyLayers
) -> None:
    """Refuse, before anything is built or uploaded, a function over Lambda's layer count or 250 MB unzipped."""
    group_of = {spec.id: group for group in deps.groups.values() for spec in group.specs}
    sizes: dict[str, int] = {}
    for function in functions:
        if not any(used in group_of for used in function.uses):
            continue  # code and the internal_libs layer alone: nothing of size to check
        label = f"function '{function.artifact.short_name}'"
        if len(function.uses) > LAMBDA_LIMITS.layers_per_function:
            deploy_limits.check_function_limits(label, None, [(used, None) for used in function.uses])
        for used in function.uses:
            if used not in sizes:
                sizes[used] = _unzipped(layers[used])
        code = _unzipped(function)
        found = ""
        if code + sum(sizes[used] for used in function.uses) > LAMBDA_LIMITS.unzipped_total:
            # Name the biggest distributions only when refusing: reading their sizes costs.
            dists: dict[str, DistributionSize] = {}
            for group in {group_of[used].prefix: group_of[used] for used in function.uses if used in group_of}.values():
                for dist in group.installed.sizes() if group.installed else []:
                    dists.setdefault(dist.name, dist)
            found = biggest(list(dists.values()))
        deploy_limits.check_function_limits(label, code, [(used, sizes[used]) for used in function.uses], found)
