"""src/ -> functions, jobs, internal_libs and requirements files, as plain data.

Every `.py` directly in a service folder is one function or job; `internal_libs/` is the code
the service's functions share; `<name>.requirements.txt` and `internal_libs/requirements.txt`
are their dependencies. Handlers are checked by parsing, never by importing user code.
"""

from __future__ import annotations

import ast
import keyword
import os
import re
import sys
from dataclasses import dataclass, field

from packager.runtimes import LAMBDA_LIMITS

SERVICES = ("lambda", "glue_python_shell", "glue_spark", "emr")
INTERNAL_LIBS = "internal_libs"
REQUIREMENTS_SUFFIX = ".requirements.txt"

# Bump when check_lambda_handler changes what it accepts: cached verdicts are keyed by it.
HANDLER_CHECKER = "lambda-handler-1"

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


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
class Service:
    """What one `src/<service>/` folder holds."""

    name: str
    folder: str  # repo-relative
    entries: list[Entry] = field(default_factory=list)
    internal_libs: InternalLibs | None = None
    problems: list[str] = field(default_factory=list)


def discover_service(root: str, service: str) -> Service:
    """List the functions/jobs, internal_libs and requirements of `src/<service>/` (sorted by name)."""
    folder = f"src/{service}"
    found = Service(service, folder)
    base = os.path.join(root, folder)
    try:
        names = sorted(os.listdir(base))
    except FileNotFoundError:
        return found
    present = set(names)
    for name in names:
        if name.endswith(".py") and os.path.isfile(os.path.join(base, name)):
            stem = name[:-3]
            requirements = stem + REQUIREMENTS_SUFFIX
            found.entries.append(
                Entry(stem, f"{folder}/{name}", f"{folder}/{requirements}" if requirements in present else None)
            )
        elif name.endswith(REQUIREMENTS_SUFFIX) and name[: -len(REQUIREMENTS_SUFFIX)] + ".py" not in present:
            found.problems.append(
                f"{folder}/{name}:1: no {name[: -len(REQUIREMENTS_SUFFIX)]}.py beside these requirements"
            )
    libs = os.path.join(base, INTERNAL_LIBS)
    if os.path.isdir(libs):
        has_requirements = os.path.isfile(os.path.join(libs, "requirements.txt"))
        found.internal_libs = InternalLibs(
            f"{folder}/{INTERNAL_LIBS}", f"{folder}/{INTERNAL_LIBS}/requirements.txt" if has_requirements else None
        )
    return found


def check_lambda_name(entry: Entry) -> str | None:
    """Why `entry.name` can't name a Lambda function and its handler module, or None."""
    name = entry.name
    where = f"{entry.source}:1:"
    if not _IDENTIFIER.match(name):
        return (
            f"{where} '{name}' can't be a Lambda function name: use letters, digits and underscores,"
            " not starting with a digit (the handler module must be importable)"
        )
    if keyword.iskeyword(name):
        return f"{where} '{name}' is a Python keyword and can't be imported as a handler module"
    if len(name) > LAMBDA_LIMITS.function_name_length:
        return f"{where} '{name}' is {len(name)} characters; Lambda function names take at most 64"
    if name == INTERNAL_LIBS:
        return f"{where} '{name}' is the shared package's name and can't name a function"
    if name in sys.stdlib_module_names:
        return (
            f"{where} '{name}' shadows the standard-library module '{name}': the runtime or a library"
            " may import it first and the handler would not load, or it breaks them; rename the file"
        )
    return None


def _top_level_statements(body: list[ast.stmt]):
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


def check_lambda_handler(source: bytes, path: str) -> str | None:
    """Why the file can't serve as `<name>.handler`, as `path:line: what`, or None.

    Accepts a top-level `def handler(event, context)`, or `handler` bound by assignment or import.
    """
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as error:
        return f"{path}:{error.lineno or 1}: syntax error: {error.msg}"
    except ValueError as error:  # e.g. null bytes
        return f"{path}:1: not a Python source file: {error}"
    for node in _top_level_statements(tree.body):
        if isinstance(node, ast.AsyncFunctionDef) and node.name == "handler":
            return f"{path}:{node.lineno}: 'async def handler' is not supported by Lambda's Python runtime; use def"
        if isinstance(node, ast.FunctionDef) and node.name == "handler":
            args = node.args
            positional = len(args.posonlyargs) + len(args.args)
            required = positional - len(args.defaults)
            if args.vararg is None and positional < 2:
                return (
                    f"{path}:{node.lineno}: handler takes {positional} argument{'s' * (positional != 1)};"
                    " Lambda calls handler(event, context)"
                )
            if required > 2 or any(d is None for d in args.kw_defaults):
                return f"{path}:{node.lineno}: handler requires more than (event, context); Lambda passes only those"
            return None
        if isinstance(node, ast.ClassDef) and node.name == "handler":
            return None
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "handler" for t in targets):
                return None
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if any((alias.asname or alias.name) == "handler" for alias in node.names):
                return None
    return f"{path}:1: no top-level 'handler' function; Lambda calls <module>.handler(event, context)"
