"""Benchmark Lambda dependency layers on generated repos, offline, from a generated wheelhouse.

Not a test: it prints figures for the README. Usage: python bench/bench_deps.py [--functions 100] [--runs 5]

- cold: N functions whose `<name>.requirements.txt` are the same set (spelled differently) plus
  shared internal_libs requirements: how long the first build takes and how many installs it runs;
- no-op: the second build, and the same at 10 x N functions (the core's target is 0.25 s at 1000);
- bump: one pinned package of the set bumped: which chunks are rebuilt, bytes rebuilt vs the whole set.
Every command runs as a user runs it (the `pkg` console script in a subprocess).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from wheelhouse import build_wheelhouse  # noqa: E402  (the tests' generated wheels)

PKG = str(Path(sys.executable).with_name("pkg"))
SET = "bigone==1.0\nbigtwo=={bigtwo}\nnativelib==1.0\n"
SPELLINGS = ["{set}", "# same set, other order\nnativelib==1.0\nBigTwo == {bigtwo}\nbigone==1.0\n"]


def generate(root: Path, functions: int, wheelhouse: Path, bigtwo: str = "1.0") -> None:
    if root.exists():
        shutil.rmtree(root)
    libs = root / "src/lambda/internal_libs"
    libs.mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[tool.pkg]\nproject = "bench"\n[tool.pkg.lambda]\nruntime = "python3.12"\n'
        f'[tool.pkg.dependencies]\nno_index = true\nfind_links = ["{wheelhouse}"]\n'
    )
    (libs / "__init__.py").write_text("")
    (libs / "requirements.txt").write_text("helper==2.0\n")
    write_requirements(root, functions, bigtwo)
    for n in range(functions):
        (root / f"src/lambda/f{n:04d}.py").write_text(f"def handler(event, context):\n    return {n}\n")


def write_requirements(root: Path, functions: int, bigtwo: str) -> None:
    for n in range(functions):
        text = SPELLINGS[n % 2].format(set=SET.format(bigtwo=bigtwo), bigtwo=bigtwo)
        (root / f"src/lambda/f{n:04d}.requirements.txt").write_text(text)


def pkg(root: Path, *args: str, env: dict) -> tuple[float, dict, str]:
    started = time.perf_counter()
    result = subprocess.run([PKG, *args, "--json"], cwd=root, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(result.stderr)
    return elapsed, json.loads(result.stdout), result.stderr


def chunks(report: dict) -> dict[str, dict]:
    """Unique dependency chunks by input hash."""
    return {a["input_hash"]: a for a in report["artifacts"] if "_deps/" in a["id"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--functions", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=HERE / "out")
    args = parser.parse_args()
    out = args.out.resolve()
    wheelhouse = out / "wheelhouse"
    if not (wheelhouse / "done").exists():
        build_wheelhouse(wheelhouse)
        (wheelhouse / "done").write_text("")
    env = {**os.environ, "UV_CACHE_DIR": str(out / "uv-cache")}
    shutil.rmtree(out / "uv-cache", ignore_errors=True)
    n = args.functions
    root = out / f"deps-{n}"
    generate(root, n, wheelhouse)

    cold, first, stderr = pkg(root, "build", env=env)
    installs = stderr.count("installing ")
    whole = sum(a["size"] for a in chunks(first).values())
    print(f"{n} functions sharing one requirement set (+ internal_libs deps): cold build {cold:.2f} s,")
    print(f"  {installs} installs, {len(chunks(first))} unique chunks ({whole / 1e6:.1f} MB zipped),")
    print(f"  {first['summary']['built']} artifacts built")

    noop = statistics.median(pkg(root, "build", env=env)[0] for _ in range(args.runs))
    print(f"no-op build, {n} functions with dependency layers: {noop:.3f} s (median of {args.runs})")

    write_requirements(root, n, "1.1")
    bump, bumped, stderr = pkg(root, "build", env=env)
    rebuilt = {a["input_hash"]: a for a in bumped["artifacts"] if a["status"] == "built"}
    rebuilt_bytes = sum(a["size"] for a in rebuilt.values())
    unchanged = set(chunks(bumped)) & set(chunks(first))
    print(
        f"bump bigtwo 1.0 -> 1.1 in all {n} files: {bump:.2f} s, {stderr.count('installing ')} install,"
        f" {len(rebuilt)} unique chunk rebuilt ({rebuilt_bytes / 1e6:.1f} MB of {whole / 1e6:.1f} MB),"
        f" {len(unchanged)} chunk unchanged"
    )

    big = out / f"deps-{10 * n}"
    generate(big, 10 * n, wheelhouse)
    pkg(big, "build", env=env)
    noop_big = statistics.median(pkg(big, "build", env=env)[0] for _ in range(args.runs))
    print(f"no-op build, {10 * n} functions with dependency layers: {noop_big:.3f} s (median of {args.runs})")


if __name__ == "__main__":
    main()
