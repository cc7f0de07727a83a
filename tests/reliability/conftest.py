"""Each reliability test's recorded figures (tests/reliability/record.py) get
the test's outcome."""

from __future__ import annotations

import pytest

from tests.reliability import record


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" or report.failed:
        record.settle(report.passed)
