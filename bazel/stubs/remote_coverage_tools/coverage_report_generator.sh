#!/bin/sh
# Offline stand-in for Bazel's coverage report generator: `bazel coverage` is
# not supported in this offline setup; `bazel test` never runs this.
echo "coverage reports are not available in the offline Bazel setup" >&2
exit 1
