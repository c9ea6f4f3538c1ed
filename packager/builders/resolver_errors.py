"""Why uv or pip could not resolve a requirements set, read from what they printed.

Four causes, each told apart because each has its own fix: a name no index knows (a typo, a private
package without its index), a version that does not exist, a release with no wheel for the target
platform (pkg installs binary wheels only), and requirements that contradict each other. uv says
which in its resolver explanation; pip says "from versions: none" for both an unknown name and a
release whose wheels all have other tags, so pip is asked again with `-vv`, which lists each wheel
it skipped and why (`skipped_wheels`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from packager.builders.requirements import canonical_name

_NAME = r"([A-Za-z0-9][A-Za-z0-9._-]*)"
_SPEC = r"((?:\[[^\]]*\])?[<>=!~][^\s,(]*(?:,[<>=!~][^\s,(]*)*)?"


class Cause(StrEnum):
    """What kept the resolver from finding a set of wheels."""

    UNKNOWN_PACKAGE = "unknown package"
    NO_VERSION = "no such version"
    NO_WHEEL = "no wheel for this platform"
    CONFLICT = "conflict"


@dataclass(frozen=True)
class ResolverFailure:
    """One classified failure: the cause, and the package and specifier it is about (when the tool named them)."""

    cause: Cause
    package: str | None = None
    specifier: str = ""
    versions: str = ""  # what pip says exists ("1.0, 1.1"), for a missing version


# uv's resolver explanations ("Because X was not found in the package registry and you require X, ...").
_UV = [
    (Cause.UNKNOWN_PACKAGE, re.compile(rf"\b{_NAME} was not found in the")),
    (Cause.NO_WHEEL, re.compile(rf"\b{_NAME}{_SPEC} has no (?:usable )?wheels")),
    (Cause.NO_VERSION, re.compile(rf"there is no version of {_NAME}{_SPEC}")),
    (Cause.NO_VERSION, re.compile(rf"there are no (?:usable )?versions of {_NAME}{_SPEC}")),
    (Cause.NO_VERSION, re.compile(rf"only {_NAME}\S* is available and you require (?:[A-Za-z0-9._-]+){_SPEC}")),
]
# pip: "Could not find a version that satisfies the requirement X>=1 (from parent) (from versions: 1.0, 1.1)".
_PIP_NOT_FOUND = re.compile(rf"satisfies the requirement {_NAME}{_SPEC}(?: \(from [^)]*\))? \(from versions: ([^)]*)\)")
# pip -vv: "Skipping link: none of the wheel's tags (...) are compatible (...): file:///w/x-1.0-cp312-....whl"
_PIP_SKIPPED = re.compile(
    r"Skipping link: (?:none of the wheel's tags|No binaries permitted for)[^\n]*?: (\S+)\s*$", re.MULTILINE
)


def skipped_wheels(verbose_output: str) -> set[tuple[str, str]]:
    """(canonical name, version) of every file pip -vv skipped for its tags or for not being a wheel."""
    found = set()
    for url in _PIP_SKIPPED.findall(verbose_output):
        filename = url.split("#", 1)[0].rsplit("/", 1)[-1]
        if filename.endswith(".whl"):
            name, version = filename.split("-")[:2]
        else:  # an sdist: name-version.tar.gz / .zip
            name, _, version = re.sub(r"\.(tar\.gz|zip|tar\.bz2)$", "", filename).rpartition("-")
        found.add((canonical_name(name), version))
    return found


def classify(output: str, skipped: set[tuple[str, str]] | None = None) -> ResolverFailure:
    """The cause of a failed uv or pip resolution; `skipped` is pip -vv's `skipped_wheels` when it was asked."""
    for cause, pattern in _UV:
        match = pattern.search(output)
        if match:
            groups = [group for group in match.groups() if group is not None]
            return ResolverFailure(cause, match.group(1), groups[-1] if len(groups) > 1 else "")
    match = _PIP_NOT_FOUND.search(output)
    if match:
        name, specifier, versions = match.group(1), match.group(2) or "", match.group(3).strip()
        releases = {version for skipped_name, version in (skipped or set()) if skipped_name == canonical_name(name)}
        pinned = specifier[2:] if specifier.startswith("==") and "," not in specifier else None
        if releases and (versions == "none" or pinned in releases):
            return ResolverFailure(Cause.NO_WHEEL, name, specifier)
        if versions == "none":
            return ResolverFailure(Cause.UNKNOWN_PACKAGE, name, specifier)
        return ResolverFailure(Cause.NO_VERSION, name, specifier, versions)
    conflict = re.search(rf"Cannot install (?:.*? and )?{_NAME}{_SPEC} because", output)
    return ResolverFailure(Cause.CONFLICT, conflict.group(1) if conflict else None)
