"""Lambda's and Glue's limits, checked once: at build time (before anything is built) and at plan time.

Sizes in messages go through `packager.units.format_size`, in the binary units AWS counts its
limits in, so a size and the limit beside it read alike.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from packager.errors import JobPlanError, PlanError
from packager.runtimes import GLUE_ARGUMENTS_MAX_BYTES, LAMBDA_LIMITS
from packager.units import format_size


def check_function_limits(
    function: str,
    code_size: int | None,
    layers: Sequence[tuple[str, int | None]],
    biggest: str = "",
) -> None:
    """Lambda's layer count and its unzipped total (code plus every layer) for one function.

    `function` names it in the message; `layers` are (artifact id, unzipped size) in the
    function's order, a size None not known yet (the size check waits for it); `biggest` names
    the largest distributions, for the message.
    """
    limits = LAMBDA_LIMITS
    if len(layers) > limits.layers_per_function:
        raise PlanError(
            f"{function} would use {len(layers)} layers; Lambda allows {limits.layers_per_function} per function",
            hint="move its dependencies into fewer layers: trim its requirements or share them via internal_libs",
        )
    if code_size is None or any(size is None for _, size in layers):
        return
    total = code_size + sum(size or 0 for _, size in layers)
    if total > limits.unzipped_total:
        parts = "".join(f", {artifact} {format_size(size)}" for artifact, size in layers)
        raise PlanError(
            f"{function} needs {total:,} bytes ({format_size(total)}) unzipped with its layers; Lambda allows"
            f" {limits.unzipped_total:,} ({format_size(limits.unzipped_total)}). Code {format_size(code_size)}{parts}."
            + (f" Biggest: {biggest}" if biggest else ""),
            hint="drop or replace the biggest packages, split the function, or ship it as a container image"
            " (10 GB)",
        )


def check_function_configuration(function_id: str, configuration: dict) -> None:
    """Lambda's limits on a function's description and environment variables."""
    limits = LAMBDA_LIMITS
    description = configuration.get("Description", "")
    if len(description) > limits.description_length:
        raise PlanError(
            f"{function_id}: description is {len(description)} characters; Lambda takes at most"
            f" {limits.description_length}"
        )
    variables = configuration.get("Environment", {}).get("Variables", {})
    size = sum(len(key.encode()) + len(value.encode()) for key, value in variables.items())
    if size > limits.environment_bytes:
        raise PlanError(
            f"{function_id}: environment variables take {size} bytes; Lambda allows"
            f" {limits.environment_bytes} per function",
            hint="move large values to SSM Parameter Store or S3",
        )


def check_glue_arguments(job_id: str, arguments: dict[str, str]) -> None:
    """Glue's limit on a job's DefaultArguments, as the JSON it sends."""
    size = len(json.dumps(arguments, separators=(",", ":")).encode())
    if size > GLUE_ARGUMENTS_MAX_BYTES:
        biggest = max(arguments, key=lambda key: len(arguments[key]))
        raise JobPlanError(
            f"{job_id}: job arguments take {size:,} bytes; Glue allows {GLUE_ARGUMENTS_MAX_BYTES:,}"
            f" (the biggest is {biggest}, {len(arguments[biggest]):,} bytes)",
            hint="fewer dependency wheels (Glue 5.x takes a requirements file instead), or shorter default_arguments",
        )
