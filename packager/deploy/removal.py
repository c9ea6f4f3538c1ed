"""Removed sources are removed from AWS: the functions and Glue jobs a stage has that `src/` no longer has.

SAM, CloudFormation and Terraform delete what a template no longer holds; so does a publish of the
whole tree. Candidates (orphans) come from the index's rows of the stage; when the index holds no
function or job of the stage (a fresh clone, no shared cache) or with `--refresh`, also from AWS, by
the `pkg:project` / `pkg:stage` tags every function and job carries (packager/deploy/naming.py).

A resource is deleted only when it is named `<project>-<stage>-…` and tagged with this project and
stage: anything else (made by hand, by another tool, or by pkg before it tagged) is left in place and
said so. Layer versions and S3 objects are left to `pkg gc`. A stage with `deletion_protection = true`
shows the deletions as refused, and `pkg publish` fails before any mutating call unless `--allow-delete`.
The planner only reads; the deletions are actions the executor runs after every other step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cache.index import PublishedRecord
from packager.deploy.actions import SKIP, Action, ActionKind, PublishPlan, ServicePlan, StageInputs
from packager.deploy.naming import resource_name, stage_tags, tagged_for
from packager.deploy.records import FunctionRow, GlueJobRow, removed_details, unit_of
from packager.errors import DeletionProtectedError
from packager.model import SCRIPT_KINDS, ArtifactId, ArtifactIdError, Kind, Role, Service

ALLOW_DELETE_HINT = "pass --allow-delete to delete them, or set deletion_protection = false for the stage"

# A Glue job's Command.Name -> the service folder pkg publishes it from.
GLUE_COMMANDS = {"pythonshell": Service.GLUE_PYTHON_SHELL, "glueetl": Service.GLUE_SPARK}
GLUE_SERVICES = frozenset(GLUE_COMMANDS.values())


class RemovalReads(Protocol):
    """What the removal planner may read from AWS (packager/deploy/live.py's AwsLiveState answers)."""

    def stage_functions(self, prefix: str) -> dict[str, str]:
        """Name -> ARN of the functions whose name starts with `prefix`."""

    def function_tags(self, arn: str) -> dict | None:
        """A function's tags, or None when there is no such function."""

    def tagged_glue_jobs(self, tags: dict[str, str]) -> list[str]:
        """Names of the Glue jobs carrying every one of `tags`."""

    def glue_job(self, name: str) -> dict | None:
        """GetJob's `Job`, or None."""

    def glue_tags(self, arn: str) -> dict:
        """A Glue job's tags."""


def deletion_protected(config, stage: str) -> bool:
    """Whether `[tool.pkg.stages.<stage>] deletion_protection = true`."""
    return config.stage(stage).get("deletion_protection") is True


def source_of(artifact_id: str) -> str:
    """`src/lambda/x.py`: the file a function or job is published from."""
    artifact = ArtifactId.parse(artifact_id)
    return f"src/{artifact.service.value}/{artifact.name}.py"


@dataclass(frozen=True)
class Orphan:
    """A function or Glue job the stage has and `src/` no longer has."""

    artifact_id: str
    name: str  # the AWS name
    arn: str | None  # None for a recorded job (Glue job ARNs are made from the name)
    recorded: bool
    tags: dict | None = None  # known from a listing by tag


def _namespace(service: Service) -> str:
    """Where a resource's name must be unique: Lambda's functions, Glue's jobs (both Glue folders), EMR's."""
    return "glue" if service.is_glue else service.value


def _published_ids(inputs: StageInputs) -> tuple[set[str], set[tuple[str, str]]]:
    """The artifact ids of the functions and jobs in the build, and the AWS names they publish to
    as (namespace, name): a function and a Glue job may share a name."""
    kinds = {Kind.LAMBDA_FUNCTION, *SCRIPT_KINDS.values()}
    ids = {item.spec.id for item in inputs.planned if item.spec.kind in kinds}
    project, stage = inputs.config.project, inputs.target.stage
    names = set()
    for artifact_id in ids:
        artifact = ArtifactId.parse(artifact_id)
        names.add((_namespace(artifact.service), resource_name(project, stage, artifact.short_name)))
    return ids, names


def _recorded_units(recorded: dict[str, PublishedRecord]) -> dict[str, ArtifactId]:
    return {key: artifact for key in recorded if (artifact := unit_of(key)) is not None}


def _forget(artifact_id: str, name: str, reason: str) -> Action:
    """A skip that marks the row removed: the resource is already gone, or was never an AWS resource."""
    return Action(artifact_id, SKIP, reason, name, record=removed_details(), resource_id=artifact_id)


def plan_removals(inputs: StageInputs, reads: RemovalReads, allow_delete: bool = False) -> ServicePlan:
    """delete_function / delete_job for every function and Glue job of the stage that `src/` no longer has.

    `inputs.planned` must be the whole tree's build plan (a publish of some NAMES removes nothing).
    Reads only when there is something to remove, when the index knows no function or job of the
    stage, or with `inputs.refresh`: a recorded no-op makes no call.
    """
    config, target, recorded = inputs.config, inputs.target, inputs.recorded
    project, stage = config.project, target.stage
    prefix = resource_name(project, stage, "")
    present_ids, present_names = _published_ids(inputs)
    units = _recorded_units(recorded)
    actions: list[Action] = []
    orphans: dict[str, Orphan] = {}
    for key, artifact in sorted(units.items()):
        if key in present_ids:
            continue
        name = resource_name(project, stage, artifact.short_name)
        removed = f"{source_of(key)} removed"
        details = recorded[key].details
        if artifact.service is Service.EMR:  # EMR has no job resource: the record is all there is
            actions.append(_forget(key, name, f"{removed}: its run specification is forgotten"))
        elif artifact.service.is_glue and ("glue", name) in present_names:  # moved to the other Glue folder
            actions.append(_forget(key, name, f"{removed}: {name} is published from another folder now"))
        elif artifact.service is Service.LAMBDA:
            state = FunctionRow.from_details(details).state
            if state is None or not state.arn:
                actions.append(_forget(key, name, f"{removed}: the function is already gone"))
            else:
                orphans[key] = Orphan(key, name, state.arn, True)
        elif GlueJobRow.from_details(details).definition is None:
            actions.append(_forget(key, name, f"{removed}: the job is already gone"))
        else:
            orphans[key] = Orphan(key, name, None, True)
    if inputs.refresh or not units:
        services = _services_used(inputs)
        for orphan in _listed(reads, project, stage, prefix, present_names, services):
            orphans.setdefault(orphan.artifact_id, orphan)
    protected = deletion_protected(config, stage) and not allow_delete
    for artifact_id in sorted(orphans):
        actions.append(_removal(orphans[artifact_id], reads, target, project, stage, protected))
    return ServicePlan(actions)


def _services_used(inputs: StageInputs) -> set[Service]:
    """The services the repository configures or builds: only their resources are listed (and need permissions)."""
    built = {item.spec.artifact.service for item in inputs.planned}
    return services_configured(inputs.config, inputs.target.stage) | (built & {Service.LAMBDA, *GLUE_SERVICES})


def services_configured(config, stage: str) -> set[Service]:
    """Lambda and the Glue services that `[tool.pkg]` or the stage's table configures."""
    stage_table = config.stage(stage)
    return {
        service
        for service in (Service.LAMBDA, *GLUE_SERVICES)
        if service.value in config.raw or service.value in stage_table
    }


def _listed(
    reads: RemovalReads, project: str, stage: str, prefix: str, present: set[tuple[str, str]], services: set[Service]
) -> list[Orphan]:
    """The stage's functions and Glue jobs found by their tags that `src/` does not publish."""
    found = []
    listed = reads.stage_functions(prefix) if Service.LAMBDA in services else {}
    for name, arn in sorted(listed.items()):
        if ("lambda", name) in present:
            continue
        tags = reads.function_tags(arn)
        artifact_id = _artifact_id(Service.LAMBDA, Role.FUNCTION, name[len(prefix) :])
        if tags is not None and tagged_for(tags, project, stage) and artifact_id:
            found.append(Orphan(artifact_id, name, arn, False, tags))
    wanted = stage_tags(project, stage)
    jobs = reads.tagged_glue_jobs(wanted) if services & GLUE_SERVICES else []
    for name in sorted(jobs):
        if ("glue", name) in present or not name.startswith(prefix):
            continue
        job = reads.glue_job(name)  # which service folder it came from: its command says
        service = GLUE_COMMANDS.get(((job or {}).get("Command") or {}).get("Name", ""))
        if service is None:
            continue
        artifact_id = _artifact_id(service, Role.JOB, name[len(prefix) :])
        if artifact_id:
            found.append(Orphan(artifact_id, name, None, False, wanted))
    return found


def _artifact_id(service: Service, role: Role, short_name: str) -> str | None:
    """`lambda/function/x` for a name's last part, or None when it is not a name pkg gives."""
    text = f"{service.value}/{role.value}/{short_name}"
    try:
        parsed = ArtifactId.parse(text)
    except (ArtifactIdError, ValueError):
        return None
    return text if parsed.short_name == short_name else None


def _removal(orphan: Orphan, reads: RemovalReads, target, project: str, stage: str, protected: bool) -> Action:
    """The delete action of one orphan, once its tags say it is this stage's; else a skip saying why not."""
    artifact = ArtifactId.parse(orphan.artifact_id)
    removed = f"{source_of(orphan.artifact_id)} removed"
    if artifact.service is Service.LAMBDA:
        arn = orphan.arn
        tags = orphan.tags if orphan.tags is not None else reads.function_tags(arn or "")
        kind, params = ActionKind.DELETE_FUNCTION, {"FunctionName": orphan.name}
    else:
        arn = f"arn:{target.partition}:glue:{target.region}:{target.account}:job/{orphan.name}"
        tags = orphan.tags
        if tags is None:
            tags = reads.glue_tags(arn) if reads.glue_job(orphan.name) is not None else None
        kind, params = ActionKind.DELETE_JOB, {"JobName": orphan.name}
    if tags is None:
        return _forget(orphan.artifact_id, orphan.name, f"{removed}: already gone")
    if not tagged_for(tags, project, stage):
        return Action(
            orphan.artifact_id,
            SKIP,
            f"{removed}, but {orphan.name} is not tagged {_tag_text(project, stage)}: left in place"
            " (pkg deletes only what it tagged; delete it yourself)",
            orphan.name,
            notice=True,
        )
    reason = removed if orphan.recorded else f"{removed} (found by its tags)"
    if protected:
        reason += f"; refused: stage {stage} has deletion_protection = true (--allow-delete)"
    return Action(orphan.artifact_id, kind, reason, orphan.name, params, resource_id=orphan.artifact_id)


def _tag_text(project: str, stage: str) -> str:
    return ", ".join(f"{key}={value}" for key, value in stage_tags(project, stage).items())


def refused_deletions(config, plan: PublishPlan, allow_delete: bool) -> list[Action]:
    """The deletions of `plan` that the stage's deletion_protection refuses (none with `allow_delete`)."""
    if allow_delete or not deletion_protected(config, plan.target.stage):
        return []
    return [action for action in plan.actions if action.kind.deletes]


def check_deletions_allowed(config, plan: PublishPlan, allow_delete: bool) -> None:
    """Refuse, before any mutating call, a plan that deletes on a protected stage without --allow-delete."""
    refused = refused_deletions(config, plan, allow_delete)
    if refused:
        stage = plan.target.stage
        names = ", ".join(action.name for action in refused[:5]) + (" and more" if len(refused) > 5 else "")
        failure = DeletionProtectedError(
            f"stage {stage} has deletion_protection = true; this publish would delete {len(refused)}"
            f" resource{'s' * (len(refused) != 1)} ({names}); nothing was changed",
            hint=ALLOW_DELETE_HINT,
        )
        failure.completed = {"refused": [action.to_json() for action in refused]}
        raise failure
