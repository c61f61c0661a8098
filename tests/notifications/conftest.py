"""Fixtures: a webhook robot on loopback (running, or not yet started)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.notifications.notify_servers import RobotServer


@pytest.fixture
def robot() -> Iterator[RobotServer]:
    server = RobotServer().start()
    yield server
    server.stop()


@pytest.fixture
def robot_port() -> Iterator[RobotServer]:
    """A robot that is *not* started yet (its port refuses connections until ``start()``)."""
    server = RobotServer()
    yield server
    server.stop()
