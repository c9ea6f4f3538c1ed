"""`make demo`: build and publish the example pipelines to a local AWS endpoint, then show a no-op rerun.

Starts a moto server on a free loopback port, points boto3 at it with dummy credentials,
creates the IAM role and the bucket that pyproject.toml's [tool.pkg] expects, runs `pkg build`
and `pkg publish --stage dev`, prints what was created, publishes again with `--json` and shows the
JSON report it answered (nothing is rebuilt or republished), and stops the server. The cache
lives in a temporary folder, so every run starts cold and the repository's own .pkg/ is left alone.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGION = "us-east-1"
ROLE = "datamart-lambda"
BUCKET = "datamart-artifacts"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_moto(port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("the moto server exited at start-up (is moto[server] installed? run `make setup`)")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("the moto server did not start within 30 s")


def pkg(*args: str, env: dict) -> subprocess.CompletedProcess:
    """Run pkg as a user would, echoing the command and its output (with --json: the JSON object, indented)."""
    print(f"\n$ pkg {' '.join(args)}", flush=True)
    as_json = "--json" in args
    result = subprocess.run(
        [sys.executable, "-m", "packager", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if as_json else subprocess.STDOUT,  # progress lines in order with the rest
        text=True,
    )
    if not as_json:
        sys.stdout.write(result.stdout)
    else:  # what `pkg ... --json` answered, as it shows on a terminal; on failure, its error object too
        if result.returncode:
            sys.stdout.write(result.stderr)
        if result.stdout.strip():
            print(json.dumps(json.loads(result.stdout), indent=2))
    sys.stdout.flush()
    if result.returncode:
        raise SystemExit(f"pkg {' '.join(args)} failed with exit code {result.returncode}")
    return result


def main() -> None:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    cache_dir = tempfile.mkdtemp(prefix="pkg-demo-cache-")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_")  # the demo must never reach a real account
    }
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        PKG_CACHE_DIR=cache_dir,
    )
    print(f"starting a local AWS endpoint (moto) at {endpoint}; cache in {cache_dir}")
    server = start_moto(port)
    try:
        os.environ.update({key: env[key] for key in env if key.startswith("AWS_")})
        import boto3

        boto3.client("iam").create_role(
            RoleName=ROLE,
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        print(f"created IAM role {ROLE} and S3 bucket {BUCKET} (what [tool.pkg] in pyproject.toml expects)")

        pkg("build", env=env)
        pkg("publish", "--stage", "dev", env=env)

        lam = boto3.client("lambda")
        print("\nwhat is live now:")
        for layer in lam.list_layers()["Layers"]:
            version = layer["LatestMatchingVersion"]
            print(f"  layer     {version['LayerVersionArn']}")
        for function in sorted(lam.list_functions()["Functions"], key=lambda f: f["FunctionName"]):
            layers = ", ".join(layer["Arn"].rsplit(":layer:", 1)[1] for layer in function.get("Layers", []))
            print(
                f"  function  {function['FunctionName']:<28} {function['Runtime']}  {function['MemorySize']} MB"
                f"  CodeSha256 {function['CodeSha256'][:12]}...  layers: {layers}"
            )

        print("\nand once more, with nothing changed (the JSON report CI keeps, e.g. as publish-report.json):")
        again = json.loads(pkg("publish", "--stage", "dev", "--json", env=env).stdout)
        summary = again["summary"]
        if summary["built"] or summary["mutating_calls"]:
            raise SystemExit("the second publish was not a no-op")

        # -- Glue and EMR jobs (issue 6) ---------------------------------------------------------
        show_jobs(env)
    finally:
        server.terminate()
        server.wait(timeout=10)
        print("\nlocal AWS endpoint stopped", flush=True)


def show_jobs(env: dict) -> None:
    """The Glue jobs publish created (scripts and libraries under content-addressed S3 keys), and a run."""
    import boto3

    print("\nGlue jobs live now (EMR has no job resource: its run specification is in the index):")
    for job in sorted(boto3.client("glue").get_jobs()["Jobs"], key=lambda j: j["Name"]):
        command = job["Command"]
        print(f"  {job['Name']:<28} {command['Name']:<11} Glue {job['GlueVersion']}  {command['ScriptLocation']}")
        print(f"  {'':<28} --extra-py-files {job['DefaultArguments'].get('--extra-py-files', '-')}")
    orders = json.dumps([{"day": "2026-01-01", "amount": "12.5"}, {"day": "2026-01-01", "amount": "7.5"}])
    pkg("run", "glue_python_shell/daily_totals", "--stage", "dev", "--wait", "--timeout", "60",
        "--", "--orders", orders, env=env)  # fmt: skip


if __name__ == "__main__":
    main()
