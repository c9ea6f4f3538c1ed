"""Benchmark `pkg build` on generated repos: cold, no-op and one-edit times, and what each rebuilt.

Not a test: it prints figures for the README. Usage: python bench/bench.py [--sizes 100 1000] [--runs 5]
Each command is run as a user runs it (the `pkg` console script in a subprocess), so the times
include interpreter start-up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PKG = str(Path(sys.executable).with_name("pkg"))

PYPROJECT = """\
[project]
name = "bench"
version = "0"

[tool.pkg]
project = "bench"

[tool.pkg.lambda]
runtime = "python3.12"
architecture = "x86_64"
"""

HANDLER = '''\
"""Generated function {n}."""

import json

from internal_libs.records import normalise


def handler(event, context):
    rows = [normalise(row) for row in event.get("rows", [])]
    return {{"function": {n}, "count": len(rows), "body": json.dumps(rows)}}
'''


def generate(root: Path, functions: int) -> None:
    """A repo with `functions` handlers sharing an internal_libs package of 20 modules."""
    if root.exists():
        shutil.rmtree(root)
    (root / "src/lambda/internal_libs").mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT)
    libs = root / "src/lambda/internal_libs"
    (libs / "__init__.py").write_text("")
    (libs / "records.py").write_text("def normalise(row):\n    return {k.lower(): v for k, v in row.items()}\n")
    for m in range(19):
        (libs / f"module_{m:02d}.py").write_text(f"VALUE = {m}\n" + "def f(x):\n    return x * 2\n" * 20)
    for n in range(functions):
        (root / f"src/lambda/fn_{n:04d}.py").write_text(HANDLER.format(n=n))


def run(args: list[str], cwd: Path, env: dict) -> tuple[float, dict | None]:
    started = time.perf_counter()
    result = subprocess.run([PKG, *args], cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"pkg {' '.join(args)} failed:\n{result.stderr}")
    return elapsed, json.loads(result.stdout) if "--json" in args else None


def built(report: dict) -> int:
    return report["summary"]["built"]


def bench(functions: int, runs: int) -> dict:
    root = HERE / "out" / f"repo-{functions}"
    generate(root, functions)
    env = {**os.environ, "PKG_CACHE_DIR": str(root / ".pkg")}
    time.sleep(2.1)  # let the files age past the stat cache's racy window, as a real checkout has
    cold, report = run(["build", "--json"], root, env)
    cold_built = built(report)
    noops = []
    for _ in range(runs):
        elapsed, report = run(["build", "--json"], root, env)
        assert built(report) == 0, report["summary"]
        noops.append(elapsed)
    full_checks = []  # the same no-op with the saved answer removed: discovery, hashing, index lookups
    for _ in range(runs):
        (root / ".pkg" / "last-build.json").unlink(missing_ok=True)
        elapsed, report = run(["build", "--json"], root, env)
        assert built(report) == 0, report["summary"]
        full_checks.append(elapsed)
    edits, edit_built = [], set()
    target = root / "src/lambda/fn_0007.py"
    for i in range(runs):
        target.write_text(target.read_text() + f"\n# edit {i}\n")
        elapsed, report = run(["build", "--json"], root, env)
        edits.append(elapsed)
        edit_built.add(built(report))
    lib = root / "src/lambda/internal_libs/module_03.py"
    lib.write_text(lib.read_text() + "\n# edit\n")
    lib_time, report = run(["build", "--json"], root, env)
    return {
        "functions": functions,
        "artifacts": cold_built,
        "cold_s": cold,
        "noop_s": statistics.median(noops),
        "full_check_s": statistics.median(full_checks),
        "one_edit_s": statistics.median(edits),
        "one_edit_rebuilt": sorted(edit_built),
        "lib_edit_s": lib_time,
        "lib_edit_rebuilt": built(report),
    }


def help_time(runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([PKG, "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"pkg --help: {help_time(args.runs) * 1000:.0f} ms (median of {args.runs})")
    print(
        "| functions | artifacts | cold build | no-op build | no-op, full check | one handler edited | rebuilt"
        " | internal_libs edited | rebuilt |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        r = bench(size, args.runs)
        print(
            f"| {r['functions']} | {r['artifacts']} | {r['cold_s']:.2f} s | {r['noop_s']:.3f} s | {r['full_check_s']:.3f} s"
            f" | {r['one_edit_s']:.3f} s | {','.join(map(str, r['one_edit_rebuilt']))}"
            f" | {r['lib_edit_s']:.3f} s | {r['lib_edit_rebuilt']} |"
        )


if __name__ == "__main__":
    main()
