"""resolver_errors.classify on what uv and pip print (captured from the versions in the dev venv)."""

from __future__ import annotations

import pytest

from packager.builders.resolver_errors import Cause, ResolverFailure, classify, skipped_wheels

UV = "error: No solution found when resolving dependencies\n  cause: "
PIP_NONE = (
    "ERROR: Could not find a version that satisfies the requirement {req} (from versions: none)\n"
    "ERROR: No matching distribution found for {req}\n"
)


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (UV + "Because nosuchpkg was not found in the package registry and you require nosuchpkg==1.0, we can"
         " conclude that your requirements are unsatisfiable.", ResolverFailure(Cause.UNKNOWN_PACKAGE, "nosuchpkg")),
        (UV + "Because there is no version of tinylib==9.9 and you require tinylib==9.9, we can conclude",
         ResolverFailure(Cause.NO_VERSION, "tinylib", "==9.9")),
        (UV + "Because only tinylib<=1.1 is available and you require tinylib>=5, we can conclude",
         ResolverFailure(Cause.NO_VERSION, "tinylib", ">=5")),
        (UV + "Because armonly==1.0 has no wheels with a matching platform tag (e.g., `manylinux_2_34_x86_64`)",
         ResolverFailure(Cause.NO_WHEEL, "armonly", "==1.0")),
        (UV + "Because you require tinylib==1.0 and tinylib==1.1, we can conclude that your requirements are"
         " unsatisfiable.", ResolverFailure(Cause.CONFLICT)),
        ("ERROR: Could not find a version that satisfies the requirement tinylib>=5 (from versions: 1.0, 1.1)\n",
         ResolverFailure(Cause.NO_VERSION, "tinylib", ">=5", "1.0, 1.1")),
        (PIP_NONE.format(req="ghost>=1 (from usesghost)"), ResolverFailure(Cause.UNKNOWN_PACKAGE, "ghost", ">=1")),
        ("ERROR: Cannot install needsold==1.0 and tinylib==1.1 because these package versions have conflicting"
         " dependencies.\nERROR: ResolutionImpossible: ...", ResolverFailure(Cause.CONFLICT, "tinylib")),
    ],
)  # fmt: skip
def test_each_cause_is_read_from_the_tools_words(output, expected):
    assert classify(output) == expected


def test_pip_from_versions_none_with_skipped_wheels_of_it_is_no_wheel_for_the_platform():
    verbose = (
        "Skipping link: none of the wheel's tags (cp312-cp312-manylinux_2_17_aarch64) are compatible (run pip debug"
        " --verbose to show compatible tags): file:///w/armonly-1.0-cp312-cp312-manylinux_2_17_aarch64.whl\n"
        "Skipping link: wrong project name (not armonly): file:///w/tinylib-1.0-py3-none-any.whl\n"
    )
    skipped = skipped_wheels(verbose)
    assert skipped == {("armonly", "1.0")}
    output = PIP_NONE.format(req="armonly==1.0")
    assert classify(output, skipped) == ResolverFailure(Cause.NO_WHEEL, "armonly", "==1.0")
    assert classify(output, set()).cause is Cause.UNKNOWN_PACKAGE
    # A version that exists only for other platforms, while others fit: still no wheel, not no version.
    fits_elsewhere = "ERROR: Could not find a version that satisfies the requirement armonly==1.0 (from versions: 0.9)"
    assert classify(fits_elsewhere, skipped).cause is Cause.NO_WHEEL
