"""Benchmark `pkg rollback` of a generated 100-function repo against a local moto server (target: < 2 s).

Not a test: it prints figures and writes them to docs/benchmarks.md.
Usage: python bench/bench_rollback.py [--functions 100] [--jobs 8]
Publishes twice (the second after an internal_libs edit, so every function gets a new version and
release 2), then times `pkg rollback --stage dev --to 1` as a user runs it (the `pkg` console script
in a subprocess, start-up included) and counts its API calls and the files of the local cache (a
rollback builds nothing) on the server side. It rolls back `--repeat` times (to 1, to 2, to 1, …:
each moves every alias) and reports the median.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from bench import generate  # noqa: E402  (the build benchmark's repo generator)
from bench_publish import ROLE, STAGE, local_aws_env, run  # noqa: E402
from moto_server import MotoServer  # noqa: E402
from report import markdown_table, write_section  # noqa: E402

BUCKET = "bench-artifacts"
TARGET_SECONDS = 2.0


def cached_files(folder: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(folder))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="rollbacks timed (the median counts)")
    options = parser.parse_args()

    root = HERE / "out" / f"rollback-{options.functions}"
    generate(root, options.functions)
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text().replace('architecture = "x86_64"\n', f'architecture = "x86_64"\nrole = "{ROLE}"\n')
    pyproject.write_text(text.replace("[tool.pkg]\n", f'[tool.pkg]\nartifact_bucket = "{BUCKET}"\n', 1) + STAGE)
    server = MotoServer()
    cache = root / ".pkg"
    env = local_aws_env(server, PKG_CACHE_DIR=str(cache))
    try:
        import boto3

        boto3.client("iam").create_role(RoleName="bench-lambda", AssumeRolePolicyDocument="{}")
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        jobs = ["-j", str(options.jobs)]
        run(["publish", "--stage", "dev", *jobs], root, env)
        libs = root / "src/lambda/internal_libs/records.py"
        libs.write_text(libs.read_text() + "\n# edited\n")
        run(["publish", "--stage", "dev", *jobs], root, env)

        files = cached_files(cache)
        times = []
        for attempt in range(options.repeat):
            server.reset_calls()
            to = "1" if attempt % 2 == 0 else "2"
            seconds, answer = run(["rollback", "--stage", "dev", "--to", to, *jobs], root, env)
            times.append(seconds)
            if attempt == 0:
                report, calls = answer, server.calls()
        elapsed = statistics.median(times)
        each = ", ".join(f"{t:.2f}" for t in times)
        moved = sum(action["action"] == "update_alias" for action in report["actions"])
        built = cached_files(cache) - files
        by_operation = collections.Counter(call["operation"] for call in calls)
        ops = ", ".join(f"{name} {count}" for name, count in by_operation.most_common())
        mutating = sum(call["mutating"] for call in calls)
        verdict = "met" if elapsed < TARGET_SECONDS else "MISSED"
        load = os.getloadavg()[0]  # a shared machine's load shows in every figure: say what it was
        print(f"pkg rollback, {options.functions} functions, -j {options.jobs}: {elapsed:.2f} s (median of {each})"
              f" (target < {TARGET_SECONDS:g} s: {verdict}), {moved} aliases moved, {built} files added to the cache,"
              f" {len(calls)} API calls ({mutating} mutating): {ops}")  # fmt: skip
        row = [f"rollback ({moved} aliases; median of {each} s)", f"{elapsed:.2f} s", built, len(calls), mutating, ops]
        write_section(
            "Rollback (bench/bench_rollback.py)",
            f"{options.functions} generated functions published twice (an internal_libs edit between: every"
            f" function has a second version and release 2); then `pkg rollback --stage dev --to 1`, the `pkg`"
            f" console script against a local moto server on loopback, `-j {options.jobs}`, start-up included."
            f" Target: under {TARGET_SECONDS:g} s ({verdict.lower()}; load average {load:.1f} on"
            f" {os.cpu_count()} cores while measured). `built` counts the files the local cache gained (none: no"
            " build, no fetch); API calls counted by the server (the lock and release objects are not"
            " counted).\n\n"
            + markdown_table(["step", "time", "built", "API calls", "mutating", "by operation"], [row])
            + "\n\nVersions and aliases (docs/releases.md) add to a publish, per changed function, PublishVersion"
            " and UpdateAlias; a new function's CreateFunction publishes version 1 itself, so it adds CreateAlias"
            " alone: bench/bench_publish.py at 100 functions counts 201 mutating calls for the first publish (101"
            " without aliases), 301 for an internal_libs edit (101), 3 for one handler edit (1), and still one"
            " read for a no-op.",
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
