"""pkg: build and publish AWS data pipelines from one monorepo, rebuilding only what changed."""

__version__ = "0.1.0"
# The name pip installs it by (`pip install pkg-pipelines`); the command stays `pkg`.
DISTRIBUTION = "pkg-pipelines"

# Bumped whenever the bytes of a built artifact would change for the same inputs
# (zip layout, timestamps, permissions): it is part of every input hash.
BUILD_FORMAT_VERSION = 1
