"""src/ -> functions, jobs, internal_libs and requirements files, as plain data; and every source check.

Every `.py` directly in a service folder is one function or job; `internal_libs/` is the code
the service's functions share; `<name>.requirements.txt` and `internal_libs/requirements.txt`
are their dependencies. Sources are checked by parsing, never by importing user code: which name
rules and which parse check apply is one table row per service (`SOURCE_RULES`).
"""

from __future__ import annotations

import ast
import keyword
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from packager.errors import DiscoveryError
from packager.model import Service
from packager.runtimes import LAMBDA_LIMITS

if TYPE_CHECKING:
    from cache.hashing import FileDigests
    from cache.index import Index

SERVICES: tuple[Service, ...] = tuple(Service)
INTERNAL_LIBS = "internal_libs"
REQUIREMENTS_SUFFIX = ".requirements.txt"
FOLDER_REQUIREMENTS = "requirements.txt"  # directly in src/<service>/: refused, its lines belong elsewhere

# Bump when check_lambda_handler changes what it accepts: cached verdicts are keyed by it.
HANDLER_CHECKER = "lambda-handler-3"
DEFAULT_HANDLER = "handler"  # the function Lambda calls unless [tool.pkg.lambda] handler names another
# Bump when check_job_script changes what it accepts: cached verdicts are keyed by it.
JOB_SCRIPT_CHECKER = "job-script-2"
# Bump when check_module changes what it accepts (every .py under internal_libs): verdicts are keyed by it.
MODULE_CHECKER = "internal-libs-module-1"


@dataclass(frozen=True)
class Entry:
    """One function or job: a `.py` file directly in a service folder."""

    name: str
    source: str  # repo-relative, "/"-separated
    requirements: str | None  # repo-relative path of <name>.requirements.txt, if any


@dataclass(frozen=True)
class InternalLibs:
    """The shared package of a service folder."""

    path: str  # repo-relative folder
    requirements: str | None


@dataclass
class ServiceFolder:
    """What one `src/<service>/` folder holds."""

    name: Service
    folder: str  # repo-relative
    entries: list[Entry] = field(default_factory=list)
    internal_libs: InternalLibs | None = None
    problems: list[str] = field(default_factory=list)


def discover_service(root: str, service: Service | str) -> ServiceFolder:
    """List the functions/jobs, internal_libs and requirements of `src/<service>/` (sorted by name)."""
    service = Service(service)
    folder = f"src/{service}"
    found = ServiceFolder(service, folder)
    base = os.path.join(root, folder)
    if not os.path.isdir(base):
        return found
    if (problem := _leaves_repository(root, folder)) is not None:
        found.problems.append(problem)
        return found  # nothing of a folder outside the repository is read, let alone packaged
    names = sorted(os.listdir(base))
    present = set(names)
    for name in names:
        try:
            name.encode()
        except UnicodeEncodeError:  # listdir gives undecodable bytes as surrogates, which can't be hashed or shown
            shown = os.fsencode(name).decode("utf-8", "backslashreplace")
            found.problems.append(f"{folder}/{shown}:1: file name is not UTF-8; rename it")
            continue
        if name.endswith(".py") and (problem := _links_to_secret(root, f"{folder}/{name}")) is not None:
            found.problems.append(problem)
        elif name.endswith(".py") and os.path.isfile(os.path.join(base, name)):
            stem = name[:-3]
            requirements = stem + REQUIREMENTS_SUFFIX
            found.entries.append(
                Entry(stem, f"{folder}/{name}", f"{folder}/{requirements}" if requirements in present else None)
            )
        elif name == FOLDER_REQUIREMENTS:
            found.problems.append(folder_requirements_problem(service))
        elif name.endswith(REQUIREMENTS_SUFFIX) and name[: -len(REQUIREMENTS_SUFFIX)] + ".py" not in present:
            found.problems.append(
                f"{folder}/{name}:1: no {name[: -len(REQUIREMENTS_SUFFIX)]}.py beside these requirements"
            )
    libs = os.path.join(base, INTERNAL_LIBS)
    if os.path.isdir(libs) and (problem := _leaves_repository(root, f"{folder}/{INTERNAL_LIBS}")) is not None:
        found.problems.append(problem)
    elif os.path.isdir(libs):
        has_requirements = os.path.isfile(os.path.join(libs, "requirements.txt"))
        found.internal_libs = InternalLibs(
            f"{folder}/{INTERNAL_LIBS}", f"{folder}/{INTERNAL_LIBS}/requirements.txt" if has_requirements else None
        )
    return found


def folder_requirements_problem(service: Service) -> str:
    """Why `src/<service>/requirements.txt` (the seed layout of many repos) is refused, and where its lines go.

    Refused rather than adopted: it would silently become every function's dependencies, while the
    repos that keep one often meant it for the service's local runs or one function only.
    """
    what = "job" if service.is_job else "function"
    return (
        f"src/{service}/{FOLDER_REQUIREMENTS}:1: a service folder's requirements.txt is not read; move its lines to"
        f" src/{service}/{INTERNAL_LIBS}/requirements.txt (dependencies every {what} shares) or to"
        f" src/{service}/<name>.requirements.txt (one {what}'s own)"
    )


def _leaves_repository(root: str, path: str) -> str | None:
    """The problem with a repo-relative folder that resolves (through a symlink) outside the repository."""
    real, top = os.path.realpath(os.path.join(root, path)), os.path.realpath(root)
    if real == top or real.startswith(top + os.sep):
        return None
    return f"{path}:1: symlink to {real} leaves the repository; refusing to follow it (copy the folder in instead)"


def _links_to_secret(root: str, path: str) -> str | None:
    """The problem with a repo-relative `.py` that is a symlink to a credentials file (it would ship it)."""
    from cache.exclusions import is_secret_path

    abspath = os.path.join(root, path)
    if not os.path.islink(abspath):
        return None
    real, top = os.path.realpath(abspath), os.path.realpath(root)
    if not real.startswith(top + os.sep) or not is_secret_path(os.path.relpath(real, top).replace(os.sep, "/")):
        return None  # a link leaving its folder is refused by the builder, naming where it goes
    return f"{path}:1: symlink to {os.readlink(abspath)}, a secret file; secrets are never packaged"


@dataclass(frozen=True)
class NameRules:
    """What a service accepts as a function or job name (the `.py` file's stem), and why."""

    pattern: re.Pattern[str]
    pattern_problem: str  # after "'<name>' ", when the pattern does not match
    stdlib_problem: str  # after "shadows the standard-library module '<name>': "
    importable: bool = False  # the name is imported as a module: no keywords, not internal_libs
    max_length: int | None = None
    max_length_problem: str = ""  # after "'<name>' is N characters; "


LAMBDA_NAMES = NameRules(
    pattern=re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z"),
    pattern_problem="can't be a Lambda function name: use letters, digits and underscores,"
    " not starting with a digit (the handler module must be importable)",
    stdlib_problem="the runtime or a library may import it first and the handler would not load, or it breaks"
    " them; rename the file",
    importable=True,
    max_length=LAMBDA_LIMITS.function_name_length,
    max_length_problem=f"Lambda function names take at most {LAMBDA_LIMITS.function_name_length}",
)
JOB_NAMES = NameRules(
    pattern=re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\Z"),
    pattern_problem="can't be a job name: use letters, digits, '_' and '-'",
    stdlib_problem="the script's folder comes first on sys.path, so imports of it would load the job instead;"
    " rename the file",
)


def check_name(entry: Entry, rules: NameRules) -> str | None:
    """Why `entry.name` can't name a function or job under `rules`, as `path:1: what`, or None."""
    name = entry.name
    where = f"{entry.source}:1:"
    if not rules.pattern.match(name):
        return f"{where} '{name}' {rules.pattern_problem}"
    if rules.importable and keyword.iskeyword(name):
        return f"{where} '{name}' is a Python keyword and can't be imported as a handler module"
    if rules.max_length is not None and len(name) > rules.max_length:
        return f"{where} '{name}' is {len(name)} characters; {rules.max_length_problem}"
    if rules.importable and name == INTERNAL_LIBS:
        return f"{where} '{name}' is the shared package's name and can't name a function"
    if name in sys.stdlib_module_names:
        return f"{where} '{name}' shadows the standard-library module '{name}': {rules.stdlib_problem}"
    return None


def _top_level_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Module-level statements, including those inside top-level if/try/with blocks."""
    for node in body:
        yield node
        if isinstance(node, ast.If):
            yield from _top_level_statements(node.body)
            yield from _top_level_statements(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from _top_level_statements(block)
        elif isinstance(node, ast.With):
            yield from _top_level_statements(node.body)


def _parse(source: bytes, path: str) -> ast.Module | str:
    """The module's syntax tree, or why it does not parse as `path:line: what`."""
    import io
    import tokenize

    try:  # ast.parse lets a bad byte in a comment pass; Python's import refuses the whole file
        encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
        source.decode(encoding)
    except SyntaxError as error:  # an unknown encoding declared, or a first line that isn't UTF-8
        return f"{path}:1: {error.msg}; save it as UTF-8"
    except UnicodeDecodeError as error:
        line = source.count(b"\n", 0, error.start) + 1
        return f"{path}:{line}: not {encoding} text (byte {source[error.start]:#04x}); save it as UTF-8"
    try:
        return ast.parse(source, filename=path)
    except SyntaxError as error:
        return f"{path}:{error.lineno or 1}: syntax error: {error.msg}"
    except ValueError as error:  # e.g. null bytes
        return f"{path}:1: not a Python source file: {error}"


def check_job_script(source: bytes, path: str, handler: str = DEFAULT_HANDLER) -> str | None:
    """Why the file can't run as a job script (it must parse), as `path:line: what`, or None.

    `handler` is not read: a job script runs top to bottom (the parameter keeps one check signature).
    """
    tree = _parse(source, path)
    return tree if isinstance(tree, str) else None


def check_module(source: bytes, path: str) -> str | None:
    """Why an internal_libs module would not import for its syntax or encoding, as `path:line: what`, or None."""
    tree = _parse(source, path)
    return tree if isinstance(tree, str) else None


def check_lambda_handler(source: bytes, path: str, handler: str = DEFAULT_HANDLER) -> str | None:
    """Why the file can't serve as `<name>.<handler>`, as `path:line: what`, or None.

    Accepts a top-level `def <handler>(event, context)`, or `<handler>` bound by assignment or import.
    """
    tree = _parse(source, path)
    if isinstance(tree, str):
        return tree
    for node in _top_level_statements(tree.body):
        if isinstance(node, ast.AsyncFunctionDef) and node.name == handler:
            return f"{path}:{node.lineno}: 'async def {handler}' is not supported by Lambda's Python runtime; use def"
        if isinstance(node, ast.FunctionDef) and node.name == handler:
            args = node.args
            positional = len(args.posonlyargs) + len(args.args)
            required = positional - len(args.defaults)
            if args.vararg is None and positional < 2:
                return (
                    f"{path}:{node.lineno}: {handler} takes {positional} argument{'s' * (positional != 1)};"
                    f" Lambda calls {handler}(event, context)"
                )
            if required > 2 or any(d is None for d in args.kw_defaults):
                return (
                    f"{path}:{node.lineno}: {handler} requires more than (event, context); Lambda passes only those"
                )
            return None
        if isinstance(node, ast.ClassDef) and node.name == handler:
            return None
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == handler for t in targets):
                return None
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if any((alias.asname or alias.name) == handler for alias in node.names):
                return None
    return f"{path}:1: no top-level '{handler}' function; Lambda calls <module>.{handler}(event, context)"


@dataclass(frozen=True)
class SourceRules:
    """The checks every entry of one service passes before anything is built."""

    names: NameRules
    check_source: Callable[[bytes, str, str], str | None]  # (file bytes, repo-relative path, handler) -> problem
    checker: str  # the name cached verdicts are kept under: bump it when `check_source` changes


SOURCE_RULES: dict[Service, SourceRules] = {
    Service.LAMBDA: SourceRules(LAMBDA_NAMES, check_lambda_handler, HANDLER_CHECKER),
    **{service: SourceRules(JOB_NAMES, check_job_script, JOB_SCRIPT_CHECKER) for service in Service if service.is_job},
}


def check_sources(
    index: Index,
    folder: ServiceFolder,
    root: str,
    digests: FileDigests,
    handler_of: Callable[[str], str] | None = None,
) -> list[str]:
    """`path:line: what` for every entry of `folder` whose name or source fails its service's rules.

    `handler_of(name)`: the function a Lambda entry's runtime calls (default `handler`). A source that
    passed the service's checker (for that handler name) once is not parsed again while its digest is
    unchanged.
    """
    rules = SOURCE_RULES[folder.name]
    problems = list(folder.problems)
    passed: dict[str, set[str]] = {}
    newly_passed: dict[str, list[str]] = {}
    for entry in folder.entries:
        handler = handler_of(entry.name) if handler_of else DEFAULT_HANDLER
        # A verdict holds for one handler name: another name is another checker.
        checker = rules.checker if handler == DEFAULT_HANDLER else f"{rules.checker}/{handler}"
        problem = check_name(entry, rules.names)
        if problem is None:
            abspath = os.path.join(root, entry.source)
            digest = digests.digest(entry.source, abspath)
            if checker not in passed:
                passed[checker] = index.checked_sources(checker)
            if digest in passed[checker]:
                continue
            with open(abspath, "rb") as stream:
                problem = rules.check_source(stream.read(), entry.source, handler)
            if problem is None:
                newly_passed.setdefault(checker, []).append(digest)
        if problem:
            problems.append(problem)
    for checker, digests_passed in newly_passed.items():
        index.save_checked_sources(digests_passed, checker)
    return problems + check_internal_libs(index, folder, root, digests)


def check_internal_libs(index: Index, folder: ServiceFolder, root: str, digests: FileDigests) -> list[str]:
    """`path:line: what` for every `.py` of the folder's internal_libs that would not compile.

    The files are the ones the build packages (walk_tree); a module that passed once is not parsed
    again while its digest is unchanged.
    """
    from cache.hashing import SymlinkEscapeError, UnreadableEntryError, walk_tree

    if folder.internal_libs is None:
        return []
    libs = folder.internal_libs.path
    try:
        tree = walk_tree(os.path.join(root, libs), skip={"requirements.txt"})
    except (SymlinkEscapeError, UnreadableEntryError):
        return []  # the build refuses such a tree itself, naming the entry
    passed = index.checked_sources(MODULE_CHECKER)
    problems, newly_passed = [], []
    for file in tree.files:
        if not file.relpath.endswith(".py"):
            continue
        path = f"{libs}/{file.relpath}"
        digest = digests.digest(path, file.abspath)
        if digest in passed:
            continue
        with open(file.abspath, "rb") as stream:
            problem = check_module(stream.read(), path)
        if problem is None:
            newly_passed.append(digest)
        else:
            problems.append(problem)
    if newly_passed:
        index.save_checked_sources(newly_passed, MODULE_CHECKER)
    return problems


def discover(
    root: str, index: Index, digests: FileDigests, handler_of: Callable[[str], str] | None = None
) -> list[ServiceFolder]:
    """Every service folder of src/, in the order of `Service`; raises DiscoveryError listing every problem.

    `handler_of(name)`: the function a Lambda entry's runtime calls (`[tool.pkg.lambda] handler`,
    default `handler`). Nothing is built while any problem remains.
    """
    folders = [discover_service(root, service) for service in Service]
    problems = [
        problem
        for folder in folders
        for problem in check_sources(
            index, folder, root, digests, handler_of if folder.name is Service.LAMBDA else None
        )
    ]
    if problems:
        raise DiscoveryError(problems, hint="fix the files above; nothing was built")
    return folders
