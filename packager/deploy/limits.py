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

# Lambda refuses a request body over this many bytes ("Request must be smaller than 69905067 bytes").
LAMBDA_REQUEST_MAX_BYTES = 69_905_067
# All a create/update/publish request carries beside the zip (a 4 KB environment, 50 tags, 5 layer
# ARNs, role, description, JSON keys) stays far below this: the rest of the request's room.
LAMBDA_REQUEST_MARGIN = 64 * 1024


def inline_request_bytes(zip_size: int) -> int:
    """The size of a request carrying a zip inline: the zip as base64, plus the margin for the rest."""
    return 4 * -(-zip_size // 3) + LAMBDA_REQUEST_MARGIN


def fits_inline(zip_size: int) -> bool:
    """Whether a zip can go in the request itself (`ZipFile`) rather than through the artifact bucket:
    under Lambda's 50 MB direct-upload limit, and its request under the 69,905,067 bytes AWS accepts."""
    return zip_size < LAMBDA_LIMITS.direct_upload_zip and inline_request_bytes(zip_size) <= LAMBDA_REQUEST_MAX_BYTES


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
