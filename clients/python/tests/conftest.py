"""The tests talk to a real hms-act started by scripts/test-python (HMS_API_URL, HMS_API_TOKEN), with the
repository's playbooks, the demo worker answering pushed tasks, and the pull agent ``validate_tax_id``."""

import os

import pytest


def pytest_configure(config):
    if not os.environ.get("HMS_API_URL"):
        raise pytest.UsageError("run these through scripts/test-python: it starts hms-act and sets HMS_API_URL")


@pytest.fixture(scope="session")
def repository_root():
    return os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
