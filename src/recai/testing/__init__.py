"""Conformance suites every built-in component passes, for your own components too (needs pytest).

Subclass a suite in a test module, LensKit-style, and pytest runs the whole contract on your class::

    from recai.testing import RecommenderSuite

    class TestMyRecommender(RecommenderSuite):
        @staticmethod
        def make() -> MyRecommender:
            return MyRecommender(factors=8, seed=1)

The suites: :class:`RecommenderSuite` (``make``), :class:`ChatModelSuite` (a ``chat_model`` fixture),
:class:`EncoderSuite` (an ``encoder`` fixture), :class:`ToolSuite` (``tool`` and ``tool_args``
fixtures) and :class:`ExtractorSuite` (``make``). Their names do not start with ``Test``, so pytest
collects only your subclasses. :mod:`recai.testing.data` builds the small datasets they run on, and
:mod:`recai.testing.fakes` holds deterministic stand-ins (an encoder without weights).

``import recai`` never imports this package, and this package imports pytest only when a suite is used,
so pytest stays a test-time dependency.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_SUITES = {
    "RecommenderSuite": "recai.testing.recommender",
    "ChatModelSuite": "recai.testing.chat_model",
    "EncoderSuite": "recai.testing.encoder",
    "ToolSuite": "recai.testing.tool",
    "ExtractorSuite": "recai.testing.extractor",
}

__all__ = sorted(_SUITES)


def __getattr__(name: str) -> Any:
    if name in _SUITES:
        return getattr(import_module(_SUITES[name]), name)
    raise AttributeError(f"module 'recai.testing' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_SUITES])
