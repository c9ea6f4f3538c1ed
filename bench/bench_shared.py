"""Benchmark the shared S3 cache: a fresh clone (empty local cache) of a published repo, as a CI runner sees it.

Not a test: it prints figures and writes them to docs/benchmarks.md.
Usage: python bench/bench_shared.py [--functions 100]
One "machine" publishes the generated repo with a shared cache configured; then a fresh clone with
an empty local cache runs `pkg publish` (target: 0 builds, 0 publishes, <= 2 s) and, in another fresh
clone, `pkg build` (everything fetched and verified, nothing built). API calls are counted on the
server side (tests/moto_server.py logs every request).
"""

from __future__ import annotations

import argparse
import collections
import shutil
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=100)
    options = parser.parse_args()

    out = HERE / "out" / f"shared-{options.functions}"
    shutil.rmtree(out, ignore_errors=True)
    root = out / "laptop"
    generate(root, options.functions)
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text().replace('architecture = "x86_64"\n', f'architecture = "x86_64"\nrole = "{ROLE}"\n')
    text = text.replace('[tool.pkg]\n', f'[tool.pkg]\ncache_uri = "s3://{BUCKET}/pkg-cache"\n')
    pyproject.write_text(text + STAGE)

    server = MotoServer()
    env = local_aws_env(server)
    try:
        import boto3

        boto3.client("iam").create_role(RoleName="bench-lambda", AssumeRolePolicyDocument="{}")
        boto3.client("s3").create_bucket(Bucket=BUCKET)

        print(f"shared cache, {options.functions} functions + 1 layer, moto server on loopback")
        print(f"{'step':<52} {'time':>7} {'built':>6} {'mutating':>9} {'API calls':>10}  by operation")
        rows: list[list[object]] = []

        def step(label: str, folder: Path, args: list[str]) -> None:
            server.reset_calls()
            elapsed, report = run(args, folder, {**env, "PKG_CACHE_DIR": str(folder / ".pkg")})
            calls = server.calls()
            ops = collections.Counter(call["operation"] for call in calls)
            mutating = sum(call["mutating"] for call in calls)
            built = report["summary"]["built"]
            detail = ", ".join(f"{name} {count}" for name, count in ops.most_common(4))
            print(f"{label:<52} {elapsed:>6.2f}s {built:>6} {mutating:>9} {len(calls):>10}  {detail}")
            rows.append([label, f"{elapsed:.2f} s", built, mutating, len(calls), detail])

        step("laptop: first publish (build, publish, push)", root, ["publish", "--stage", "dev"])
        for name, args in (("ci-publish", ["publish", "--stage", "dev"]), ("ci-build", ["build"])):
            clone = out / name
            shutil.copytree(root, clone, ignore=shutil.ignore_patterns(".pkg"))
            step(f"fresh clone, empty local cache: pkg {args[0]}", clone, args)
        write_section(
            "Shared cache (bench/bench_shared.py)",
            f"{options.functions} generated functions sharing internal_libs, published from one folder with a"
            " shared cache, then a fresh clone (empty local cache) of it; the `pkg` console script against a local"
            " moto server on loopback; API calls counted by the server (the four most frequent listed).\n\n"
            + markdown_table(["step", "time", "built", "mutating calls", "API calls", "by operation"], rows),
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
