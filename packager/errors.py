"""The one exception family of pkg: a message for the user and a hint on what to do."""

from __future__ import annotations


class PkgError(Exception):
    """A failure the user can act on; the CLI prints it as one line plus a hint, no traceback."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        # What finished before the failure, JSON-ready (e.g. a publish's actions): `--json` prints it too.
        self.completed: dict = {}

    def __str__(self) -> str:
        return self.message

    def to_json(self) -> dict:
        """The failure as `--json` prints it: `error`, `hint`, `type`, then whatever completed."""
        return {"error": self.message, "hint": self.hint, "type": type(self).__name__, **self.completed}


class ConfigError(PkgError):
    """`[tool.pkg]` is missing, malformed, or names an unknown key."""


class DiscoveryError(PkgError):
    """Source files under src/ break the layout rules; `problems` lists `path:line: what` lines."""

    def __init__(self, problems: list[str], hint: str | None = None):
        count = len(problems)
        super().__init__(
            "\n".join(problems) if count == 1 else f"{count} problems in src/:\n" + "\n".join(problems),
            hint,
        )
        self.problems = problems
        self.completed = {"problems": problems}


class UnsafeFileError(PkgError):
    """A file that must never be packaged or followed (a symlink leaving the tree)."""


class CacheError(PkgError):
    """The local store or its index is unusable."""


class PlanError(PkgError):
    """What would be published breaks a name rule or a service limit; found before any call."""


class PublishError(PkgError):
    """AWS refused or failed a publish step; what completed before it is recorded."""


# deploy: planning jobs and following runs
class JobPlanError(PkgError):
    """A job can't be published as configured (a limit, a name, a missing setting)."""


class RunTimeoutError(PkgError):
    """A run did not finish before `--timeout`: it goes on in AWS; pkg stopped waiting."""

    exit_code = 2


# invoke and dev environments (packager/invoke.py, packager/envs.py)
class EventError(PkgError):
    """The event file is missing or is not JSON."""


class HandlerError(PkgError):
    """The handler or job script raised, could not be imported, returned non-JSON, exited non-zero or timed out."""


class EnvError(PkgError):
    """A dev environment is unknown, not created, or no conda-compatible manager is installed."""


# Building dependencies (packager/builders).
class DependencyError(PkgError):
    """A dependency set can't be read, resolved or installed for its Lambda platform."""


class JobDependencyError(PkgError):
    """A job's requirements can't be satisfied with wheels for its runtime and platform."""


class LayerLimitError(PkgError):
    """A dependency set or a function breaks one of Lambda's layer limits; found before any upload."""


class UnsafeArchiveError(PkgError):
    """A zip or wheel member whose name would land outside its folder (absolute, `..`, backslash, drive)."""


class CorruptIndexError(CacheError):
    """The local index file is not a readable SQLite database (truncated, overwritten, damaged)."""

    def __init__(self, path: str, detail: str):
        super().__init__(
            f"{path}: the local index is not a readable SQLite database ({detail})",
            hint="run `pkg cache verify --repair`: it moves the file aside and starts a fresh index"
            " (what is published is re-adopted from AWS, artifacts are rebuilt or fetched)",
        )
        self.path = path


class DiskFullError(CacheError):
    """The disk holding the cache folder (or a temporary folder) ran out of space mid-write."""


class Interrupted(PkgError):
    """Ctrl-C: the work stopped, what completed is recorded; exit code 130, as shells report SIGINT."""

    exit_code = 130

    def __init__(self, message: str = "interrupted") -> None:
        super().__init__(message)  # no hint: one line, the user knows why


class StageLockedError(PkgError):
    """Another publish or gc holds the stage's lock in S3 and did not finish within --lock-timeout."""

    def __init__(self, stage: str, holder: str, timeout: float) -> None:
        super().__init__(
            f"the {stage} lock is held by {holder}; gave up after {timeout:g} s",
            hint=f"wait for it to finish and run this again (or --lock-timeout); if its holder is gone,"
            f" `pkg unlock --stage {stage}`",
        )
        self.stage = stage
        self.holder = holder


class InitError(PkgError):
    """`pkg init` can't write a new repository: a file is in the way, or the project name breaks a rule."""


class EndpointError(PkgError):
    """The AWS endpoint can't be reached (refused, unresolvable, timed out) or answers as something else than AWS."""


class DeletionProtectedError(PkgError):
    """A stage with deletion_protection = true would lose functions or jobs (or all of itself, `pkg destroy`)."""
