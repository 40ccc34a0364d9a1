"""Runs one test file with pytest: the `main` of every py_test in BUILD."""

import os
import sys

import pytest

if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    os.chdir(os.path.dirname(here))  # the runfiles root, laid out like the repo
    code = pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[1:]])
    if code == pytest.ExitCode.NO_TESTS_COLLECTED and "-m" in sys.argv:
        code = pytest.ExitCode.OK  # a file whose tests are all outside the chosen tier
    sys.exit(code)
