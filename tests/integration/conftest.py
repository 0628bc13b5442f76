"""Fixtures of the integration tests."""

import pytest

from .test_loop_prevention import World


@pytest.fixture
def world(settings):
    """Two simulated sites and one issue pair, linked, with every echo drained."""
    w = World(settings)
    w.link_pair()
    yield w
    w.close()
