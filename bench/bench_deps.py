"""Benchmark Lambda dependency layers on generated repos, offline, from a generated wheelhouse.

Not a test: it prints figures and writes them to docs/benchmarks.md.
Usage: python bench/bench_deps.py [--functions 100] [--runs 5] [--pypi "polars==1.0 duckdb==1.0" --bump "duckdb==1.1"]
With --pypi the set comes from PyPI instead (real, compressible wheels; needs the network).

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

from report import markdown_table, write_section  # noqa: E402
from wheelhouse import build_wheelhouse  # noqa: E402  (the tests' generated wheels)

PKG = str(Path(sys.executable).with_name("pkg"))
SET = "bigone==1.0\nbigtwo=={bigtwo}\nnativelib==1.0\n"
SPELLINGS = ["{set}", "# same set, other order\nnativelib==1.0\nBigTwo == {bigtwo}\nbigone==1.0\n"]


def generate(root: Path, functions: int, wheelhouse: Path | None, texts: list[str]) -> None:
    if root.exists():
        shutil.rmtree(root)
    libs = root / "src/lambda/internal_libs"
    libs.mkdir(parents=True)
    config = '[tool.pkg]\nproject = "bench"\n[tool.pkg.lambda]\nruntime = "python3.12"\n'
    if wheelhouse:
        config += f'[tool.pkg.dependencies]\nno_index = true\nfind_links = ["{wheelhouse}"]\n'
        (libs / "requirements.txt").write_text("helper==2.0\n")
    (root / "pyproject.toml").write_text(config)
    (libs / "__init__.py").write_text("")
    write_requirements(root, functions, texts)
    for n in range(functions):
        (root / f"src/lambda/f{n:04d}.py").write_text(f"def handler(event, context):\n    return {n}\n")


def write_requirements(root: Path, functions: int, texts: list[str]) -> None:
    """The same set in every function, in the spellings of `texts` by turns."""
    for n in range(functions):
        (root / f"src/lambda/f{n:04d}.requirements.txt").write_text(texts[n % len(texts)])


def generated_set(bigtwo: str) -> list[str]:
    return [spelling.format(set=SET.format(bigtwo=bigtwo), bigtwo=bigtwo) for spelling in SPELLINGS]


def pypi_set(requirements: list[str]) -> list[str]:
    return ["\n".join(requirements) + "\n", "# same set, reversed\n" + "\n".join(reversed(requirements)) + "\n"]


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
    parser.add_argument("--pypi", help="a requirement set from PyPI, space-separated, instead of generated wheels")
    parser.add_argument("--bump", help="with --pypi: the requirement to bump to, e.g. duckdb==1.1")
    args = parser.parse_args()
    out = args.out.resolve()
    env = dict(os.environ)
    if args.pypi:
        wheelhouse = None
        requirements = args.pypi.split()
        before = pypi_set(requirements)
        bump_name = args.bump.split("==")[0]
        after = pypi_set([args.bump if r.split("==")[0] == bump_name else r for r in requirements])
        label = f"bump {args.bump}"
    else:
        wheelhouse = out / "wheelhouse"
        if not (wheelhouse / "done").exists():
            build_wheelhouse(wheelhouse)
            (wheelhouse / "done").write_text("")
        env["UV_CACHE_DIR"] = str(out / "uv-cache")
        shutil.rmtree(out / "uv-cache", ignore_errors=True)
        before, after = generated_set("1.0"), generated_set("1.1")
        label = "bump bigtwo 1.0 -> 1.1"
    n = args.functions
    root = out / f"deps-{n}"
    generate(root, n, wheelhouse, before)

    cold, first, stderr = pkg(root, "build", env=env)
    installs = stderr.count("installing ")
    whole = sum(a["size"] for a in chunks(first).values())
    shared = "" if args.pypi else " (+ internal_libs deps)"
    print(f"{n} functions sharing one requirement set{shared}: cold build {cold:.2f} s,")
    print(f"  {installs} installs, {len(chunks(first))} unique chunks ({whole / 1e6:.1f} MB zipped),")
    print(f"  {first['summary']['built']} artifacts built")
    source = f"PyPI set `{args.pypi}`" if args.pypi else "generated wheels"
    rows = [
        [
            f"{n} functions sharing one set{shared}, cold build",
            f"{installs} installs, {len(chunks(first))} unique chunks ({whole / 1e6:.1f} MB zipped),"
            f" {first['summary']['built']} artifacts: {cold:.2f} s",
        ]
    ]

    full = statistics.median(pkg(root, "build", env=env)[0] for _ in range(args.runs))
    time.sleep(2.1)  # let the files age past the racy window, as a real checkout's have
    pkg(root, "build", env=env)
    noop = statistics.median(pkg(root, "build", env=env)[0] for _ in range(args.runs))
    print(f"no-op build, {n} functions with dependency layers: {noop:.3f} s (median of {args.runs});")
    print(f"  {full:.3f} s with files too new for the saved no-op answer (the full check)")
    rows.append(
        [
            f"no-op build, {n} functions with dependency layers",
            f"{noop:.3f} s from the saved no-op answer; {full:.3f} s through the full check",
        ]
    )

    write_requirements(root, n, after)
    bump, bumped, stderr = pkg(root, "build", env=env)
    rebuilt = {a["input_hash"]: a for a in bumped["artifacts"] if a["status"] == "built"}
    rebuilt_bytes = sum(a["size"] for a in rebuilt.values())
    unchanged = set(chunks(bumped)) & set(chunks(first))
    print(
        f"{label} in all {n} files: {bump:.2f} s, {stderr.count('installing ')} install,"
        f" {len(rebuilt)} unique chunk rebuilt ({rebuilt_bytes / 1e6:.1f} MB of {whole / 1e6:.1f} MB),"
        f" {len(unchanged)} chunk unchanged"
    )
    rows.append(
        [
            f"{label} in all {n} files",
            f"{stderr.count('installing ')} install, {len(rebuilt)} chunk rebuilt:"
            f" {rebuilt_bytes / 1e6:.1f} MB of {whole / 1e6:.1f} MB: {bump:.2f} s",
        ]
    )

    big = out / f"deps-{10 * n}"
    generate(big, 10 * n, wheelhouse, before)
    time.sleep(2.1)
    pkg(big, "build", env=env)
    pkg(big, "build", env=env)
    noop_big = statistics.median(pkg(big, "build", env=env)[0] for _ in range(args.runs))
    print(f"no-op build, {10 * n} functions with dependency layers: {noop_big:.3f} s (median of {args.runs})")
    rows.append([f"no-op build, {10 * n} functions with dependency layers", f"{noop_big:.3f} s"])
    write_section(
        "Dependency layers, PyPI set (bench/bench_deps.py --pypi)"
        if args.pypi
        else "Dependency layers, generated wheels (bench/bench_deps.py)",
        f"Generated repos whose functions' requirements files hold one set (spelled two ways), {source};"
        f" the `pkg` console script in a subprocess; medians of {args.runs}.\n\n"
        + markdown_table(["scenario", "result"], rows),
    )


if __name__ == "__main__":
    main()
