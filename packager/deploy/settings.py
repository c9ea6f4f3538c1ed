"""What a stage must configure before anything is published, asked once for Lambda and jobs alike."""

from __future__ import annotations

from packager.errors import ConfigError

BUCKET_HINT = "set tool.pkg.artifact_bucket (or tool.pkg.stages.<stage>.artifact_bucket)"


def artifact_bucket(config, stage: str) -> str | None:
    """The stage's artifact bucket, or the project's."""
    return config.stage(stage).get("artifact_bucket") or config.raw.get("artifact_bucket")


def require_bucket(bucket: str | None, why: str) -> str:
    """`bucket`, or a ConfigError saying why one is needed."""
    if not bucket:
        raise ConfigError(f"{why}, and no artifact bucket is configured", hint=BUCKET_HINT)
    return bucket


def require_role(settings: dict, artifact_id: str, service: str, unit: str) -> str:
    """The role a function or job runs as (`role` of its settings), or a ConfigError naming where to set it."""
    role = settings.get("role")
    if not role:
        what = "execution role" if service == "lambda" else "IAM role"
        example = "lambda" if service == "lambda" else "glue"
        raise ConfigError(
            f"{artifact_id}: no {what}: set tool.pkg.{service}.role",
            hint=f'e.g. role = "arn:aws:iam::123456789012:role/datamart-{example}" (per stage or {unit} too)',
        )
    return role
