"""What the conformance suites share. Needs pytest."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

__all__ = ["class_fixture"]


def class_fixture(function: Callable[..., Any]) -> Any:
    """A suite fixture built once per test class, as a classmethod so that it can call the subclass's
    ``make``: fitting a model for every test would make the suites slow, and the tests only read it."""
    return pytest.fixture(scope="class")(classmethod(function))
