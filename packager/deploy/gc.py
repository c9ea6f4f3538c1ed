"""pkg gc: delete the Lambda layer versions and S3 artifacts of a stage that nothing uses any more.

Lambda counts every layer version against the region's 75 GB of code storage, and every publish
of a changed chunk adds one, so old versions must go. The rule, for each layer of the stage and
each family of content-addressed S3 objects under the artifact bucket's `pkg/` prefix:

- never delete what is in use: a layer version any function of the region runs with, or that the
  index records as current; an S3 object a Glue job of the region or any recorded publish names;
- keep the newest N (`--keep`) besides, for rollback;
- delete the rest.

Like publishing, gc is a plan (printed by `--dry-run`) and then its execution; planning only reads.
What it deletes is marked in the index (`record_deletions`) and reaches the shared index like any
publish record, so no later publish, here or on another machine, attaches a version that is gone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum

from packager.deploy.actions import Target
from packager.deploy.aws import aws_errors
from packager.deploy.naming import GC_PREFIX
from packager.deploy.records import EmrRunRow, FunctionRow, GlueJobRow, LayerVersionRow, UploadRow, is_removed
from packager.deploy.settings import artifact_bucket
from packager.deploy.trust import StageScope, check_recorded
from packager.errors import PkgError
from packager.model import ArtifactId, ArtifactIdError, Role, Service

GC_AGAIN = "run `pkg gc` again"
_HASH_SEGMENT = re.compile(r"[0-9a-f]{32,64}(\.[a-z0-9.]+)?\Z")


class GcKind(StrEnum):
    """What gc does with one layer version or S3 object (the values are the printed names)."""

    KEEP = "keep"
    DELETE_LAYER_VERSION = "delete_layer_version"
    DELETE_OBJECT = "delete_object"
    DELETE_FUNCTION_VERSION = "delete_function_version"  # DeleteFunction with a Qualifier

    @property
    def deletes(self) -> bool:
        return self is not GcKind.KEEP


@dataclass(frozen=True)
class GcAction:
    """Delete (or keep) one layer version or S3 object, and why."""

    kind: GcKind
    name: str  # a layer version ARN or s3://bucket/key
    reason: str
    params: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"action": self.kind.value, "name": self.name, "reason": self.reason}


def _paginate(client, operation: str, key: str, **params):
    for page in client.get_paginator(operation).paginate(**params):
        yield from page.get(key, [])


def _strings(value):
    """Every string inside a JSON-like value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _layer_arns_in_use(aws, functions: list[FunctionRow], leaving: frozenset[str] = frozenset()) -> set[str]:
    """Layer version ARNs that a function of the region runs with, or that a recorded function lists.

    (Layer records themselves are immutable facts, one per version ever published: not a use; nor is a
    function version this gc deletes, whose ARN is in `leaving`.)
    """
    in_use = {arn for row in functions if row.state for arn in row.state.layers if isinstance(arn, str)}
    for function in _paginate(aws.client("lambda"), "list_functions", "Functions", FunctionVersion="ALL"):
        if function.get("FunctionArn") not in leaving:
            in_use.update(layer["Arn"] for layer in function.get("Layers", []))
    return in_use


def _keys_in_use(aws, bucket: str, job_records: list[object]) -> set[str]:
    """S3 keys of the bucket named by a Glue job of the region or a recorded job / run specification.

    Lambda copies code at create/update time, so its S3 objects are only kept for rollback.
    """
    names = set(_strings(job_records))
    for job in _paginate(aws.client("glue"), "get_jobs", "Jobs"):
        names.update(_strings(job.get("Command", {})))
        names.update(_strings(job.get("DefaultArguments", {})))
    # URIs sit inside longer strings too: comma lists, "--conf spark.archives=s3://…/deps.zip#deps".
    uri = re.compile(rf"s3://{re.escape(bucket)}/([^\s,#'\"=]+)")
    keys = {match for text in names for match in uri.findall(text)}
    keys.update(text for text in names if text.startswith(GC_PREFIX))  # a bare key
    return keys


def _family(key: str) -> str:
    """The artifact a content-addressed key is a version of: the key up to its hash segment."""
    parts = key.split("/")
    for i, part in enumerate(parts):
        if _HASH_SEGMENT.match(part):
            return "/".join(parts[:i])
    return key


def _current_rows(
    index, config, target: Target, warn: Callable[[str], None] | None
) -> list[tuple[dict, ArtifactId, dict]]:
    """Index rows that describe what a function or job is now, with their parsed ids and details.

    Rows keyed `<artifact>@<hash or key>` are immutable facts (a layer version, an upload ever
    made), not uses. Rows may have come from the shared cache: the stage's own go through the
    checks a publish makes (packager/deploy/trust.py; one that fails is ignored, with a warning),
    and any row whose details can't be read is skipped. Another stage's rows only keep objects.
    """
    trusted = check_recorded(index.published(target.account, target.region, target.stage),
                             StageScope.of(config, target), warn)  # fmt: skip
    rows = []
    for row in index.all_published():
        if "@" in row["resource_id"]:
            continue
        if (row["account"], row["region"], row["stage"]) == (target.account, target.region, target.stage):
            if row["resource_id"] not in trusted:
                continue
        try:
            artifact = ArtifactId.parse(row["resource_id"])
            details = json.loads(row["details"])
        except (ArtifactIdError, TypeError, ValueError):
            continue
        if isinstance(details, dict) and not is_removed(details):  # a deleted resource: nothing of it in use
            rows.append((row, artifact, details))
    return rows


def _named_by_job(artifact: ArtifactId, details: dict) -> object:
    """What a job row names (its Glue definition or EMR run specification), for the keys it uses."""
    try:
        if artifact.service is Service.EMR:
            return EmrRunRow.from_details(details).spec
        return GlueJobRow.from_details(details).definition
    except (KeyError, TypeError, AttributeError, ValueError):
        return None  # not a row pkg wrote: it names nothing


def plan_gc(
    aws, config, stage: str, index, keep: int, warn: Callable[[str], None] | None = None
) -> list[GcAction]:
    """What `pkg gc --stage` would delete and keep, and why; makes read calls only.

    An AWS error (credentials that may not list, a throttled call) ends as a PkgError.
    """
    with aws_errors(f"stage '{stage}'", GC_AGAIN):
        return _plan_gc(aws, config, stage, index, keep, warn)


def _plan_gc(aws, config, stage: str, index, keep: int, warn: Callable[[str], None] | None) -> list[GcAction]:
    prefix = f"{config.project}-{stage}-"
    rows = _current_rows(index, config, Target(aws.account, aws.region, stage), warn)
    here = [
        FunctionRow.from_details(details)
        for row, artifact, details in rows
        if (row["account"], row["region"], row["stage"]) == (aws.account, aws.region, stage)
        and artifact.service is Service.LAMBDA
        and artifact.role is Role.FUNCTION
    ]
    actions = plan_function_versions_gc(aws, config, stage, keep)
    leaving = frozenset(action.name for action in actions if action.kind.deletes)

    in_use = _layer_arns_in_use(aws, here, leaving)
    client = aws.client("lambda")
    for layer in _paginate(client, "list_layers", "Layers"):
        name = layer["LayerName"]
        if not name.startswith(prefix):
            continue
        versions = sorted(
            _paginate(client, "list_layer_versions", "LayerVersions", LayerName=name),
            key=lambda v: v["Version"],
            reverse=True,
        )
        for rank, version in enumerate(versions):
            arn = version["LayerVersionArn"]
            if arn in in_use:
                actions.append(GcAction(GcKind.KEEP, arn, "in use"))
            elif rank < keep:
                actions.append(GcAction(GcKind.KEEP, arn, f"one of the newest {keep}"))
            else:
                actions.append(
                    GcAction(
                        GcKind.DELETE_LAYER_VERSION,
                        arn,
                        f"unused, older than the newest {keep}",
                        {"LayerName": name, "VersionNumber": version["Version"]},
                    )
                )

    bucket = artifact_bucket(config, stage)
    if bucket:
        # The bucket may serve every stage: what any job or run specification of any stage names stays.
        jobs = [_named_by_job(artifact, details) for _, artifact, details in rows if artifact.service.is_job]
        used_keys = _keys_in_use(aws, bucket, jobs)
        families: dict[str, list[dict]] = {}
        for obj in _paginate(aws.client("s3"), "list_objects_v2", "Contents", Bucket=bucket, Prefix=GC_PREFIX):
            families.setdefault(_family(obj["Key"]), []).append(obj)
        for family in sorted(families):
            objects = sorted(families[family], key=lambda o: (o["LastModified"], o["Key"]), reverse=True)
            for rank, obj in enumerate(objects):
                name = f"s3://{bucket}/{obj['Key']}"
                if obj["Key"] in used_keys:
                    actions.append(GcAction(GcKind.KEEP, name, "in use"))
                elif rank < keep:
                    actions.append(GcAction(GcKind.KEEP, name, f"one of the newest {keep} of {family}"))
                else:
                    actions.append(
                        GcAction(GcKind.DELETE_OBJECT, name, f"unused, older than the newest {keep} of {family}",
                                 {"Bucket": bucket, "Key": obj["Key"]})
                    )
    return actions


def plan_function_versions_gc(aws, config, stage: str, keep: int) -> list[GcAction]:
    """The stage's Lambda function versions that no alias points at and none of the newest `keep` releases ran.

    Every changed function publishes a version (packager/deploy/versions.py), and each keeps its code
    and its layer versions alive; the releases in the window are what `pkg rollback` can go back to.
    """
    from packager.deploy.actions import Target
    from packager.deploy.releases import ReleaseStore
    from packager.deploy.trust import StageScope

    bucket = artifact_bucket(config, stage)
    ran: dict[str, set[str]] = {}  # function name -> versions the window's releases ran
    if bucket and keep:
        scope = StageScope.of(config, Target(aws.account, aws.region, stage))
        for release in ReleaseStore(aws, bucket, scope).latest(keep):
            for function in release.functions.values():
                ran.setdefault(function.name, set()).add(function.version)
    prefix = f"{config.project}-{stage}-"
    client = aws.client("lambda")
    actions: list[GcAction] = []
    for function in _paginate(client, "list_functions", "Functions"):
        name = function["FunctionName"]
        if not name.startswith(prefix):
            continue
        aliased = set()
        for alias in _paginate(client, "list_aliases", "Aliases", FunctionName=name):
            aliased.add(alias["FunctionVersion"])
            aliased.update((alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights", {}))
        for version in _paginate(client, "list_versions_by_function", "Versions", FunctionName=name):
            number, arn = version["Version"], version["FunctionArn"]
            if number == "$LATEST":
                continue
            if number in aliased:
                actions.append(GcAction(GcKind.KEEP, arn, "an alias points at it"))
            elif number in ran.get(name, ()):
                actions.append(GcAction(GcKind.KEEP, arn, f"run by one of the newest {keep} releases"))
            else:
                reason = f"no alias points at it, none of the newest {keep} releases ran it"
                params = {"FunctionName": name, "Qualifier": number}
                actions.append(GcAction(GcKind.DELETE_FUNCTION_VERSION, arn, reason, params))
    return actions


# The call each kind of deletion makes: (client, method).
_DELETIONS = {
    GcKind.DELETE_LAYER_VERSION: ("lambda", "delete_layer_version"),
    GcKind.DELETE_OBJECT: ("s3", "delete_object"),
    GcKind.DELETE_FUNCTION_VERSION: ("lambda", "delete_function"),
}


def execute_gc(aws, actions: list[GcAction], on_deleted: Callable[[GcAction], None] | None = None) -> int:
    """Perform the deletions of a gc plan; returns how many were made (an AWS error ends as a PkgError).

    `on_deleted` is told each deletion AWS confirmed, as it happens.
    """
    done: list[GcAction] = []
    for action in actions:
        if not action.kind.deletes:
            continue
        service, method = _DELETIONS[action.kind]
        try:
            with aws_errors(action.name, GC_AGAIN + ": what was deleted is gone, the rest is planned anew"):
                getattr(aws.client(service), method)(**action.params)
        except PkgError as failure:
            failure.completed["deleted"] = [deletion.to_json() for deletion in done]  # `--json` says what is gone
            raise
        done.append(action)
        if on_deleted is not None:
            on_deleted(action)
    return len(done)


def _marked_deleted(details: dict, arns: set[str], objects: set[tuple[str, str]]) -> dict | None:
    """The details of a layer version or upload row marked deleted, if it names one of these; else None."""
    try:
        if "layer_name" in details and details.get("arn") in arns:
            layer = LayerVersionRow.from_details(details)
            return None if layer.deleted else replace(layer, deleted=True).to_details()
        if (details.get("bucket"), details.get("key")) in objects:
            upload = UploadRow.from_details(details)
            return None if upload.deleted else replace(upload, deleted=True).to_details()
    except (KeyError, TypeError):
        return None  # not a row pkg wrote: left alone
    return None


def record_deletions(index, deleted: list[GcAction]) -> int:
    """Mark the index rows (of every stage) of the layer versions and objects gc deleted; returns how many.

    Marked, not removed: a removed row would come back from the shared index at the next pull,
    while a marked one is a newer write that the next push carries to every machine.
    """
    arns = {action.name for action in deleted if action.kind is GcKind.DELETE_LAYER_VERSION}
    objects = {
        (action.params["Bucket"], action.params["Key"]) for action in deleted if action.kind is GcKind.DELETE_OBJECT
    }
    if not arns and not objects:
        return 0
    marked: dict[tuple[str, str, str], list[tuple[str, str, dict]]] = {}
    for row in index.all_published():
        if "@" not in row["resource_id"]:
            continue  # only the immutable facts (`<artifact>@<hash or key>`) name a version or an object
        try:
            details = json.loads(row["details"])
        except (TypeError, ValueError):
            continue
        if isinstance(details, dict) and (updated := _marked_deleted(details, arns, objects)) is not None:
            target = (row["account"], row["region"], row["stage"])
            marked.setdefault(target, []).append((row["resource_id"], row["input_hash"], updated))
    for (account, region, stage), rows in marked.items():
        index.record_published_many(account, region, stage, rows)
    return sum(len(rows) for rows in marked.values())
