"""Distributions -> at most two layer chunks of at most 50 MB zipped each, assigned stably.

Each distribution goes to the chunk its name hashes to, so bumping one package changes only the
chunk holding it; sizes matter only when a chunk overflows, and then units leave it in a fixed
order (by name hash). A distribution is split across chunks by file only when it can't fit whole
(layers merge into /opt, so that is safe).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import xxhash

from packager.builders.zips import ARCHIVE_OVERHEAD
from packager.errors import LayerLimitError
from packager.runtimes import LAMBDA_LIMITS
from packager.units import format_size

if TYPE_CHECKING:  # installed.py is imported only when something is installed
    from packager.builders.installed import Distribution, InstalledFile


@dataclass(frozen=True)
class DistributionSize:
    """A distribution as a limit message names it (what an install's index row keeps of it)."""

    name: str
    version: str
    size: int  # unzipped
    zip_cost: int  # zipped, at most

    @property
    def label(self) -> str:
        return f"{self.name}=={self.version}" if self.version else self.name


@dataclass
class LayerChunk:
    """One dependency layer zip: the files of whole distributions, or parts of split ones."""

    files: list[InstalledFile] = field(default_factory=list)
    parts: dict[str, str] = field(default_factory=dict)  # distribution name -> version
    split: set[str] = field(default_factory=set)  # distributions only partly in this chunk
    members: dict[str, list[InstalledFile]] = field(default_factory=dict)  # distribution name -> its files here

    def inputs(self) -> dict[str, str]:
        """distribution -> "version digest" of its files in this chunk: what explains a rebuild."""
        described = {}
        for name, files in sorted(self.members.items()):
            hasher = xxhash.xxh3_64()
            for item in sorted(files, key=lambda f: f.relpath):
                hasher.update(f"{item.relpath}\0{item.digest}\0".encode())
            described[name] = f"{self.parts[name] or '-'} {hasher.hexdigest()}"
        return described

    @property
    def zip_cost(self) -> int:
        return ARCHIVE_OVERHEAD + sum(f.zip_cost for f in self.files)

    @property
    def unzipped_size(self) -> int:
        return sum(f.size for f in self.files)


@dataclass
class _Unit:
    key: str
    dist: Distribution
    files: list[InstalledFile]

    @property
    def cost(self) -> int:
        return sum(f.zip_cost for f in self.files)

    @property
    def rank(self) -> int:
        return xxhash.xxh3_64_intdigest(self.key.encode())


def biggest(dists: Sequence[Distribution | DistributionSize], count: int = 5, zipped: bool = True) -> str:
    """"a==1.0 (120.3 MiB unzipped, 40.1 MiB zipped), ..." for the biggest distributions by unzipped size.

    `zipped=False` before the files were measured (only unzipped sizes are known then).
    """
    top = sorted(dists, key=lambda d: (-d.size, d.name))[:count]
    if not zipped:
        return ", ".join(f"{d.label} ({format_size(d.size)} unzipped)" for d in top)
    return ", ".join(f"{d.label} ({format_size(d.size)} unzipped, {format_size(d.zip_cost)} zipped)" for d in top)


def _pack(dists: list[Distribution], count: int, capacity: int) -> list[LayerChunk] | None:
    """Assign `dists` to `count` chunks of `capacity` zipped bytes; None if they can't fit."""
    budget = capacity - ARCHIVE_OVERHEAD
    bins: list[list[_Unit]] = [[] for _ in range(count)]
    loads = [0] * count
    for dist in dists:
        unit = _Unit(dist.name, dist, list(dist.files))
        home = unit.rank % count
        bins[home].append(unit)
        loads[home] += unit.cost
    for home in range(count):
        # Over budget: units leave in the order of their name hash, largest room first.
        for unit in sorted(bins[home], key=lambda u: (u.rank, u.key)):
            if loads[home] <= budget:
                break
            bins[home].remove(unit)
            loads[home] -= unit.cost
            others = sorted((b for b in range(count) if b != home), key=lambda b: (loads[b], b))
            target = next((b for b in others if loads[b] + unit.cost <= budget), None)
            if target is not None:
                bins[target].append(unit)
                loads[target] += unit.cost
                continue
            # No chunk takes it whole: split it by file, biggest files first, filling its home chunk first.
            for item in sorted(unit.files, key=lambda f: (-f.zip_cost, f.relpath)):
                order = [home] + sorted((b for b in range(count) if b != home), key=lambda b: (loads[b], b))
                slot = next((b for b in order if loads[b] + item.zip_cost <= budget), None)
                if slot is None:
                    return None
                bins[slot].append(_Unit(unit.key, unit.dist, [item]))
                loads[slot] += item.zip_cost
    chunks = []
    for units in bins:
        chunk = LayerChunk()
        for unit in units:
            chunk.files.extend(unit.files)
            chunk.parts[unit.dist.name] = unit.dist.version
            chunk.members.setdefault(unit.dist.name, []).extend(unit.files)
        chunk.files.sort(key=lambda f: f.relpath)
        chunks.append(chunk)
    for chunk in chunks:
        for name in chunk.parts:
            if sum(name in other.parts for other in chunks) > 1:
                chunk.split.add(name)
    return [chunk for chunk in chunks if chunk.files]


def assign_chunks(
    dists: list[Distribution],
    label: str,
    capacity: int = LAMBDA_LIMITS.layer_chunk_zip,
    max_chunks: int = LAMBDA_LIMITS.chunks_per_group,
) -> list[LayerChunk]:
    """Pack the distributions into as few chunks as the zipped sizes need, at most `max_chunks`.

    Raises LayerLimitError naming the biggest distributions when they need more.
    """
    dists = [d for d in dists if d.files]
    if not dists:
        return []
    total = sum(d.zip_cost for d in dists)
    count = max(1, math.ceil(total / (capacity - ARCHIVE_OVERHEAD)))
    while count <= max_chunks:
        chunks = _pack(dists, count, capacity)
        if chunks is not None:
            return chunks
        count += 1
    raise LayerLimitError(
        f"{label}: the dependencies need {format_size(total)} zipped, more than {max_chunks} layers of"
        f" {format_size(capacity)} each (Lambda takes at most {LAMBDA_LIMITS.layers_per_function} layers per"
        f" function). Biggest: {biggest(dists)}",
        hint="drop or replace the biggest packages, move dependencies shared by every function to"
        " internal_libs/requirements.txt (its own two layers), or ship the function as a container image",
    )
