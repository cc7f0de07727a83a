"""Each reliability test's recorded figures (tests/reliability/record.py) get
the test's outcome; the end-to-end suite's server fixtures are shared here,
and the fault tests' private Redis and the servers a test starts."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import browser, classroom, e2e_env, server
from tests.e2e.harness import Server
from tests.reliability import record
from tests.reliability.faults import RedisProcess

__all__ = ["browser", "classroom", "e2e_env", "server"]  # fixtures for the tests of this folder


@pytest.fixture
def private_redis():
    redis = RedisProcess().start()
    yield redis
    redis.stop()


@pytest.fixture
def started():
    """Servers a test starts, stopped at teardown (logs: Server.log_path)."""
    servers: list[Server] = []
    yield servers
    for started_server in servers:  # not `server`: the fixture imported above
        started_server.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" or report.failed:
        record.settle(report.passed)
