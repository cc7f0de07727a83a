"""Each reliability test's recorded figures (tests/reliability/record.py) get
the test's outcome; the end-to-end suite's server fixtures are shared here."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import browser, classroom, e2e_env, server
from tests.reliability import record

__all__ = ["browser", "classroom", "e2e_env", "server"]  # fixtures for the tests of this folder


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" or report.failed:
        record.settle(report.passed)
