"""Benchmark `pkg publish` of a generated 100-function repo against a local moto server, counting API calls.

Not a test: it prints figures and writes them to docs/benchmarks.md.
Usage: python bench/bench_publish.py [--functions 100] [--jobs 8]
Runs first publish, no-op publish, one-handler edit, internal_libs edit, and `plan --refresh`, each
as a user runs it (the `pkg` console script in a subprocess, so times include start-up and the
build step). API calls are counted on the server side (tests/moto_server.py logs every request).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from bench import generate  # noqa: E402  (the build benchmark's repo generator)
from moto_server import MotoServer  # noqa: E402
from report import markdown_table, write_section  # noqa: E402

PKG = str(Path(sys.executable).with_name("pkg"))
ROLE = "arn:aws:iam::123456789012:role/bench-lambda"
STAGE = """
[tool.pkg.stages.dev]
region = "us-east-1"
account = "123456789012"
"""


def local_aws_env(server: MotoServer, **extra: str) -> dict:
    """The environment of a `pkg` pointed at the local endpoint with dummy credentials; this process's too."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "PKG_"))}
    env.update(
        AWS_ENDPOINT_URL=server.endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        **extra,
    )
    os.environ.update({key: env[key] for key in env if key.startswith("AWS_")})  # for this process's boto3
    return env


def run(args: list[str], cwd: Path, env: dict) -> tuple[float, dict]:
    started = time.perf_counter()
    result = subprocess.run([PKG, *args, "--json"], cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"pkg {' '.join(args)} failed:\n{result.stderr}")
    return elapsed, json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=8)
    options = parser.parse_args()

    root = HERE / "out" / f"publish-{options.functions}"
    generate(root, options.functions)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('architecture = "x86_64"\n', f'architecture = "x86_64"\nrole = "{ROLE}"\n')
        + STAGE
    )
    server = MotoServer()
    env = local_aws_env(server, PKG_CACHE_DIR=str(root / ".pkg"))
    try:
        import boto3

        boto3.client("iam").create_role(RoleName="bench-lambda", AssumeRolePolicyDocument="{}")
        jobs = ["-j", str(options.jobs)]
        steps = [
            ("first publish (cold build + create)", ["publish", "--stage", "dev", *jobs], None),
            ("no-op publish", ["publish", "--stage", "dev", *jobs], None),
            ("one handler edited", ["publish", "--stage", "dev", *jobs], "handler"),
            ("internal_libs edited", ["publish", "--stage", "dev", *jobs], "libs"),
            ("plan --refresh (reads every function)", ["plan", "--stage", "dev", "--refresh"], None),
        ]
        print(f"pkg publish, {options.functions} functions + 1 layer, moto server on loopback, -j {options.jobs}")
        print(f"{'step':<40} {'time':>7} {'built':>6} {'API calls':>10} {'mutating':>9}  by operation")
        rows = []
        for label, args, edit in steps:
            if edit == "handler":
                path = root / "src/lambda/fn_0007.py"
                path.write_text(path.read_text() + "\n# edited\n")
            elif edit == "libs":
                path = root / "src/lambda/internal_libs/records.py"
                path.write_text(path.read_text() + "\n# edited\n")
            server.reset_calls()
            elapsed, report = run(args, root, env)
            calls = server.calls()
            by_operation = collections.Counter(call["operation"] for call in calls)
            mutating = sum(call["mutating"] for call in calls)
            built = report["summary"].get("built", report["summary"].get("build", 0))
            ops = ", ".join(f"{name} {count}" for name, count in by_operation.most_common())
            print(f"{label:<40} {elapsed:>6.2f}s {built:>6} {len(calls):>10} {mutating:>9}  {ops}")
            rows.append([label, f"{elapsed:.2f} s", built, len(calls), mutating, ops])
        write_section(
            "Publishing (bench/bench_publish.py)",
            f"{options.functions} generated functions sharing internal_libs; the `pkg` console script against a"
            f" local moto server on loopback, `-j {options.jobs}`; API calls counted by the server.\n\n"
            + markdown_table(["step", "time", "built", "API calls", "mutating", "by operation"], rows),
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
